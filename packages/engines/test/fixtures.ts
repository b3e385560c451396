import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelManifestSchema, type ModelManifest } from '@cvopt/core';

export interface TinyModels {
  dir: string;
  staticPath: string;
  dynamicPath: string;
  ref: { input: number[]; inputDims: number[]; output0: number[]; output0Dims: number[]; pooled: number[] };
}

let cached: TinyModels | undefined;

/** Export the tiny conv nets with the real PyTorch into a temp folder, once per test file. */
export function makeTinyModels(): TinyModels {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-engines-'));
  const script = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'make_models.py');
  execFileSync('/usr/bin/python3', [script, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  cached = {
    dir,
    staticPath: join(dir, 'static.onnx'),
    dynamicPath: join(dir, 'dynamic.onnx'),
    ref: JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as TinyModels['ref'],
  };
  return cached;
}

export function tinyManifest(overrides: Partial<ModelManifest> = {}): ModelManifest {
  return ModelManifestSchema.parse({
    name: 'tiny',
    task: 'detect',
    input: { name: 'images', shape: [1, 3, 32, 32], layout: 'NCHW', dtype: 'float32' },
    preprocess: { resize: 'letterbox', size: [32, 32], scale: 1 / 255, channelOrder: 'RGB' },
    output: { name: 'output0', format: 'yolov8', shape: [1, 6, 64] },
    classNames: ['a', 'b'],
    opset: 13,
    ...overrides,
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}
