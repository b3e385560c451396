import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '@cvopt/core';
import type { Prediction } from './pipeline.js';
import { failFastRedis } from './redis-rate-limit.js';

/**
 * Answers to identical images, kept in Redis for `ttlS` and shared by every replica: the key is the sha256 of the
 * image bytes under the model's version and the post-processing settings, so a new model or threshold never serves
 * an old answer. A cache that does not answer within `commandTimeoutMs` is skipped (logged once): the request is
 * computed as if there were no cache.
 */
export interface ResponseCacheOptions {
  url: string;
  keyPrefix: string;
  commandTimeoutMs: number;
  ttlS: number;
  /** Distinguishes models and settings: the model version plus whatever changes an answer. */
  namespace: string;
  log: Logger;
}

export class RedisResponseCache {
  private readonly redis: Redis;
  private degraded = false;
  hits = 0;
  misses = 0;

  constructor(private readonly o: ResponseCacheOptions) {
    this.redis = failFastRedis(o.url, o.commandTimeoutMs);
    this.redis.on('error', () => {});
  }

  /** `generation` changes when the model is reloaded in place, so a reloaded model never reuses older answers. */
  keyOf(image: Buffer, generation: number): string {
    const ns = createHash('sha256').update(`${this.o.namespace}\n${generation}`).digest('hex').slice(0, 16);
    return `${this.o.keyPrefix}rc:${ns}:${createHash('sha256').update(image).digest('hex')}`;
  }

  async get(key: string): Promise<Omit<Prediction, 'timeMs'> | undefined> {
    try {
      const text = await this.redis.get(key);
      this.recovered();
      if (text === null) {
        this.misses++;
        return undefined;
      }
      this.hits++;
      return JSON.parse(text) as Omit<Prediction, 'timeMs'>;
    } catch (e) {
      this.failed(e);
      return undefined;
    }
  }

  /** Store an answer (fire and forget: the client never waits for the cache). */
  set(key: string, answer: Prediction): void {
    const { timeMs: _timeMs, ...kept } = answer;
    this.redis.set(key, JSON.stringify(kept), 'EX', this.o.ttlS).then(() => this.recovered(), (e: unknown) => this.failed(e));
  }

  private failed(e: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.o.log.warn({ err: (e as Error).message }, 'response cache: redis unavailable; answers are computed without it');
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.o.log.info({}, 'response cache: redis is back');
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
