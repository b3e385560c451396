import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, exitCodeOf } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { openBackend, runWorker, type JobBackend, type RunningWorker } from '@cvopt/jobs';
import { encodeModel, model, node, valueInfo } from '@cvopt/onnx';
import { platformHandlerRegistry } from '@cvopt/platform';
import { buildServer, type CvoptServer } from '@cvopt/server';
import { writePicoCheckpoint } from '@cvopt/trainer-client';

/**
 * `--remote` against a real server on SQLite with the embedded worker `cvopt server` runs, driven by real `cvopt`
 * processes: every command prints what its local run prints (paths and timings aside), leaves the same files at
 * --out, and fails with the same code.
 */
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-remote-parity-'));
const L = join(tmp, 'local');
const R = join(tmp, 'remote');
const env = { ...process.env, CVOPT_CONFIG_DIR: join(tmp, 'config'), CVOPT_PASSWORD: 'root-password', CVOPT_CACHE_DIR: join(tmp, 'cache') };

interface Run {
  code: number;
  out: string;
  err: string;
}
function cvopt(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { env, cwd: tmp, maxBuffer: 64 << 20 }, (e, out, err) => done({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}
const json = (r: Run) => JSON.parse(r.out) as Record<string, unknown>;

/** The document with the local and remote output folders written alike. */
const norm = (v: unknown): unknown => JSON.parse(JSON.stringify(v).split(L).join('<out>').split(R).join('<out>'));
/** Keys and value types all the way down: what stays equal when figures such as latencies differ. */
function shape(v: unknown): unknown {
  // A list of plain values (a report's measurement flags) may differ in length from run to run.
  if (Array.isArray(v)) return v.every((x) => x === null || typeof x !== 'object') ? 'list' : v.map(shape);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape((v as Record<string, unknown>)[k])]));
  return v === null ? null : typeof v;
}
function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name), base) : [relative(base, join(dir, e.name))]))
    .sort();
}

describe('local and --remote runs print the same and write the same', () => {
  let server: CvoptServer;
  let backend: JobBackend;
  let worker: RunningWorker;
  const data = join(tmp, 'shapes', 'data.yaml');
  const pico = join(tmp, 'pico.pt');

  beforeAll(async () => {
    const dataDir = join(tmp, 'server');
    server = await buildServer({ config: { dataDir, scryptLogN: 10, minPasswordLength: 8 }, log: createLogger('t', { level: 'silent' }) });
    const url = (await server.app.listen({ port: 0, host: '127.0.0.1' })).replace(/\/$/, '');
    await server.ctx.identity.createUser('root', 'root-password', true);
    // As `cvopt server` does: the embedded worker serves every queue from the same database with the platform handlers.
    backend = await openBackend({ database: { dataDir }, queue: 'embedded', pollMs: 50 });
    worker = runWorker({ backend, handlers: platformHandlerRegistry(), workdirRoot: join(tmp, 'work'), onLog: () => {} });
    mkdirSync(L);
    mkdirSync(R);
    await synthDetection({ out: join(tmp, 'shapes'), images: 6, imgsz: 64, seed: 3, classes: 2 });
    writePicoCheckpoint(pico);
    expect((await cvopt('login', url, '--username', 'root')).code).toBe(0);
    expect((await cvopt('project', 'create', 'demo')).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await worker?.close();
    await backend?.close();
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('--remote without a project names --project and `cvopt project use`', async () => {
    const r = await cvopt('--json', 'check', pico, '--remote');
    expect(r.code).toBe(exitCodeOf('INVALID_ARGUMENT'));
    expect(json(r).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: '--project' } });
    expect(String((json(r).error as { message: string }).message)).toMatch(/--project NAME.*cvopt project use NAME/);
    expect((await cvopt('project', 'use', 'demo')).out).toMatch(/now run in project demo/);
  });

  it('export → check → bench → select → package: same --json and the same files at --out', { timeout: 240_000 }, async () => {
    const both = async (local: string[], remote: string[]) => {
      // Side by side: the local run in its process, the remote one in the server's worker.
      const [l, r] = await Promise.all([cvopt('--json', ...local), cvopt('--json', ...remote, '--remote')]);
      expect(l.code, l.out + l.err).toBe(0);
      expect(r.code, r.out + r.err).toBe(0);
      return [json(l), json(r)] as const;
    };

    const [le, re] = await both(['export', pico, '--out', join(L, 'model.onnx')], ['export', pico, '--out', join(R, 'model.onnx')]);
    expect(shape(re)).toEqual(shape(le));
    expect(norm({ ...re, parity: undefined })).toEqual(norm({ ...le, parity: undefined }));
    expect(files(R)).toEqual(files(L));

    const [lc, rc] = await both(['check', join(L, 'model.onnx')], ['check', join(R, 'model.onnx')]);
    expect(norm(rc)).toEqual(norm(lc));

    const bench = (dir: string) => ['bench', join(dir, 'model.onnx'), '--data', data, '--engines', 'ort-cpu', '--iters', '2', '--warmup', '0', '--max-images', '2', '--batch-sizes', '1', '--threads', '1', '--out', join(dir, 'report.json')];
    const [lb, rb] = await both(bench(L), bench(R));
    expect(shape(rb)).toEqual(shape(lb));
    const engines = (b: Record<string, unknown>) => (b.report as { engines: { engine: string; status: string }[] }).engines.map((e) => `${e.engine} ${e.status}`);
    expect(engines(rb)).toEqual(engines(lb));
    expect(norm(rb.files)).toEqual(norm(lb.files));
    expect(files(R)).toEqual(files(L));

    const [ls, rs] = await both(['select', join(L, 'report.json')], ['select', join(R, 'report.json')]);
    expect(shape(rs)).toEqual(shape(ls));
    // The two reports hold different timings, so only their sha256 differs in what the decision names.
    const named = (d: Record<string, unknown>) => norm({ winner: d.winner, rule: d.rule, file: d.file, model: { ...(d.model as object), report: { ...(d.model as { report: object }).report, sha256: undefined } } });
    expect(named(rs)).toEqual(named(ls));
    expect(files(R)).toEqual(files(L));

    const [lp, rp] = await both(['package', '--decision', join(L, 'decision.json'), '--out', join(L, 'artifact')], ['package', '--decision', join(R, 'decision.json'), '--out', join(R, 'artifact')]);
    expect(norm({ ...rp, bytes: undefined })).toEqual(norm({ ...lp, bytes: undefined }));
    expect(files(R)).toEqual(files(L));

    // A rerun finds the model already in the project (same sha256) and uploads nothing.
    const again = await cvopt('check', join(R, 'model.onnx'), '--remote', '--verbose');
    expect(again.code, again.err).toBe(0);
    expect(again.err).toMatch(/same sha256; not uploaded/);
    expect(again.out).toMatch(/runs on every checked target|blocked on/);
  });

  it('train: the same epoch table, result and run files, the checkpoint and dataset uploaded from local paths', { timeout: 180_000 }, async () => {
    const train = (dir: string) => ['train', '--model', pico, '--data', data, '--epochs', '1', '--imgsz', '64', '--batch', '2', '--out', join(dir, 'run')];
    const [l, r] = await Promise.all([cvopt('--json', ...train(L)), cvopt('--json', ...train(R), '--remote', '--project', 'demo')]);
    expect(l.code, l.out + l.err).toBe(0);
    expect(r.code, r.out + r.err).toBe(0);
    const [lt, rt] = [json(l), json(r)];
    expect(shape(rt)).toEqual(shape(lt));
    expect({ task: rt.task, epochs: rt.epochs, names: rt.names }).toEqual({ task: lt.task, epochs: lt.epochs, names: lt.names });
    for (const f of ['best.pt', 'last.pt', 'results.csv']) expect(files(join(R, 'run'))).toContain(f);
    expect(files(join(R, 'run')).filter((f) => !f.startsWith('.'))).toEqual(files(join(L, 'run')).filter((f) => !f.startsWith('.')));
  });

  it('fails alike: an operator no engine runs, and a flag mistake refused before anything is submitted', { timeout: 120_000 }, async () => {
    const odd = join(tmp, 'odd.onnx');
    const m = model({
      nodes: [node('Frobnicate', ['images'], ['output0'], { domain: 'com.example', name: 'frob' })],
      inputs: [valueInfo('images', 1, [1, 3, 8, 8])],
      outputs: [valueInfo('output0', 1, [1, 3, 8, 8])],
      extraOpsets: [{ domain: 'com.example', version: 1 }],
    });
    writeFileSync(odd, encodeModel(m));
    const [l, r] = await Promise.all([cvopt('--json', 'check', odd), cvopt('--json', 'check', odd, '--remote')]);
    expect(l.code).toBe(exitCodeOf('UNSUPPORTED_OPERATOR'));
    expect(r.code).toBe(l.code);
    expect(norm(json(r))).toEqual(norm(json(l)));
    const [lh, rh] = await Promise.all([cvopt('check', odd), cvopt('check', odd, '--remote')]);
    expect(rh.out).toBe(lh.out);

    // The job fails on the server with the code, hint and details the local run fails with (no model.json to be had);
    // the message names the server's copy of the file (model.onnx).
    const [lf, rf] = await Promise.all([
      cvopt('--json', 'quantize', odd, '--data', data, '--out', join(L, 'odd.int8.onnx')),
      cvopt('--json', 'quantize', odd, '--data', data, '--out', join(R, 'odd.int8.onnx'), '--remote'),
    ]);
    expect(lf.code).toBe(exitCodeOf('MANIFEST_INVALID'));
    expect(rf.code).toBe(lf.code);
    const error = (r: Run) => norm({ ...(json(r).error as object), where: undefined, message: undefined });
    expect(error(rf)).toEqual(error(lf));

    const before = (await server.ctx.jobs!.list({})).length;
    const lb = await cvopt('--json', 'bench', odd, '--data', data, '--engines', 'ort-cpu,warp-drive', '--out', join(L, 'x.json'));
    const rb = await cvopt('--json', 'bench', odd, '--data', data, '--engines', 'ort-cpu,warp-drive', '--out', join(R, 'x.json'), '--remote');
    expect(lb.code).toBe(exitCodeOf('INVALID_ARGUMENT'));
    expect(rb.code).toBe(lb.code);
    expect(json(rb)).toEqual(json(lb));
    expect((await server.ctx.jobs!.list({})).length).toBe(before);
  });
});
