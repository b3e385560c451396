import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CvoptError,
  QUEUE_NAMES,
  serializeError,
  toCvoptError,
  type GpuLease,
  type JobContext,
  type JobHandlerRegistry,
  type JobLogLevel,
  type JobProgress,
  type QueueName,
} from '@cvopt/core';
import type { JobBackend } from './backend.js';
import { localBus } from './bus.js';
import { GpuController, type GpuConfig, type GpuState } from './gpu.js';
import { backoffMs, defaultRetryPolicy, type RetryPolicy } from './policy.js';
import type { ClaimedJob } from './store.js';

/** Jobs at once per queue when not configured: one training job (it fills a GPU or the CPUs), two of the rest. */
export const DEFAULT_CONCURRENCY: Readonly<Record<QueueName, number>> = { training: 1, inference: 2, packaging: 2 };

export interface WorkerOptions {
  backend: JobBackend;
  handlers: JobHandlerRegistry;
  /** Queues this worker serves (default all three). */
  queues?: readonly QueueName[];
  /** Jobs at once per queue, or one number for every queue (default DEFAULT_CONCURRENCY). */
  concurrency?: number | Partial<Record<QueueName, number>>;
  /** The GPU controller, or its config (default: nvidia-smi when present, else no GPU). */
  gpu?: GpuController | GpuConfig;
  /** Worker id in records and logs (default host:pid:random). */
  id?: string;
  /** A claim's lease; a worker that stops renewing it is presumed dead after this long, ms (default 10 000). */
  leaseMs?: number;
  /** Lease renewal, also how soon a cancel from another process is noticed, ms (default 1000). */
  heartbeatMs?: number;
  /** How often this worker looks for jobs of dead workers, ms (default 2000); detection ≤ leaseMs + reapMs. */
  reapMs?: number;
  policy?: Partial<RetryPolicy>;
  /** Parent of each run's scratch directory (default `$TMPDIR/cvopt-jobs`). */
  workdirRoot?: string;
  /** On close, how long running jobs may finish before they are aborted and handed back, ms (default 30 000). */
  drainMs?: number;
  /** Progress events are stored at most this often per job (the last one always), ms (default 250). */
  progressMinMs?: number;
  /** Where the worker reports its own trouble (default stderr). */
  onLog?: (line: string) => void;
}

export interface WorkerState {
  id: string;
  queues: Record<string, { concurrency: number; running: string[] }>;
  gpu?: GpuState;
}

export interface RunningWorker {
  readonly id: string;
  readonly gpu: GpuController | undefined;
  state(): Promise<WorkerState>;
  /** Stop claiming, let running jobs finish within `drainMs`, hand the rest back to their queue. */
  close(): Promise<void>;
}

type StopReason = 'cancelled' | 'lease-lost' | 'shutdown';

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new CvoptError('INVALID_CONFIG', `${name} must be a positive integer, got ${v}`, { where: { field: name } });
  return v;
}

/**
 * Run jobs from the given queues until closed. Each queue has its own slots, so a long training job never holds
 * up an inference batch or a packaging job. A job runs under a lease renewed by heartbeat (the fencing token of
 * its claim guards every write); GPU jobs are admitted by the machine's GPU controller first and get the granted
 * VRAM cap in `ctx.gpu`. Failures retry with backoff by policy; a cancel aborts `ctx.signal`.
 */
export function runWorker(opts: WorkerOptions): RunningWorker {
  const { backend, handlers } = opts;
  const id = opts.id ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const queues = opts.queues ?? QUEUE_NAMES;
  for (const q of queues) {
    if (!QUEUE_NAMES.includes(q)) throw new CvoptError('INVALID_CONFIG', `unknown queue "${q}"`, { where: { field: 'queues' }, hint: `use ${QUEUE_NAMES.join(', ')}` });
  }
  const concurrency = Object.fromEntries(
    queues.map((q) => [q, positiveInt(`concurrency.${q}`, typeof opts.concurrency === 'number' ? opts.concurrency : (opts.concurrency?.[q] ?? DEFAULT_CONCURRENCY[q]))]),
  ) as Record<QueueName, number>;
  const leaseMs = positiveInt('leaseMs', opts.leaseMs ?? 10_000);
  const heartbeatMs = positiveInt('heartbeatMs', opts.heartbeatMs ?? 1000);
  if (heartbeatMs * 2 > leaseMs) throw new CvoptError('INVALID_CONFIG', `heartbeatMs (${heartbeatMs}) must be at most half of leaseMs (${leaseMs})`, { where: { field: 'heartbeatMs' } });
  const reapMs = positiveInt('reapMs', opts.reapMs ?? 2000);
  const drainMs = opts.drainMs ?? 30_000;
  const progressMinMs = opts.progressMinMs ?? 250;
  const policy: RetryPolicy = { ...defaultRetryPolicy, ...opts.policy };
  const gpu = opts.gpu instanceof GpuController ? opts.gpu : GpuController.create(backend.db, opts.gpu ?? {});
  const workdirRoot = opts.workdirRoot ?? join(tmpdir(), 'cvopt-jobs');
  mkdirSync(workdirRoot, { recursive: true });
  const say = opts.onLog ?? ((line: string) => process.stderr.write(`[worker ${id}] ${line}\n`));
  const store = backend.store;
  // Only jobs this worker has handlers for are claimed; other kinds stay queued for a worker that knows them.
  const kinds = [...handlers.keys()];
  if (gpu.devices.length) gpu.register().catch((e) => say(`publishing this machine's GPUs failed: ${(e as Error).message}`));

  const stopClaiming = new AbortController();
  const abortRunning = new AbortController();
  const running = new Map<QueueName, Set<string>>(queues.map((q) => [q, new Set()]));

  async function runJob(claimed: ClaimedJob): Promise<void> {
    const { record, fence } = claimed;
    const ac = new AbortController();
    let reason: StopReason | undefined;
    const stop = (why: StopReason) => {
      if (reason) return;
      reason = why;
      ac.abort(new CvoptError('CANCELLED', `job ${record.id} stopped: ${why}`));
    };
    const onCancel = (jobId: string) => jobId === record.id && stop('cancelled');
    const onShutdown = () => stop('shutdown');
    localBus.on('cancel', onCancel);
    abortRunning.signal.addEventListener('abort', onShutdown, { once: true });
    let lease: GpuLease | undefined;
    let gpuRow = false;
    const beat = setInterval(() => {
      const until = Date.now() + leaseMs;
      store
        .heartbeat(record.id, fence, leaseMs)
        .then(async (ok) => {
          if (!ok) {
            const now = await store.get(record.id);
            stop(now?.state === 'cancelled' ? 'cancelled' : 'lease-lost');
          } else if (gpuRow) await gpu.renew(record.id, fence, until);
        })
        .catch((e) => say(`heartbeat of ${record.id} failed: ${(e as Error).message}`));
    }, heartbeatMs);

    // Events of one run are written in call order; progress is coalesced to one write per progressMinMs.
    let chain: Promise<unknown> = Promise.resolve();
    const write = (type: 'progress' | 'log', data: unknown) => {
      chain = chain.then(() => store.appendEvent(record.id, type, data)).catch((e) => say(`event of ${record.id} lost: ${(e as Error).message}`));
    };
    let pending: JobProgress | undefined;
    let lastProgress = 0;
    let progressTimer: NodeJS.Timeout | undefined;
    const flushProgress = () => {
      progressTimer = undefined;
      if (!pending) return;
      lastProgress = Date.now();
      write('progress', pending);
      pending = undefined;
    };
    let workdir: string | undefined;
    try {
      const handler = handlers.get(record.kind);
      if (!handler) {
        throw new CvoptError('DEPENDENCY_MISSING', `worker ${id} has no handler for job kind "${record.kind}"`, {
          hint: `run a worker whose handler registry includes "${record.kind}" on the ${record.queue} queue`,
        });
      }
      const parsed = handler.payload.safeParse(record.payload);
      if (!parsed.success) {
        throw new CvoptError('INVALID_ARGUMENT', `the ${record.kind} payload is invalid: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}`, {
          where: { field: parsed.error.issues[0]?.path.length ? `payload.${parsed.error.issues[0].path.join('.')}` : 'payload' },
        });
      }
      const need = handler.gpuNeed?.(parsed.data);
      if (need) {
        write('log', { level: 'info', message: `waiting for a GPU slot and ${need.vramMb} MiB of VRAM` });
        gpuRow = true; // from here the heartbeat renews the reservation, waiting or granted
        lease = await gpu.acquire(record.id, fence, Math.ceil(need.vramMb), () => Date.now() + leaseMs, ac.signal);
        write('log', { level: 'info', message: `GPU ${lease.device} granted with a ${lease.vramMb} MiB cap` });
      }
      const ctx: JobContext = {
        progress: (p) => {
          pending = p;
          if (progressTimer) return;
          const wait = lastProgress + progressMinMs - Date.now();
          if (wait <= 0) flushProgress();
          else progressTimer = setTimeout(flushProgress, wait);
        },
        log: (level: JobLogLevel, message: string) => write('log', { level, message }),
        signal: ac.signal,
        // Made on first use: most inference and packaging jobs never touch it, and a mkdir + rm per job costs.
        get workdir() {
          workdir ??= mkdtempSync(join(workdirRoot, `${record.id}-${record.attempts}-`));
          return workdir;
        },
      };
      if (lease) ctx.gpu = lease;
      const raw = await handler.run(parsed.data, ctx);
      if (reason) throw ac.signal.reason;
      const result = handler.result.safeParse(raw);
      if (!result.success) throw new CvoptError('INTERNAL', `the ${record.kind} handler returned a result that does not match its schema: ${result.error.issues[0]?.message}`);
      if (progressTimer) clearTimeout(progressTimer);
      flushProgress();
      await chain;
      await store.appendEvent(record.id, 'result', result.data);
      const done = await store.complete(record.id, fence, result.data);
      if (!done) say(`job ${record.id} finished but its claim was gone (cancelled or lease lost); result not recorded`);
    } catch (e) {
      if (progressTimer) clearTimeout(progressTimer);
      flushProgress();
      await chain;
      if (reason === 'cancelled' || reason === 'lease-lost') return; // the store already moved the job on
      if (reason === 'shutdown') {
        await store.release(record.id, fence);
        await backend.queue.publish({ id: record.id, queue: record.queue, attempts: record.attempts - 1, runAt: Date.now() });
        return;
      }
      const err = toCvoptError(e);
      const retry = policy.retryable.includes(err.code) && record.attempts < record.maxAttempts;
      const runAt = retry ? Date.now() + backoffMs(policy, record.attempts) : undefined;
      const after = await store.fail(record.id, fence, serializeError(err), runAt);
      if (after?.state === 'queued' && runAt !== undefined) await backend.queue.publish({ id: record.id, queue: record.queue, attempts: record.attempts, runAt });
    } finally {
      clearInterval(beat);
      localBus.off('cancel', onCancel);
      abortRunning.signal.removeEventListener('abort', onShutdown);
      if (gpuRow) await gpu.release(record.id, fence).catch(() => undefined);
      if (workdir) await rm(workdir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * A queue's dispatcher: claims while the queue has a free slot and starts each job without waiting for it. One
   * claimer per queue (not one per slot) so a wake-up costs one claim, not a herd of empty ones.
   */
  async function serve(q: QueueName): Promise<void> {
    const slots = new Set<Promise<void>>();
    const mine = running.get(q) as Set<string>;
    while (!stopClaiming.signal.aborted) {
      if (slots.size >= concurrency[q]) {
        await Promise.race(slots);
        continue;
      }
      let claimed: ClaimedJob[];
      try {
        claimed = await backend.queue.next(q, id, leaseMs, stopClaiming.signal, concurrency[q] - slots.size, kinds);
      } catch (e) {
        if (stopClaiming.signal.aborted) break;
        say(`claiming from ${q} failed, retrying in 1 s: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      for (const c of claimed) {
        const jobId = c.record.id;
        mine.add(jobId);
        const p: Promise<void> = runJob(c)
          .catch((e) => say(`job ${jobId} could not be finalised: ${(e as Error).message}`))
          .finally(() => {
            mine.delete(jobId);
            slots.delete(p);
          });
        slots.add(p);
      }
    }
    await Promise.all(slots);
  }

  const reaper = setInterval(() => {
    store
      .reapExpired()
      .then(async (reaped) => {
        for (const r of reaped) {
          say(`job ${r.id} lost its worker; now ${r.state}`);
          if (r.state === 'queued') await backend.queue.publish({ id: r.id, queue: r.queue, attempts: r.attempts, runAt: Date.now() });
        }
      })
      .catch((e) => say(`reaping expired leases failed: ${(e as Error).message}`));
  }, reapMs);

  const loops = Promise.all(queues.map(serve));
  let closing: Promise<void> | undefined;
  return {
    id,
    gpu,
    state: async () => {
      const out: WorkerState = {
        id,
        queues: Object.fromEntries(queues.map((q) => [q, { concurrency: concurrency[q], running: [...(running.get(q) ?? [])] }])),
      };
      if (gpu.devices.length) out.gpu = await gpu.state();
      return out;
    },
    close: () => {
      closing ??= (async () => {
        clearInterval(reaper);
        stopClaiming.abort();
        const drained = new Promise<void>((r) => setTimeout(r, drainMs).unref());
        await Promise.race([loops, drained]);
        abortRunning.abort();
        await loops;
      })();
      return closing;
    },
  };
}
