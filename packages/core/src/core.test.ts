import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BenchArgsSchema,
  BenchmarkReportSchema,
  ImportOnnxArgsSchema,
  WORKER_COMMANDS,
  CvoptError,
  ERROR_CATALOGUE,
  ModelManifestSchema,
  Rng,
  WorkerMessageSchema,
  exitCodeOf,
  formatError,
  httpStatusOf,
  parseWith,
  shedLoad,
} from './index.js';

describe('Rng', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c.nextU32())).not.toEqual(sa);
  });

  it('restores from its saved state', () => {
    const a = new Rng(7);
    a.float();
    const saved = a.state();
    const next = [a.float(), a.float()];
    const b = new Rng(saved);
    expect([b.float(), b.float()]).toEqual(next);
  });

  it('draws uniform floats in [0,1) with the right mean, ints within bounds, normals with unit variance', () => {
    const r = new Rng(1);
    let sum = 0;
    let sq = 0;
    let fmin = 1;
    let fmax = 0;
    let kmin = 0;
    let kmax = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const f = r.float();
      fmin = Math.min(fmin, f);
      fmax = Math.max(fmax, f);
      sum += f;
      const k = r.int(-3, 3);
      kmin = Math.min(kmin, k);
      kmax = Math.max(kmax, k);
      const z = r.normal();
      sq += z * z;
    }
    expect(fmin).toBeGreaterThanOrEqual(0);
    expect(fmax).toBeLessThan(1);
    expect([kmin, kmax]).toEqual([-3, 3]);
    expect(sum / n).toBeCloseTo(0.5, 1);
    expect(sq / n).toBeCloseTo(1, 1);
  });

  it('shuffles into a permutation', () => {
    const r = new Rng(3);
    const s = r.shuffle([1, 2, 3, 4, 5, 6]);
    expect([...s].sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('error catalogue', () => {
  it('maps every code to an HTTP status and an exit code', () => {
    for (const code of Object.keys(ERROR_CATALOGUE) as (keyof typeof ERROR_CATALOGUE)[]) {
      expect(httpStatusOf(code)).toBeGreaterThanOrEqual(400);
      expect(exitCodeOf(code)).toBeGreaterThan(0);
    }
    expect(httpStatusOf('QUEUE_FULL')).toBe(429);
    expect(exitCodeOf('INVALID_ARGUMENT')).toBe(2);
  });

  it('formats where and how to fix', () => {
    const e = new CvoptError('LABEL_INVALID', 'expected 5 fields, found 4', {
      where: { file: 'labels/x.txt', line: 3 },
      hint: 'write "class cx cy w h"',
    });
    expect(formatError(e)).toContain('labels/x.txt:3');
    expect(formatError(e)).toContain('fix: write');
    expect(e.toJSON()).toMatchObject({ code: 'LABEL_INVALID', where: { line: 3 } });
  });

  it('builds load-shedding refusals without a stack trace, and leaves other errors theirs', () => {
    const r = shedLoad('QUEUE_FULL', 'the queue is full', { retryAfterS: 2 });
    expect(r).toBeInstanceOf(CvoptError);
    expect(r.toJSON()).toEqual({ code: 'QUEUE_FULL', message: 'the queue is full', retryAfterS: 2 });
    expect(r.stack).not.toContain('core.test');
    expect(new CvoptError('INTERNAL', 'x').stack).toContain('core.test');
  });
});

describe('schemas', () => {
  it('parseWith names every bad field', () => {
    const bad = { name: 'm', task: 'segment', input: { name: 'images', shape: [1, 3, 640], layout: 'NCHW', dtype: 'float32' } };
    let err: unknown;
    try {
      parseWith(ModelManifestSchema, bad, { what: 'model.json', file: 'model.json', code: 'MANIFEST_INVALID' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CvoptError);
    const ce = err as CvoptError;
    expect(ce.code).toBe('MANIFEST_INVALID');
    expect(ce.message).toContain('task');
    expect(ce.message).toContain('input.shape');
    expect(ce.message).toContain('preprocess');
  });

  it('accepts a full manifest and fills defaults', () => {
    const m = ModelManifestSchema.parse({
      name: 'yolov8n',
      task: 'detect',
      input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
      preprocess: { resize: 'letterbox', size: [640, 640], scale: 1 / 255, channelOrder: 'RGB' },
      output: { name: 'output0', format: 'yolov8', shape: [1, 84, 8400] },
      classNames: ['person'],
      opset: 17,
    });
    expect(m.precision).toBe('fp32');
    expect(m.preprocess.padValue).toBe(114);
    expect(m.preprocess.std).toEqual([1, 1, 1]);
  });

  it('a report engine entry is unavailable, failed or ok', () => {
    const r = BenchmarkReportSchema.safeParse({
      createdAt: new Date(0).toISOString(),
      model: { path: 'm.onnx', sha256: 'x', task: 'detect' },
      environment: { os: 'linux', cpu: { model: 'x', cores: 2 }, memoryMb: 1 },
      engines: [
        { engine: 'tensorrt-fp16', status: 'unavailable', reason: 'no NVIDIA GPU' },
        { engine: 'ort-cpu', status: 'failed', error: { code: 'ENGINE_FAILED', message: 'abort' } },
      ],
    });
    expect(r.success).toBe(true);
  });
});

describe('worker protocol fixture (shared with the Python side)', () => {
  const fixture = JSON.parse(readFileSync(new URL('../../../contracts/worker-messages.json', import.meta.url), 'utf8')) as {
    commands: string[];
    commandArgs: Record<'import-onnx' | 'bench', { valid: unknown[]; invalid: unknown[] }>;
    valid: unknown[];
    invalid: unknown[];
  };
  it('lists the same worker commands as the Python entry point', () => {
    expect([...WORKER_COMMANDS].sort()).toEqual([...fixture.commands].sort());
  });
  it('checks worker command arguments with their schemas', () => {
    const schemas = { 'import-onnx': ImportOnnxArgsSchema, bench: BenchArgsSchema };
    for (const [cmd, cases] of Object.entries(fixture.commandArgs) as ['import-onnx' | 'bench', { valid: unknown[]; invalid: unknown[] }][]) {
      for (const a of cases.valid) expect(schemas[cmd].safeParse(a).success).toBe(true);
      for (const a of cases.invalid) expect(schemas[cmd].safeParse(a).success).toBe(false);
    }
  });
  it.each(fixture.valid.map((m, i) => [i, m]))('valid message %i parses', (_i, m) => {
    expect(WorkerMessageSchema.safeParse(m).success).toBe(true);
  });
  it.each(fixture.invalid.map((m, i) => [i, m]))('invalid message %i is refused', (_i, m) => {
    expect(WorkerMessageSchema.safeParse(m).success).toBe(false);
  });
});
