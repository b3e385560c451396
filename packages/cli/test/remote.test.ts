import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, exitCodeOf } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { buildServer, type CvoptServer } from '@cvopt/server';
import { runCli } from './run-cli.js';

/** The CLI client against a real server over real HTTP: login, users, projects, grants, uploads, remote jobs. */
describe('cvopt login / user / project / grant / jobs / --remote', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-remote-'));
  let server: CvoptServer;
  let url: string;
  const saved = { config: process.env.CVOPT_CONFIG_DIR, password: process.env.CVOPT_PASSWORD };
  const as = (password: string) => (process.env.CVOPT_PASSWORD = password);

  beforeAll(async () => {
    server = await buildServer({ config: { dataDir: join(tmp, 'data'), scryptLogN: 10, minPasswordLength: 8 }, log: createLogger('t', { level: 'silent' }) });
    url = (await server.app.listen({ port: 0, host: '127.0.0.1' })).replace(/\/$/, '');
    await server.ctx.identity.createUser('root', 'root-password', true);
    process.env.CVOPT_CONFIG_DIR = join(tmp, 'config');
    await synthDetection({ out: join(tmp, 'shapes'), images: 6, imgsz: 64, seed: 3 });
    execFileSync('tar', ['czf', join(tmp, 'shapes.tar.gz'), '-C', tmp, 'shapes']);
  });
  afterAll(async () => {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
    process.env.CVOPT_CONFIG_DIR = saved.config;
    process.env.CVOPT_PASSWORD = saved.password;
  });

  it('an admin sets up a project for a team; the viewer is refused everything but prediction', async () => {
    as('root-password');
    const login = await runCli('login', url, '--username', 'root');
    expect(login.code, login.err).toBe(0);
    expect(login.out).toMatch(/logged in .* as root \(server admin\)/);
    expect(statSync(join(tmp, 'config', 'credentials.json')).mode & 0o777).toBe(0o600);

    as('eng-password');
    expect((await runCli('user', 'create', 'eng')).code).toBe(0);
    as('vic-password');
    expect((await runCli('user', 'create', 'vic')).code).toBe(0);
    expect((await runCli('project', 'create', 'demo')).out).toMatch(/created project demo/);
    expect((await runCli('grant', 'demo', 'eng', 'engineer')).out).toMatch(/eng is engineer in demo/);
    expect((await runCli('grant', 'demo', 'vic', 'viewer')).out).toMatch(/vic is viewer in demo/);
    const members = await runCli('project', 'members', 'demo');
    expect(members.out).toMatch(/root\s+admin/);
    expect(members.out).toMatch(/vic\s+viewer/);

    const up = await runCli('project', 'upload-dataset', 'demo', 'shapes', join(tmp, 'shapes.tar.gz'));
    expect(up.code, up.err).toBe(0);
    expect(up.out).toMatch(/uploaded dataset shapes .*detect, 6 images/);
    expect((await runCli('project', 'add-preset', 'demo', 'base', 'yolov8p')).code).toBe(0);

    const train = await runCli('train', '--remote', '--project', 'demo', '--model', 'base', '--data', 'shapes', '--epochs', '1', '--imgsz', '64', '--out', join(tmp, 'run'), '--detach', '--json');
    expect(train.code, train.err).toBe(0);
    const jobId = JSON.parse(train.out).job as string;
    const list = await runCli('jobs', 'list', 'demo', '--json');
    expect(JSON.parse(list.out)).toEqual([expect.objectContaining({ id: jobId, kind: 'train', state: 'queued', createdBy: 'root' })]);
    const bad = await runCli('train', '--remote', '--project', 'demo', '--model', 'nope', '--data', 'shapes', '--epochs', '1', '--out', join(tmp, 'run'));
    expect(bad.code).toBe(exitCodeOf('NOT_FOUND'));
    expect(bad.err).toMatch(/no model "nope" in the project/);
    expect((await runCli('jobs', 'cancel', 'demo', jobId)).out).toMatch(/cancelled/);

    // The viewer sees the project, and is refused the rest with the catalogue's exit code.
    as('vic-password');
    expect((await runCli('login', url, '--username', 'vic')).code).toBe(0);
    expect((await runCli('project', 'list')).out).toMatch(/demo\s+\S+\s+viewer/);
    const jobs = await runCli('jobs', 'list', 'demo');
    expect(jobs.code).toBe(exitCodeOf('FORBIDDEN'));
    expect(jobs.err).toMatch(/FORBIDDEN: role "viewer" .* does not allow job:read/);
    const grant = await runCli('grant', 'demo', 'vic', 'admin');
    expect(grant.code).toBe(exitCodeOf('FORBIDDEN'));
    const predict = await runCli('project', 'predict', 'demo', join(tmp, 'shapes/images/train', 'missing.jpg'));
    expect(predict.code).not.toBe(0);

    expect((await runCli('logout')).out).toMatch(/logged out/);
    expect(existsSync(join(tmp, 'config', 'credentials.json'))).toBe(false);
    const after = await runCli('project', 'list');
    expect(after.code).toBe(exitCodeOf('UNAUTHENTICATED'));
    expect(after.err).toMatch(/cvopt login/);
  });

  it('says clearly when the server cannot be reached', async () => {
    as('x-password');
    const r = await runCli('login', 'http://127.0.0.1:1', '--username', 'root');
    expect(r.code).toBe(exitCodeOf('DEPENDENCY_MISSING'));
    expect(r.err).toMatch(/cannot reach the cvopt server/);
  });
});
