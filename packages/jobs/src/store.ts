import {
  CvoptError,
  type JobEvent,
  type JobProgress,
  type JobRecord,
  type JobState,
  type QueueName,
  type SerializedError,
} from '@cvopt/core';
import { localBus } from './bus.js';
import type { Row, SqlDriver } from './sql/driver.js';
import { runMigrations, type Migration } from './sql/migrate.js';

/** What `submit` hands the store: a new job, queued. */
export interface NewJob {
  id: string;
  kind: string;
  queue: QueueName;
  payload: unknown;
  maxAttempts: number;
  projectId?: string;
  createdBy?: string;
}

/** A job a worker holds: the record and the fencing token every later write of this run must present. */
export interface ClaimedJob {
  record: JobRecord;
  fence: number;
}

/** A queued job as a queue backend needs it to (re)publish: which queue, which attempt, when it may run. */
export interface QueuedRef {
  id: string;
  queue: QueueName;
  attempts: number;
  runAt: number;
}

export interface ListFilter {
  projectId?: string;
  state?: JobState;
  kind?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

/**
 * The durable record of every job and its events. Each state change is one compare-and-set
 * (`UPDATE … WHERE id = $1 AND state = $from [AND fence = $f]`) with its `state` event written in the same
 * transaction; a worker's writes carry the fencing token of its claim, so a worker that lost its lease can never
 * overwrite the run that replaced it.
 */
export interface JobStore {
  readonly db: SqlDriver;
  insert(job: NewJob, maxQueued?: number): Promise<JobRecord>;
  get(id: string): Promise<JobRecord | undefined>;
  list(filter?: ListFilter): Promise<JobRecord[]>;
  /**
   * Claim up to `max` oldest runnable jobs of `queue` (queued → running, leased until now + leaseMs), oldest first.
   * With `kinds`, only jobs of those kinds: a worker claims only what it has handlers for, and leaves the rest
   * queued for a worker that does (an empty list claims nothing).
   */
  claimNext(queue: QueueName, worker: string, leaseMs: number, max?: number, kinds?: readonly string[]): Promise<ClaimedJob[]>;
  /** Claim jobs by id (the Redis backend's messages name them): those runnable now and of `kinds` when given, oldest first. */
  claim(ids: readonly string[], worker: string, leaseMs: number, kinds?: readonly string[]): Promise<ClaimedJob[]>;
  /**
   * Delete every job of a project that is not running, with its events (the API server deleting the project;
   * cancel its jobs first). Returns the deleted records, so the caller can remove what they wrote.
   */
  purgeProject(projectId: string): Promise<JobRecord[]>;
  /** Every job's payload (the API server's start-up sweep of output folders that no job refers to). */
  payloads(): Promise<unknown[]>;
  /** Extend the lease; false when the run lost it (cancelled, expired and reclaimed): the worker must stop. */
  heartbeat(id: string, fence: number, leaseMs: number): Promise<boolean>;
  complete(id: string, fence: number, result: unknown): Promise<JobRecord | undefined>;
  /** running → queued at `retryAt` when given, else running → failed. */
  fail(id: string, fence: number, error: SerializedError, retryAt?: number): Promise<JobRecord | undefined>;
  /** A draining worker hands its job back: running → queued now, the attempt not counted. */
  release(id: string, fence: number): Promise<JobRecord | undefined>;
  /** queued | running → cancelled; undefined when the job is already finished or unknown. */
  cancel(id: string): Promise<JobRecord | undefined>;
  /** Running jobs whose lease ran out (their worker died): back to queued while attempts remain, else failed. */
  reapExpired(now?: number): Promise<JobRecord[]>;
  /** Append a progress/log/result event; a progress event also becomes the record's `progress`. */
  appendEvent(id: string, type: 'progress' | 'log' | 'result', data: unknown): Promise<JobEvent | undefined>;
  events(id: string, afterSeq?: number, limit?: number): Promise<JobEvent[]>;
  /** Queued jobs, oldest first, for a queue backend to republish after a restart. */
  queued(limit?: number): Promise<QueuedRef[]>;
  close(): Promise<void>;
}

/** The jobs table; `seq` orders a queue first in, first out (PostgreSQL: a sequence; SQLite: max + 1 under its write lock). */
const jobsTable = (seqType: string) => `CREATE TABLE job_jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        queue TEXT NOT NULL,
        state TEXT NOT NULL,
        payload TEXT NOT NULL,
        result TEXT,
        error TEXT,
        progress TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        fence INTEGER NOT NULL DEFAULT 0,
        project_id TEXT,
        created_by TEXT,
        created_at BIGINT NOT NULL,
        run_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        worker TEXT,
        lease_until BIGINT,
        event_seq INTEGER NOT NULL DEFAULT 0,
        seq ${seqType}
      )`;

export const JOBS_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: [
      { sqlite: jobsTable('INTEGER NOT NULL'), postgres: jobsTable('BIGSERIAL') },
      'CREATE INDEX job_jobs_claim ON job_jobs (queue, state, run_at, seq)',
      'CREATE INDEX job_jobs_lease ON job_jobs (state, lease_until)',
      'CREATE INDEX job_jobs_project ON job_jobs (project_id, created_at)',
      `CREATE TABLE job_events (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        at BIGINT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
      )`,
      `CREATE TABLE job_gpu_leases (
        job_id TEXT NOT NULL,
        fence INTEGER NOT NULL,
        host TEXT NOT NULL,
        device INTEGER NOT NULL,
        vram_mb INTEGER NOT NULL,
        granted INTEGER NOT NULL,
        requested_at BIGINT NOT NULL,
        lease_until BIGINT NOT NULL,
        PRIMARY KEY (job_id, fence)
      )`,
      'CREATE INDEX job_gpu_leases_host ON job_gpu_leases (host, granted)',
      `CREATE TABLE job_gpu_devices (
        host TEXT NOT NULL,
        device INTEGER NOT NULL,
        budget_mb INTEGER NOT NULL,
        total_mb INTEGER,
        used_mb INTEGER,
        max_slots INTEGER NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (host, device)
      )`,
    ],
  },
];

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const iso = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : new Date(num(v)).toISOString());
const json = (v: unknown): unknown => (v === null || v === undefined ? undefined : JSON.parse(String(v)));

export function rowToRecord(r: Row): JobRecord {
  const rec: JobRecord = {
    id: String(r.id),
    kind: String(r.kind),
    queue: r.queue as QueueName,
    state: r.state as JobState,
    payload: json(r.payload),
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    createdAt: iso(r.created_at) as string,
  };
  const opt: Partial<JobRecord> = {
    result: json(r.result),
    error: json(r.error) as SerializedError | undefined,
    progress: json(r.progress) as JobProgress | undefined,
    projectId: (r.project_id as string | null) ?? undefined,
    createdBy: (r.created_by as string | null) ?? undefined,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    worker: (r.worker as string | null) ?? undefined,
    leaseUntil: iso(r.lease_until),
  };
  for (const [k, v] of Object.entries(opt)) if (v !== undefined) (rec as unknown as Record<string, unknown>)[k] = v;
  return rec;
}

/** The data of a `state` event: the new state, the attempt, the error of a failed or retried run, and extras. */
function stateData(r: Row, extra: Record<string, unknown>): Record<string, unknown> {
  const error = r.state !== 'succeeded' ? json(r.error) : undefined;
  return { state: r.state, attempt: num(r.attempts), ...(error ? { error } : {}), ...extra };
}

function rowToEvent(r: Row): JobEvent {
  return { seq: num(r.seq), jobId: String(r.job_id), type: r.type as JobEvent['type'], at: iso(r.at) as string, data: JSON.parse(String(r.data)) };
}

/** ` AND kind IN ($first, …)` when a worker names the kinds it handles; nothing when it takes every kind. */
function kindFilter(kinds: readonly string[] | undefined, first: number): string {
  return kinds ? ` AND kind IN (${kinds.map((_, i) => `$${first + i}`).join(', ')})` : '';
}

/** Open the store on a database, running the job system's migrations first. */
export async function openJobStore(db: SqlDriver): Promise<JobStore> {
  await runMigrations(db, 'jobs', JOBS_MIGRATIONS);
  return new SqlJobStore(db);
}

class SqlJobStore implements JobStore {
  constructor(readonly db: SqlDriver) {}

  /**
   * Run one compare-and-set UPDATE (or the INSERT of a new job) that bumps event_seq and RETURNs *, and record a
   * `state` event per row with `extra` in its data. PostgreSQL does both in one statement (a data-modifying CTE);
   * SQLite in one transaction under its write lock. The events reach this process's subscribers after commit.
   */
  private async transition(sql: string, params: unknown[], extra: Record<string, unknown> = {}): Promise<Row[]> {
    const at = Date.now();
    let rows: Row[];
    if (this.db.dialect === 'postgres') {
      const n = params.length;
      rows = await this.db.query(
        `WITH j AS (${sql}),
         e AS (INSERT INTO job_events (job_id, seq, type, at, data)
               SELECT id, event_seq, 'state', CAST($${n + 1} AS BIGINT),
                 (jsonb_build_object('state', state, 'attempt', attempts)
                  || CASE WHEN error IS NOT NULL AND state <> 'succeeded' THEN jsonb_build_object('error', error::jsonb) ELSE '{}'::jsonb END
                  || $${n + 2}::jsonb)::text
               FROM j)
         SELECT * FROM j`,
        [...params, at, JSON.stringify(extra)],
      );
    } else {
      rows = await this.db.transaction(async (tx) => {
        const out = await tx.query(sql, params);
        for (const r of out) {
          await tx.query('INSERT INTO job_events (job_id, seq, type, at, data) VALUES ($1, $2, $3, $4, $5)', [r.id, num(r.event_seq), 'state', at, JSON.stringify(stateData(r, extra))]);
        }
        return out;
      });
    }
    for (const r of rows) localBus.event({ seq: num(r.event_seq), jobId: String(r.id), type: 'state', at: new Date(at).toISOString(), data: stateData(r, extra) });
    return rows;
  }

  async insert(job: NewJob, maxQueued = Number.MAX_SAFE_INTEGER): Promise<JobRecord> {
    const now = Date.now();
    // The cap and the insert are one statement; under concurrent submits PostgreSQL may overshoot it by the
    // number of racing submits (each counts before the others commit), which a soft cap tolerates.
    // SQLite numbers the queue order itself (max + 1, exact under its write lock); PostgreSQL's sequence does.
    const seqCol = this.db.dialect === 'sqlite' ? ', seq' : '';
    const seqVal = this.db.dialect === 'sqlite' ? ', (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_jobs)' : '';
    const rows = await this.transition(
      `INSERT INTO job_jobs (id, kind, queue, state, payload, max_attempts, project_id, created_by, created_at, run_at, event_seq${seqCol})
       SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), 'queued', CAST($4 AS TEXT), CAST($5 AS INTEGER),
              CAST($6 AS TEXT), CAST($7 AS TEXT), CAST($8 AS BIGINT), CAST($8 AS BIGINT), 1${seqVal}
       WHERE (SELECT COUNT(*) FROM job_jobs WHERE queue = $3 AND state = 'queued') < $9
       RETURNING *`,
      [job.id, job.kind, job.queue, JSON.stringify(job.payload ?? null), job.maxAttempts, job.projectId ?? null, job.createdBy ?? null, now, maxQueued],
      { kind: job.kind, queue: job.queue },
    );
    const r = rows[0];
    if (!r) {
      throw new CvoptError('QUEUE_FULL', `the ${job.queue} queue already holds its limit of ${maxQueued} queued jobs`, {
        retryAfterS: 10,
        hint: 'retry later, or raise the queue limit (maxQueued)',
      });
    }
    return rowToRecord(r);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const [r] = await this.db.query('SELECT * FROM job_jobs WHERE id = $1', [id]);
    return r ? rowToRecord(r) : undefined;
  }

  async list(filter: ListFilter = {}): Promise<JobRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (col: string, v: unknown) => {
      params.push(v);
      where.push(`${col} = $${params.length}`);
    };
    if (filter.projectId !== undefined) add('project_id', filter.projectId);
    if (filter.state !== undefined) add('state', filter.state);
    if (filter.kind !== undefined) add('kind', filter.kind);
    params.push(Math.max(1, Math.min(1000, filter.limit ?? 100)));
    const rows = await this.db.query(
      `SELECT * FROM job_jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(rowToRecord);
  }

  private claimSet = `state = 'running', attempts = attempts + 1, fence = fence + 1, worker = $2, lease_until = $3,
    started_at = COALESCE(started_at, $4), event_seq = event_seq + 1`;

  async claimNext(queue: QueueName, worker: string, leaseMs: number, max = 1, kinds?: readonly string[]): Promise<ClaimedJob[]> {
    if (kinds && !kinds.length) return [];
    const now = Date.now();
    const pick = `SELECT id FROM job_jobs WHERE queue = $1 AND state = 'queued' AND run_at <= $4${kindFilter(kinds, 6)} ORDER BY run_at, seq LIMIT $5`;
    // PostgreSQL: SKIP LOCKED lets concurrent claimers pass over each other's rows instead of queueing on them, and
    // the MATERIALIZED CTE runs the pick once (inside IN it may be re-run per row, claiming past the LIMIT).
    // SQLite: the statement runs under the database write lock, so the pick and the update are one step.
    const rows = await this.transition(
      this.db.dialect === 'postgres'
        ? `WITH pick AS MATERIALIZED (${pick} FOR UPDATE SKIP LOCKED)
           UPDATE job_jobs SET ${this.claimSet} WHERE id IN (SELECT id FROM pick) AND state = 'queued' RETURNING *`
        : `UPDATE job_jobs SET ${this.claimSet} WHERE id IN (${pick}) AND state = 'queued' RETURNING *`,
      [queue, worker, now + leaseMs, now, max, ...(kinds ?? [])],
      { worker },
    );
    return this.claimed(rows);
  }

  async claim(ids: readonly string[], worker: string, leaseMs: number, kinds?: readonly string[]): Promise<ClaimedJob[]> {
    if (!ids.length || (kinds && !kinds.length)) return [];
    const now = Date.now();
    // $2..$4 are the claim's own parameters: the ids are $1, $5, $6 …, the kinds after them.
    const list = ids.map((_, i) => (i === 0 ? '$1' : `$${i + 4}`)).join(', ');
    const rows = await this.transition(
      `UPDATE job_jobs SET ${this.claimSet} WHERE id IN (${list}) AND state = 'queued' AND run_at <= $4${kindFilter(kinds, ids.length + 4)} RETURNING *`,
      [ids[0], worker, now + leaseMs, now, ...ids.slice(1), ...(kinds ?? [])],
      { worker },
    );
    return this.claimed(rows);
  }

  async payloads(): Promise<unknown[]> {
    return (await this.db.query('SELECT payload FROM job_jobs')).map((r) => json(r.payload));
  }

  async purgeProject(projectId: string): Promise<JobRecord[]> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query("DELETE FROM job_jobs WHERE project_id = $1 AND state <> 'running' RETURNING *", [projectId]);
      for (const r of rows) await tx.query('DELETE FROM job_events WHERE job_id = $1', [r.id]);
      return rows.map(rowToRecord);
    });
  }

  /** Rows a claim returned, in queue order (RETURNING has none). */
  private claimed(rows: Row[]): ClaimedJob[] {
    rows.sort((a, b) => num(a.run_at) - num(b.run_at) || num(a.seq) - num(b.seq));
    return rows.map((r) => ({ record: rowToRecord(r), fence: num(r.fence) }));
  }

  async heartbeat(id: string, fence: number, leaseMs: number): Promise<boolean> {
    const rows = await this.db.query(
      "UPDATE job_jobs SET lease_until = $3 WHERE id = $1 AND fence = $2 AND state = 'running' RETURNING id",
      [id, fence, Date.now() + leaseMs],
    );
    return rows.length === 1;
  }

  async complete(id: string, fence: number, result: unknown): Promise<JobRecord | undefined> {
    const rows = await this.transition(
      `UPDATE job_jobs SET state = 'succeeded', result = $3, error = NULL, finished_at = $4, lease_until = NULL, event_seq = event_seq + 1
       WHERE id = $1 AND fence = $2 AND state = 'running' RETURNING *`,
      [id, fence, JSON.stringify(result ?? null), Date.now()],
    );
    return rows[0] ? rowToRecord(rows[0]) : undefined;
  }

  async fail(id: string, fence: number, error: SerializedError, retryAt?: number): Promise<JobRecord | undefined> {
    const now = Date.now();
    const rows =
      retryAt === undefined
        ? await this.transition(
            `UPDATE job_jobs SET state = 'failed', error = $3, finished_at = $4, lease_until = NULL, event_seq = event_seq + 1
             WHERE id = $1 AND fence = $2 AND state = 'running' RETURNING *`,
            [id, fence, JSON.stringify(error), now],
          )
        : await this.transition(
            `UPDATE job_jobs SET state = 'queued', error = $3, run_at = $4, worker = NULL, lease_until = NULL, event_seq = event_seq + 1
             WHERE id = $1 AND fence = $2 AND state = 'running' RETURNING *`,
            [id, fence, JSON.stringify(error), retryAt],
            { retryAt: new Date(retryAt).toISOString() },
          );
    return rows[0] ? rowToRecord(rows[0]) : undefined;
  }

  async release(id: string, fence: number): Promise<JobRecord | undefined> {
    const rows = await this.transition(
      `UPDATE job_jobs SET state = 'queued', attempts = attempts - 1, run_at = $3, worker = NULL, lease_until = NULL, event_seq = event_seq + 1
       WHERE id = $1 AND fence = $2 AND state = 'running' RETURNING *`,
      [id, fence, Date.now()],
      { reason: 'worker shut down; the job goes back to its queue' },
    );
    return rows[0] ? rowToRecord(rows[0]) : undefined;
  }

  async cancel(id: string): Promise<JobRecord | undefined> {
    const rows = await this.transition(
      `UPDATE job_jobs SET state = 'cancelled', finished_at = $2, lease_until = NULL, event_seq = event_seq + 1
       WHERE id = $1 AND state IN ('queued', 'running') RETURNING *`,
      [id, Date.now()],
    );
    return rows[0] ? rowToRecord(rows[0]) : undefined;
  }

  async reapExpired(now = Date.now()): Promise<JobRecord[]> {
    const lock = this.db.dialect === 'postgres' ? 'FOR UPDATE SKIP LOCKED' : '';
    // The error names the worker, so the statement builds its JSON around the row's worker id (ours: no quotes).
    const head = '{"code":"WORKER_FAILED","message":"worker ';
    const tail = ' stopped renewing its lease (it died or lost the database)"}';
    const rows = await this.transition(
      `UPDATE job_jobs SET
         state = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
         finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE $1 END,
         run_at = $1,
         error = $2 || COALESCE(worker, '?') || $3,
         worker = NULL, lease_until = NULL, event_seq = event_seq + 1
       WHERE id IN (SELECT id FROM job_jobs WHERE state = 'running' AND lease_until < $1 ${lock})
         AND state = 'running' AND lease_until < $1
       RETURNING *`,
      [now, head, tail],
      { reason: 'lease expired' },
    );
    return rows.map(rowToRecord);
  }

  async appendEvent(id: string, type: 'progress' | 'log' | 'result', data: unknown): Promise<JobEvent | undefined> {
    const at = Date.now();
    const text = JSON.stringify(data ?? null);
    // The job row's event_seq is the counter: bumping it takes the row lock, so concurrent appends serialise.
    const bump =
      type === 'progress'
        ? 'UPDATE job_jobs SET event_seq = event_seq + 1, progress = $4 WHERE id = $1 RETURNING event_seq'
        : 'UPDATE job_jobs SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq';
    let seq: number | undefined;
    if (this.db.dialect === 'postgres') {
      const rows = await this.db.query(
        `WITH s AS (${bump}) INSERT INTO job_events (job_id, seq, type, at, data) SELECT CAST($1 AS TEXT), event_seq, CAST($2 AS TEXT), CAST($3 AS BIGINT), CAST($4 AS TEXT) FROM s RETURNING seq`,
        [id, type, at, text],
      );
      seq = rows[0] ? num(rows[0].seq) : undefined;
    } else {
      seq = await this.db.transaction(async (tx) => {
        const [r] = await tx.query(bump, [id, type, at, text]);
        if (!r) return undefined;
        await tx.query('INSERT INTO job_events (job_id, seq, type, at, data) VALUES ($1, $2, $3, $4, $5)', [id, num(r.event_seq), type, at, text]);
        return num(r.event_seq);
      });
    }
    if (seq === undefined) return undefined;
    const event: JobEvent = { seq, jobId: id, type, at: new Date(at).toISOString(), data: data ?? null };
    localBus.event(event);
    return event;
  }

  async events(id: string, afterSeq = 0, limit = 1000): Promise<JobEvent[]> {
    const rows = await this.db.query('SELECT * FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [id, afterSeq, limit]);
    return rows.map(rowToEvent);
  }

  async queued(limit = 10_000): Promise<QueuedRef[]> {
    const rows = await this.db.query("SELECT id, queue, attempts, run_at FROM job_jobs WHERE state = 'queued' ORDER BY run_at, seq LIMIT $1", [limit]);
    return rows.map((r) => ({ id: String(r.id), queue: r.queue as QueueName, attempts: num(r.attempts), runAt: num(r.run_at) }));
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
