#!/usr/bin/env node
// Throughput and submit→start latency of the job system with no-op handlers, through each backend — SQLite
// (embedded queue), PostgreSQL (embedded queue), PostgreSQL + BullMQ on Redis — at 1, 10 and 100 concurrent
// submitters, and plain BullMQ (Queue.add → Worker processor) on the same Redis in the same run for comparison.
// The worker runs in this process (as the server's embedded worker does). Every run uses its own SQLite file,
// PostgreSQL schema and Redis key prefix, dropped at the end.
//
//   npx tsc -b packages/jobs && node bench/queue.mjs [--jobs 300] [--concurrency 8] [--levels 1,10,100]
//       [--backends sqlite,postgres,redis,bullmq] [--pg postgres://postgres@127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { z } from 'zod';
import { createJobService, openBackend, runWorker } from '../packages/jobs/dist/index.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '8' },
    levels: { type: 'string', default: '1,10,100' },
    backends: { type: 'string', default: 'sqlite,postgres,redis,bullmq' },
    pg: { type: 'string', default: process.env.CVOPT_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    redis: { type: 'string', default: process.env.CVOPT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const N = Number(values.jobs);
const CONC = Number(values.concurrency);
const levels = values.levels.split(',').map(Number);
const tag = `cvbench_${process.pid}_${Date.now().toString(36)}`;

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** `submitters` loops share N submits; returns when every job has started and finished. */
async function drive(submitters, submitOne) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: submitters }, async () => {
      for (;;) {
        const i = next++;
        if (i >= N) return;
        await submitOne(i);
      }
    }),
  );
  return t0;
}

async function benchJobSystem(name, level) {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-bench-queue-'));
  const schema = `${tag}_${name}_${level}`;
  const options =
    name === 'sqlite'
      ? { database: { file: join(dir, 'cvopt.db') }, queue: 'embedded' }
      : name === 'postgres'
        ? { database: { url: values.pg, schema, poolSize: 10 }, queue: 'embedded' }
        : { database: { url: values.pg, schema, poolSize: 10 }, queue: 'bullmq', redis: { url: values.redis, prefix: schema, drainDelayS: 1 } };
  const backend = await openBackend(options);
  const submitted = new Float64Array(N);
  const started = new Float64Array(N);
  const handler = {
    kind: 'noop',
    queue: 'inference',
    summary: 'does nothing',
    payload: z.object({ i: z.number() }),
    result: z.object({}),
    async run(p) {
      started[p.i] = performance.now();
      return {};
    },
  };
  const handlers = new Map([['noop', handler]]);
  const service = createJobService(backend, { kinds: handlers, maxQueued: N + 1 });
  const worker = runWorker({ backend, handlers, queues: ['inference'], concurrency: CONC, onLog: () => undefined });
  const cpu0 = process.cpuUsage();
  const t0 = await drive(level, async (i) => {
    submitted[i] = performance.now();
    await service.submit('noop', { i });
  });
  // Completion is the store's succeeded count (the job's final write), polled.
  for (;;) {
    const [r] = await backend.db.query("SELECT COUNT(*) AS n FROM job_jobs WHERE state = 'succeeded'");
    if (Number(r.n) >= N) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await worker.close();
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
  if (name !== 'sqlite') {
    const c = new pg.Client({ connectionString: values.pg });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
  if (name === 'redis') await dropKeys(schema);
  const lat = Array.from(started, (s, i) => s - submitted[i]);
  return { jobsPerS: (N / (t1 - t0)) * 1000, p50: pct(lat, 50), p95: pct(lat, 95), cpuMs: (cpu.user + cpu.system) / 1000 / N };
}

async function benchBullmq(level) {
  const prefix = `${tag}_bull_${level}`;
  const connection = new Redis(values.redis, { maxRetriesPerRequest: null });
  const queue = new Queue('noop', { connection, prefix });
  const submitted = new Float64Array(N);
  const started = new Float64Array(N);
  let finished = 0;
  let allDone;
  const done = new Promise((r) => (allDone = r));
  const worker = new Worker(
    'noop',
    async (job) => {
      started[job.data.i] = performance.now();
      return {};
    },
    { connection, prefix, concurrency: CONC, drainDelay: 1 },
  );
  worker.on('completed', () => {
    if (++finished >= N) allDone();
  });
  await worker.waitUntilReady();
  const cpu0 = process.cpuUsage();
  const t0 = await drive(level, async (i) => {
    submitted[i] = performance.now();
    await queue.add('noop', { i }, { removeOnComplete: true, removeOnFail: true });
  });
  await done;
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await worker.close();
  await queue.close();
  connection.disconnect();
  await dropKeys(prefix);
  const lat = Array.from(started, (s, i) => s - submitted[i]);
  return { jobsPerS: (N / (t1 - t0)) * 1000, p50: pct(lat, 50), p95: pct(lat, 95), cpuMs: (cpu.user + cpu.system) / 1000 / N };
}

async function dropKeys(prefix) {
  const r = new Redis(values.redis);
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await r.del(...keys);
  } while (cursor !== '0');
  r.disconnect();
}

const label = {
  sqlite: 'cvopt jobs · SQLite (embedded)',
  postgres: 'cvopt jobs · PostgreSQL (embedded)',
  redis: 'cvopt jobs · PostgreSQL + BullMQ/Redis',
  bullmq: 'plain BullMQ (same Redis)',
};
console.log(`${N} no-op jobs per row, worker concurrency ${CONC}, in one process; latency = submit call → handler start`);
console.log('cpu ms/job = this process\'s CPU time (submitters + worker) per job; the database and Redis servers\' own CPU is not in it');
console.log(`${'backend'.padEnd(40)} ${'submitters'.padStart(10)} ${'jobs/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'cpu ms/job'.padStart(11)}`);
for (const name of values.backends.split(',')) {
  for (const level of levels) {
    const r = name === 'bullmq' ? await benchBullmq(level) : await benchJobSystem(name, level);
    console.log(`${label[name].padEnd(40)} ${String(level).padStart(10)} ${r.jobsPerS.toFixed(0).padStart(8)} ${r.p50.toFixed(1).padStart(8)} ${r.p95.toFixed(1).padStart(8)} ${r.cpuMs.toFixed(2).padStart(11)}`);
  }
}
