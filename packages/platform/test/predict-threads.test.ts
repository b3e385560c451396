import { availableParallelism, tmpdir } from 'node:os';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDataDir, type JobContext } from '@cvopt/core';
import { resolvePredictModel, runPredict } from '../src/jobs/predict.js';
import { oneThreadSuffices, openPredictEngine } from '../src/predict/threads.js';

const data = testDataDir();
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-predict-threads-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ctx = (): JobContext => ({ signal: new AbortController().signal, workdir: tmp, log: () => undefined, progress: () => undefined });

describe('predict intra-op threads', () => {
  it('takes one thread when its median run is within 10 % of every core\'s', () => {
    expect(oneThreadSuffices([4, 4.1, 3.9], [4.3, 4.4, 4.2])).toBe(true);
    expect(oneThreadSuffices([4, 4.1, 3.9], [4.5, 4.6, 4.4])).toBe(false);
    expect(oneThreadSuffices([80, 82, 79], [150, 151, 149])).toBe(false);
    // Medians, not means: one slow outlier run does not decide.
    expect(oneThreadSuffices([4, 4, 4], [4, 4.1, 90])).toBe(true);
  });

  describe.skipIf(!data || availableParallelism() < 2)('on the shared YOLOv8n INT8 (real ONNX Runtime sessions)', () => {
    const model = join(data ?? '', 'models/yolov8n_int8.onnx');

    it('opens the engine with the threads asked for, and times one thread against every core otherwise', async () => {
      const r = await resolvePredictModel(model);
      const asked = await openPredictEngine(r.modelPath, r.manifest, r.engine, { spinning: false, threads: 2 });
      expect([asked.threads, asked.engine.describe().threads, asked.note]).toEqual([2, 2, undefined]);
      await asked.engine.close();
      // Thresholds forced open: the probe runs both sessions and keeps the one-thread engine, saying why.
      const one = await openPredictEngine(r.modelPath, r.manifest, r.engine, { spinning: false, probeMaxMs: Infinity, tolerance: Infinity });
      expect([one.threads, one.engine.describe().threads]).toEqual([1, 1]);
      expect(one.note).toMatch(/1 intra-op thread: this model ran [\d.]+ ms on one against [\d.]+ ms on every core/);
      await one.engine.close();
      // Forced shut: every core stays.
      const all = await openPredictEngine(r.modelPath, r.manifest, r.engine, { spinning: false, probeMaxMs: Infinity, tolerance: 0 });
      expect([all.threads, all.note]).toEqual([0, undefined]);
      await all.engine.close();
    }, 60_000);

    it('gives the same detections on one thread as on two (the thread count changes no result)', async () => {
      const images = join(data ?? '', 'coco128-val/images/val2017');
      const source = join(tmp, 'four.txt');
      writeFileSync(source, readdirSync(images).sort().slice(0, 4).map((f) => join(images, f)).join('\n'));
      const rows = async (threads: number) => {
        const out = join(tmp, `t${threads}`);
        const r = await runPredict({ model, source, saveJson: true, conf: 0.001, out, existOk: true, intraOpNumThreads: threads }, ctx());
        expect(r.intraOpThreads).toBe(threads);
        return r;
      };
      const a = await rows(1);
      const b = await rows(2);
      expect(a.detections).toBeGreaterThan(0);
      expect(a.sources.map((s) => s.detections)).toEqual(b.sources.map((s) => s.detections));
      expect(readFileSync(a.json!, 'utf8')).toBe(readFileSync(b.json!, 'utf8'));
    }, 120_000);
  });
});
