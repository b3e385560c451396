import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CheckPayloadSchema, testDataDir, type JobHandler } from '@cvopt/core';
import { openBackend, runWorker, type JobBackend, type RunningWorker } from '@cvopt/jobs';
import { checkOnnx } from '@cvopt/onnx';
import { DIALECTS, PG_URL, startTestServer, type TestServer } from './helpers.js';

/** A real light handler: `cvopt check` on the model, the report written where the server said. */
const checkHandler: JobHandler<z.infer<typeof CheckPayloadSchema>, { blocked: boolean; nodes: number }> = {
  kind: 'check',
  queue: 'inference',
  summary: 'operator report',
  payload: CheckPayloadSchema,
  result: z.object({ blocked: z.boolean(), nodes: z.number() }),
  async run(p, ctx) {
    ctx.progress({ stage: 'check', step: 0, total: 1 });
    ctx.log('info', `checking ${p.model}`);
    const report = await checkOnnx(p.model, { session: false });
    if (p.out) {
      mkdirSync(dirname(p.out), { recursive: true });
      writeFileSync(p.out, JSON.stringify(report));
    }
    ctx.progress({ stage: 'check', step: 1, total: 1 });
    return { blocked: report.blocked, nodes: report.nodes };
  },
};

interface Sse {
  id: number;
  event: string;
  data: { type: string; data: { state?: string } };
}

async function readSse(url: string, token: string, lastEventId?: number): Promise<Sse[]> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}) } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const text = await res.text(); // the server ends the stream after the terminal state
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('id:'))
    .map((b) => {
      const f = Object.fromEntries(b.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      return { id: Number(f.id), event: f.event!, data: JSON.parse(f.data!) };
    });
}

for (const dialect of DIALECTS) describe(`jobs through the server, run by a real worker on the same database (${dialect})`, () => {
  let t: TestServer;
  let backend: JobBackend;
  let worker: RunningWorker;
  let projectId: string;
  let modelId: string;
  const data = testDataDir();

  beforeAll(async () => {
    t = await startTestServer(dialect);
    // The worker is a separate job-system client on the same database, as `cvopt worker` would be.
    backend = await openBackend({ database: dialect === 'sqlite' ? { file: join(t.dataDir, 'cvopt.db') } : { url: PG_URL, schema: t.pgSchema }, queue: 'embedded', pollMs: 50 });
    worker = runWorker({
      backend,
      handlers: new Map([['check', checkHandler]]),
      queues: ['inference'],
      workdirRoot: join(t.root, 'work'),
      gpu: { host: 'gpu-box-1', budgetMb: 8192, maxSlots: 2, probe: false },
      onLog: () => {},
    });
    projectId = (await t.call('POST', '/projects', { token: t.adminToken, json: { name: 'jobs' } })).body.project.id;
    if (data) modelId = (await t.call('POST', `/projects/${projectId}/models?name=v8`, { token: t.adminToken, body: readFileSync(join(data, 'models/yolov8n_int8.onnx')) })).body.model.id;
  });
  afterAll(async () => {
    await worker?.close();
    await backend?.close();
    await t.cleanup();
  });

  it('submit → events over SSE (resumable) → result → artifacts', async () => {
    if (!data) return console.warn('skipped: shared test data (CVOPT_TEST_DATA) not found');
    const sub = await t.call('POST', `/projects/${projectId}/jobs`, { token: t.adminToken, json: { kind: 'check', model: modelId } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(202);
    const job = sub.body.job;
    expect(job).toMatchObject({ kind: 'check', queue: 'inference', state: 'queued', createdBy: 'root' });
    const url = `${t.url}/api/v1/projects/${projectId}/jobs/${job.id}/events`;
    const events = await readSse(url, t.adminToken);
    const ids = events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['state', 'progress', 'log', 'result']));
    expect(events.at(-1)!.data.data.state).toBe('succeeded');
    // Resume after the second event: only the later ones come back.
    const resumed = await readSse(url, t.adminToken, ids[1]);
    expect(resumed.map((e) => e.id)).toEqual(ids.slice(2));

    const done = await t.call('GET', `/projects/${projectId}/jobs/${job.id}`, { token: t.adminToken });
    expect(done.body.job).toMatchObject({ state: 'succeeded', result: { blocked: expect.any(Boolean), nodes: expect.any(Number) } });
    expect(done.body.job.result.nodes).toBeGreaterThan(100);
    const logs = await t.call('GET', `/projects/${projectId}/jobs/${job.id}/logs`, { token: t.adminToken });
    expect(logs.body.logs.some((l: { message: string }) => /checking/.test(l.message))).toBe(true);
    const files = await t.call('GET', `/projects/${projectId}/jobs/${job.id}/artifacts`, { token: t.adminToken });
    expect(files.body.files).toEqual([expect.objectContaining({ path: 'check.json' })]);
    const dl = await fetch(`${t.url}/api/v1/projects/${projectId}/jobs/${job.id}/artifacts/check.json`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    expect(dl.status).toBe(200);
    expect((await dl.json()).nodes).toBe(done.body.job.result.nodes);
    const escape = await t.call('GET', `/projects/${projectId}/jobs/${job.id}/artifacts/..%2F..%2Fcvopt.db`, { token: t.adminToken });
    expect(escape.status).toBe(404);
    const cancelDone = await t.call('POST', `/projects/${projectId}/jobs/${job.id}/cancel`, { token: t.adminToken });
    expect(cancelDone.status).toBe(409);
    // A later job reads this one's output by id.
    const sel = await t.call('POST', `/projects/${projectId}/jobs`, { token: t.adminToken, json: { kind: 'select', fromJob: job.id } });
    expect(sel.status).toBe(409);
    expect(sel.body.error.message).toMatch(/fromJob names a succeeded bench job/);
  });

  it("shows every worker machine's GPU slots and VRAM as the controllers published them", async () => {
    let machines: { host: string; maxSlots: number; devices: { budgetMb: number }[] }[] = [];
    for (let i = 0; i < 50 && !machines.length; i++) {
      machines = (await t.call('GET', '/gpus', { token: t.adminToken })).body.machines;
      if (!machines.length) await new Promise((r) => setTimeout(r, 100));
    }
    expect(machines).toEqual([expect.objectContaining({ host: 'gpu-box-1', maxSlots: 2, devices: [expect.objectContaining({ budgetMb: 8192 })] })]);
    expect((await t.call('GET', '/gpus')).status).toBe(401);
  });

  it('validates options like the CLI, resolves resources by id, cancels a queued job', async () => {
    const bad = await t.call('POST', `/projects/${projectId}/jobs`, { token: t.adminToken, json: { kind: 'train', model: 'yolov8n', dataset: 'dsnope', imgsz: 100 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.where.field).toBe('imgsz');
    const missing = await t.call('POST', `/projects/${projectId}/jobs`, { token: t.adminToken, json: { kind: 'train', model: 'yolov8n', dataset: 'dsnope' } });
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toMatch(/dataset dsnope not found/);
    const unknown = await t.call('POST', `/projects/${projectId}/jobs`, { token: t.adminToken, json: { kind: 'mine-bitcoin' } });
    expect(unknown.status).toBe(400);
    // A training job with nobody serving the training queue stays queued until cancelled.
    const ds = await t.server.ctx.repo.createDataset({ id: 'dsq', projectId, name: 'q', source: 'path', path: t.dataDir, task: 'detect', sizeBytes: 0, report: {}, createdBy: 'x', createdAt: new Date().toISOString() });
    const train = await t.call('POST', `/projects/${projectId}/jobs`, { token: t.adminToken, json: { kind: 'train', model: 'yolov8p', dataset: ds.id, epochs: 1, imgsz: 64 } });
    expect(train.status).toBe(202);
    expect(train.body.job.payload).toMatchObject({ model: 'yolov8p', data: t.dataDir, epochs: 1, imgsz: 64, device: 'cpu' });
    const list = await t.call('GET', `/projects/${projectId}/jobs?kind=train`, { token: t.adminToken });
    expect(list.body.jobs.map((j: { id: string }) => j.id)).toContain(train.body.job.id);
    const c = await t.call('POST', `/projects/${projectId}/jobs/${train.body.job.id}/cancel`, { token: t.adminToken });
    expect(c.body.job.state).toBe('cancelled');
  });

  // The runtime does not touch the database: once is enough.
  if (dialect === 'sqlite') it("serves a project's prediction endpoint from its deployed ONNX model (runtime embedded)", async () => {
    if (!data) return console.warn('skipped: shared test data (CVOPT_TEST_DATA) not found');
    const none = await t.call('POST', `/projects/${projectId}/predict`, { token: t.adminToken, body: Buffer.from('x'), type: 'image/jpeg' });
    expect(none.status).toBe(503);
    expect(none.body.error.code).toBe('NOT_READY');
    const dep = await t.call('PUT', `/projects/${projectId}/deployment`, { token: t.adminToken, json: { modelId } });
    expect(dep.status, JSON.stringify(dep.body)).toBe(200);
    const img = readFileSync(join(data, 'coco128-val/images/val2017/000000000139.jpg'));
    const p = await t.call('POST', `/projects/${projectId}/predict`, { token: t.adminToken, body: img, type: 'image/jpeg' });
    expect(p.status, JSON.stringify(p.body).slice(0, 300)).toBe(200);
    expect(p.body.detections.length).toBeGreaterThan(0);
    expect(p.body.detections[0]).toHaveProperty('box');
    const corrupt = await t.call('POST', `/projects/${projectId}/predict`, { token: t.adminToken, body: Buffer.from('not a jpeg at all'), type: 'image/jpeg' });
    expect(corrupt.status).toBe(400);
    // A burst beyond what the deployment can answer within its SLO: the embedded runtime refuses some (429 with
    // Retry-After) through inject, whose stand-in socket cannot be paced — that once killed the whole server.
    const burst = await Promise.all(Array.from({ length: 40 }, () => t.call('POST', `/projects/${projectId}/predict`, { token: t.adminToken, body: img, type: 'image/jpeg' })));
    const statuses = burst.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 429), statuses.join(',')).toBe(true);
    expect(statuses).toContain(429);
    await new Promise((r) => setTimeout(r, 50));
    expect((await t.call('GET', '/health')).status).toBe(200);
    expect((await t.call('POST', `/projects/${projectId}/predict`, { token: t.adminToken, body: img, type: 'image/jpeg' })).status).toBe(200);
    // A body without a declared length (chunked) is read here under the limit, then predicted as any other.
    const chunked = await fetch(`${t.url}/api/v1/projects/${projectId}/predict`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'image/jpeg' },
      body: new Blob([img]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status, await chunked.clone().text()).toBe(200);
    expect(((await chunked.json()) as { detections: unknown[] }).detections.length).toBeGreaterThan(0);
    // A declared length above the limit is refused from the headers: the answer comes though no body is sent.
    const { request } = await import('node:http');
    const big = await new Promise<number>((res, rej) => {
      const r = request(`${t.url}/api/v1/projects/${projectId}/predict`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'image/jpeg', 'content-length': String(21 * 2 ** 20) } }, (a) => res(a.statusCode ?? 0));
      r.on('error', rej);
      r.flushHeaders();
    });
    expect(big).toBe(413);
  });
});
