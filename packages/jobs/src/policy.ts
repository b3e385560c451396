import type { ErrorCode } from '@cvopt/core';

/** How a failed run is retried. Every field is documented config; `defaultRetryPolicy` holds the defaults. */
export interface RetryPolicy {
  /** Attempts per job unless the submit says otherwise (default 3). A lost lease counts as an attempt. */
  maxAttempts: number;
  /** Delay before attempt n+1: `delayMs · factor^(n-1)`, capped at `maxDelayMs` (defaults 1000, 2, 60 000). */
  delayMs: number;
  factor: number;
  maxDelayMs: number;
  /** Errors worth another attempt; anything else (bad input, cancel, constraint) fails at once. */
  retryable: readonly ErrorCode[];
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 3,
  delayMs: 1000,
  factor: 2,
  maxDelayMs: 60_000,
  retryable: ['INTERNAL', 'WORKER_FAILED', 'ENGINE_FAILED', 'OVERLOADED', 'SHUTTING_DOWN', 'NOT_READY', 'QUEUE_FULL', 'RATE_LIMITED'],
};

/** Milliseconds to wait after `attempt` (1-based) failed. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.delayMs * policy.factor ** Math.max(0, attempt - 1));
}
