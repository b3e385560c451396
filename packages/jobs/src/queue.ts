import type { QueueName } from '@cvopt/core';
import type { ClaimedJob, QueuedRef } from './store.js';

/**
 * How workers find work. The store is the one source of truth for a job's state; a queue backend only decides
 * which worker tries to claim which job next. Two backends: `embedded` claims straight from the SQL store
 * (one machine, or several sharing PostgreSQL), `bullmq` distributes job ids through Redis (many machines).
 * Either way the claim itself is the store's atomic compare-and-set, so a duplicate or stale message can never
 * start a job twice.
 */
export interface JobQueue {
  readonly backend: 'embedded' | 'bullmq';
  /** Make a queued job (or its next attempt) visible to workers; idempotent per (id, attempt). */
  publish(ref: QueuedRef): Promise<void>;
  /**
   * Wait for work on `queue` and claim it for `worker`: at least one job and at most `max` (default 1; the
   * batch is claimed in one store statement). With `kinds`, only jobs of those kinds (the worker's handlers); the
   * others stay queued for a worker that knows them. Resolves with none when `signal` aborts or the queue closes.
   */
  next(queue: QueueName, worker: string, leaseMs: number, signal: AbortSignal, max?: number, kinds?: readonly string[]): Promise<ClaimedJob[]>;
  close(): Promise<void>;
}
