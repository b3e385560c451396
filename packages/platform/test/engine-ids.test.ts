import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, type EngineId } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { entrypointCommand, packageArtifact, verifyArtifact } from '@cvopt/packager';
import { findPython } from '@cvopt/trainer-client';
import { PLATFORM_HANDLERS, resolveModel, runLocal } from '../src/index.js';
import { writePicoCheckpoint } from '@cvopt/trainer-client';

/**
 * One engine vocabulary end to end: the id `select` picks from a real benchmark report is accepted, as it is, by eval,
 * bench and tune --engine, and each runs the model that id names (the INT8 QDQ conversion for ort-cpu-int8, built
 * through the one cached transform path); the packager writes that id as the artifact's runtime config `engine:`,
 * and the service started from the artifact (what `cvopt serve ARTIFACT` runs) loads exactly that engine.
 */

const root = mkdtempSync(join(tmpdir(), 'cvopt-engine-ids-'));
const cacheDir = join(root, 'model-cache');
let data = '';
let onnx = '';
afterAll(() => rmSync(root, { recursive: true, force: true }));

const torch = findPython().torch;

beforeAll(async () => {
  if (!torch) return;
  const ckpt = join(root, 'pico.pt');
  writePicoCheckpoint(ckpt);
  data = (await synthDetection({ out: join(root, 'data'), images: 12, imgsz: 64, seed: 1, classes: 2 })).dataYaml;
  // The resolver exports the checkpoint once (cached by content hash); every command below takes that ONNX.
  onnx = (await resolveModel(ckpt, { cacheDir })).onnx;
}, 300_000);

describe.skipIf(!torch)('select’s winner works in eval, bench and tune --engine', () => {
  it('passes the same id through every command', { timeout: 600_000 }, async () => {
    const report = join(root, 'bench', 'report.json');
    const common = { iters: 3, warmup: 1, maxImages: 4, batchSizes: [1], calib: 2, threads: 1, cacheDir };
    await runLocal(PLATFORM_HANDLERS.bench, { model: onnx, data, out: report, engines: ['ort-cpu', 'ort-cpu-int8'], ...common });
    const decision = await runLocal(PLATFORM_HANDLERS.select, { report });
    const winner = decision.winner as EngineId;
    expect(['ort-cpu', 'ort-cpu-int8']).toContain(winner);

    // Both CPU ids, the winner first: eval runs exactly the model each names.
    for (const id of [winner, winner === 'ort-cpu' ? 'ort-cpu-int8' : 'ort-cpu'] as EngineId[]) {
      const ev = await runLocal(PLATFORM_HANDLERS.eval, { model: onnx, data, engine: id, calib: 2, maxImages: 4, cacheDir });
      expect(ev.engine.id).toBe(id);
      expect(ev.engine.precision).toBe(ENGINES[id].precision);
      if (id === 'ort-cpu-int8') expect(ev.engineModel).toMatch(/static INT8 QDQ .* 2 calibration images/);
    }

    const again = await runLocal(PLATFORM_HANDLERS.bench, { model: onnx, data, out: join(root, 'bench2', 'report.json'), engines: [winner], ...common });
    expect(again.report.engines.map((e) => [e.engine, e.status])).toEqual([[winner, 'ok']]);

    const tuned = await runLocal(PLATFORM_HANDLERS.tune, {
      model: 'yolov8p',
      data,
      out: join(root, 'tune'),
      strategy: 'elitist',
      generations: 1,
      population: 2,
      epochs: 1,
      imgsz: 64,
      batch: 4,
      latencyRuns: 3,
      engine: winner,
    });
    const ok = tuned.trials.filter((t) => t.status !== 'failed');
    expect(ok.length, JSON.stringify(tuned.trials.map((t) => t.error))).toBeGreaterThan(0);
    for (const t of ok) expect(t.p95Ms).toBeGreaterThan(0);

    // The packager ships the winner's copied model under that id; the runtime serves it on that engine.
    expect(decision.model?.engine).toBe(winner);
    const art = await packageArtifact({ decision: decision.file, out: join(root, 'dist', 'svc') });
    expect(verifyArtifact(art.dir).ok).toBe(true);
    expect(art.manifest.engine).toBe(winner);
    const config = JSON.parse(readFileSync(join(art.dir, 'cvopt.runtime.json'), 'utf8')) as Record<string, unknown>;
    expect(config.engine).toBe(winner);
    expect(config).not.toHaveProperty('provider');
    const served = await serveOnce(art.dir, join(data, '..', 'images', 'val'));
    expect(served.engine).toBe(winner);
    expect(served.predictStatus).toBe(200);
  });

  it('a GPU id is refused with the machine’s reason, not as a bad argument', async () => {
    const err = await runLocal(PLATFORM_HANDLERS.eval, { model: onnx, data, engine: 'tensorrt-fp16', maxImages: 1, cacheDir }).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    // On a machine with TensorRT this engine runs; everywhere else the error says what is missing.
    if (err) {
      expect(err.code).toBe('ENGINE_UNAVAILABLE');
      expect(err.message).toMatch(/tensorrt-fp16 cannot run on this machine: .+/);
    }
  });
});

/** Start the artifact's own entry point (as `cvopt serve ARTIFACT` does), read its engine and predict once, then SIGTERM. */
async function serveOnce(dir: string, imagesDir: string): Promise<{ engine: string; predictStatus: number }> {
  const { command, args } = entrypointCommand(dir);
  const child = spawn(command, args, { env: { ...process.env, CVOPT_HOST: '127.0.0.1', CVOPT_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  try {
    const url = await new Promise<string>((res, rej) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /(http:\/\/\S+)/.exec(out);
        if (m) res(m[1]!);
      });
      void exited.then((c) => rej(new Error(`the artifact exited ${c} before serving: ${err}`)));
    });
    const model = (await (await fetch(`${url}/v1/model`)).json()) as { engine: { id: string } };
    const image = readdirSync(imagesDir).find((f) => /\.(jpe?g|png)$/i.test(f))!;
    const type = image.endsWith('.png') ? 'image/png' : 'image/jpeg';
    const r = await fetch(`${url}/v1/predict`, { method: 'POST', body: readFileSync(join(imagesDir, image)), headers: { 'content-type': type } });
    await r.arrayBuffer();
    return { engine: model.engine.id, predictStatus: r.status };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
}
