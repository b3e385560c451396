import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DecisionSchema, exitCodeOf, type BenchmarkReport } from '@cvopt/core';
import { runCli as run } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-select-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


const ok = (engine: 'ort-cpu' | 'ort-cpu-int8' | 'pytorch', p95: number, map50: number, rss: number) => ({
  engine,
  status: 'ok' as const,
  figures: {
    latencyMs: { n: 20, min: p95 * 0.8, p50: p95 * 0.9, p90: p95 * 0.95, p95, p99: p95 * 1.05, mean: p95 * 0.9, std: 1, max: p95 * 1.1 },
    throughput: [],
    resources: { cpuPercent: 100, peakRssMb: rss },
    accuracy: { map50, map5095: map50 / 2, images: 32 },
    flags: [],
  },
});

const REPORT: BenchmarkReport = {
  schemaVersion: 1,
  createdAt: '2026-01-01T00:00:00Z',
  model: { path: 'm.onnx', sha256: 'a'.repeat(64), task: 'detect' },
  settings: {},
  environment: { os: 'Linux', cpu: { model: 'x', cores: 2, flags: [] }, memoryMb: 1000, gpus: [], versions: {} },
  baseline: 'ort-cpu',
  engines: [ok('ort-cpu', 40, 0.6, 300), ok('ort-cpu-int8', 20, 0.57, 250), ok('pytorch', 90, 0.6, 900), { engine: 'ort-cuda', status: 'unavailable', reason: 'no NVIDIA GPU' }],
};

describe('cvopt select', () => {
  const report = join(tmp, 'report.json');
  writeFileSync(report, JSON.stringify(REPORT));

  it('picks the fastest valid engine, prints every margin and writes decision.json beside the report', async () => {
    const r = await run('select', report, '--max-map-drop', '0.05', '--max-p95-ms', '50');
    expect(r.code).toBe(0);
    expect(r.out).toContain('winner: ort-cpu-int8');
    expect(r.out).toMatch(/maxMapDrop \+0\.02/);
    expect(r.out).toContain('rule: fastest valid candidate by p95');
    const d = DecisionSchema.parse(JSON.parse(readFileSync(join(tmp, 'decision.json'), 'utf8')));
    expect(d.winner).toBe('ort-cpu-int8');
    expect(d.candidates.find((c) => c.engine === 'pytorch')?.rejectedBy[0]).toMatch(/^maxP95Ms: 90 vs limit 50/);
  });

  it('a tighter drop bound moves the choice; --out and --engines are honoured', async () => {
    const out = join(tmp, 'tight.json');
    const r = await run('--json', 'select', report, '--max-map-drop', '0.01', '--engines', 'ort-cpu,pytorch,ort-cpu-int8', '--out', out);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).winner).toBe('ort-cpu');
    expect(JSON.parse(readFileSync(out, 'utf8')).constraints).toEqual({ maxMapDrop: 0.01, allowedEngines: ['ort-cpu', 'pytorch', 'ort-cpu-int8'] });
  });

  it('exits with CONSTRAINT_UNMET when nothing qualifies, naming the nearest engine', async () => {
    const r = await run('select', report, '--max-p95-ms', '5', '--out', join(tmp, 'none.json'));
    expect(r.code).toBe(exitCodeOf('CONSTRAINT_UNMET'));
    expect(r.out).toContain('winner: none');
    expect(r.err).toContain('CONSTRAINT_UNMET');
    expect(r.err).toMatch(/nearest, ort-cpu-int8/);
  });

  it('refuses bad flags and malformed reports with the field or line named', async () => {
    const flag = await run('select', report, '--min-map50', '1.5');
    expect(flag.code).toBe(exitCodeOf('INVALID_ARGUMENT'));
    expect(flag.err).toContain('--min-map50');
    const eng = await run('select', report, '--engines', 'ort-cpu,warp-drive');
    expect(eng.err).toContain('--engines: "warp-drive" must be all or a comma list of');
    const broken = join(tmp, 'broken.json');
    writeFileSync(broken, '{\n  "engines": [\n    oops\n  ]\n}');
    const b = await run('select', broken);
    expect(b.code).toBe(exitCodeOf('INVALID_ARGUMENT'));
    expect(b.err).toContain(`${broken}:3`);
    const wrong = join(tmp, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ ...REPORT, engines: [{ engine: 'ort-cpu', status: 'ok' }] }));
    const w = await run('select', wrong);
    expect(w.code).toBe(exitCodeOf('INVALID_ARGUMENT'));
    expect(w.err).toMatch(/engines/);
    const missing = await run('select', join(tmp, 'absent.json'));
    expect(missing.code).toBe(exitCodeOf('NOT_FOUND'));
  });
});
