import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers.js';
import { RemoteClient } from '../src/remote/client.js';
import { remotePackage, remoteRuns } from '../src/tui/remote.js';

/**
 * The dashboard connected to a real cvopt server (SQLite, real HTTP): it lists the jobs of the projects the user
 * holds a role in, hides nothing it should show and shows nothing a viewer may not see, and offers packaging to
 * project admins only.
 */

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'packages/cli/dist/main.js');
// The server runs in this process: the CLI child must be awaited, never run synchronously (that would block the
// server it talks to).
const run = async (args: string[], env: NodeJS.ProcessEnv) => (await promisify(execFile)(process.execPath, [cli, ...args], { encoding: 'utf8', env, timeout: 60_000 })).stdout;

describe('cvopt tui --remote against a real server', () => {
  let t: TestServer;
  let config: string;
  let projectId: string;
  beforeAll(async () => {
    t = await startTestServer('sqlite');
    const made = await t.call('POST', '/projects', { token: t.adminToken, json: { name: 'vision' } });
    projectId = made.body.project.id;
    const job = await t.call('POST', `/projects/${projectId}/jobs`, { token: t.adminToken, json: { kind: 'check', model: 'yolov8n' } });
    expect(job.status).toBe(202);
    config = mkdtempSync(join(tmpdir(), 'cvopt-tui-remote-'));
    writeFileSync(join(config, 'credentials.json'), JSON.stringify({ url: t.url, token: t.adminToken, username: 'root', expiresAt: new Date(Date.now() + 3600e3).toISOString() }), { mode: 0o600 });
  }, 60_000);
  afterAll(async () => {
    await t?.cleanup();
    if (config) rmSync(config, { recursive: true, force: true });
  });

  it('lists the server’s jobs beside the folder’s runs (plain snapshot through the real CLI)', async () => {
    const work = mkdtempSync(join(tmpdir(), 'cvopt-tui-empty-'));
    const out = await run(['tui', work, '--remote'], { ...process.env, CVOPT_CONFIG_DIR: config });
    expect(out).toContain(t.url);
    expect(out).toMatch(/job:check\s+vision\/check \S+\s+queued/);
    rmSync(work, { recursive: true, force: true });
  });

  it('offers packaging to project admins only, and only for a finished model job', async () => {
    const runs = await remoteRuns(new RemoteClient(t.url, t.adminToken));
    const check = runs.find((r) => r.jobKind === 'check')!;
    expect(check).toMatchObject({ projectName: 'vision', role: 'admin', state: 'queued' });
    expect(await remotePackage(new RemoteClient(t.url, t.adminToken), check, runs)).toMatch(/finished train, tune or export job/);
    expect(await remotePackage(new RemoteClient(t.url, t.adminToken), { ...check, role: 'engineer' }, runs)).toMatch(/needs the admin role in vision \(you are engineer\)/);
  });

  it('a dead server is a status line, not a crash', async () => {
    writeFileSync(join(config, 'credentials.json'), JSON.stringify({ url: 'http://127.0.0.1:9', token: 'x', username: 'root', expiresAt: '2099-01-01T00:00:00Z' }));
    const work = mkdtempSync(join(tmpdir(), 'cvopt-tui-empty-'));
    const out = await run(['tui', work, '--remote'], { ...process.env, CVOPT_CONFIG_DIR: config });
    expect(out).toMatch(/server: cannot reach the cvopt server/);
    rmSync(work, { recursive: true, force: true });
  });
});
