import { CvoptError, shedLoad } from '@cvopt/core';
import { decideBatch, type BatchPolicy } from './batcher.js';
import type { Semaphore } from './semaphore.js';

/** Executes one batch; returns one output per input, in order. */
export type BatchRunner<I, O> = (inputs: I[]) => Promise<O[]>;

export interface SchedulerOptions<I, O> {
  /** Waiting requests beyond which submit fails at once with QUEUE_FULL. */
  queueMax: number;
  /** Batches executing at the same time. */
  concurrency: number;
  batch: BatchPolicy;
  run: BatchRunner<I, O>;
  /** A device limiter (GPU slots) shared with other work; passed in, not built here. */
  limiter?: Semaphore;
  /**
   * The share of a deadline admission may plan to fill (default 0.85). At saturation every admitted request sits
   * at the admission boundary, so planning to finish exactly at the deadline would make half of them late; the
   * rest absorbs the estimate's error and the run-to-run spread of service times.
   */
  admissionTarget?: number;
  /**
   * Hand each engine instance its next batch while the current one still runs (default false): the instance
   * starts it the moment it finishes, instead of waiting for this thread to hear of the result and send more,
   * a round trip that idles the engine whenever the event loop is busy with HTTP or decoding. Only a full batch
   * is sent ahead (a model without batching: any queued request), so batches do not shrink.
   */
  prefetch?: boolean;
  /** Seed for the service-time estimate (from warm-up) until real batches are measured. */
  initialBatchMs?: number;
  onBatch?: (size: number, ms: number) => void;
  now?: () => number;
}

export interface SubmitOptions {
  /** Milliseconds from now by which the answer is needed. */
  deadlineMs: number;
  signal?: AbortSignal;
  /** An admission already granted by admit(); the caller releases it. */
  ticket?: Ticket;
}

/** A granted admission; release it once the request is answered (idempotent). */
export interface Ticket {
  release(): void;
}

interface Task<I, O> {
  input: I;
  enqueuedAt: number;
  deadlineAt: number;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

const EWMA_ALPHA = 0.2;

/**
 * One shared model behind a bounded queue and a fixed pool of executions. Admission is decided on arrival: a
 * full queue, or an estimated finish later than the request's deadline, is refused at once with a typed error
 * carrying Retry-After, so overload costs microseconds instead of timeouts. A cancelled or expired request that
 * is still queued never runs.
 */
export class Scheduler<I, O> {
  private readonly queue: Task<I, O>[] = [];
  private running = 0;
  private runningItems = 0;
  private batchMsEwma: number;
  /** Work a request does before it reaches the queue (upload, decode, letterbox), as the caller reports it. */
  private prepMsEwma = 0;
  private itemMsEwma: number;
  /**
   * Wall time per item between consecutive completions while work was waiting: what the queue really drains at,
   * including everything between two engine runs (postprocessing, event-loop turns, CPU taken by decoding).
   */
  private drainMsEwma = 0;
  private lastCompletionAt: number | undefined;
  /** Batches handed to the runner, oldest first (running, then those sent ahead). */
  private readonly inflight: Task<I, O>[][] = [];
  /** When the last batch finished: a batch sent ahead starts running no earlier. */
  private lastEndAt = -Infinity;
  private closed = false;
  private tickets = 0;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly now: () => number;

  constructor(private readonly opts: SchedulerOptions<I, O>) {
    if (opts.queueMax < 1 || opts.concurrency < 1 || opts.batch.maxBatch < 1) {
      throw new CvoptError('INVALID_ARGUMENT', 'scheduler queueMax, concurrency and maxBatch must be at least 1');
    }
    if (opts.admissionTarget !== undefined && !(opts.admissionTarget > 0 && opts.admissionTarget <= 1)) {
      throw new CvoptError('INVALID_ARGUMENT', `admissionTarget must be in (0, 1], got ${opts.admissionTarget}`);
    }
    this.now = opts.now ?? (() => performance.now());
    this.batchMsEwma = opts.initialBatchMs ?? 0;
    this.itemMsEwma = opts.initialBatchMs ?? 0;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Admitted requests not yet running: decoding, queued. */
  get waiting(): number {
    return Math.max(0, this.tickets - this.runningItems);
  }

  get admitted(): number {
    return this.tickets;
  }

  get inFlight(): number {
    return this.runningItems;
  }

  get inFlightBatches(): number {
    return this.running;
  }

  get serviceMs(): number {
    return this.batchMsEwma;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Milliseconds per item at which the queue drains: the slower of the engine's own time and the observed rate. */
  get drainMs(): number {
    return Math.max(this.itemMsEwma / this.opts.concurrency, this.drainMsEwma);
  }

  /** Items in batches sent ahead to an instance that is still running another batch. */
  get aheadItems(): number {
    let n = 0;
    for (let i = this.opts.concurrency; i < this.inflight.length; i++) n += (this.inflight[i] as Task<I, O>[]).length;
    return n;
  }

  /** Time until the queue ahead would drain, at the measured rate (batches sent ahead are still ahead). */
  estimatedWaitMs(): number {
    return (Math.max(this.waiting, this.queue.length) + this.aheadItems) * this.drainMs;
  }

  /** Seconds a refused client should wait before retrying: long enough for the current queue to drain. */
  retryAfterS(): number {
    return Math.max(1, Math.ceil((this.estimatedWaitMs() + this.batchMsEwma) / 1000));
  }

  /**
   * Admit one request or refuse it at once. The ticket is held from arrival (before the body is decoded) until
   * the answer is sent, so decoding, queued and running work are all bounded by queueMax plus the running batches.
   */
  admit(deadlineMs: number, o: { strict?: boolean } = {}): Ticket {
    if (this.closed) {
      throw new CvoptError('SHUTTING_DOWN', 'the service is shutting down and accepts no new work', { hint: 'retry against another replica', retryAfterS: 1 });
    }
    const waiting = this.waiting;
    if (waiting >= this.opts.queueMax) {
      throw shedLoad('QUEUE_FULL', `the queue is full (${waiting} of ${this.opts.queueMax} waiting)`, {
        hint: 'retry after the Retry-After delay, or add replicas',
        retryAfterS: this.retryAfterS(),
        details: { queueDepth: waiting, queueMax: this.opts.queueMax },
      });
    }
    const expectedMs = this.prepMsEwma + this.estimatedWaitMs() + this.batchMsEwma;
    // With nothing waiting and a worker free, refusing helps nobody: only a deadline the client chose itself
    // (strict) is refused then; the service-wide SLO judges queueing, not a model slower than the SLO.
    const idle = waiting === 0 && this.running < this.opts.concurrency;
    if (expectedMs > deadlineMs * (this.opts.admissionTarget ?? 0.85) && (o.strict !== false || !idle)) {
      throw shedLoad('DEADLINE_EXCEEDED', `the estimated completion in ${Math.round(expectedMs)} ms is past the deadline of ${deadlineMs} ms`, {
        hint: 'retry after the Retry-After delay, or allow a longer deadline (X-Deadline-Ms)',
        retryAfterS: this.retryAfterS(),
        details: { estimatedMs: Math.round(expectedMs), deadlineMs, queueDepth: waiting },
      });
    }
    this.tickets++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.tickets--;
        this.notifyIdle();
      },
    };
  }

  /** Run one input. Without a ticket it is admitted here; with one, the caller already was and releases it. */
  submit(input: I, o: SubmitOptions): Promise<O> {
    let ticket = o.ticket;
    let own = false;
    if (!ticket) {
      try {
        ticket = this.admit(o.deadlineMs);
        own = true;
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (o.signal?.aborted) {
      if (own) ticket.release();
      return Promise.reject(new CvoptError('CANCELLED', 'the request was cancelled before it was queued'));
    }
    const p = this.enqueue(input, o);
    if (!own) return p;
    const t = ticket;
    return p.finally(() => t.release());
  }

  private enqueue(input: I, o: SubmitOptions): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const t0 = this.now();
      const task: Task<I, O> = { input, enqueuedAt: t0, deadlineAt: t0 + o.deadlineMs, resolve, reject, cleanup: () => {} };
      const drop = (err: CvoptError) => {
        const i = this.queue.indexOf(task);
        if (i < 0) return; // already running: it will answer
        this.queue.splice(i, 1);
        task.cleanup();
        reject(err);
        this.notifyIdle();
      };
      const onAbort = () => drop(new CvoptError('CANCELLED', 'the client went away before the request ran'));
      const expiry = setTimeout(
        () => drop(new CvoptError('DEADLINE_EXCEEDED', `the request waited past its deadline of ${o.deadlineMs} ms`, { retryAfterS: this.retryAfterS() })),
        o.deadlineMs,
      );
      expiry.unref();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      task.cleanup = () => {
        clearTimeout(expiry);
        o.signal?.removeEventListener('abort', onAbort);
      };
      this.queue.push(task);
      this.pump();
    });
  }

  /**
   * Report how long a request spent before submit (body, decode, preprocess). Admission adds it to the
   * estimate, so the service does not accept work whose decode alone would eat the deadline.
   */
  observePrep(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.prepMsEwma = this.prepMsEwma === 0 ? ms : this.prepMsEwma + EWMA_ALPHA * (ms - this.prepMsEwma);
  }

  get prepMs(): number {
    return this.prepMsEwma;
  }

  /** Refuse new work from now on; queued and running work still completes. */
  close(): void {
    this.closed = true;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.running === 0 && this.tickets === 0;
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      if (this.running >= this.opts.concurrency) {
        // Every instance is busy: send one full batch ahead per instance, if allowed.
        const full = this.queue.length >= this.opts.batch.maxBatch;
        if (!this.opts.prefetch || !full || this.running >= 2 * this.opts.concurrency) return;
        this.dispatch(this.opts.batch.maxBatch);
        continue;
      }
      const oldest = this.queue[0] as Task<I, O>;
      const d = decideBatch(this.opts.batch, this.queue.length, this.now() - oldest.enqueuedAt, this.running);
      if ('waitMs' in d) {
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, Math.max(0, Math.ceil(d.waitMs)));
        }
        return;
      }
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      this.dispatch(d.take);
    }
  }

  /** The oldest `n` queued requests leave the queue (no more expiry or cancellation) and run as one batch. */
  private dispatch(n: number): void {
    const tasks = this.queue.splice(0, n);
    for (const t of tasks) t.cleanup();
    void this.execute(tasks);
  }

  private async execute(tasks: Task<I, O>[]): Promise<void> {
    const ahead = this.running >= this.opts.concurrency;
    this.running++;
    this.runningItems += tasks.length;
    this.inflight.push(tasks);
    const t0 = this.now();
    try {
      const inputs = tasks.map((t) => t.input);
      const outputs = this.opts.limiter ? await this.opts.limiter.run(() => this.opts.run(inputs)) : await this.opts.run(inputs);
      if (outputs.length !== tasks.length) throw new CvoptError('INTERNAL', `batch runner returned ${outputs.length} results for ${tasks.length} inputs`);
      const end = this.now();
      // A batch sent ahead waited for the one before it; its own service time starts when that one finished.
      this.observe(tasks.length, end - (ahead ? Math.max(t0, this.lastEndAt) : t0));
      this.lastEndAt = end;
      // Work was waiting when the previous batch finished: the time since then is how fast the queue drains.
      if (this.lastCompletionAt !== undefined) this.observeDrain((end - this.lastCompletionAt) / tasks.length);
      tasks.forEach((t, i) => t.resolve(outputs[i] as O));
    } catch (e) {
      for (const t of tasks) t.reject(e);
    } finally {
      this.running--;
      this.runningItems -= tasks.length;
      this.inflight.splice(this.inflight.indexOf(tasks), 1);
      this.lastCompletionAt = this.waiting > 0 || this.running > 0 ? this.now() : undefined;
      this.pump();
      this.notifyIdle();
    }
  }

  private observeDrain(msPerItem: number): void {
    if (!Number.isFinite(msPerItem) || msPerItem <= 0) return;
    this.drainMsEwma = this.drainMsEwma === 0 ? msPerItem : this.drainMsEwma + EWMA_ALPHA * (msPerItem - this.drainMsEwma);
  }

  private observe(size: number, ms: number): void {
    const perItem = ms / size;
    this.batchMsEwma = this.batchMsEwma === 0 ? ms : this.batchMsEwma + EWMA_ALPHA * (ms - this.batchMsEwma);
    this.itemMsEwma = this.itemMsEwma === 0 ? perItem : this.itemMsEwma + EWMA_ALPHA * (perItem - this.itemMsEwma);
    this.opts.onBatch?.(size, ms);
  }
}
