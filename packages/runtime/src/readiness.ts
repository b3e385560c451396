import { CvoptError } from '@cvopt/core';

/**
 * The service's readiness as one state machine. Every probe (/readyz, /v2/health/ready, the model's ready route,
 * the cvopt_ready gauge) and the admission gate read it; only the model host and the server move it.
 *
 *   loading → warming → ready ⇄ reloading
 *   ready → failed (an engine worker died) → loading → … (restarted)
 *   any live state → draining → stopped;  loading/warming → failed (could not load)
 */
export type ReadyState = 'loading' | 'warming' | 'ready' | 'reloading' | 'failed' | 'draining' | 'stopped';

const NEXT: Readonly<Record<ReadyState, readonly ReadyState[]>> = {
  loading: ['warming', 'failed', 'draining'],
  warming: ['ready', 'failed', 'draining'],
  ready: ['reloading', 'failed', 'draining'],
  reloading: ['ready', 'failed', 'draining'],
  failed: ['loading', 'draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

export class Readiness {
  private current: ReadyState = 'loading';
  private why: string | undefined;
  private readonly listeners: ((s: ReadyState) => void)[] = [];

  get state(): ReadyState {
    return this.current;
  }

  /** Why the service is failed (the last failure), for /readyz. */
  get reason(): string | undefined {
    return this.why;
  }

  /** Serving new work: ready, or reloading (the old model serves until the new one swaps in). */
  get takesWork(): boolean {
    return this.current === 'ready' || this.current === 'reloading';
  }

  get draining(): boolean {
    return this.current === 'draining' || this.current === 'stopped';
  }

  /** Move to `next`; an illegal move is a bug in the caller (INTERNAL), except that draining twice is a no-op. */
  to(next: ReadyState, reason?: string): void {
    if (next === this.current) return;
    if (!NEXT[this.current].includes(next)) {
      if (this.draining && (next === 'draining' || next === 'failed' || next === 'ready' || next === 'loading' || next === 'warming')) return;
      throw new CvoptError('INTERNAL', `readiness cannot go from ${this.current} to ${next}`);
    }
    this.current = next;
    if (next === 'failed') this.why = reason;
    for (const l of this.listeners) l(next);
  }

  onChange(l: (s: ReadyState) => void): void {
    this.listeners.push(l);
  }

  /** The refusal for work arriving now, or undefined when the service takes work. */
  refusal(): CvoptError | undefined {
    if (this.takesWork) return undefined;
    if (this.draining) return new CvoptError('SHUTTING_DOWN', 'the service is shutting down and accepts no new work', { hint: 'retry against another replica', retryAfterS: 1 });
    if (this.current === 'failed') return new CvoptError('NOT_READY', 'the model engine failed and is being restarted', { hint: 'retry shortly; /readyz turns 200 when it is back', retryAfterS: 2 });
    return new CvoptError('NOT_READY', `the model is ${this.current}`, { hint: 'wait for /readyz to answer 200', retryAfterS: 1 });
  }
}
