/**
 * The dynamic batching policy: when a worker is free, take up to `maxBatch` queued requests at once. An idle
 * engine never waits: under load requests pile up while a batch runs, so batches fill by themselves, and at low
 * load waiting would only add latency. Only while another batch is still running (concurrency > 1) may a partial
 * batch be held, for at most `maxDelayMs`, hoping more arrive. A model without a dynamic batch dimension gets
 * maxBatch 1, which never waits.
 */
export interface BatchPolicy {
  maxBatch: number;
  maxDelayMs: number;
}

export type BatchDecision = { take: number } | { waitMs: number };

export function decideBatch(policy: BatchPolicy, queued: number, oldestAgeMs: number, running = 0): BatchDecision {
  if (queued <= 0) return { waitMs: Infinity };
  if (queued >= policy.maxBatch || policy.maxBatch <= 1 || running === 0) return { take: Math.min(queued, policy.maxBatch) };
  const left = policy.maxDelayMs - oldestAgeMs;
  return left <= 0 ? { take: queued } : { waitMs: left };
}
