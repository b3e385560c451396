import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CheckPayloadSchema, testDataDir, type JobHandler } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { openBackend, runWorker, type JobBackend, type RunningWorker } from '@cvopt/jobs';
import { checkOnnx } from '@cvopt/onnx';
import { makeZip } from './archives.js';
import { DIALECTS, PG_URL, startTestServer, type TestServer } from './helpers.js';

/**
 * Deleting a project takes everything of it: its jobs are cancelled and their rows go, then its datasets, models,
 * job outputs and deployment leave the disk — only inside the data dir, never through a link, and nothing of
 * another project. What a crash leaves behind is swept at the next start.
 */
const check: JobHandler<z.infer<typeof CheckPayloadSchema>, { nodes: number }> = {
  kind: 'check',
  queue: 'inference',
  summary: 'operator report (a real, light job)',
  payload: CheckPayloadSchema,
  result: z.object({ nodes: z.number() }),
  async run(p) {
    const report = await checkOnnx(p.model, { session: false });
    mkdirSync(dirname(p.out!), { recursive: true });
    writeFileSync(p.out!, JSON.stringify(report));
    return { nodes: report.nodes };
  },
};

/** A bench that writes into its run folder, then runs until it is cancelled. */
const stopped = new Set<string>();
const holdingBench: JobHandler<{ out: string }, object> = {
  kind: 'bench',
  queue: 'inference',
  summary: 'holds its slot until cancelled',
  payload: z.object({ out: z.string() }).passthrough(),
  result: z.object({}),
  async run(p, ctx) {
    mkdirSync(dirname(p.out), { recursive: true });
    writeFileSync(join(dirname(p.out), 'partial.json'), '{}');
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    stopped.add(p.out);
    throw ctx.signal.reason;
  },
};

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

const data = testDataDir();
const synthDir = mkdtempSync(join(tmpdir(), 'cvopt-synth-delete-'));
let archive: Buffer;
beforeAll(async () => {
  await synthDetection({ out: synthDir, images: 6, imgsz: 64, seed: 3 });
  archive = makeZip(walk(synthDir).map((f) => ({ name: f, data: readFileSync(join(synthDir, f)), deflate: true })));
});
afterAll(() => rmSync(synthDir, { recursive: true, force: true }));

for (const dialect of DIALECTS) {
  describe.skipIf(!data)(`deleting a project removes its jobs, rows and files (${dialect})`, () => {
    let t: TestServer;
    let backend: JobBackend;
    let worker: RunningWorker;
    const onnx = () => readFileSync(join(data!, 'models/yolov8n_int8.onnx'));

    beforeAll(async () => {
      t = await startTestServer(dialect);
      backend = await openBackend({ database: dialect === 'sqlite' ? { file: join(t.dataDir, 'cvopt.db') } : { url: PG_URL, schema: t.pgSchema }, queue: 'embedded', pollMs: 50 });
      worker = runWorker({
        backend,
        handlers: new Map<string, JobHandler<never, unknown>>([
          ['check', check as JobHandler<never, unknown>],
          ['bench', holdingBench as JobHandler<never, unknown>],
        ]),
        queues: ['inference'],
        workdirRoot: join(t.root, 'work'),
        heartbeatMs: 200,
        leaseMs: 2000,
        gpu: { host: 'cpu-box', budgetMb: 1024, maxSlots: 1, probe: false },
        onLog: () => {},
      });
    });
    afterAll(async () => {
      await worker?.close();
      await backend?.close();
      await t?.cleanup();
    });

    const job = async (projectId: string, jobId: string) => (await t.call('GET', `/projects/${projectId}/jobs/${jobId}`, { token: t.adminToken })).body.job;
    const until = async (what: string, ok: () => Promise<boolean> | boolean) => {
      for (let i = 0; i < 600; i++) {
        if (await ok()) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${what}`);
    };

    /** A project with a dataset, an ONNX model and a finished light job. */
    async function populated(name: string) {
      const token = t.adminToken;
      const project = (await t.call('POST', '/projects', { token, json: { name } })).body.project;
      const ds = await t.call('POST', `/projects/${project.id}/datasets?name=shapes`, { token, body: archive, type: 'application/zip' });
      expect(ds.status, JSON.stringify(ds.body)).toBe(201);
      const model = await t.call('POST', `/projects/${project.id}/models?name=v8`, { token, body: onnx() });
      expect(model.status, JSON.stringify(model.body)).toBe(201);
      const sub = await t.call('POST', `/projects/${project.id}/jobs`, { token, json: { kind: 'check', model: model.body.model.id } });
      expect(sub.status, JSON.stringify(sub.body)).toBe(202);
      await until('the check job', async () => (await job(project.id, sub.body.job.id)).state === 'succeeded');
      // runs/<run>: a train job's out is the folder itself, the others' a file in it.
      const runOf = (j: { payload: { out: string } }) => relative(t.dataDir, j.payload.out).split('/').slice(0, 2).join('/');
      return { id: project.id as string, dataset: `datasets/${ds.body.dataset.id}`, model: `models/${model.body.model.id}`, modelId: model.body.model.id as string, checkRun: runOf(sub.body.job), runOf };
    }

    it('cancels its queued and running jobs, deletes their rows, removes its files and nothing else', async () => {
      const token = t.adminToken;
      const kept = await populated('kept');
      const doomed = await populated('doomed');
      // Deployed, so its prediction runtime is loaded from the model folder.
      expect((await t.call('PUT', `/projects/${doomed.id}/deployment`, { token, json: { modelId: doomed.modelId } })).status).toBe(200);
      // A running job (it has written into its run folder) and a queued one (no worker here runs train).
      const ds = (await t.call('GET', `/projects/${doomed.id}/datasets`, { token })).body.datasets[0].id;
      const benchSub = await t.call('POST', `/projects/${doomed.id}/jobs`, { token, json: { kind: 'bench', model: doomed.modelId, dataset: ds } });
      expect(benchSub.status, JSON.stringify(benchSub.body)).toBe(202);
      const bench = benchSub.body.job;
      await until('the bench job to run and write', async () => (await job(doomed.id, bench.id)).state === 'running' && existsSync(join(t.dataDir, doomed.runOf(bench), 'partial.json')));
      const train = (await t.call('POST', `/projects/${doomed.id}/jobs`, { token, json: { kind: 'train', model: 'yolov8p', dataset: ds, epochs: 1, imgsz: 64 } })).body.job;
      // A link inside the model folder to a file outside the data dir: removing the folder must not follow it.
      const outside = join(t.root, 'outside');
      mkdirSync(outside);
      writeFileSync(join(outside, 'precious.txt'), 'keep me');
      symlinkSync(outside, join(t.dataDir, doomed.model, 'escape'));

      const doomedFiles = [doomed.dataset, doomed.model, doomed.checkRun, doomed.runOf(bench), doomed.runOf(train)];
      for (const f of doomedFiles) expect(existsSync(join(t.dataDir, f)), f).toBe(true);

      const del = await t.call('DELETE', `/projects/${doomed.id}`, { token });
      expect(del.status, JSON.stringify(del.body)).toBe(200);
      expect(del.body).toMatchObject({ deleted: doomed.id, cancelledJobs: 2, deletedJobs: 3 });
      for (const f of doomedFiles) expect(existsSync(join(t.dataDir, f)), `${f} is still there`).toBe(false);
      expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('keep me');
      // The running job was stopped, and no row of the project is left.
      await until('the bench handler to stop', () => stopped.has(bench.payload.out));
      for (const id of [bench.id, train.id]) expect(await backend.store.get(id)).toBeUndefined();
      expect((await t.call('GET', `/projects/${doomed.id}`, { token })).status).toBe(404);
      expect(await t.server.ctx.repo.listDatasets(doomed.id)).toEqual([]);
      expect(await t.server.ctx.repo.listModels(doomed.id)).toEqual([]);

      // The other project is untouched and still works.
      for (const f of [kept.dataset, kept.model, kept.checkRun]) expect(existsSync(join(t.dataDir, f)), f).toBe(true);
      expect((await t.call('GET', `/projects/${kept.id}/datasets`, { token })).body.datasets.length).toBe(1);
      const again = await t.call('POST', `/projects/${kept.id}/jobs`, { token, json: { kind: 'check', model: kept.modelId } });
      await until('a job of the other project', async () => (await job(kept.id, again.body.job.id)).state === 'succeeded');
    });

    it('at start, removes what no row names (a crash between rows and files) and keeps the rest', async () => {
      const outside = join(t.root, 'outside2');
      mkdirSync(outside);
      writeFileSync(join(outside, 'precious.txt'), 'keep me');
      const orphans = ['datasets/dsORPHAN', 'models/mdlORPHAN', 'runs/runORPHAN', 'uploads/dsHALF.part'];
      for (const o of orphans) {
        mkdirSync(dirname(join(t.dataDir, o)), { recursive: true });
        if (o.endsWith('.part')) writeFileSync(join(t.dataDir, o), 'half an upload');
        else {
          mkdirSync(join(t.dataDir, o));
          writeFileSync(join(t.dataDir, o, 'file'), 'x');
        }
      }
      symlinkSync(outside, join(t.dataDir, 'datasets', 'dsLINK'));
      const before = ['datasets', 'models', 'runs'].flatMap((d) => readdirSync(join(t.dataDir, d)).map((n) => `${d}/${n}`));
      await t.restart();
      for (const o of [...orphans, 'datasets/dsLINK']) expect(existsSync(join(t.dataDir, o)), `${o} survived`).toBe(false);
      expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('keep me');
      const kept = before.filter((p) => !orphans.includes(p) && p !== 'datasets/dsLINK');
      expect(kept.length).toBeGreaterThanOrEqual(4); // the kept project's dataset, model and two runs
      for (const p of kept) expect(existsSync(join(t.dataDir, p)), `${p} was removed`).toBe(true);
      // …and they still work after the restart.
      const token = await t.login('root', 'root-password-1');
      const projects = (await t.call('GET', '/projects', { token })).body.projects;
      expect(projects.map((p: { name: string }) => p.name)).toEqual(['kept']);
      expect((await t.call('GET', `/projects/${projects[0].id}/datasets`, { token })).body.datasets[0].ok).toBe(true);
    });
  });
}
