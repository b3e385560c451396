import { CvoptError } from '@cvopt/core';
import { bullmqQueue, type BullQueueOptions } from './bullmq-queue.js';
import { embeddedQueue } from './embedded-queue.js';
import type { JobQueue } from './queue.js';
import { openDatabase, type OpenDatabaseOptions, type SqlDriver } from './sql/driver.js';
import { openJobStore, type JobStore } from './store.js';

/** The database, the job store on it and the queue backend: what a worker and the job service share. */
export interface JobBackend {
  readonly db: SqlDriver;
  readonly store: JobStore;
  readonly queue: JobQueue;
  close(): Promise<void>;
}

export interface OpenBackendOptions {
  database?: OpenDatabaseOptions;
  /** `embedded` (default) or `bullmq` (default when CVOPT_REDIS_URL is set). */
  queue?: 'embedded' | 'bullmq';
  redis?: BullQueueOptions;
  /** Embedded backend: how often idle workers look for work from other processes, ms (default 250). */
  pollMs?: number;
}

/**
 * Open the database (SQLite file by default, PostgreSQL with CVOPT_DATABASE_URL), run the job system's
 * migrations, and attach the queue backend (embedded, or BullMQ with CVOPT_REDIS_URL).
 */
export async function openBackend(opts: OpenBackendOptions = {}): Promise<JobBackend> {
  const kind = opts.queue ?? (opts.redis?.url || process.env.CVOPT_REDIS_URL ? 'bullmq' : 'embedded');
  if (kind !== 'embedded' && kind !== 'bullmq') {
    throw new CvoptError('INVALID_CONFIG', `unknown queue backend "${String(kind)}"`, { hint: 'use embedded or bullmq', where: { field: 'queue' } });
  }
  const db = await openDatabase(opts.database);
  try {
    const store = await openJobStore(db);
    const queue = kind === 'bullmq' ? await bullmqQueue(store, opts.redis) : await embeddedQueue(store, opts.pollMs === undefined ? {} : { pollMs: opts.pollMs });
    return {
      db,
      store,
      queue,
      close: async () => {
        await queue.close();
        await db.close();
      },
    };
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
}
