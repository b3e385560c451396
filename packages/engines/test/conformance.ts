import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CvoptError, type ModelManifest } from '@cvopt/core';
import type { Engine } from '../src/index.js';
import { makeTinyModels, maxAbsDiff, tinyManifest, type TinyModels } from './fixtures.js';

/**
 * The behaviour every Engine implementation owes its callers, run against the real runtime behind it.
 * A new adapter adds one line: `describeEngineConformance('name', factory)`.
 */
export function describeEngineConformance(
  label: string,
  create: (modelPath: string, manifest: ModelManifest) => Promise<Engine>,
  tolerance = 1e-4,
): void {
  describe(`Engine conformance: ${label}`, () => {
    let models: TinyModels;
    let fixed: Engine;
    let dynamic: Engine;
    beforeAll(async () => {
      models = makeTinyModels();
      fixed = await create(models.staticPath, tinyManifest());
      dynamic = await create(models.dynamicPath, tinyManifest({ input: { name: 'images', shape: ['batch', 3, 32, 32], layout: 'NCHW', dtype: 'float32' } }));
    });
    afterAll(async () => {
      await fixed?.close();
      await dynamic?.close();
    });

    const sample = (i: number) => {
      const n = 3 * 32 * 32;
      return Float32Array.from(models.ref.input.slice(i * n, (i + 1) * n));
    };
    const refOut = (i: number) => {
      const n = 6 * 64;
      return models.ref.output0.slice(i * n, (i + 1) * n);
    };

    it('describes a fixed-batch model', () => {
      const info = fixed.describe();
      expect(info.inputName).toBe('images');
      expect(info.inputDims).toEqual([1, 3, 32, 32]);
      expect(info.dynamicBatch).toBe(false);
      expect(info.maxBatch).toBe(1);
      expect(Object.keys(info.versions).length).toBeGreaterThan(0);
    });

    it('reports a dynamic batch from the model input metadata', () => {
      const info = dynamic.describe();
      expect(info.dynamicBatch).toBe(true);
      expect(typeof info.inputDims[0]).toBe('string');
      expect(info.maxBatch).toBeGreaterThanOrEqual(1);
    });

    it('matches PyTorch on the same weights and input', async () => {
      const out = await fixed.run(sample(0), [1, 3, 32, 32]);
      expect(out.dims).toEqual([1, 6, 64]);
      expect(maxAbsDiff(out.data, refOut(0))).toBeLessThan(tolerance);
      expect(Object.keys(out.outputs).sort()).toEqual(['output0', 'pooled']);
      expect(out.outputs.pooled?.dims).toEqual([1, 6]);
      expect(maxAbsDiff(out.outputs.pooled!.data, models.ref.pooled.slice(0, 6))).toBeLessThan(tolerance);
    });

    it('runs a batch of 3 on the dynamic model, each row equal to PyTorch', async () => {
      const out = await dynamic.run(Float32Array.from(models.ref.input), [3, 3, 32, 32]);
      expect(out.dims).toEqual([3, 6, 64]);
      expect(maxAbsDiff(out.data, models.ref.output0)).toBeLessThan(tolerance);
    });

    it('keeps concurrent runs apart', async () => {
      const outs = await Promise.all([0, 1, 2, 0, 2, 1].map((i) => fixed.run(sample(i), [1, 3, 32, 32])));
      [0, 1, 2, 0, 2, 1].forEach((i, k) => expect(maxAbsDiff(outs[k]!.data, refOut(i))).toBeLessThan(tolerance));
    });

    it.each([
      [[1, 3, 32, 31], 3 * 32 * 31, /dim 3 is 31, model wants 32/],
      [[3, 32, 32], 3 * 32 * 32, /rank 3, model wants 4/],
      [[2, 3, 32, 32], 2 * 3 * 32 * 32, /dim 0 is 2, model wants 1/],
      [[1, 3, 32, 32], 100, /holds 100 values, the dims need 3072/],
      [[1, 3, 0, 32], 0, /dim 2 is not a positive integer/],
    ])('rejects dims %j with TENSOR_SHAPE saying expected and got', async (dims, len, why) => {
      const err = await fixed.run(new Float32Array(len), dims).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CvoptError);
      expect((err as CvoptError).code).toBe('TENSOR_SHAPE');
      expect((err as CvoptError).message).toMatch(/expected dims \[1, 3, 32, 32\], got \[/);
      expect((err as CvoptError).message).toMatch(why);
    });

    it('refuses a batch above maxBatch on a dynamic model', async () => {
      const max = dynamic.describe().maxBatch!;
      const err = await dynamic.run(new Float32Array((max + 1) * 3072), [max + 1, 3, 32, 32]).catch((e: unknown) => e);
      expect((err as CvoptError).code).toBe('TENSOR_SHAPE');
      expect((err as CvoptError).message).toMatch(/exceeds maxBatch/);
    });

    it('honours an aborted signal', async () => {
      const ac = new AbortController();
      ac.abort();
      const err = await fixed.run(sample(0), [1, 3, 32, 32], { signal: ac.signal }).catch((e: unknown) => e);
      expect((err as CvoptError).code).toBe('CANCELLED');
    });

    it('refuses to run after close, and close is idempotent', async () => {
      const e = await create(models.staticPath, tinyManifest());
      await e.close();
      await e.close();
      const err = await e.run(sample(0), [1, 3, 32, 32]).catch((x: unknown) => x);
      expect((err as CvoptError).code).toBe('NOT_READY');
    });
  });
}
