// Several real worker processes share one GPU budget through the store; separate queues keep a long training
// job from delaying packaging and inference work.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GpuController, createJobService, estimateVramMb, spawnJobProcess, type GpuState } from '../src/index.js';
import { testBackend, waitFor, type BackendName, type TestBackend } from './backends.js';
import { startWorkerProc, type WorkerProc } from './procs.js';
import { testHandlers } from './fixtures/handlers.mjs';
import { readLog, readRuns } from './fixtures/runs.mjs';

const handlers = testHandlers({ spawnJobProcess, readRuns });
const FAST = { leaseMs: 2500, heartbeatMs: 250, reapMs: 250 };

interface GpuLine {
  ev: 'start' | 'end';
  tag: string;
  t: number;
  vramMb: number;
}

/** The most jobs and the most VRAM in use at any instant, from start/end lines (an end at t precedes a start at t). */
function peaks(lines: GpuLine[]): { jobs: number; vramMb: number } {
  const sorted = [...lines].sort((a, b) => a.t - b.t || (a.ev === 'end' ? -1 : 1));
  let jobs = 0;
  let vram = 0;
  const peak = { jobs: 0, vramMb: 0 };
  for (const l of sorted) {
    jobs += l.ev === 'start' ? 1 : -1;
    vram += l.ev === 'start' ? l.vramMb : -l.vramMb;
    peak.jobs = Math.max(peak.jobs, jobs);
    peak.vramMb = Math.max(peak.vramMb, vram);
  }
  return peak;
}

let tb: TestBackend | undefined;
let procs: WorkerProc[] = [];
afterEach(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  procs = [];
  await tb?.cleanup();
});

describe.each(['sqlite', 'postgres'] as BackendName[])('GPU controller across worker processes on %s', (name) => {
  it('never more than 2 GPU jobs at once and never above the VRAM budget; a job larger than the budget fails at once', async () => {
    tb = testBackend(name);
    const backend = await tb.open();
    const service = createJobService(backend, { kinds: handlers });
    const log = join(mkdtempSync(join(tmpdir(), 'cvopt-jobs-gpu-')), 'log.jsonl');
    const gpu = { host: `gpu-test-${process.pid}-${name}`, budgetMb: 4000, maxSlots: 2, probe: false, pollMs: 30 };
    // Three processes with three training slots each: without the controller up to nine jobs would overlap.
    procs = [0, 1, 2].map(() => startWorkerProc(tb!.options, { ...FAST, queues: ['training'], concurrency: 3, gpu }));
    await Promise.all(procs.map((p) => p.ready));
    const needs = [1500, 1000, 2500, 2000, 1200, 3000, 800, 1700, 2200, 1000, 1500, 2600];
    const jobs = await Promise.all(needs.map((vramMb, i) => service.submit('gpu', { tag: `g${i}`, ms: 80, vramMb, log })));
    const tooBig = await service.submit('gpu', { tag: 'big', ms: 10, vramMb: 5000, log });

    // Watch the controller's own view while the jobs run.
    const observer = GpuController.create(backend.db, gpu);
    const seen: GpuState[] = [];
    const done = waitFor('every GPU job to finish', async () => {
      const all = await Promise.all([...jobs, tooBig].map((j) => service.get(j.id)));
      return all.every((j) => j && ['succeeded', 'failed'].includes(j.state)) && all;
    }, 30_000);
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) {
      seen.push(await observer.state());
      await new Promise((r) => setTimeout(r, 20));
    }
    const all = await done;
    expect(all.slice(0, -1).map((j) => `${j?.state} ${j?.error?.code ?? ''} ${j?.error?.message ?? ''}`.trim())).toEqual(needs.map(() => 'succeeded'));
    expect(all.at(-1)).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'GPU_MEMORY_EXHAUSTED' } });

    const lines = (readLog(log) as GpuLine[]).filter((l) => l.tag !== 'big');
    expect(lines).toHaveLength(needs.length * 2);
    const peak = peaks(lines);
    expect(peak.jobs).toBeLessThanOrEqual(2);
    expect(peak.vramMb).toBeLessThanOrEqual(4000);
    expect(peak.jobs).toBe(2); // the controller did admit two at once: the bound is met, not avoided
    for (const s of seen) {
      expect(s.devices[0]?.slots.used).toBeLessThanOrEqual(2);
      expect(s.devices[0]?.reservedMb).toBeLessThanOrEqual(4000);
    }
    expect(Math.max(...seen.map((s) => s.waiting.length))).toBeGreaterThan(0);
    // The workers published this machine's devices: the API's all-machines view finds it, now idle.
    const mine = (await GpuController.states(backend.db)).find((s) => s.host === gpu.host);
    expect(mine?.devices).toEqual([{ device: 0, budgetMb: 4000, slots: { max: 2, used: 0 }, reservedMb: 0, jobs: [] }]);
    console.log(`[${name}] ${needs.length} GPU jobs on 3 processes: peak ${peak.jobs} at once, peak ${peak.vramMb}/4000 MiB; controller snapshots ${seen.length}, most waiting ${Math.max(...seen.map((s) => s.waiting.length))}`);
  });
});

describe.each(['sqlite', 'redis'] as BackendName[])('separate queues on %s', (name) => {
  it('a long training job does not delay a packaging job or an inference batch', async () => {
    tb = testBackend(name);
    const service = createJobService(await tb.open(), { kinds: handlers });
    const log = join(mkdtempSync(join(tmpdir(), 'cvopt-jobs-q-')), 'log.jsonl');
    const w = startWorkerProc(tb.options, { ...FAST, queues: ['training', 'inference', 'packaging'], concurrency: 1 });
    procs = [w];
    await w.ready;
    const long = await service.submit('sleep', { tag: 'long', ms: 30_000, log });
    const behind = await service.submit('sleep', { tag: 'behind', ms: 1, log });
    await waitFor('the training job to start', () => readRuns(log, 'long') === 1);
    const pack = await service.submit('pack', { tag: 'pack', log });
    const infer = await service.submit('infer', { tag: 'infer', log });
    await waitFor('packaging and inference to finish', async () => {
      const [p, i] = await Promise.all([service.get(pack.id), service.get(infer.id)]);
      return p?.state === 'succeeded' && i?.state === 'succeeded';
    });
    // Both ran while the training slot was still taken and the next training job still waited.
    expect((await service.get(long.id))?.state).toBe('running');
    expect((await service.get(behind.id))?.state).toBe('queued');
    await service.cancel(long.id);
    await waitFor('the queued training job to run once the slot frees', async () => (await service.get(behind.id))?.state === 'succeeded');
  });
});

describe('estimateVramMb', () => {
  it('grows with parameters, batch and image size and is smaller for inference', () => {
    const base = { params: 3_200_000, imgsz: 640, batch: 16 };
    const train = estimateVramMb(base);
    expect(train).toBeGreaterThan(estimateVramMb({ ...base, batch: 8 }));
    expect(train).toBeGreaterThan(estimateVramMb({ ...base, imgsz: 320 }));
    expect(estimateVramMb({ ...base, params: 25_000_000 })).toBeGreaterThan(train);
    expect(estimateVramMb({ ...base, training: false })).toBeLessThan(train);
  });
});
