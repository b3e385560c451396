// Real worker processes on real backends: a worker killed with SIGKILL mid-job, a worker restarted with queued
// and running jobs, a graceful drain, and cancelling a job whose handler runs a real Python process.
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createJobService, spawnJobProcess, type SqlJobService } from '../src/index.js';
import { BACKENDS, testBackend, waitFor, type BackendName, type TestBackend } from './backends.js';
import { alive, startWorkerProc, type WorkerProc } from './procs.js';
import { testHandlers } from './fixtures/handlers.mjs';
import { readLog, readRuns } from './fixtures/runs.mjs';

const handlers = testHandlers({ spawnJobProcess, readRuns });
/** Short leases so a dead worker is found within about three seconds: lease 2.5 s + reaper tick 0.25 s. */
const FAST = { leaseMs: 2500, heartbeatMs: 250, reapMs: 250, policy: { delayMs: 50 } };

interface LogLine {
  ev: string;
  tag: string;
  pid: number;
  t: number;
}

function setup(name: BackendName) {
  const ctx = { tb: undefined as unknown as TestBackend, service: undefined as unknown as SqlJobService, procs: [] as WorkerProc[], log: '' };
  beforeEach(async () => {
    ctx.tb = testBackend(name);
    ctx.service = createJobService(await ctx.tb.open(), { kinds: handlers });
    ctx.procs = [];
    ctx.log = join(mkdtempSync(join(tmpdir(), 'cvopt-jobs-log-')), 'log.jsonl');
  });
  afterEach(async () => {
    await Promise.all(ctx.procs.map((p) => p.stop('SIGKILL')));
    await ctx.tb.cleanup();
  });
  const worker = (opts: Record<string, unknown>) => {
    const p = startWorkerProc(ctx.tb.options, { ...FAST, ...opts });
    ctx.procs.push(p);
    return p;
  };
  return { ctx, worker };
}

describe.each(BACKENDS)('worker processes on %s', (name) => {
  const { ctx, worker } = setup(name);

  it('SIGKILL mid-job: the running jobs are retried or failed by policy, the queued ones all run, none twice at once', async () => {
    const a = worker({ queues: ['training'], concurrency: 2 });
    const aId = await a.ready;
    const sleep = (tag: string, ms: number, maxAttempts: number) => ctx.service.submit('sleep', { tag, ms, log: ctx.log }, { maxAttempts });
    const retried = await sleep('retried', 1500, 2);
    const failed = await sleep('failed', 1500, 1);
    const queued = await Promise.all([0, 1, 2, 3].map((i) => sleep(`q${i}`, 50, 1)));
    await waitFor('both long jobs to start', () => readRuns(ctx.log, 'retried') === 1 && readRuns(ctx.log, 'failed') === 1);
    a.proc.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();

    const b = worker({ queues: ['training'], concurrency: 2 });
    await b.ready;
    const end = await waitFor(
      'every job to finish',
      async () => {
        const all = await Promise.all([retried, failed, ...queued].map((j) => ctx.service.get(j.id)));
        return all.every((j) => j && ['succeeded', 'failed'].includes(j.state)) && all;
      },
      20_000,
    );
    const [r, f, ...q] = end;
    expect(r).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(f).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'WORKER_FAILED' } });
    expect(f?.error?.message).toContain(aId);
    for (const j of q) expect(j).toMatchObject({ state: 'succeeded', attempts: 1 });

    const lines = readLog(ctx.log) as LogLine[];
    const runsOf = (tag: string) => lines.filter((l) => l.tag === tag && l.ev === 'start');
    // The retried job's second run started only after the first one's process was dead.
    const [first, second] = runsOf('retried');
    expect(first?.pid).toBe(a.pid);
    expect(second?.pid).toBe(b.pid);
    expect(second?.t).toBeGreaterThanOrEqual(killedAt);
    expect(runsOf('failed')).toHaveLength(1);
    for (let i = 0; i < 4; i++) {
      expect(runsOf(`q${i}`)).toHaveLength(1);
      expect(lines.filter((l) => l.tag === `q${i}` && l.ev === 'end')).toHaveLength(1);
    }
    const rerun = (await ctx.service.events(retried.id)).find((e) => e.type === 'state' && (e.data as { state: string; attempt: number }).attempt === 2 && (e.data as { state: string }).state === 'running');
    console.log(`[${name}] SIGKILLed worker's job running again on another worker ${Date.parse(rerun?.at ?? '') - killedAt} ms after the kill (lease 2500 ms, reaper 250 ms)`);
  });

  it('cancel stops a job whose handler runs Python: the process and its child are gone within 5 s', async () => {
    const a = worker({ queues: ['training'], concurrency: 1 });
    await a.ready;
    const pidFile = join(mkdtempSync(join(tmpdir(), 'cvopt-jobs-pid-')), 'pids');
    const job = await ctx.service.submit('python', { pidFile });
    const pids = await waitFor('the Python process and its child to start', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim().split(/\s+/).map(Number));
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    expect(await ctx.service.cancel(job.id)).toMatchObject({ state: 'cancelled' });
    await waitFor('both processes to be gone', () => pids.every((p) => !alive(p)), 5000);
    console.log(`[${name}] cancelled Python job: processes gone ${Date.now() - t0} ms after cancel`);
    // The worker is free again and runs the next job.
    const next = await ctx.service.submit('sleep', { tag: 'after', ms: 1 });
    await waitFor('the next job', async () => (await ctx.service.get(next.id))?.state === 'succeeded');
    expect((await ctx.service.get(job.id))?.state).toBe('cancelled');
  });
});

describe('worker restart (sqlite)', () => {
  const { ctx, worker } = setup('sqlite');

  it('SIGTERM drains: a job still running at the drain deadline goes back to its queue uncounted and runs on the next worker', async () => {
    const a = worker({ queues: ['training'], concurrency: 1, drainMs: 200 });
    await a.ready;
    const job = await ctx.service.submit('sleep', { tag: 'drained', ms: 1500, log: ctx.log }, { maxAttempts: 1 });
    await waitFor('the job to start', () => readRuns(ctx.log, 'drained') === 1);
    expect(await a.stop('SIGTERM')).toBe(0);
    expect(await ctx.service.get(job.id)).toMatchObject({ state: 'queued', attempts: 0 });
    const b = worker({ queues: ['training'], concurrency: 1 });
    await b.ready;
    await waitFor('the job to finish on the new worker', async () => (await ctx.service.get(job.id))?.state === 'succeeded', 10_000);
    expect(await ctx.service.get(job.id)).toMatchObject({ attempts: 1 });
    const starts = (readLog(ctx.log) as LogLine[]).filter((l) => l.ev === 'start');
    expect(starts.map((s) => s.pid)).toEqual([a.pid, b.pid]);
  });
});
