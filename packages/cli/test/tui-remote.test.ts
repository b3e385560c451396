import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { RemoteClient } from '../src/remote/client.js';
import { remotePackage, remoteRuns } from '../src/tui/remote.js';

/**
 * A real `cvopt server` process (SQLite, its embedded worker running the platform's handlers) and the dashboard
 * connected to it: a submitted job runs without any other process, the dashboard lists it with its state, offers
 * packaging to project admins only, and a dead server is a status line.
 */

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'packages/cli/dist/main.js');
const data = testDataDir(root);
const run = async (args: string[], env: NodeJS.ProcessEnv) => (await promisify(execFile)(process.execPath, [cli, ...args], { encoding: 'utf8', env, timeout: 60_000 })).stdout;

describe.skipIf(!data)('cvopt server with its embedded worker, and cvopt tui --remote', () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;
  let token: string;
  let projectId: string;
  const api = async (method: string, path: string, body?: unknown, raw?: Buffer) => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : raw ? { 'content-type': 'application/octet-stream' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : raw ? { body: raw } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cvopt-tui-remote-'));
    server = spawn(process.execPath, [cli, '--json', 'server', '--port', '0', '--data-dir', join(dir, 'data')], {
      env: { ...process.env, CVOPT_ADMIN_PASSWORD: 'admin-password-1', CVOPT_DATABASE_URL: '', CVOPT_REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    url = await new Promise<string>((resolve, reject) => {
      server.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /"url": "([^"]+)"/.exec(out);
        if (m) resolve(m[1]!);
      });
      server.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
    });
    token = (await api('POST', '/auth/login', { username: 'admin', password: 'admin-password-1' })).body.token;
    projectId = (await api('POST', '/projects', { name: 'vision' })).body.project.id;
  }, 60_000);
  afterAll(async () => {
    server?.kill('SIGTERM');
    await new Promise((r) => server?.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a submitted job with no other process, and the dashboard lists it', async () => {
    const model = await api('POST', `/projects/${projectId}/models?name=v8`, undefined, readFileSync(join(data!, 'models/yolov8n_int8.onnx')));
    expect(model.status).toBe(201);
    const job = await api('POST', `/projects/${projectId}/jobs`, { kind: 'check', model: model.body.model.id });
    expect(job.status).toBe(202);
    let state = 'queued';
    for (let i = 0; i < 300 && !['succeeded', 'failed', 'cancelled'].includes(state); i++) {
      await new Promise((r) => setTimeout(r, 200));
      state = (await api('GET', `/projects/${projectId}/jobs/${job.body.job.id}`)).body.job.state;
    }
    expect(state).toBe('succeeded');

    writeFileSync(join(dir, 'credentials.json'), JSON.stringify({ url, token, username: 'admin', expiresAt: '2099-01-01T00:00:00Z' }), { mode: 0o600 });
    const work = mkdtempSync(join(tmpdir(), 'cvopt-tui-empty-'));
    const snapshot = await run(['tui', work, '--remote'], { ...process.env, CVOPT_CONFIG_DIR: dir });
    expect(snapshot).toContain(url);
    expect(snapshot).toMatch(/job:check\s+vision\/check \S+\s+finished/);
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('packages an uploaded model through the job system (server → embedded worker → the package handler)', async () => {
    const models = (await api('GET', `/projects/${projectId}/models`)).body.models as { id: string }[];
    const job = await api('POST', `/projects/${projectId}/jobs`, { kind: 'package', model: models[0]!.id, engine: 'ort-cpu-int8' });
    expect(job.status).toBe(202);
    let view: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (let i = 0; i < 600 && !['succeeded', 'failed', 'cancelled'].includes(view.state); i++) {
      await new Promise((r) => setTimeout(r, 200));
      view = (await api('GET', `/projects/${projectId}/jobs/${job.body.job.id}`)).body.job;
    }
    expect(view.error ?? null).toBeNull();
    expect(view.state).toBe('succeeded');
    expect(view.result).toMatchObject({ engine: 'ort-cpu-int8', tarball: expect.stringMatching(/\.tar\.gz$/) });
  }, 180_000);

  it('offers packaging to project admins only, and only for a finished model job', async () => {
    const client = new RemoteClient(url, token);
    const runs = await remoteRuns(client);
    const check = runs.find((r) => r.jobKind === 'check')!;
    expect(check).toMatchObject({ projectName: 'vision', role: 'admin', state: 'finished' });
    expect(await remotePackage(client, check, runs)).toMatch(/finished export job/);
    expect(await remotePackage(client, { ...check, role: 'engineer' }, runs)).toMatch(/needs the admin role in vision \(you are engineer\)/);
  });

  it('a dead server is a status line, not a crash', async () => {
    const cfg = mkdtempSync(join(tmpdir(), 'cvopt-tui-cfg-'));
    writeFileSync(join(cfg, 'credentials.json'), JSON.stringify({ url: 'http://127.0.0.1:9', token: 'x', username: 'admin', expiresAt: '2099-01-01T00:00:00Z' }));
    const out = await run(['tui', cfg, '--remote'], { ...process.env, CVOPT_CONFIG_DIR: cfg });
    expect(out).toMatch(/server: cannot reach the cvopt server/);
    rmSync(cfg, { recursive: true, force: true });
  });
});
