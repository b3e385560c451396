import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { openBackend, type JobBackend, type OpenBackendOptions } from '../src/index.js';

/** Real servers: PostgreSQL db `test` and Redis on this machine (scripts/start-services.sh starts them in CI). */
export const PG_URL = process.env.CVOPT_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.CVOPT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export type BackendName = 'sqlite' | 'postgres' | 'redis';
export const BACKENDS: readonly BackendName[] = ['sqlite', 'postgres', 'redis'];

/**
 * One isolated backend per test: a fresh SQLite file, a fresh PostgreSQL schema, or (redis) a fresh schema for
 * the store plus a fresh BullMQ key prefix. `options` is what a child worker process needs to open the same one;
 * `open` may be called again to simulate a restart; `cleanup` drops everything.
 */
export interface TestBackend {
  name: BackendName;
  options: OpenBackendOptions;
  open(): Promise<JobBackend>;
  cleanup(): Promise<void>;
}

let counter = 0;

export function testBackend(name: BackendName): TestBackend {
  const tag = `cvt_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-jobs-test-'));
  const opened: JobBackend[] = [];
  let options: OpenBackendOptions;
  if (name === 'sqlite') options = { database: { file: join(dir, 'cvopt.db') }, queue: 'embedded', pollMs: 50 };
  else if (name === 'postgres') options = { database: { url: PG_URL, schema: tag, poolSize: 4 }, queue: 'embedded', pollMs: 50 };
  else options = { database: { url: PG_URL, schema: tag, poolSize: 4 }, queue: 'bullmq', redis: { url: REDIS_URL, prefix: tag, drainDelayS: 1 } };
  return {
    name,
    options,
    open: async () => {
      const b = await openBackend(options);
      opened.push(b);
      return b;
    },
    cleanup: async () => {
      for (const b of opened) await b.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      if (name !== 'sqlite') {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${tag} CASCADE`);
        await c.end();
      }
      if (name === 'redis') {
        const r = new Redis(REDIS_URL);
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${tag}:*`, 'COUNT', 500);
          cursor = next;
          if (keys.length) await r.del(...keys);
        } while (cursor !== '0');
        r.disconnect();
      }
    },
  };
}

/** Poll `check` until it returns a value other than undefined/false, or fail after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
