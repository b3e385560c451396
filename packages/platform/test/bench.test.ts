import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BenchmarkReportSchema, CvoptError } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { benchModel, readBenchmarkReport } from '../src/index.js';
import { writePicoCheckpoint } from '@cvopt/trainer-client';

/**
 * End to end on real components: a tiny cvopt checkpoint, a synthetic dataset and an ffmpeg-made video; the
 * PyTorch worker, ONNX Runtime FP32 and the QDQ INT8 model each measured in their own process.
 */

const dir = mkdtempSync(join(tmpdir(), 'cvopt-bench-job-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('benchModel', () => {
  it('reports pytorch, ort-cpu and ort-cpu-int8 with every figure and the GPU engines as unavailable', { timeout: 600_000 }, async () => {
    const ckpt = join(dir, 'tiny.pt');
    writePicoCheckpoint(ckpt);
    const data = join(dir, 'data');
    await synthDetection({ out: data, images: 8, imgsz: 64, seed: 1, classes: 2 });
    const video = join(dir, 'clip.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=10', '-frames:v', '4', '-pix_fmt', 'yuv420p', video]);
    const stages: string[] = [];
    const r = await benchModel(
      { model: ckpt, data: join(data, 'data.yaml'), video, out: join(dir, 'out', 'report.json'), iters: 3, warmup: 1, maxImages: 3, maxFrames: 4, batchSizes: [1, 2], calib: 2, threads: 1 },
      { onStage: (m) => stages.push(m) },
    );
    const report = BenchmarkReportSchema.parse(JSON.parse(readFileSync(r.files.report, 'utf8')));
    expect(readFileSync(r.files.markdown, 'utf8')).toContain('ort-cpu-int8');
    expect(readFileSync(r.files.chart, 'utf8')).toMatch(/^<svg/);
    expect(report.baseline).toBe('ort-cpu');
    expect(report.environment.versions).toMatchObject({ 'onnxruntime-node': expect.any(String), pytorch: expect.any(String), ffmpeg: expect.any(String) });
    const by = Object.fromEntries(report.engines.map((e) => [e.engine, e]));
    for (const id of ['pytorch', 'ort-cpu', 'ort-cpu-int8'] as const) {
      const e = by[id];
      expect(e?.status, `${id}: ${JSON.stringify(e)}`).toBe('ok');
      if (e?.status !== 'ok') continue;
      const f = e.figures;
      expect(f.latencyMs.n).toBeGreaterThanOrEqual(3);
      expect(f.latencyMs.p50).toBeGreaterThan(0);
      expect(f.throughput.map((t) => t.batch)).toEqual([1, 2]);
      expect(f.video).toMatchObject({ frames: 4 });
      expect(f.video?.sequentialFps).toBeGreaterThan(0);
      expect(f.video?.pipelinedFps).toBeGreaterThan(0);
      expect(f.resources.peakRssMb).toBeGreaterThan(0);
      expect(f.resources.cpuPercent).toBeGreaterThan(0);
      expect(f.accuracy?.images).toBe(report.dataset?.images);
      expect(f.accuracy?.images).toBeGreaterThan(0);
      expect(f.accuracy?.map50).toBeGreaterThanOrEqual(0);
      expect(f.accuracy?.delta?.map50).toBeDefined();
    }
    const pt = by.pytorch;
    const cpu = by['ort-cpu'];
    // The same weights and the same decoding: PyTorch and the FP32 export score the same images alike.
    if (pt?.status === 'ok' && cpu?.status === 'ok') expect(Math.abs((pt.figures.accuracy?.map50 ?? 0) - (cpu.figures.accuracy?.map50 ?? 0))).toBeLessThan(1e-3);
    expect(cpu?.status === 'ok' && cpu.model).toContain('FP32 ONNX export of tiny.pt');
    expect(by['ort-cpu-int8']?.status === 'ok' && by['ort-cpu-int8'].model).toContain('INT8 QDQ');
    for (const id of ['ort-cuda', 'ort-cuda-fp16', 'tensorrt-fp16', 'tensorrt-int8'] as const) {
      const e = by[id];
      // On a GPU machine these run; here they must say why not.
      if (e?.status === 'unavailable') expect(e.reason.length).toBeGreaterThan(10);
      else expect(e?.status).toBe('ok');
    }
    expect(stages.some((s) => s.startsWith('exporting'))).toBe(true);
    expect(r.decision.candidates).toHaveLength(7);
  });

  it('names the bad input: missing model, wrong --out, malformed report', async () => {
    await expect(benchModel({ model: join(dir, 'none.onnx'), data: dir, out: join(dir, 'r.json') })).rejects.toMatchObject({ code: 'NOT_FOUND', where: { field: 'model' } });
    writeFileSync(join(dir, 'm.onnx'), '');
    await expect(benchModel({ model: join(dir, 'm.onnx'), data: dir, out: join(dir, 'r.txt') })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: '--out' } });
    writeFileSync(join(dir, 'broken.json'), '{\n  "schemaVersion": 1,\n  oops\n}');
    try {
      readBenchmarkReport(join(dir, 'broken.json'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CvoptError);
      expect((e as CvoptError).where).toMatchObject({ file: join(dir, 'broken.json'), line: 3 });
    }
    writeFileSync(join(dir, 'wrong.json'), JSON.stringify({ createdAt: 'x', model: { path: 'm', sha256: 's', task: 'detect' }, environment: {}, engines: [] }));
    expect(() => readBenchmarkReport(join(dir, 'wrong.json'))).toThrow(/environment/);
  });
});
