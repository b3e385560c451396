import { describe, expect, it } from 'vitest';
import { DecisionSchema, type BenchmarkReport, type Constraints, type EngineId, type EngineResult } from '@cvopt/core';
import { selectEngine } from './select.js';

function ok(engine: EngineId, p95: number, acc: { map50?: number; top1?: number } = {}, res: { rss?: number; gpu?: number } = {}): EngineResult {
  return {
    engine,
    status: 'ok',
    figures: {
      latencyMs: { n: 100, min: p95 * 0.8, p50: p95 * 0.9, p90: p95 * 0.95, p95, p99: p95 * 1.1, mean: p95 * 0.9, std: 1, max: p95 * 1.2 },
      throughput: [],
      resources: { cpuPercent: 100, peakRssMb: res.rss ?? 300, ...(res.gpu !== undefined ? { gpuMemMb: res.gpu } : {}) },
      accuracy: { ...acc },
      flags: [],
    },
  };
}

function report(engines: EngineResult[], task: 'detect' | 'classify' = 'detect', baseline?: EngineId): BenchmarkReport {
  return {
    schemaVersion: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { path: 'm.onnx', sha256: 'x', task },
    settings: {},
    environment: { os: 'linux', cpu: { model: 'cpu', cores: 2, flags: [] }, memoryMb: 1, gpus: [], versions: {} },
    ...(baseline ? { baseline } : {}),
    engines,
  };
}

const base = [
  ok('ort-cpu', 40, { map50: 0.5 }, { rss: 400 }),
  ok('ort-cpu-int8', 20, { map50: 0.49 }, { rss: 350 }),
  ok('pytorch', 80, { map50: 0.5 }, { rss: 900 }),
  { engine: 'tensorrt-fp16', status: 'unavailable', reason: 'no NVIDIA GPU' } as EngineResult,
  { engine: 'ort-cuda', status: 'failed', error: { code: 'ENGINE_FAILED', message: 'abort' } } as EngineResult,
];

interface Case {
  name: string;
  engines: EngineResult[];
  constraints: Constraints;
  task?: 'detect' | 'classify';
  winner: EngineId | null;
  reason?: RegExp;
}

const cases: Case[] = [
  { name: 'no constraints: fastest wins', engines: base, constraints: {}, winner: 'ort-cpu-int8' },
  { name: 'drop exactly at the limit is allowed', engines: base, constraints: { maxMapDrop: 0.01 }, winner: 'ort-cpu-int8' },
  { name: 'drop just over the limit rejects int8', engines: base, constraints: { maxMapDrop: 0.0099 }, winner: 'ort-cpu' },
  { name: 'min accuracy equal to value is met', engines: base, constraints: { minMap50: 0.49 }, winner: 'ort-cpu-int8' },
  { name: 'min accuracy above int8 rejects it', engines: base, constraints: { minMap50: 0.495 }, winner: 'ort-cpu' },
  { name: 'p95 limit exactly equal is met', engines: base, constraints: { maxP95Ms: 20 }, winner: 'ort-cpu-int8' },
  { name: 'RSS cap', engines: base, constraints: { maxRssMb: 349 }, winner: null, reason: /nearest, ort-cpu-int8, was ruled out by maxRssMb/ },
  { name: 'allowed engines restrict the field', engines: base, constraints: { allowedEngines: ['pytorch', 'ort-cpu'] }, winner: 'ort-cpu' },
  { name: 'GPU memory limit ignores CPU engines', engines: base, constraints: { maxGpuMemMb: 100 }, winner: 'ort-cpu-int8' },
  {
    name: 'nothing meets a p95 bound: names the nearest and the constraint',
    engines: base,
    constraints: { maxP95Ms: 10 },
    winner: null,
    reason: /nearest, ort-cpu-int8, was ruled out by maxP95Ms: 20 vs limit 10/,
  },
  {
    name: 'all unavailable or failed',
    engines: base.filter((e) => e.status !== 'ok'),
    constraints: {},
    winner: null,
    reason: /every engine was unavailable or failed/,
  },
  {
    name: 'tie on p95 goes to higher accuracy',
    engines: [ok('ort-cpu', 20.001, { map50: 0.5 }), ok('ort-cpu-int8', 20.004, { map50: 0.49 })],
    constraints: {},
    winner: 'ort-cpu',
    reason: /tied on p95/,
  },
  {
    name: 'tie on p95 and accuracy goes to lower RSS',
    engines: [ok('ort-cpu', 20, { map50: 0.5 }, { rss: 500 }), ok('pytorch', 20, { map50: 0.5 }, { rss: 400 })],
    constraints: {},
    winner: 'pytorch',
  },
  {
    name: 'full tie goes to the fixed engine order',
    engines: [ok('pytorch', 20, { map50: 0.5 }), ok('ort-cpu', 20, { map50: 0.5 })],
    constraints: {},
    winner: 'ort-cpu',
  },
  {
    name: 'accuracy constraint on an engine without accuracy figures rejects it as not measured',
    engines: [ok('ort-cpu', 30, { map50: 0.5 }), ok('ort-cpu-int8', 10)],
    constraints: { minMap50: 0.1 },
    winner: 'ort-cpu',
  },
  {
    name: 'classification uses top-1 for the drop',
    engines: [ok('ort-cpu', 10, { top1: 0.9 }), ok('ort-cpu-int8', 5, { top1: 0.85 })],
    constraints: { maxMapDrop: 0.02 },
    task: 'classify',
    winner: 'ort-cpu',
  },
];

describe('selectEngine', () => {
  it.each(cases)('$name', (c) => {
    const d = selectEngine(report(c.engines, c.task ?? 'detect'), c.constraints);
    expect(d.winner).toBe(c.winner);
    if (c.reason) expect(d.reason).toMatch(c.reason);
    expect(DecisionSchema.safeParse(d).success).toBe(true);
    // Every engine in the report is listed, and the winner is valid.
    expect(d.candidates.map((x) => x.engine).sort()).toEqual(c.engines.map((e) => e.engine).sort());
    if (d.winner) expect(d.candidates.find((x) => x.engine === d.winner)?.valid).toBe(true);
  });

  it('lists margins for each constraint with sign conventions', () => {
    const d = selectEngine(report(base), { maxP95Ms: 30, minMap50: 0.495 });
    const int8 = d.candidates.find((c) => c.engine === 'ort-cpu-int8')!;
    expect(int8.margins).toEqual([
      { constraint: 'minMap50', limit: 0.495, value: 0.49, margin: -0.005, ok: false },
      { constraint: 'maxP95Ms', limit: 30, value: 20, margin: 10, ok: true },
    ]);
    expect(int8.rejectedBy[0]).toMatch(/minMap50/);
    const trt = d.candidates.find((c) => c.engine === 'tensorrt-fp16')!;
    expect(trt.rejectedBy).toEqual(['unavailable: no NVIDIA GPU']);
  });

  it('is the same decision for every ordering of the report and every run', () => {
    const constraints: Constraints = { maxMapDrop: 0.02, maxP95Ms: 100 };
    const first = JSON.stringify(selectEngine(report(base), constraints));
    const perms = [base, [...base].reverse(), [base[2]!, base[0]!, base[4]!, base[1]!, base[3]!]];
    for (const p of perms) {
      for (let i = 0; i < 3; i++) expect(JSON.stringify(selectEngine(report(p), constraints))).toBe(first);
    }
  });

  it('uses the declared baseline for the accuracy drop', () => {
    const engines = [ok('pytorch', 50, { map50: 0.6 }), ok('ort-cpu', 40, { map50: 0.5 }), ok('ort-cpu-int8', 20, { map50: 0.49 })];
    expect(selectEngine(report(engines, 'detect', 'pytorch'), { maxMapDrop: 0.05 }).winner).toBe('pytorch');
    expect(selectEngine(report(engines), { maxMapDrop: 0.05 }).winner).toBe('ort-cpu-int8');
  });
});
