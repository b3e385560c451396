import { randomUUID } from 'node:crypto';
import {
  CvoptError,
  QUEUE_NAMES,
  type JobEvent,
  type JobHandler,
  type JobRecord,
  type JobService,
  type JobState,
  type SubmitOptions,
} from '@cvopt/core';
import type { JobBackend } from './backend.js';
import { localBus } from './bus.js';
import { defaultRetryPolicy } from './policy.js';

/**
 * What the service must know of a kind to accept it: its queue and payload schema. A handler registry fits, and
 * so does a table built from core's schemas, so an API server submits without importing handler code.
 */
export type JobKinds = ReadonlyMap<string, Pick<JobHandler, 'queue' | 'payload'>>;

export interface JobServiceOptions {
  kinds: JobKinds;
  /** Attempts per job unless the submit says otherwise (default 3). */
  maxAttempts?: number;
  /** Queued jobs per queue before submit fails with QUEUE_FULL (default 10 000). */
  maxQueued?: number;
  /** How often a subscription looks for events written by other processes, ms (default 250). */
  pollMs?: number;
}

const TERMINAL: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export function isTerminal(state: JobState): boolean {
  return TERMINAL.includes(state);
}

/** The job service over a backend: the API server and the CLI code against core's `JobService`. */
export class SqlJobService implements JobService {
  private readonly maxAttempts: number;
  private readonly maxQueued: number;
  private readonly pollMs: number;

  constructor(
    readonly backend: JobBackend,
    private readonly opts: JobServiceOptions,
  ) {
    this.maxAttempts = opts.maxAttempts ?? defaultRetryPolicy.maxAttempts;
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.pollMs = opts.pollMs ?? 250;
    for (const [kind, k] of opts.kinds) {
      if (!QUEUE_NAMES.includes(k.queue)) throw new CvoptError('INVALID_CONFIG', `job kind "${kind}" names an unknown queue "${k.queue}"`);
    }
  }

  /** Publish every queued job again (after a restart, or Redis losing its data); duplicates are dropped. */
  async recover(): Promise<number> {
    const refs = await this.backend.store.queued();
    for (const r of refs) await this.backend.queue.publish(r);
    return refs.length;
  }

  async submit(kind: string, payload: unknown, opts: SubmitOptions = {}): Promise<JobRecord> {
    const k = this.opts.kinds.get(kind);
    if (!k) {
      throw new CvoptError('INVALID_ARGUMENT', `unknown job kind "${kind}"`, {
        where: { field: 'kind' },
        hint: `one of: ${[...this.opts.kinds.keys()].sort().join(', ')}`,
      });
    }
    const parsed = k.payload.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.length ? `payload.${issue.path.join('.')}` : 'payload';
      throw new CvoptError('INVALID_ARGUMENT', `the ${kind} payload is invalid: ${issue?.message ?? 'does not match its schema'}`, {
        where: { field },
        details: parsed.error.issues,
        hint: `fix ${field} and submit again`,
      });
    }
    const maxAttempts = opts.maxAttempts ?? this.maxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new CvoptError('INVALID_ARGUMENT', `maxAttempts must be a positive integer, got ${maxAttempts}`, { where: { field: 'maxAttempts' } });
    }
    const job = { id: randomUUID(), kind, queue: k.queue, payload: parsed.data, maxAttempts } as Parameters<JobBackend['store']['insert']>[0];
    if (opts.projectId !== undefined) job.projectId = opts.projectId;
    if (opts.createdBy !== undefined) job.createdBy = opts.createdBy;
    const rec = await this.backend.store.insert(job, this.maxQueued);
    await this.backend.queue.publish({ id: rec.id, queue: rec.queue, attempts: 0, runAt: Date.now() });
    return rec;
  }

  get(id: string): Promise<JobRecord | undefined> {
    return this.backend.store.get(id);
  }

  list(filter: { projectId?: string; state?: JobState; kind?: string; limit?: number } = {}): Promise<JobRecord[]> {
    return this.backend.store.list(filter);
  }

  async cancel(id: string): Promise<JobRecord> {
    const rec = await this.backend.store.cancel(id);
    if (rec) {
      localBus.cancelled(id);
      return rec;
    }
    const now = await this.backend.store.get(id);
    if (!now) throw new CvoptError('NOT_FOUND', `no job ${id}`, { where: { field: 'id' } });
    throw new CvoptError('CONFLICT', `job ${id} is already ${now.state}; only queued or running jobs can be cancelled`, { details: { state: now.state } });
  }

  events(id: string, afterSeq = 0): Promise<JobEvent[]> {
    return this.backend.store.events(id, afterSeq);
  }

  /**
   * Live events of a job after `afterSeq`, in seq order without gaps or repeats: those of this process arrive at
   * once through the local bus, those of other processes within `pollMs`.
   */
  subscribe(id: string, afterSeq: number, onEvent: (e: JobEvent) => void): () => void {
    let last = afterSeq;
    let stopped = false;
    let fetching: Promise<void> | undefined;
    let again = false;
    const deliver = (e: JobEvent) => {
      if (stopped || e.seq !== last + 1) return false;
      last = e.seq;
      onEvent(e);
      return true;
    };
    const fetch = () => {
      if (fetching) {
        again = true;
        return;
      }
      fetching = (async () => {
        do {
          again = false;
          try {
            for (const e of await this.backend.store.events(id, last)) if (!deliver(e)) break;
          } catch {
            // A failed read (database restarting) is retried on the next tick.
          }
        } while (again && !stopped);
      })().finally(() => (fetching = undefined));
    };
    const onLocal = (e: JobEvent) => {
      if (e.jobId !== id || e.seq <= last) return;
      if (!fetching && deliver(e)) return;
      fetch();
    };
    localBus.on('event', onLocal);
    const timer = setInterval(fetch, this.pollMs);
    timer.unref();
    fetch();
    return () => {
      stopped = true;
      clearInterval(timer);
      localBus.off('event', onLocal);
    };
  }
}

/** The job service over a backend. Call `recover()` once at start to republish what a crash left queued. */
export function createJobService(backend: JobBackend, opts: JobServiceOptions): SqlJobService {
  return new SqlJobService(backend, opts);
}
