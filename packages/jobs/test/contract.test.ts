// One contract suite, run against every real backend: SQLite (embedded queue), PostgreSQL (embedded queue) and
// PostgreSQL + BullMQ on Redis. What a backend must do: atomic claims (never one job to two consumers), fencing,
// retries with backoff, cancel, lease expiry, resumable events, and nothing lost across a restart.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CvoptError, type JobEvent } from '@cvopt/core';
import { JOBS_MIGRATIONS, createJobService, runMigrations, runWorker, spawnJobProcess, type JobBackend, type SqlJobService } from '../src/index.js';
import { BACKENDS, testBackend, waitFor, type TestBackend } from './backends.js';
import { testHandlers } from './fixtures/handlers.mjs';
import { readLog, readRuns } from './fixtures/runs.mjs';

const handlers = testHandlers({ spawnJobProcess, readRuns });
/** Claim one job (the queue may hand out batches). */
const next1 = (b: JobBackend, ...a: Parameters<JobBackend['queue']['next']>) => b.queue.next(...a).then((c) => c[0]);

describe.each(BACKENDS)('job system contract on %s', (name) => {
  let tb: TestBackend;
  let backend: JobBackend;
  let service: SqlJobService;
  const ac = new AbortController();
  const log = join(mkdtempSync(join(tmpdir(), 'cvopt-jobs-log-')), 'log.jsonl');

  beforeEach(async () => {
    tb = testBackend(name);
    backend = await tb.open();
    service = createJobService(backend, { kinds: handlers });
  });
  afterEach(async () => {
    await tb.cleanup();
  });

  const sleepJob = (tag: string, extra: Record<string, unknown> = {}) => service.submit('sleep', { tag, ms: 10, log, ...extra });

  it('validates submits: unknown kinds and bad payloads are typed errors naming the field', async () => {
    await expect(service.submit('nope', {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: 'kind' } });
    const err = await service.submit('sleep', { tag: 'x', ms: -1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CvoptError);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: 'payload.ms' } });
    const rec = await sleepJob('a');
    expect(rec).toMatchObject({ kind: 'sleep', queue: 'training', state: 'queued', attempts: 0, maxAttempts: 3 });
    expect(rec.payload).toMatchObject({ failRuns: 0, code: 'INTERNAL' }); // schema defaults applied at the edge
    expect(await service.get(rec.id)).toEqual(rec);
    expect((await service.list({ state: 'queued' })).map((j) => j.id)).toEqual([rec.id]);
    expect(await service.list({ state: 'running' })).toEqual([]);
  });

  it('refuses a submit beyond the queue cap with QUEUE_FULL and a retry hint', async () => {
    const capped = createJobService(backend, { kinds: handlers, maxQueued: 2 });
    await capped.submit('sleep', { tag: 'cap1', ms: 1 });
    await capped.submit('sleep', { tag: 'cap2', ms: 1 });
    await expect(capped.submit('sleep', { tag: 'cap3', ms: 1 })).rejects.toMatchObject({ code: 'QUEUE_FULL', retryAfterS: 10 });
    expect(await capped.submit('pack', { tag: 'other-queue' })).toMatchObject({ state: 'queued', queue: 'packaging' });
  });

  it('shares the database: another component migrates its own tables, once, and a newer schema is refused', async () => {
    const server = [{ version: 1, statements: ['CREATE TABLE srv_users (id TEXT PRIMARY KEY)'] }];
    expect(await runMigrations(backend.db, 'server', server)).toEqual([1]);
    expect(await runMigrations(backend.db, 'server', server)).toEqual([]);
    expect(await runMigrations(backend.db, 'jobs', JOBS_MIGRATIONS)).toEqual([]);
    const rows = await backend.db.query<{ component: string; version: number }>('SELECT component, version FROM schema_migrations ORDER BY component');
    expect(rows.map((r) => `${r.component}:${Number(r.version)}`)).toEqual(['jobs:1', 'server:1']);
    await expect(runMigrations(backend.db, 'server', [])).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it('claims oldest first, each job by exactly one of many concurrent consumers', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await sleepJob(`c${i}`)).id);
    const first = await next1(backend, 'training', 'w0', 5000, ac.signal);
    expect(first?.record.id).toBe(ids[0]);
    expect(first?.record).toMatchObject({ state: 'running', attempts: 1, worker: 'w0' });
    // Six consumers race for the remaining eleven jobs.
    const got: string[] = [];
    await Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        for (;;) {
          if (got.length >= 11) return;
          const stop = new AbortController();
          const t = setTimeout(() => stop.abort(), 1500);
          const c = await next1(backend, 'training', `w${w + 1}`, 5000, stop.signal);
          clearTimeout(t);
          if (!c) return;
          got.push(c.record.id);
        }
      }),
    );
    expect(got.sort()).toEqual(ids.slice(1).sort());
    expect((await service.list({ state: 'running', limit: 50 })).length).toBe(12);
  });

  it('claims a batch of at most `max` jobs, oldest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await sleepJob(`b${i}`)).id);
    const batch = await backend.queue.next('training', 'w', 5000, ac.signal, 3);
    expect(batch.length).toBeGreaterThanOrEqual(1);
    expect(batch.length).toBeLessThanOrEqual(3);
    expect(batch.map((c) => c.record.id)).toEqual(ids.slice(0, batch.length));
    expect(new Set(batch.map((c) => c.fence)).size).toBeGreaterThanOrEqual(1);
  });

  it('fences: a write with a stale token changes nothing', async () => {
    const rec = await sleepJob('f');
    const c = await next1(backend, 'training', 'w', 5000, ac.signal);
    expect(c?.record.id).toBe(rec.id);
    const fence = c?.fence as number;
    expect(await backend.store.heartbeat(rec.id, fence + 1, 5000)).toBe(false);
    expect(await backend.store.complete(rec.id, fence + 1, { slept: 1 })).toBeUndefined();
    expect(await backend.store.heartbeat(rec.id, fence, 5000)).toBe(true);
    expect(await backend.store.complete(rec.id, fence, { slept: 1 })).toMatchObject({ state: 'succeeded', result: { slept: 1 } });
    expect(await backend.store.complete(rec.id, fence, { slept: 2 })).toBeUndefined();
  });

  it('a failed run goes back to its queue at the backoff time, then runs again', async () => {
    const rec = await sleepJob('r');
    const c = await next1(backend, 'training', 'w', 5000, ac.signal);
    const runAt = Date.now() + 400;
    const back = await backend.store.fail(rec.id, c?.fence as number, { code: 'INTERNAL', message: 'boom' }, runAt);
    expect(back).toMatchObject({ state: 'queued', attempts: 1, error: { code: 'INTERNAL' } });
    await backend.queue.publish({ id: rec.id, queue: 'training', attempts: 1, runAt });
    expect(await backend.store.claimNext('training', 'w', 5000)).toEqual([]); // not due yet
    const again = await next1(backend, 'training', 'w2', 5000, ac.signal);
    expect(Date.now()).toBeGreaterThanOrEqual(runAt);
    expect(again?.record).toMatchObject({ id: rec.id, attempts: 2, worker: 'w2' });
  });

  it('cancels queued and running jobs; a finished job cannot be cancelled', async () => {
    const queued = await sleepJob('q');
    expect(await service.cancel(queued.id)).toMatchObject({ state: 'cancelled' });
    const running = await sleepJob('run');
    const c = await next1(backend, 'training', 'w', 5000, ac.signal);
    expect(c?.record.id).toBe(running.id);
    await service.cancel(running.id);
    expect(await backend.store.heartbeat(running.id, c?.fence as number, 5000)).toBe(false);
    await expect(service.cancel(running.id)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(service.cancel('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    expect(await next1(backend, 'training', 'w', 5000, stop.signal)).toBeUndefined();
  });

  it('a run whose lease expires goes back to the queue while attempts remain, else fails', async () => {
    const once = await service.submit('sleep', { tag: 'l1', ms: 1 }, { maxAttempts: 1 });
    const twice = await service.submit('sleep', { tag: 'l2', ms: 1 }, { maxAttempts: 2 });
    await next1(backend, 'training', 'dead-worker', 50, ac.signal);
    await next1(backend, 'training', 'dead-worker', 50, ac.signal);
    await new Promise((r) => setTimeout(r, 80));
    const reaped = await backend.store.reapExpired();
    expect(Object.fromEntries(reaped.map((r) => [r.id, r.state]))).toEqual({ [once.id]: 'failed', [twice.id]: 'queued' });
    expect(await service.get(once.id)).toMatchObject({ state: 'failed', error: { code: 'WORKER_FAILED' } });
    expect((await service.get(once.id))?.error?.message).toContain('dead-worker');
    expect(await backend.store.reapExpired()).toEqual([]); // one reaper wins; a second finds nothing
  });

  it('stores events with a gapless seq; subscribe resumes after any seq and follows live', async () => {
    const rec = await sleepJob('e');
    const c = await next1(backend, 'training', 'w', 5000, ac.signal);
    await backend.store.appendEvent(rec.id, 'progress', { stage: 's', step: 1, total: 2 });
    await backend.store.appendEvent(rec.id, 'log', { level: 'info', message: 'hello' });
    const seen: JobEvent[] = [];
    const unsubscribe = service.subscribe(rec.id, 2, (e) => seen.push(e));
    await backend.store.appendEvent(rec.id, 'result', { slept: 3 });
    await backend.store.complete(rec.id, c?.fence as number, { slept: 3 });
    await waitFor('the final state event', () => seen.some((e) => e.type === 'state' && (e.data as { state: string }).state === 'succeeded'));
    unsubscribe();
    expect(seen.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    expect(seen.map((e) => e.type)).toEqual(['progress', 'log', 'result', 'state']);
    const all = await service.events(rec.id);
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(all[0]).toMatchObject({ type: 'state', data: { state: 'queued' } });
    expect(all[1]).toMatchObject({ type: 'state', data: { state: 'running', worker: 'w' } });
    expect((await service.get(rec.id))?.progress).toEqual({ stage: 's', step: 1, total: 2 });
  });

  it('purges a project: its jobs that are not running and their events go, payloads of the rest stay', async () => {
    const mine = await service.submit('sleep', { tag: 'p1', ms: 1 }, { projectId: 'prjA' });
    const running = await service.submit('sleep', { tag: 'p2', ms: 1 }, { projectId: 'prjA' });
    const theirs = await service.submit('sleep', { tag: 'p3', ms: 1 }, { projectId: 'prjB' });
    // Claim oldest first: `mine` runs, then is cancelled; `running` stays running.
    expect((await next1(backend, 'training', 'w', 5000, ac.signal))?.record.id).toBe(mine.id);
    expect((await next1(backend, 'training', 'w', 5000, ac.signal))?.record.id).toBe(running.id);
    await service.cancel(mine.id);
    const purged = await backend.store.purgeProject('prjA');
    expect(purged.map((j) => j.id)).toEqual([mine.id]);
    expect(await service.get(mine.id)).toBeUndefined();
    expect(await service.events(mine.id)).toEqual([]);
    expect(await service.get(running.id)).toMatchObject({ state: 'running' });
    expect(await service.get(theirs.id)).toMatchObject({ state: 'queued' });
    expect((await backend.store.payloads()).map((p) => (p as { tag: string }).tag).sort()).toEqual(['p2', 'p3']);
  });

  it('loses nothing across a restart: queued jobs are claimable exactly once after reopening', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await sleepJob(`x${i}`)).id);
    await backend.close();
    const again = await tb.open();
    const svc = createJobService(again, { kinds: handlers });
    expect(await svc.recover()).toBe(5);
    await svc.recover(); // a second republish adds no duplicate
    const got: string[] = [];
    for (;;) {
      const stop = new AbortController();
      const t = setTimeout(() => stop.abort(), 700);
      const c = await next1(again, 'training', 'w', 5000, stop.signal);
      clearTimeout(t);
      if (!c) break;
      got.push(c.record.id);
    }
    expect(got).toEqual(ids);
  });

  it('a worker claims only the kinds it has handlers for; another kind stays queued for a worker that has one', async () => {
    const sleep = handlers.get('sleep')!;
    const both = new Map([...handlers, ['nap', { ...sleep, kind: 'nap' }]]);
    const svc = createJobService(backend, { kinds: both });
    const opts = { backend, queues: ['training'] as const, heartbeatMs: 100, leaseMs: 2000, reapMs: 200, onLog: () => undefined };
    const nap = await svc.submit('nap', { tag: 'nap', ms: 1, log });
    const slept = await svc.submit('sleep', { tag: 'slept', ms: 1, log });
    const sleeper = runWorker({ ...opts, handlers: new Map([['sleep', sleep]]) });
    let napper: ReturnType<typeof runWorker> | undefined;
    try {
      await waitFor('the sleep job', async () => (await svc.get(slept.id))?.state === 'succeeded');
      // Long enough for several polls (embedded) or several passes of the message (BullMQ).
      await new Promise((r) => setTimeout(r, 1500));
      expect(await svc.get(nap.id)).toMatchObject({ state: 'queued', attempts: 0 });
      expect((await svc.get(nap.id))?.error).toBeUndefined();
      napper = runWorker({ ...opts, handlers: new Map([['nap', both.get('nap')!]]) });
      const done = await waitFor('the nap job', async () => {
        const j = await svc.get(nap.id);
        return j?.state === 'succeeded' && j;
      });
      expect(done).toMatchObject({ attempts: 1, result: { slept: 1 } });
      expect(done.worker).toBe(napper.id);
    } finally {
      await sleeper.close();
      await napper?.close();
    }
  });

  it('runs handlers in a worker: retries retryable failures with backoff, fails bad input at once', async () => {
    const worker = runWorker({ backend, handlers, queues: ['training'], concurrency: 2, policy: { delayMs: 50 }, heartbeatMs: 100, leaseMs: 2000, reapMs: 200, onLog: () => undefined });
    try {
      const flaky = await sleepJob('flaky', { failRuns: 2 });
      const user = await sleepJob('user', { failRuns: 5, code: 'DATASET_INVALID' });
      const done = await waitFor('both jobs to finish', async () => {
        const [a, b] = await Promise.all([service.get(flaky.id), service.get(user.id)]);
        return a?.state === 'succeeded' && b?.state === 'failed' && [a, b];
      });
      expect(done[0]).toMatchObject({ attempts: 3, result: { slept: 10 } });
      expect(done[0].error).toBeUndefined();
      expect(done[1]).toMatchObject({ attempts: 1, error: { code: 'DATASET_INVALID', message: 'planned failure of user' } });
      expect(readRuns(log, 'flaky')).toBe(3);
      const states = (await service.events(flaky.id)).filter((e) => e.type === 'state').map((e) => (e.data as { state: string }).state);
      expect(states).toEqual(['queued', 'running', 'queued', 'running', 'queued', 'running', 'succeeded']);
      const ends = readLog(log).filter((r: { tag: string; ev: string }) => r.tag === 'flaky' && r.ev === 'end');
      expect(ends.length).toBe(1);
    } finally {
      await worker.close();
    }
  });
});
