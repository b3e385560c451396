import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchmarkReportSchema, ModelManifestSchema, type ModelManifest } from '@cvopt/core';
import { DT, model, node, valueInfo, writeOnnx } from '@cvopt/onnx';
import { runBenchmark, type BenchTarget } from '../src/index.js';

/**
 * The harness against real ONNX Runtime children: engines that blow their memory cap or their time limit are
 * killed and reported failed with the reason, and the run completes for the others.
 */


const dir = mkdtempSync(join(tmpdir(), 'cvopt-bench-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let onnx: string;
let manifest: ModelManifest;
beforeAll(() => {
  // A 3-class "classifier": global average pool of an 8×8 RGB image, then softmax.
  onnx = join(dir, 'tiny.onnx');
  writeOnnx(
    model({
      nodes: [node('GlobalAveragePool', ['images'], ['pooled']), node('Flatten', ['pooled'], ['flat']), node('Softmax', ['flat'], ['probs'])],
      inputs: [valueInfo('images', DT.FLOAT, ['batch', 3, 8, 8])],
      outputs: [valueInfo('probs', DT.FLOAT, ['batch', 3])],
      opset: 13,
    }),
    onnx,
  );
  manifest = ModelManifestSchema.parse({
    name: 'tiny',
    task: 'classify',
    input: { name: 'images', shape: ['batch', 3, 8, 8], layout: 'NCHW', dtype: 'float32' },
    preprocess: { resize: 'stretch', size: [8, 8], scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'RGB' },
    output: { name: 'probs', format: 'probabilities', shape: ['batch', 3] },
    classNames: ['r', 'g', 'b'],
    opset: 13,
  });
});

const ready = (engine: 'ort-cpu' | 'ort-cpu-int8' | 'ort-cuda'): BenchTarget => ({
  engine,
  status: 'ready',
  runtime: 'onnxruntime',
  provider: 'cpu',
  model: onnx,
  manifest,
  describe: `${engine}: tiny.onnx`,
});

describe('runBenchmark with failing children', () => {
  it('kills an engine above its RSS cap and one past its time limit, and completes for the rest', async () => {
    const progress: string[] = [];
    const report = await runBenchmark(
      {
        model: { path: onnx, sha256: '0'.repeat(64), task: 'classify', name: 'tiny.onnx' },
        targets: [ready('ort-cpu'), ready('ort-cpu-int8'), ready('ort-cuda'), { engine: 'tensorrt-fp16', status: 'unavailable', reason: 'no NVIDIA GPU' }],
        settings: { images: [], iters: 5, warmup: 1, batchSizes: [1, 2] },
        // A Node process alone is above 20 MB; 200 ms is far too short to start one and load ONNX Runtime.
        engineLimits: { 'ort-cpu-int8': { rssMb: 20 }, 'ort-cuda': { timeS: 0.2 } },
      },
      { onProgress: (e) => progress.push(`${e.engine}:${e.stage}`) },
    );
    expect(() => BenchmarkReportSchema.parse(report)).not.toThrow();
    const by = Object.fromEntries(report.engines.map((e) => [e.engine, e]));
    const ok = by['ort-cpu'];
    expect(ok?.status).toBe('ok');
    if (ok?.status === 'ok') {
      expect(ok.figures.latencyMs.n).toBeGreaterThanOrEqual(5);
      expect(ok.figures.latencyMs.p50).toBeGreaterThan(0);
      expect(ok.figures.throughput.map((t) => t.batch)).toEqual([1, 2]);
      expect(ok.figures.resources.peakRssMb).toBeGreaterThan(20);
      expect(ok.model).toBe('ort-cpu: tiny.onnx');
    }
    const rss = by['ort-cpu-int8'];
    expect(rss?.status).toBe('failed');
    if (rss?.status === 'failed') expect(rss.error.message).toMatch(/killed by SIGKILL because its process tree reached \d+ MB RSS, above the cap of 20 MB/);
    const slow = by['ort-cuda'];
    expect(slow?.status).toBe('failed');
    if (slow?.status === 'failed') expect(slow.error.message).toMatch(/killed by SIGKILL because it ran past the time limit of 0.2 s/);
    expect(by['tensorrt-fp16']).toEqual({ engine: 'tensorrt-fp16', status: 'unavailable', reason: 'no NVIDIA GPU' });
    expect(progress.filter((p) => p.endsWith(':done'))).toHaveLength(4);
  });

  it('reports an engine whose model cannot load as failed with the runtime error', async () => {
    const bad = join(dir, 'bad.onnx');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, 'not an onnx file');
    const report = await runBenchmark({
      model: { path: bad, sha256: '0'.repeat(64), task: 'classify' },
      targets: [{ ...(ready('ort-cpu') as Extract<BenchTarget, { runtime: 'onnxruntime' }>), model: bad }],
      settings: { images: [], iters: 2, warmup: 0, batchSizes: [1] },
    });
    const r = report.engines[0];
    expect(r?.status).toBe('failed');
    if (r?.status === 'failed') {
      expect(r.error.code).toBe('MODEL_INVALID');
      expect(r.error.message).toContain('bad.onnx');
    }
  });

  it('rejects bad settings before starting anything', async () => {
    const base = { model: { path: onnx, sha256: '0'.repeat(64), task: 'classify' as const }, targets: [ready('ort-cpu')] };
    await expect(runBenchmark({ ...base, settings: { images: [], iters: 0 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: 'iters' } });
    await expect(runBenchmark({ ...base, settings: { images: [], batchSizes: [] } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: 'batchSizes' } });
    await expect(runBenchmark({ ...base, targets: [ready('ort-cpu'), ready('ort-cpu')], settings: { images: [] } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: 'targets' } });
  });
});
