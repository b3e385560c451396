import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { makeTarGz, makeZip, type ZipEntrySpec } from './archives.js';
import { startTestServer, type TestServer } from './helpers.js';

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

describe('uploads are hostile until proven otherwise', () => {
  let t: TestServer;
  let projectId: string;
  let good: ZipEntrySpec[];
  const synthDir = mkdtempSync(join(tmpdir(), 'cvopt-synth-'));

  beforeAll(async () => {
    t = await startTestServer('sqlite', { datasetUploadMaxBytes: 2 * 1024 * 1024, archiveMaxEntries: 200, archiveMaxExpandedBytes: 64 * 1024 * 1024, archiveMaxRatio: 50 });
    projectId = (await t.call('POST', '/projects', { token: t.adminToken, json: { name: 'up' } })).body.project.id;
    await synthDetection({ out: synthDir, images: 10, imgsz: 64, seed: 1 });
    good = walk(synthDir).map((f) => ({ name: `shapes/${f}`, data: readFileSync(join(synthDir, f)), deflate: true }));
  });
  afterAll(async () => {
    await t.cleanup();
    rmSync(synthDir, { recursive: true, force: true });
  });

  const upload = (body: Buffer, name: string, type = 'application/zip') => t.call('POST', `/projects/${projectId}/datasets?name=${name}`, { token: t.adminToken, body, type });

  /** Nothing may appear beside the data folder, and no dataset folder may be left behind by a refusal. */
  function assertContained() {
    expect(readdirSync(t.root)).toEqual(['data']);
    expect(existsSync(join(t.dataDir, 'evil.txt'))).toBe(false);
    const kept = new Set(readdirSync(join(t.dataDir, 'datasets')));
    return kept;
  }

  it('accepts a real YOLO dataset as .zip and as .tar.gz, validated like `cvopt dataset check`', async () => {
    const z = await upload(makeZip(good), 'shapes-zip');
    expect(z.status, JSON.stringify(z.body)).toBe(201);
    expect(z.body.dataset).toMatchObject({ task: 'detect', ok: true, images: 10, source: 'upload' });
    expect(z.body.dataset.report.root).toBe('.');
    const tgz = await upload(makeTarGz(good.map((e) => ({ name: e.name, data: e.data! }))), 'shapes-tgz', 'application/gzip');
    expect(tgz.status, JSON.stringify(tgz.body)).toBe(201);
    expect(tgz.body.dataset.images).toBe(10);
  });

  it('lets a server admin register a dataset already on the server, validated, never copied', async () => {
    const r = await t.call('POST', `/projects/${projectId}/datasets/register`, { token: t.adminToken, json: { name: 'on-disk', path: synthDir } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.dataset).toMatchObject({ source: 'path', ok: true, images: 10 });
    const rel = await t.call('POST', `/projects/${projectId}/datasets/register`, { token: t.adminToken, json: { name: 'rel', path: 'relative/dir' } });
    expect(rel.status).toBe(400);
    const gone = await t.call('POST', `/projects/${projectId}/datasets/register`, { token: t.adminToken, json: { name: 'gone', path: '/nonexistent/cvopt' } });
    expect(gone.status).toBe(404);
  });

  it('refuses an invalid dataset with every problem listed, and keeps nothing', async () => {
    const before = assertContained();
    const broken = good.map((e) => (e.name.endsWith('.txt') && e.name.includes('labels/train') ? { ...e, data: Buffer.from('0 0.5 0.5 1.5 0.2\nnot a label\n') } : e));
    const r = await upload(makeZip(broken), 'broken');
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('DATASET_INVALID');
    expect(r.body.error.details.problems.length).toBeGreaterThan(1);
    expect(r.body.error.details.problems[0].file).not.toMatch(/^\//);
    expect(assertContained()).toEqual(before);
  });

  const attacks: [string, () => Buffer, RegExp, string?][] = [
    ['zip ../ traversal', () => makeZip([{ name: '../evil.txt', data: Buffer.from('x') }]), /path traversal/],
    ['zip deep ../ traversal', () => makeZip([{ name: 'a/b/../../../evil.txt', data: Buffer.from('x') }]), /path traversal/],
    ['zip absolute path', () => makeZip([{ name: '/tmp/evil.txt', data: Buffer.from('x') }]), /absolute path/],
    ['zip Windows drive path', () => makeZip([{ name: 'C:\\evil.txt', data: Buffer.from('x') }]), /Windows drive/],
    ['zip backslash traversal', () => makeZip([{ name: '..\\evil.txt', data: Buffer.from('x') }]), /path traversal/],
    ['zip symlink', () => makeZip([{ name: 'link', data: Buffer.from('/etc/passwd'), mode: 0o120777 }]), /symbolic link/],
    ['zip device file', () => makeZip([{ name: 'dev', data: Buffer.alloc(0), mode: 0o020644 }]), /device/],
    ['zip bomb (ratio)', () => makeZip([{ name: 'zeros.bin', data: Buffer.alloc(40 * 1024 * 1024), deflate: true }]), /ratio|expands/],
    ['zip lying about its size', () => makeZip([{ name: 'big.bin', data: Buffer.alloc(200_000, 7), deflate: true, declaredSize: 10 }]), /beyond its declared size/],
    ['zip too many entries', () => makeZip(Array.from({ length: 300 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x') }))), /entries/],
    ['zip duplicate entry', () => makeZip([{ name: 'a.txt', data: Buffer.from('1') }, { name: './a.txt', data: Buffer.from('2') }]), /twice/],
    ['tar ../ traversal', () => makeTarGz([{ name: '../evil.txt', data: Buffer.from('x') }]), /path traversal/],
    ['tar absolute path', () => makeTarGz([{ name: '/etc/evil.txt', data: Buffer.from('x') }]), /absolute path/],
    ['tar symlink', () => makeTarGz([{ name: 'link', type: '2', linkname: '/etc/passwd' }]), /symbolic link/],
    ['tar hard link', () => makeTarGz([{ name: 'hard', type: '1', linkname: '/etc/passwd' }]), /hard link/],
    ['tar device', () => makeTarGz([{ name: 'dev', type: '3' }]), /device/],
    ['tar FIFO', () => makeTarGz([{ name: 'fifo', type: '6' }]), /device or FIFO/],
    ['tar.gz bomb', () => makeTarGz([{ name: 'zeros.bin', data: Buffer.alloc(40 * 1024 * 1024) }]), /ratio|expands/],
  ];
  for (const [name, build, why] of attacks) {
    it(`refuses ${name}, writes nothing outside, keeps serving`, async () => {
      const before = assertContained();
      const r = await upload(build(), `atk-${name.replace(/[^a-z0-9]+/gi, '-')}`);
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.error.code).toBe('ARCHIVE_UNSAFE');
      expect(r.body.error.message).toMatch(why);
      expect(r.body.error.hint).toBeTruthy();
      expect(assertContained()).toEqual(before);
      expect((await t.call('GET', '/health')).status).toBe(200);
    });
  }

  it('refuses a data.yaml that points outside the upload', async () => {
    const files = good.map((e) => (e.name.endsWith('data.yaml') ? { ...e, data: Buffer.from('path: /etc\ntrain: .\nval: .\nnames: [a]\n') } : e));
    const r = await upload(makeZip(files), 'escape');
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('ARCHIVE_UNSAFE');
    expect(r.body.error.message).toMatch(/outside the uploaded dataset/);
  });

  it('refuses an oversized body while streaming (413) and removes the partial file', async () => {
    // Chunked, so no Content-Length tells the server in advance: the count while streaming must catch it.
    const big = Buffer.alloc(3 * 1024 * 1024, 1);
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < big.length; i += 256 * 1024) c.enqueue(big.subarray(i, i + 256 * 1024));
        c.close();
      },
    });
    const res = await fetch(`${t.url}/api/v1/projects/${projectId}/datasets?name=huge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/zip' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    // Declared length over the limit: refused before the first byte.
    const declared = await upload(big, 'huge2');
    expect(declared.status).toBe(413);
    expect(readdirSync(join(t.dataDir, 'uploads'))).toEqual([]);
    expect((await t.call('GET', '/health')).status).toBe(200);
  });

  it('sniffs the type from content, not the name', async () => {
    const png = await upload(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(100)]), 'png-as-zip');
    expect(png.status).toBe(415);
    expect(png.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const model = (body: Buffer, name: string) => t.call('POST', `/projects/${projectId}/models?name=${name}`, { token: t.adminToken, body });
    const zipAsModel = await model(makeZip([{ name: 'a.txt', data: Buffer.from('x') }]), 'zip-as-onnx');
    expect(zipAsModel.status).toBe(415);
    const text = await model(Buffer.from('hello, I am model.onnx'), 'text-as-onnx');
    expect(text.status).toBe(415);
    const fakeProto = await model(Buffer.from([0x08, 0x07, 0x12, 0xff, 0xff, 0xff, 0x01]), 'broken-onnx');
    expect(fakeProto.status).toBe(422);
    expect(fakeProto.body.error.code).toBe('MODEL_INVALID');
    const pickle = await model(Buffer.from([0x80, 0x04, 0x95, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0x01, 0x61, 0x94, 0x2e]), 'weights');
    expect(pickle.status).toBe(201);
    expect(pickle.body.model).toMatchObject({ format: 'pkl', loader: 'safe-unpickler' });
    expect(readdirSync(join(t.dataDir, 'models')).length).toBe(1);
  });

  it('checks an uploaded ONNX model with a real ONNX Runtime session and infers its model.json', async () => {
    const data = testDataDir();
    if (!data) return console.warn('skipped: shared test data (CVOPT_TEST_DATA) not found');
    const r = await t.call('POST', `/projects/${projectId}/models?name=yolov8n-int8`, { token: t.adminToken, body: readFileSync(join(data, 'models/yolov8n_int8.onnx')) });
    expect(r.status, JSON.stringify(r.body).slice(0, 500)).toBe(201);
    expect(r.body.model).toMatchObject({ format: 'onnx', loader: 'onnx' });
    expect(r.body.model.report.check.targets.length).toBeGreaterThan(0);
    expect(r.body.model.report.manifest.written).toBe(true);
    expect(statSync(join(t.dataDir, 'models', r.body.model.id, 'model.json')).size).toBeGreaterThan(10);
  });

  it('lists every upload limit (and no secrets) on GET /limits', async () => {
    const limits = await t.call('GET', '/limits');
    expect(limits.body).toMatchObject({ datasetUploadMaxBytes: 2 * 1024 * 1024, archiveMaxRatio: 50, maxConcurrentUploads: 4 });
    expect(limits.body.databaseUrl).toBeUndefined();
  });
});
