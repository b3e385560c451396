import { Redis } from 'ioredis';
import { type Logger, shedLoad } from '@cvopt/core';
import { RateLimiter, type RequestLimiter } from './rate-limit.js';

/**
 * Token buckets kept in Redis, so every replica of the service draws from one budget per key. The refill and the
 * take are one Lua script (atomic on the server, clocked by the server's TIME, so replicas' clocks never matter).
 * When Redis cannot answer within `commandTimeoutMs` the replica falls back to its own in-process buckets, logs
 * it once, and keeps serving; the next answer from Redis switches it back.
 */

// KEYS[1] the bucket; ARGV perSecond, burst, idle ttl (ms). Returns {1} or {0, seconds until a token as a string}.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then tokens = burst; at = now end
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ok == 1 then return {1} end
return {0, tostring((1 - tokens) / rate)}
`;

/**
 * A Redis client for the request path: fail fast instead of queueing behind a dead connection (no offline
 * queue, no retries, a command timeout), so a request never waits on Redis's reconnects; reconnects run behind.
 */
export function failFastRedis(url: string, commandTimeoutMs: number): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 250, 2000),
  });
}

export interface RedisLimiterOptions {
  url: string;
  perSecond: number;
  burst: number;
  keyPrefix: string;
  commandTimeoutMs: number;
  log: Logger;
}

type TakeFn = (key: string, perSecond: string, burst: string, ttlMs: string) => Promise<[number, string?]>;

export class RedisRateLimiter implements RequestLimiter {
  private readonly redis: Redis;
  private readonly local: RateLimiter;
  private degraded = false;
  /** Takes answered by the in-process fallback while Redis was away (exported in /metrics by the caller). */
  fallbackTakes = 0;

  constructor(private readonly o: RedisLimiterOptions) {
    this.local = new RateLimiter(o.perSecond, o.burst);
    this.redis = failFastRedis(o.url, o.commandTimeoutMs);
    this.redis.defineCommand('cvoptTake', { numberOfKeys: 1, lua: TAKE });
    // Connection errors surface through take(); without a listener ioredis would print each one.
    this.redis.on('error', () => {});
  }

  get enabled(): boolean {
    return this.o.perSecond > 0;
  }

  async take(key: string): Promise<void> {
    if (!this.enabled) return;
    let answer: [number, string?];
    try {
      const ttlMs = Math.ceil((this.o.burst / this.o.perSecond) * 1000) + 1000;
      answer = await (this.redis as unknown as { cvoptTake: TakeFn }).cvoptTake(`${this.o.keyPrefix}rl:${key}`, String(this.o.perSecond), String(this.o.burst), String(ttlMs));
    } catch (e) {
      if (!this.degraded) {
        this.degraded = true;
        this.o.log.warn({ err: (e as Error).message }, 'redis unavailable: rate limits fall back to this replica\'s own buckets until it returns');
      }
      this.fallbackTakes++;
      this.local.take(key);
      return;
    }
    if (this.degraded) {
      this.degraded = false;
      this.o.log.info({}, 'redis is back: rate limits are shared again');
    }
    if (answer[0] === 1) return;
    const waitS = Number(answer[1] ?? 1);
    throw shedLoad('RATE_LIMITED', `rate limit of ${this.o.perSecond} requests/s (burst ${this.o.burst}) exceeded for this key`, {
      hint: 'slow down; retry after the Retry-After delay',
      retryAfterS: Math.max(1, Math.ceil(waitS)),
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
