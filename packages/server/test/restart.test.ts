import { rmSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthDetection } from '@cvopt/datasets';
import { makeZip } from './archives.js';
import { DIALECTS, startTestServer, type TestServer } from './helpers.js';

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

const synthDir = mkdtempSync(join(tmpdir(), 'cvopt-synth-restart-'));
let archive: Buffer;
beforeAll(async () => {
  await synthDetection({ out: synthDir, images: 6, imgsz: 64, seed: 2 });
  archive = makeZip(walk(synthDir).map((f) => ({ name: f, data: readFileSync(join(synthDir, f)), deflate: true })));
});
afterAll(() => rmSync(synthDir, { recursive: true, force: true }));

for (const dialect of DIALECTS) {
  describe(`restart on ${dialect}: everything is still there`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer(dialect);
    });
    afterAll(() => t.cleanup());

    it('users, tokens, projects, grants, datasets, models, jobs and audit survive a restart', async () => {
      const admin = t.adminToken;
      expect((await t.call('POST', '/users', { token: admin, json: { username: 'eve', password: 'eve-password' } })).status).toBe(201);
      const project = (await t.call('POST', '/projects', { token: admin, json: { name: 'keep', description: 'survives' } })).body.project;
      expect((await t.call('PUT', `/projects/${project.id}/members/eve`, { token: admin, json: { role: 'engineer' } })).status).toBe(200);
      const ds = await t.call('POST', `/projects/${project.id}/datasets?name=shapes`, { token: admin, body: archive, type: 'application/zip' });
      expect(ds.status, JSON.stringify(ds.body)).toBe(201);
      const model = await t.call('POST', `/projects/${project.id}/models/preset`, { token: admin, json: { name: 'base', preset: 'yolov8p' } });
      expect(model.status).toBe(201);
      const job = await t.call('POST', `/projects/${project.id}/jobs`, { token: admin, json: { kind: 'train', model: model.body.model.id, dataset: ds.body.dataset.id, epochs: 1, imgsz: 64 } });
      expect(job.status, JSON.stringify(job.body)).toBe(202);
      const apiToken = (await t.call('POST', '/tokens', { token: admin, json: { name: 'keep' } })).body.token;

      await t.restart();

      expect((await t.call('GET', '/auth/me', { token: apiToken })).status).toBe(200);
      expect((await t.call('GET', '/auth/me', { token: admin })).status).toBe(200);
      const eve = await t.login('eve', 'eve-password');
      const projects = (await t.call('GET', '/projects', { token: eve })).body.projects;
      expect(projects).toEqual([expect.objectContaining({ id: project.id, name: 'keep', description: 'survives', role: 'engineer' })]);
      const dss = (await t.call('GET', `/projects/${project.id}/datasets`, { token: eve })).body.datasets;
      expect(dss).toEqual([expect.objectContaining({ id: ds.body.dataset.id, ok: true, images: 6 })]);
      const one = (await t.call('GET', `/projects/${project.id}/datasets/${ds.body.dataset.id}`, { token: eve })).body.dataset;
      expect(one.report.ok).toBe(true);
      const models = (await t.call('GET', `/projects/${project.id}/models`, { token: eve })).body.models;
      expect(models).toEqual([expect.objectContaining({ id: model.body.model.id, preset: 'yolov8p' })]);
      const jobs = (await t.call('GET', `/projects/${project.id}/jobs`, { token: eve })).body.jobs;
      expect(jobs).toEqual([expect.objectContaining({ id: job.body.job.id, kind: 'train', state: 'queued' })]);
      const events = await t.server.ctx.jobs!.events(job.body.job.id);
      expect(events.length).toBeGreaterThan(0);
      const audit = (await t.call('GET', `/projects/${project.id}/audit`, { token: admin })).body.entries;
      expect(audit.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['project:members', 'dataset:write', 'model:write', 'job:submit']));
      // and the restarted server still takes new work
      expect((await t.call('POST', `/projects/${project.id}/jobs/${job.body.job.id}/cancel`, { token: admin })).body.job.state).toBe('cancelled');
    });
  });
}
