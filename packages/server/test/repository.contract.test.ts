import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDriver, openRepository, type Repository } from '../src/index.js';
import { DIALECTS, PG_URL } from './helpers.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';


/** One contract, every database: the same calls must give the same answers on SQLite and PostgreSQL. */
for (const dialect of DIALECTS) {
  describe(`repository contract on ${dialect}`, () => {
    let repo: Repository;
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-repo-'));
    const schema = `srvrepo_${process.pid}_${Date.now().toString(36)}`;
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

    beforeAll(async () => {
      const driver = await openDriver(dialect === 'sqlite' ? { dataDir: dir } : { dataDir: dir, databaseUrl: PG_URL, pgSchema: schema });
      repo = await openRepository(driver);
    });
    afterAll(async () => {
      await repo.close();
      rmSync(dir, { recursive: true, force: true });
      if (dialect === 'postgres') {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      }
    });

    const user = (id: string, username: string) => ({ id, username, passwordHash: 'scrypt$x', isAdmin: false, disabled: false, failedLogins: 0, createdAt: at(0) });

    it('migrations are recorded and run once', async () => {
      expect(repo.dialect).toBe(dialect);
      expect(await repo.migrate()).toEqual([]);
    });

    it('users: create, find, unique names, update, atomic failed-login count and lock', async () => {
      await repo.createUser(user('u1', 'ann'));
      await repo.createUser(user('u2', 'bob'));
      await expect(repo.createUser(user('u3', 'ann'))).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await repo.countUsers()).toBe(2);
      expect((await repo.userByName('ann'))?.id).toBe('u1');
      expect(await repo.userById('nope')).toBeUndefined();
      expect((await repo.updateUser('u2', { isAdmin: true, disabled: true }))).toMatchObject({ isAdmin: true, disabled: true });
      await Promise.all([1, 2, 3].map(() => repo.recordFailedLogin('u1', 3, at(99))));
      expect(await repo.userById('u1')).toMatchObject({ failedLogins: 3, lockedUntil: at(99) });
      expect(await repo.updateUser('u1', { failedLogins: 0, lockedUntil: undefined })).toMatchObject({ failedLogins: 0 });
      expect((await repo.userById('u1'))!.lockedUntil).toBeUndefined();
      expect((await repo.listUsers()).map((u) => u.username)).toEqual(['ann', 'bob']);
    });

    it('tokens: create, read, list api tokens only, revoke once, revoke all', async () => {
      const base = { userId: 'u1', secretHash: 'ab', scopes: ['read' as const], createdAt: at(1), expiresAt: at(1000) };
      await repo.createToken({ id: 't1', kind: 'api', name: 'a', ...base });
      await repo.createToken({ id: 't2', kind: 'session', name: 'login', ...base });
      expect(await repo.tokenById('t1')).toMatchObject({ kind: 'api', scopes: ['read'] });
      expect((await repo.listTokens('u1')).map((t) => t.id)).toEqual(['t1']);
      expect(await repo.revokeToken('t1', at(5))).toBe(true);
      expect(await repo.revokeToken('t1', at(6))).toBe(false);
      expect((await repo.tokenById('t1'))!.revokedAt).toBe(at(5));
      expect(await repo.tokenWithUser('t2')).toMatchObject({ token: { id: 't2', kind: 'session', createdAt: at(1) }, user: { id: 'u1', username: 'ann', createdAt: at(0) } });
      expect(await repo.tokenWithUser('nope')).toBeUndefined();
      expect(await repo.revokeUserTokens('u1', at(7))).toBe(1);
    });

    it('projects and members: creator becomes admin atomically, roles upsert, scoping by user', async () => {
      await repo.createProject({ id: 'p1', name: 'alpha', description: '', createdBy: 'u1', createdAt: at(2) });
      await repo.createProject({ id: 'p2', name: 'beta', description: 'b', createdBy: 'u2', createdAt: at(3) });
      await expect(repo.createProject({ id: 'p3', name: 'alpha', description: '', createdBy: 'u1', createdAt: at(4) })).rejects.toMatchObject({ code: 'CONFLICT' });
      // the failed create left no member row behind
      expect((await repo.listMembers('p3')).length).toBe(0);
      expect(await repo.member('p1', 'u1')).toMatchObject({ role: 'admin', username: 'ann' });
      await repo.setMember({ projectId: 'p1', userId: 'u2', role: 'viewer', grantedBy: 'u1', grantedAt: at(5) });
      await repo.setMember({ projectId: 'p1', userId: 'u2', role: 'engineer', grantedBy: 'u1', grantedAt: at(6) });
      expect((await repo.listMembers('p1')).map((m) => `${m.username}:${m.role}`)).toEqual(['ann:admin', 'bob:engineer']);
      expect((await repo.listProjects('u1')).map((p) => p.name)).toEqual(['alpha']);
      expect((await repo.listProjects('u2')).map((p) => `${p.name}:${p.role}`)).toEqual(['alpha:engineer', 'beta:admin']);
      expect(await repo.projectAccess('p1', 'u2')).toMatchObject({ project: { name: 'alpha' }, role: 'engineer' });
      expect((await repo.projectAccess('p2', 'u1'))!.role).toBeUndefined();
      expect(await repo.projectAccess('nope', 'u1')).toBeUndefined();
      expect((await repo.listProjects()).length).toBe(2);
      await repo.setDeployment('p1', { source: { modelId: 'm1' }, target: '/x/model.onnx', setBy: 'ann', setAt: at(7) });
      expect((await repo.projectById('p1'))!.deployment).toMatchObject({ source: { modelId: 'm1' } });
      expect(await repo.removeMember('p1', 'u2')).toBe(true);
      expect(await repo.member('p1', 'u2')).toBeUndefined();
    });

    it('datasets and models are scoped by project', async () => {
      const d = { id: 'd1', projectId: 'p1', name: 'ds', source: 'upload' as const, path: '/d', task: 'detect' as const, sizeBytes: 5, report: { ok: true, n: [1, 2] }, createdBy: 'u1', createdAt: at(8) };
      await repo.createDataset(d);
      await expect(repo.createDataset({ ...d, id: 'd2' })).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await repo.dataset('p1', 'd1')).toEqual(d);
      expect(await repo.dataset('p2', 'd1')).toBeUndefined();
      expect((await repo.listDatasets('p2')).length).toBe(0);
      const m = { id: 'm1', projectId: 'p1', name: 'm', format: 'preset' as const, preset: 'yolov8n', sizeBytes: 0, loader: 'preset' as const, report: {}, createdBy: 'u1', createdAt: at(9) };
      await repo.createModel(m);
      expect(await repo.resourceIds()).toEqual({ datasets: ['d1'], models: ['m1'] });
      expect(await repo.model('p1', 'm1')).toEqual(m);
      expect(await repo.model('p2', 'm1')).toBeUndefined();
      expect(await repo.deleteModel('p2', 'm1')).toBe(false);
      expect(await repo.deleteModel('p1', 'm1')).toBe(true);
      expect(await repo.deleteDataset('p1', 'd1')).toBe(true);
    });

    it('audit: newest first, per project, paged', async () => {
      for (let i = 0; i < 5; i++) {
        await repo.appendAudit({ at: at(10 + i), userId: 'u1', username: 'ann', projectId: i % 2 ? 'p2' : 'p1', action: 'x', method: 'POST', path: `/p/${i}`, status: 200, outcome: 'ok', requestId: `r${i}` });
      }
      const all = await repo.listAudit({ limit: 10 });
      expect(all.map((e) => e.requestId)).toEqual(['r4', 'r3', 'r2', 'r1', 'r0']);
      const p1 = await repo.listAudit({ projectId: 'p1', limit: 2 });
      expect(p1.map((e) => e.requestId)).toEqual(['r4', 'r2']);
      expect((await repo.listAudit({ projectId: 'p1', limit: 5, beforeId: p1[1]!.id })).map((e) => e.requestId)).toEqual(['r0']);
    });

    it('settings set, read, delete; deleting a project cascades to its members', async () => {
      await repo.setSetting('k', 'v1');
      await repo.setSetting('k', 'v2');
      expect(await repo.getSetting('k')).toBe('v2');
      await repo.setSetting('k', undefined);
      expect(await repo.getSetting('k')).toBeUndefined();
      expect(await repo.deleteProject('p2')).toBe(true);
      expect(await repo.listMembers('p2')).toEqual([]);
    });
  });
}
