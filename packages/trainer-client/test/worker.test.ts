import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError, NO_PYTORCH_SOURCE, testDataDir } from '@cvopt/core';
import { findPython, importOnnxToPytorch, runPytorchBench, runWorker } from '../src/index.js';

/** The one Python launcher against the real worker (Debian's python3-torch here). */

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-trainer-client-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<CvoptError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CvoptError);
  return e as CvoptError;
}

const torch = findPython().torch;

describe('runWorker: failures are typed errors', () => {
  it('checks command arguments against core’s schema before starting Python', async () => {
    const e = await failure(importOnnxToPytorch('', join(tmp, 'x.pt')));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.where?.field).toBe('onnx');
  });

  it('a Python that cannot start is DEPENDENCY_MISSING, not a stack trace', async () => {
    const e = await failure(runWorker('inspect', {}, { python: { executable: join(tmp, 'no-python'), trainerDir: tmp } }));
    expect(e.code).toBe('DEPENDENCY_MISSING');
    expect(e.message).toMatch(/cannot start the Python worker/);
  });
});

describe.skipIf(!torch)('runWorker with real PyTorch', () => {
  it('relays the worker’s own error code and field', async () => {
    const e = await failure(runWorker('import-onnx', { onnx: join(tmp, 'model.onnx') }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.where?.field).toBe('out');
  });

  it('runs eager PyTorch latency on a preset and returns a result that passes its schema', async () => {
    const progress: string[] = [];
    const r = await runPytorchBench({ checkpoint: 'yolov8n', imgsz: 64, batch_sizes: [1], warmup: 1, iters: 2, threads: 1 }, { onProgress: (m) => progress.push(m.stage) });
    expect(r.task).toBe('detect');
    expect(r.runs[0]).toMatchObject({ batch: 1 });
    expect(r.runs[0]!.latenciesMs.length).toBeGreaterThanOrEqual(2);
  });

  it('stops the worker on abort with CANCELLED', async () => {
    const ac = new AbortController();
    const run = runPytorchBench({ checkpoint: 'yolov8n', imgsz: 64, batch_sizes: [1], warmup: 1, iters: 100000, threads: 1 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 1500);
    expect((await failure(run)).code).toBe('CANCELLED');
  });

  const data = testDataDir();
  it.skipIf(!data)('import-onnx is a worker command: a non-YOLOv8 ONNX has no PyTorch source', async () => {
    const e = await failure(importOnnxToPytorch(join(data ?? '', 'models/yolox_nano.onnx'), join(tmp, 'yolox.pt')));
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message.startsWith(NO_PYTORCH_SOURCE)).toBe(true);
  });
});
