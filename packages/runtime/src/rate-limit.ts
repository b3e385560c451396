import { shedLoad } from '@cvopt/core';

/** What the admission gate asks before taking work from a client (key name, or address when auth is off). */
export interface RequestLimiter {
  /** False when no limit applies (rateLimit.perSecond 0). */
  readonly enabled: boolean;
  /**
   * Take one request's worth for `client`, or throw a catalogue error (RATE_LIMITED) with retryAfterS. In-process
   * buckets answer synchronously; a shared (Redis) limiter returns a promise, which the gate awaits.
   */
  take(client: string): void | Promise<void>;
  /** Release connections (a shared limiter); called when the server stops. */
  close?(): Promise<void>;
}

/**
 * Token bucket per client key: `burst` requests at once, refilled at `perSecond`. perSecond 0 disables it.
 * Buckets idle long enough to be full again are forgotten, so memory stays bounded by active clients.
 */
export class RateLimiter implements RequestLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get enabled(): boolean {
    return this.perSecond > 0;
  }

  /** Take one token for `key`, or throw RATE_LIMITED saying when the next one is due. */
  take(key: string): void {
    if (!this.enabled) return;
    const t = this.now();
    this.sweep(t);
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    const waitS = (1 - b.tokens) / this.perSecond;
    throw shedLoad('RATE_LIMITED', `rate limit of ${this.perSecond} requests/s (burst ${this.burst}) exceeded for this key`, {
      hint: 'slow down; retry after the Retry-After delay',
      retryAfterS: Math.max(1, Math.ceil(waitS)),
    });
  }

  private sweep(t: number): void {
    if (t - this.lastSweep < 10_000) return;
    this.lastSweep = t;
    const fullAfterMs = (this.burst / this.perSecond) * 1000;
    for (const [k, b] of this.buckets) if (t - b.at > fullAfterMs) this.buckets.delete(k);
  }
}

/** The default limiter for a config: token buckets of rateLimit.perSecond / rateLimit.burst per client. */
export function rateLimiterFor(c: { rateLimit: { perSecond: number; burst: number } }): RateLimiter {
  return new RateLimiter(c.rateLimit.perSecond, c.rateLimit.burst);
}
