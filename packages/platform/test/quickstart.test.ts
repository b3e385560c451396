import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BenchmarkReportSchema, DecisionSchema, ModelManifestSchema } from '@cvopt/core';
import { verifyArtifact } from '@cvopt/packager';
import { quickstart } from '../src/index.js';

// The main job end to end at toy sizes: real synthesis, PyTorch training, export with parity, ONNX Runtime
// evaluation, every engine's benchmark in child processes, and the selection. Accuracy after one epoch at 64 px
// is near zero; what is asserted is that every stage ran for real and left its artefacts.
const out = mkdtempSync(join(tmpdir(), 'cvopt-quickstart-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('cvopt quickstart', () => {
  it('synthesises, trains, exports, evaluates, benchmarks, selects, packages and serves one prediction', async () => {
    const steps: string[] = [];
    const r = await quickstart({ out, images: 40, imgsz: 64, epochs: 1, seed: 1 }, { onStep: (_i, _n, title) => steps.push(title) });
    expect(steps).toHaveLength(6);
    expect(r.dataset.train + r.dataset.val).toBe(40);
    expect(existsSync(r.train.best)).toBe(true);
    expect(r.export.parity.maxRelDiff).toBeLessThan(1e-3);
    const manifest = ModelManifestSchema.parse(JSON.parse(readFileSync(r.export.manifest, 'utf8')));
    expect(manifest.classNames).toEqual(r.dataset.names);
    expect(r.eval.images).toBe(r.dataset.val);
    expect(r.eval.detect?.map50).toBeGreaterThanOrEqual(0);

    const report = BenchmarkReportSchema.parse(JSON.parse(readFileSync(r.bench.report, 'utf8')));
    const status = Object.fromEntries(report.engines.map((e) => [e.engine, e.status]));
    expect(status['ort-cpu']).toBe('ok');
    expect(status['ort-cpu-int8']).toBe('ok');
    expect(status['pytorch']).toBe('ok');
    for (const gpu of ['ort-cuda', 'tensorrt-fp16', 'tensorrt-int8'] as const) expect(status[gpu]).toBe('unavailable');

    const decision = DecisionSchema.parse(JSON.parse(readFileSync(r.bench.decision, 'utf8')));
    expect(decision).toEqual(r.decision);
    expect(decision.constraints.maxMapDrop).toBe(0.01);
    expect(decision.constraints.allowedEngines).not.toContain('pytorch');
    expect(decision.candidates).toHaveLength(report.engines.length);
    expect(readFileSync(r.bench.markdown, 'utf8')).toContain('## Selection');

    // The winner's exact model sits beside the decision, and the artifact made from it answered a real request.
    expect(decision.winner).not.toBeNull();
    expect(existsSync(join(r.bench.decision, '..', decision.model!.file))).toBe(true);
    expect(verifyArtifact(r.artifact!.dir).ok).toBe(true);
    expect(existsSync(r.artifact!.tarball)).toBe(true);
    expect(Array.isArray(r.artifact!.prediction.detections)).toBe(true);
  }, 600_000);
});
