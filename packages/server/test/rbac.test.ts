import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@cvopt/core';
import { ACTIONS, buildServer, roleAllows, type Action, type ProjectRole } from '../src/index.js';
import { addRoute } from '../src/http/route.js';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * Every route the server registered (read from the server itself) × every kind of caller. A refusal must be
 * exactly the right one: 401 without valid credentials, 404 for a project the caller has no role in, 403 for
 * a role or scope that does not allow the action. An allowed caller must never get any of those refusals.
 */
type Caller =
  | { kind: 'anonymous' }
  | { kind: 'expired' }
  | { kind: 'revoked' }
  | { kind: 'server-admin' }
  | { kind: 'scraper' }
  | { kind: 'role'; role: ProjectRole; user: string }
  | { kind: 'outsider'; user: string };

const SCRAPE = 'rbac-scrape-token-0123456789abcdef';

const CALLERS: Caller[] = [
  { kind: 'anonymous' },
  { kind: 'expired' },
  { kind: 'revoked' },
  { kind: 'server-admin' },
  { kind: 'scraper' },
  { kind: 'role', role: 'admin', user: 'pam' },
  { kind: 'role', role: 'engineer', user: 'ed' },
  { kind: 'role', role: 'viewer', user: 'vic' },
  { kind: 'outsider', user: 'otto' },
];

function expected(c: Caller, action: Action): 'ok' | 401 | 403 | 404 {
  const spec = ACTIONS[action];
  if (spec.who === 'public') return 'ok';
  // The scrape token (CVOPT_METRICS_TOKEN) opens the routes that accept it, and is no credential anywhere else.
  if (c.kind === 'scraper') return 'scrapeToken' in spec && spec.scrapeToken ? 'ok' : 401;
  if (c.kind === 'anonymous' || c.kind === 'expired' || c.kind === 'revoked') return 401;
  if (spec.who === 'user') return 'ok';
  if (spec.who === 'server-admin') return c.kind === 'server-admin' ? 'ok' : 403;
  if (c.kind === 'server-admin') return 'ok';
  if (c.kind === 'outsider') return 404;
  if (!roleAllows(c.role, action)) return 403;
  return 'serverAdminToo' in spec && spec.serverAdminToo ? 403 : 'ok';
}

describe('RBAC: every registered route × every caller', () => {
  let t: TestServer;
  const ids: Record<string, string> = {};
  let now = Date.now();

  beforeAll(async () => {
    t = await startTestServer('sqlite', { metricsToken: SCRAPE }, { now: () => new Date(now) });
    const { repo, identity, jobs } = t.server.ctx;
    for (const u of ['pam', 'ed', 'vic', 'otto', 'victim']) await identity.createUser(u, `${u}-password`, false);
    const pam = (await repo.userByName('pam'))!;
    const project = (await t.call('POST', '/projects', { token: await t.login('pam', 'pam-password'), json: { name: 'alpha' } })).body.project;
    const other = (await t.call('POST', '/projects', { token: await t.login('otto', 'otto-password'), json: { name: 'beta' } })).body.project;
    ids.projectId = project.id;
    ids.otherProjectId = other.id;
    for (const [u, role] of [['ed', 'engineer'], ['vic', 'viewer'], ['victim', 'viewer']] as const) {
      expect((await t.call('PUT', `/projects/${project.id}/members/${u}`, { token: await t.login('pam', 'pam-password'), json: { role } })).status).toBe(200);
    }
    const model = await repo.createModel({ id: 'mdlrbac', projectId: project.id, name: 'm', format: 'preset', preset: 'yolov8n', sizeBytes: 0, loader: 'preset', report: {}, createdBy: pam.id, createdAt: new Date().toISOString() });
    ids.modelId = model.id;
    const ds = await repo.createDataset({ id: 'dsrbac', projectId: project.id, name: 'd', source: 'path', path: '/nonexistent', task: 'detect', sizeBytes: 0, report: { ok: true }, createdBy: pam.id, createdAt: new Date().toISOString() });
    ids.datasetId = ds.id;
    const job = await jobs!.submit('check', { kind: 'check', model: '/nonexistent.onnx', out: `${t.dataDir}/runs/runrbac/check.json` }, { projectId: project.id, createdBy: 'pam' });
    ids.jobId = job.id;
  });
  afterAll(() => t.cleanup());

  async function tokenFor(c: Caller): Promise<string | undefined> {
    const { repo, identity } = t.server.ctx;
    switch (c.kind) {
      case 'anonymous':
        return undefined;
      case 'scraper':
        return SCRAPE;
      case 'server-admin':
        return (await identity.createApiToken((await repo.userByName('root'))!, 'rbac', ['read', 'write', 'predict'], 1)).bearer;
      case 'expired': {
        const saved = now;
        now -= 2 * 86_400_000;
        const b = (await identity.createApiToken((await repo.userByName('pam'))!, 'old', ['read', 'write', 'predict'], 1)).bearer;
        now = saved;
        return b;
      }
      case 'revoked': {
        const { bearer, token } = await identity.createApiToken((await repo.userByName('pam'))!, 'gone', ['read', 'write', 'predict'], 1);
        await repo.revokeToken(token.id, new Date().toISOString());
        return bearer;
      }
      default:
        return (await identity.createApiToken((await repo.userByName(c.user))!, 'rbac', ['read', 'write', 'predict'], 1)).bearer;
    }
  }

  function urlFor(template: string, projectId: string): string {
    return template
      .replace('/api/v1', '')
      .replace(':projectId', projectId)
      .replace(':datasetId', ids.datasetId!)
      .replace(':modelId', ids.modelId!)
      .replace(':jobId', ids.jobId!)
      .replace(':tokenId', 'tokNOPE')
      .replace(':username', 'victim')
      .replace('*', 'nothing.txt');
  }

  it('refuses an unguarded route at build time', async () => {
    await expect(
      buildServer({
        config: { dataDir: t.dataDir, scryptLogN: 10 },
        jobs: false,
        log: createLogger('t', { level: 'silent' }),
        extraPlugins: [(app) => app.get('/rogue', async () => 'open')],
      }),
    ).rejects.toThrow(/declares no permission/);
    // …and a declared route with an action outside the permission table.
    await expect(
      buildServer({
        config: { dataDir: t.dataDir, scryptLogN: 10 },
        jobs: false,
        log: createLogger('t', { level: 'silent' }),
        extraPlugins: [(app, ctx) => addRoute(app, ctx, { method: 'GET', url: '/rogue2', action: 'root-access' as Action, summary: 'x', handler: async () => 'open' })],
      }),
    ).rejects.toThrow(/declares no permission/);
  });

  it('answers every route for every caller exactly as the permission table says', async () => {
    const routes = t.server.ctx.table.routes;
    expect(routes.length).toBeGreaterThan(30);
    // Metrics are not public: a server admin or the scrape token (checked below like every other route).
    expect(routes.find((r) => r.url === '/api/v1/metrics')?.action).toBe('server:metrics');
    // Destructive routes last, so they do not pull resources from under the others.
    const order = (r: { method: string; url: string }) => (r.url.endsWith('/logout') ? 2 : r.method === 'DELETE' && r.url.endsWith(':projectId') ? 3 : r.method === 'DELETE' ? 1 : 0);
    const sorted = [...routes].sort((a, b) => order(a) - order(b));
    const failures: string[] = [];
    let checked = 0;
    for (const r of sorted) {
      for (const c of CALLERS) {
        const want = expected(c, r.action);
        let projectId = ids.projectId!;
        if (r.method === 'DELETE' && r.url.endsWith('/projects/:projectId') && want === 'ok') {
          // Each allowed deleter gets its own project, where it holds the same role.
          const name = `del-${checked}`;
          const p = (await t.call('POST', '/projects', { token: await t.login('pam', 'pam-password'), json: { name } })).body.project;
          if (c.kind === 'role' && c.user !== 'pam') await t.call('PUT', `/projects/${p.id}/members/${c.user}`, { token: await t.login('pam', 'pam-password'), json: { role: c.role } });
          projectId = p.id;
        }
        const token = await tokenFor(c);
        const url = `${t.url}/api/v1${urlFor(r.url, projectId)}`;
        const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
        let body: string | undefined;
        if (r.method !== 'GET' && r.method !== 'DELETE') {
          if (r.def.rawBody) {
            headers['content-type'] = r.def.rawBody.contentTypes[0]!;
            body = 'not really a file';
          } else {
            headers['content-type'] = 'application/json';
            body = '{}';
          }
        }
        const ac = new AbortController();
        const res = await fetch(url, { method: r.method, headers, ...(body !== undefined ? { body } : {}), signal: ac.signal });
        const text = r.def.sse && res.status === 200 ? '' : await res.text();
        ac.abort();
        const err = (() => {
          try {
            return JSON.parse(text).error as { code: string; message: string } | undefined;
          } catch {
            return undefined;
          }
        })();
        const rbac404 = res.status === 404 && /^project \S+ not found$/.test(err?.message ?? '');
        const label = `${r.method} ${r.url} as ${c.kind}${'role' in c ? `:${c.role}` : ''}`;
        if (want === 'ok') {
          if (res.status === 401 || res.status === 403 || rbac404 || res.status >= 500 && res.status !== 503) failures.push(`${label}: allowed but got ${res.status} ${text.slice(0, 160)}`);
        } else if (want === 404) {
          if (!rbac404) failures.push(`${label}: want 404 project-not-found, got ${res.status} ${text.slice(0, 160)}`);
        } else if (res.status !== want) failures.push(`${label}: want ${want}, got ${res.status} ${text.slice(0, 160)}`);
        checked++;
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBe(routes.length * CALLERS.length);
  });

  it('ids of another project answer 404 even to its own resources by id', async () => {
    const ed = await t.login('ed', 'ed-password');
    const r = await t.call('GET', `/projects/${ids.otherProjectId}/datasets`, { token: ed });
    expect(r.status).toBe(404);
    const otto = await t.login('otto', 'otto-password');
    // otto is admin of beta, but alpha's model id through beta's URL is not there either.
    const cross = await t.call('GET', `/projects/${ids.otherProjectId}/models/${ids.modelId}`, { token: otto });
    expect(cross.status).toBe(404);
    expect(cross.body.error.message).toMatch(/model .* not found in this project/);
    const crossJob = await t.call('GET', `/projects/${ids.otherProjectId}/jobs/${ids.jobId}`, { token: otto });
    expect(crossJob.status).toBe(404);
  });

  it('the audit log records refusals and changes, readable by project admins only', async () => {
    const pam = await t.login('pam', 'pam-password');
    const log = await t.call('GET', `/projects/${ids.projectId}/audit?limit=500`, { token: pam });
    expect(log.status).toBe(200);
    const entries = log.body.entries as { action: string; outcome: string; username?: string; status: number }[];
    expect(entries.some((e) => e.outcome === 'denied' && e.username === 'vic')).toBe(true);
    expect(entries.some((e) => e.action === 'project:members' && e.outcome === 'ok' && e.username === 'pam')).toBe(true);
    expect((await t.call('GET', `/projects/${ids.projectId}/audit`, { token: await t.login('ed', 'ed-password') })).status).toBe(403);
  });
});
