/**
 * The dynamic batching policy, Triton-style: when a worker is free, take up to `maxBatch` queued requests at
 * once; if fewer are waiting, hold the oldest for at most `maxDelayMs` hoping more arrive. A model without a
 * dynamic batch dimension gets maxBatch 1, which never waits.
 */
export interface BatchPolicy {
  maxBatch: number;
  maxDelayMs: number;
}

export type BatchDecision = { take: number } | { waitMs: number };

export function decideBatch(policy: BatchPolicy, queued: number, oldestAgeMs: number): BatchDecision {
  if (queued <= 0) return { waitMs: Infinity };
  if (queued >= policy.maxBatch || policy.maxBatch <= 1) return { take: Math.min(queued, policy.maxBatch) };
  const left = policy.maxDelayMs - oldestAgeMs;
  return left <= 0 ? { take: queued } : { waitMs: left };
}
