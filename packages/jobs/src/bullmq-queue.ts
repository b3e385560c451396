import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job as BullJob } from 'bullmq';
import { Redis } from 'ioredis';
import { CvoptError, QUEUE_NAMES, type QueueName } from '@cvopt/core';
import type { JobQueue } from './queue.js';
import type { ClaimedJob, JobStore } from './store.js';

export interface BullQueueOptions {
  /** `redis://host:6379` (default: env CVOPT_REDIS_URL). */
  url?: string;
  /** Key prefix of every BullMQ key (default `cvopt`); tests use a unique one per run. */
  prefix?: string;
  /** Longest a blocked fetch waits before looking again, seconds (BullMQ `drainDelay`, default 2). */
  drainDelayS?: number;
  /**
   * A message for a job of a kind this worker has no handler for goes back to Redis after this delay, ms (default
   * 500), for a worker that has one; the job itself stays queued in the store.
   */
  passOnMs?: number;
}

interface Message {
  id: string;
}

/**
 * BullMQ on Redis carries job ids to workers on any machine; the SQL store keeps the state. A message is
 * acknowledged as soon as the store claim decides it (claimed, or stale: already running, cancelled or not yet
 * due), so BullMQ never holds a lock for the length of a job: the store's lease and heartbeat do that.
 * One message per (job, attempt): BullMQ drops an add whose job id it already holds, so republishing after a
 * restart is safe.
 */
export async function bullmqQueue(store: JobStore, opts: BullQueueOptions = {}): Promise<JobQueue> {
  const url = opts.url ?? process.env.CVOPT_REDIS_URL;
  if (!url) throw new CvoptError('INVALID_CONFIG', 'the bullmq queue backend needs a Redis URL', { hint: 'set CVOPT_REDIS_URL=redis://host:6379' });
  const prefix = opts.prefix ?? 'cvopt';
  const connection = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
  connection.on('error', () => undefined);
  try {
    await connection.connect();
  } catch (e) {
    connection.disconnect();
    throw new CvoptError('DEPENDENCY_MISSING', `cannot reach Redis at ${url.replace(/\/\/[^@]*@/, '//***@')}: ${(e as Error).message}`, {
      hint: 'start Redis or fix CVOPT_REDIS_URL',
      cause: e,
    });
  }
  const queues = new Map<QueueName, Queue<Message>>();
  const workers = new Map<QueueName, Worker<Message>>();
  // BullMQ's manual fetch is not meant to be called concurrently on one Worker: one fetch per queue at a time.
  const fetchGate = new Map<QueueName, Promise<unknown>>();
  const queueOf = (q: QueueName) => {
    let queue = queues.get(q);
    if (!queue) {
      queue = new Queue<Message>(q, { connection, prefix });
      queues.set(q, queue);
    }
    return queue;
  };
  const workerOf = (q: QueueName) => {
    let worker = workers.get(q);
    if (!worker) {
      worker = new Worker<Message>(q, null, { connection, prefix, drainDelay: opts.drainDelayS ?? 2, autorun: false });
      worker.on('error', () => undefined);
      // Messages taken by a process that died before acknowledging go back to the wait list.
      void worker.startStalledCheckTimer().catch(() => undefined);
      workers.set(q, worker);
    }
    return worker;
  };
  let closed = false;

  /**
   * Fetch up to `max` messages — the first waiting in Redis, the rest only if already there — then claim their
   * jobs in one store statement and acknowledge them. Only the fetches are serialised per queue.
   */
  const passOnMs = opts.passOnMs ?? 500;
  const fetchBatch = async (queue: QueueName, worker: string, leaseMs: number, signal: AbortSignal, max: number, kinds: readonly string[] | undefined): Promise<ClaimedJob[]> => {
    const w = workerOf(queue);
    const before = fetchGate.get(queue) ?? Promise.resolve();
    const fetched = before.then(async () => {
      const got: { msg: BullJob<Message>; token: string }[] = [];
      while (got.length < max && !closed && !signal.aborted) {
        const token = randomUUID();
        const msg = await w.getNextJob(token, { block: got.length === 0 });
        if (!msg) break;
        got.push({ msg, token });
      }
      return got;
    });
    fetchGate.set(queue, fetched.catch(() => undefined));
    const got = await fetched;
    if (!got.length) return [];
    if (signal.aborted || closed) {
      // Nobody wants them any more: hand the messages back for another worker instead of claiming.
      for (const { msg, token } of got) {
        await msg.moveToCompleted(null, token, false);
        if (!closed) await queueOf(queue).add('job', msg.data, { jobId: msg.id as string, removeOnComplete: true, removeOnFail: true });
      }
      return [];
    }
    const claimed = await store.claim([...new Set(got.map((g) => g.msg.data.id))], worker, leaseMs, kinds);
    await Promise.all(got.map(({ msg, token }) => msg.moveToCompleted(null, token, false)));
    if (kinds) {
      // A message for a job still queued but of a kind this worker cannot run is passed on, not dropped: it goes
      // back to Redis (same message id) after `passOnMs`, and a worker that has the handler claims it.
      const taken = new Set(claimed.map((c) => c.record.id));
      for (const { msg } of got) {
        if (taken.has(msg.data.id)) continue;
        const job = await store.get(msg.data.id);
        if (job?.state === 'queued' && !kinds.includes(job.kind) && !closed) {
          await queueOf(queue).add('job', msg.data, { jobId: msg.id as string, delay: passOnMs, removeOnComplete: true, removeOnFail: true });
        }
      }
    }
    return claimed;
  };

  /** Resolves when `signal` aborts; a fetch still blocked in Redis then finishes in the background. */
  const whenAborted = (signal: AbortSignal) => {
    let off = () => undefined as void;
    const promise = new Promise<ClaimedJob[]>((resolve) => {
      if (signal.aborted) return resolve([]);
      const on = () => resolve([]);
      signal.addEventListener('abort', on, { once: true });
      off = () => signal.removeEventListener('abort', on);
    });
    return { promise, off };
  };

  return {
    backend: 'bullmq',
    publish: async (ref) => {
      await queueOf(ref.queue).add(
        'job',
        { id: ref.id },
        { jobId: `${ref.id}_${ref.attempts}`, delay: Math.max(0, ref.runAt - Date.now()), removeOnComplete: true, removeOnFail: true },
      );
    },
    next: async (queue, worker, leaseMs, signal, max = 1, kinds?) => {
      if (!QUEUE_NAMES.includes(queue)) throw new CvoptError('INVALID_ARGUMENT', `unknown queue "${queue}"`);
      const stop = whenAborted(signal);
      try {
        // A worker with no handler at all takes no message: it would only pass each one on.
        if (kinds && !kinds.length) return await stop.promise;
        while (!signal.aborted && !closed) {
          const claimed = await Promise.race([fetchBatch(queue, worker, leaseMs, signal, Math.max(1, max), kinds), stop.promise]);
          if (claimed.length) return claimed;
        }
        return [];
      } finally {
        stop.off();
      }
    },
    close: async () => {
      closed = true;
      await Promise.all([...workers.values()].map((w) => w.close()));
      await Promise.all([...queues.values()].map((q) => q.close()));
      connection.disconnect();
    },
  };
}
