import { z } from 'zod';
import type { SerializedError } from './errors.js';

/**
 * The one job contract. Every handler (train, tune, export, check, quantize, bench, select, package, eval,
 * predict batches) is `run(payload, ctx) → result` with zod schemas for both. The CLI runs handlers in-process
 * through the same contract, the job system (queues, workers, GPU controller) runs them from queues, and the API
 * server submits jobs by kind and payload without importing any handler code.
 */

export const QUEUE_NAMES = ['training', 'inference', 'packaging'] as const;
export const QueueNameSchema = z.enum(QUEUE_NAMES);
export type QueueName = z.infer<typeof QueueNameSchema>;

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const JobStateSchema = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobStateSchema>;

/** The only allowed state changes; a store applies each as one atomic compare-and-set. */
export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  // queued → queued is a retry put back with a later run-at; running → queued is a lease lost or a retry.
  queued: ['running', 'cancelled'],
  running: ['succeeded', 'failed', 'cancelled', 'queued'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

export function canTransition(from: JobState, to: JobState): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

export const JobProgressSchema = z.object({
  stage: z.string(),
  step: z.number().nonnegative(),
  total: z.number().nonnegative(),
  message: z.string().optional(),
  /** Latest figures (loss, mAP, fitness …) a dashboard can plot. */
  metrics: z.record(z.string(), z.number()).optional(),
});
export type JobProgress = z.infer<typeof JobProgressSchema>;

export type JobLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What a GPU controller granted a job: the device and the VRAM cap its allocator must keep to. */
export interface GpuLease {
  device: number;
  vramMb: number;
}

export interface JobContext {
  progress(p: JobProgress): void;
  log(level: JobLogLevel, message: string): void;
  /** Aborted on cancel, lease loss or shutdown; handlers pass it to every child process and engine run. */
  signal: AbortSignal;
  /** A scratch directory owned by this run of the job. */
  workdir: string;
  /** Present when the handler declared a GPU need and the controller admitted it. */
  gpu?: GpuLease;
}

export interface JobHandler<P = unknown, R = unknown> {
  readonly kind: string;
  readonly queue: QueueName;
  readonly payload: z.ZodType<P>;
  readonly result: z.ZodType<R>;
  readonly summary: string;
  /** The GPU memory this payload needs, or undefined when it runs on the CPU. */
  gpuNeed?(payload: P): { vramMb: number } | undefined;
  run(payload: P, ctx: JobContext): Promise<R>;
}

/** Handlers by kind: what a process entry (`cvopt worker`, a local command) hands the job system. */
export type JobHandlerRegistry = ReadonlyMap<string, JobHandler<any, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const JobEventTypeSchema = z.enum(['state', 'progress', 'log', 'result']);

export interface JobEvent {
  /** Monotonic per job: the SSE id, so a client resumes with Last-Event-ID. */
  seq: number;
  jobId: string;
  type: z.infer<typeof JobEventTypeSchema>;
  at: string;
  data: unknown;
}

export interface JobRecord {
  id: string;
  kind: string;
  queue: QueueName;
  state: JobState;
  payload: unknown;
  result?: unknown;
  error?: SerializedError;
  progress?: JobProgress;
  attempts: number;
  maxAttempts: number;
  /** Owner scope, set by the API server: nothing is visible across projects. */
  projectId?: string;
  createdBy?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Set while running: which worker holds the lease, until when. */
  worker?: string;
  leaseUntil?: string;
}

export interface SubmitOptions {
  projectId?: string;
  createdBy?: string;
  maxAttempts?: number;
}

/**
 * What the API server and CLI see of the job system: submit by kind and payload, read, list, cancel, follow
 * events. Implemented by the job system over its embedded (SQL) and Redis backends.
 */
export interface JobService {
  submit(kind: string, payload: unknown, opts?: SubmitOptions): Promise<JobRecord>;
  get(id: string): Promise<JobRecord | undefined>;
  list(filter?: { projectId?: string; state?: JobState; kind?: string; limit?: number }): Promise<JobRecord[]>;
  cancel(id: string): Promise<JobRecord>;
  /** Events after `afterSeq` (exclusive), oldest first. */
  events(id: string, afterSeq?: number): Promise<JobEvent[]>;
  /** Live events after `afterSeq`; returns the unsubscribe function. */
  subscribe(id: string, afterSeq: number, onEvent: (e: JobEvent) => void): () => void;
}
