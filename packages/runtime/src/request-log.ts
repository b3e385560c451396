import pg from 'pg';
import type { Logger } from '@cvopt/core';

/**
 * A durable request log in PostgreSQL: one row per answered request (time, key id, route, status, latency, model
 * version, detections), for audit and monitoring. Rows are buffered and written in batches off the request path;
 * when PostgreSQL is away they wait in a bounded buffer (the oldest are dropped and counted beyond `bufferMax`),
 * the service logs it once and keeps serving, and writing resumes when the database answers again.
 */

export interface RequestLogRow {
  at: Date;
  keyId: string | null;
  route: string;
  method: string;
  status: number;
  latencyMs: number;
  model: string;
  modelVersion: string;
  detections: number | null;
}

export interface RequestLogOptions {
  url: string;
  table: string;
  flushIntervalMs: number;
  batchMax: number;
  bufferMax: number;
  log: Logger;
}

const COLUMNS = ['at', 'key_id', 'route', 'method', 'status', 'latency_ms', 'model', 'model_version', 'detections'] as const;

export class PgRequestLog {
  private readonly pool: pg.Pool;
  private buffer: RequestLogRow[] = [];
  private readonly timer: NodeJS.Timeout;
  private ready = false;
  private degraded = false;
  private flushing: Promise<void> | undefined;
  written = 0;
  dropped = 0;

  constructor(private readonly o: RequestLogOptions) {
    this.pool = new pg.Pool({ connectionString: o.url, max: 2, connectionTimeoutMillis: 2000, idleTimeoutMillis: 10_000, query_timeout: 5000 });
    // An idle client whose server went away emits here; without a listener the process would crash.
    this.pool.on('error', () => {});
    this.timer = setInterval(() => void this.flush(), o.flushIntervalMs);
    this.timer.unref();
  }

  record(row: RequestLogRow): void {
    this.buffer.push(row);
    if (this.buffer.length > this.o.bufferMax) {
      const over = this.buffer.length - this.o.bufferMax;
      this.buffer.splice(0, over);
      this.dropped += over;
    }
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Write what is buffered (one batch at a time); never throws. */
  flush(): Promise<void> {
    return (this.flushing ??= this.writeAll().finally(() => (this.flushing = undefined)));
  }

  private async writeAll(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, this.o.batchMax);
      try {
        if (!this.ready) {
          await this.pool.query(
            `CREATE TABLE IF NOT EXISTS ${this.o.table} (id bigserial PRIMARY KEY, at timestamptz NOT NULL, key_id text, route text NOT NULL, method text NOT NULL, status integer NOT NULL, latency_ms double precision NOT NULL, model text NOT NULL, model_version text NOT NULL, detections integer)`,
          );
          this.ready = true;
        }
        const values: unknown[] = [];
        const rows = batch.map((r, i) => {
          values.push(r.at, r.keyId, r.route, r.method, r.status, r.latencyMs, r.model, r.modelVersion, r.detections);
          return `(${COLUMNS.map((_, k) => `$${i * COLUMNS.length + k + 1}`).join(', ')})`;
        });
        await this.pool.query(`INSERT INTO ${this.o.table} (${COLUMNS.join(', ')}) VALUES ${rows.join(', ')}`, values);
      } catch (e) {
        if (!this.degraded) {
          this.degraded = true;
          this.o.log.warn({ err: (e as Error).message, pending: this.buffer.length }, 'request log: PostgreSQL unavailable; rows wait in memory (bounded) and prediction continues');
        }
        return;
      }
      this.buffer.splice(0, batch.length);
      this.written += batch.length;
      if (this.degraded) {
        this.degraded = false;
        this.o.log.info({}, 'request log: PostgreSQL is back');
      }
    }
  }

  /** Final flush (bounded by `timeoutMs`), then close the pool. */
  async close(timeoutMs = 2000): Promise<void> {
    clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    await this.pool.end().catch(() => {});
  }
}
