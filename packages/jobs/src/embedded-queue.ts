import { QUEUE_NAMES, type QueueName } from '@cvopt/core';
import { localBus } from './bus.js';
import type { JobQueue } from './queue.js';
import type { ClaimedJob, JobStore } from './store.js';

export interface EmbeddedQueueOptions {
  /**
   * How often an idle worker looks for work submitted by another process, ms (default 250). On PostgreSQL a
   * submit also NOTIFYs, so other processes usually start sooner; the poll covers a lost notification.
   */
  pollMs?: number;
}

/** The NOTIFY channel submits and retries announce their queue on (PostgreSQL). */
const CHANNEL = 'cvopt_jobs_wake';

/** Wakes per queue so far: a claimer that saw the count change during its claim looks again at once. */
const wakes = new Map<QueueName, number>();
localBus.on('wake', (q: QueueName) => wakes.set(q, (wakes.get(q) ?? 0) + 1));

/** Resolve after `ms`, on a wake for `queue` (also one since `seen`), or when a signal aborts — whichever is first. */
function idle(queue: QueueName, seen: number, ms: number, signals: readonly AbortSignal[]): Promise<void> {
  if ((wakes.get(queue) ?? 0) !== seen) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      localBus.off('wake', onWake);
      for (const s of signals) s.removeEventListener('abort', done);
      resolve();
    };
    const onWake = (q: QueueName) => q === queue && done();
    const timer = setTimeout(done, ms);
    localBus.on('wake', onWake);
    for (const s of signals) s.addEventListener('abort', done, { once: true });
  });
}

/**
 * The queue is the store: workers claim with the store's atomic claim; idle ones wait for a wake-up (a submit in
 * this process, a PostgreSQL notification from another) or the next poll.
 */
export async function embeddedQueue(store: JobStore, opts: EmbeddedQueueOptions = {}): Promise<JobQueue> {
  const pollMs = opts.pollMs ?? 250;
  const closing = new AbortController();
  const db = store.db;
  const unlisten = db.listen ? await db.listen(CHANNEL, (q) => (QUEUE_NAMES as readonly string[]).includes(q) && localBus.wake(q as QueueName)) : undefined;
  const announce = async (queue: QueueName) => {
    localBus.wake(queue);
    if (db.dialect === 'postgres') await db.query('SELECT pg_notify($1, $2)', [CHANNEL, queue]);
  };
  return {
    backend: 'embedded',
    publish: async (ref) => {
      await announce(ref.queue);
      const wait = ref.runAt - Date.now();
      // A retry with backoff becomes runnable later: wake workers then, instead of a poll later still.
      if (wait > 0) setTimeout(() => void announce(ref.queue).catch(() => undefined), wait).unref();
    },
    next: async (queue, worker, leaseMs, signal, max = 1, kinds?): Promise<ClaimedJob[]> => {
      while (!signal.aborted && !closing.signal.aborted) {
        const seen = wakes.get(queue) ?? 0;
        const claimed = await store.claimNext(queue, worker, leaseMs, max, kinds);
        if (claimed.length) return claimed;
        await idle(queue, seen, pollMs, [signal, closing.signal]);
      }
      return [];
    },
    close: async () => {
      closing.abort();
      await unlisten?.();
    },
  };
}
