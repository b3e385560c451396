import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@cvopt/core';
import { hashPassword, verifyPassword } from '../src/index.js';
import { DIALECTS, startTestServer, type TestServer } from './helpers.js';

describe('identity over real HTTP (SQLite)', () => {
  let t: TestServer;
  let clock = Date.now();
  beforeAll(async () => {
    t = await startTestServer('sqlite', { lockoutAfter: 3, loginPerMinute: 1000 }, { now: () => new Date(clock) });
  });
  afterAll(() => t.cleanup());

  it('stores scrypt hashes and checks them', async () => {
    const h = await hashPassword('correct horse', { N: 1024, r: 8, p: 1 });
    expect(h).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('wrong horse', h)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });

  it('logs in, answers whoami, logs out (the token dies)', async () => {
    const me = await t.call('GET', '/auth/me', { token: t.adminToken });
    expect(me.status).toBe(200);
    expect(me.body.user).toMatchObject({ username: 'root', isAdmin: true });
    expect(me.body.user.passwordHash).toBeUndefined();
    const token = await t.login('root', 'root-password-1');
    expect((await t.call('POST', '/auth/logout', { token })).status).toBe(200);
    const after = await t.call('GET', '/auth/me', { token });
    expect(after.status).toBe(401);
    expect(after.body.error.message).toMatch(/revoked/);
    const none = await t.call('GET', '/auth/me');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHENTICATED');
    expect((await t.call('GET', '/auth/me', { token: 'cvopt_tokAAAA_' + 'x'.repeat(40) })).status).toBe(401);
  });

  it('locks an account after repeated failures, even for the right password, until the time passes', async () => {
    expect((await t.call('POST', '/users', { token: t.adminToken, json: { username: 'lucy', password: 'lucy-password' } })).status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const r = await t.call('POST', '/auth/login', { json: { username: 'lucy', password: 'nope-nope' } });
      expect(r.status).toBe(401);
      expect(r.body.error.message).toBe('wrong username or password');
    }
    // Locked: refused even with the right password, and answered exactly like a wrong one (no 429, no Retry-After).
    const locked = await t.call('POST', '/auth/login', { json: { username: 'lucy', password: 'lucy-password' } });
    expect(locked.status).toBe(401);
    expect(locked.body.error.message).toBe('wrong username or password');
    expect(locked.headers.get('retry-after')).toBeNull();
    // An unknown user is refused the same way as a wrong password.
    const ghost = await t.call('POST', '/auth/login', { json: { username: 'ghost', password: 'whatever1' } });
    expect(ghost.status).toBe(401);
    expect(ghost.body.error.message).toBe('wrong username or password');
    clock += 16 * 60_000;
    expect((await t.call('POST', '/auth/login', { json: { username: 'lucy', password: 'lucy-password' } })).status).toBe(200);
  });

  it('API tokens: shown once, listed without secret, scoped, revocable, expiring', async () => {
    const created = await t.call('POST', '/tokens', { token: t.adminToken, json: { name: 'ci', scopes: ['read'], expiresInDays: 1 } });
    expect(created.status).toBe(201);
    const bearer = created.body.token as string;
    expect(bearer).toMatch(/^cvopt_tok[A-Za-z0-9]+_/);
    const list = await t.call('GET', '/tokens', { token: t.adminToken });
    // The secret is all after the id's underscore: base64url, so it may hold '_' itself (split('_')[2] could be '').
    const secret = bearer.slice(bearer.indexOf('_', 'cvopt_'.length) + 1);
    expect(secret.length).toBeGreaterThanOrEqual(40);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(list.body.tokens.map((x: { name: string }) => x.name)).toContain('ci');
    // read scope: can list projects, cannot create one
    expect((await t.call('GET', '/projects', { token: bearer })).status).toBe(200);
    const refused = await t.call('POST', '/projects', { token: bearer, json: { name: 'nope' } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/scopes/);
    // too long a life is refused
    expect((await t.call('POST', '/tokens', { token: t.adminToken, json: { name: 'x', expiresInDays: 5000 } })).status).toBe(400);
    // expiry: move the clock past a day
    clock += 2 * 86_400_000;
    const expired = await t.call('GET', '/projects', { token: bearer });
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toMatch(/expired/);
    const fresh = await t.login('root', 'root-password-1');
    const t2 = (await t.call('POST', '/tokens', { token: fresh, json: { name: 'ci2' } })).body;
    expect((await t.call('DELETE', `/tokens/${t2.id}`, { token: fresh })).status).toBe(200);
    expect((await t.call('GET', '/projects', { token: t2.token })).status).toBe(401);
  });
});

/**
 * A caller must not learn which accounts exist or are locked: an unknown user, a wrong password and a locked
 * account (even with the right password) get byte-identical answers but for the request id, after the same
 * scrypt work. The lock-out still holds, and the audit log says the truth to server admins.
 */
describe.each(DIALECTS)('login refusals are indistinguishable (%s)', (dialect) => {
  let t: TestServer;
  let clock = Date.now();
  const N = 5;
  beforeAll(async () => {
    // A real scrypt cost (2^14, 16 MiB) so the KDF dominates the answer time, as in production (2^15).
    t = await startTestServer(dialect, { lockoutAfter: 3, loginPerMinute: 1000, scryptLogN: 14 }, { now: () => new Date(clock) });
  });
  afterAll(() => t.cleanup());

  const attempt = async (username: string, password: string) => {
    const started = process.hrtime.bigint();
    const res = await fetch(`${t.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
    const text = await res.text();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const requestId = res.headers.get('x-request-id') ?? '';
    return { status: res.status, text: text.replace(requestId, '<request-id>'), retryAfter: res.headers.get('retry-after'), length: res.headers.get('content-length'), ms };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  it('answers an unknown user, a wrong password and a locked account alike; the lock still holds', async () => {
    const { identity } = t.server.ctx;
    await identity.createUser('lou', 'lou-password-1', false);
    for (let i = 0; i < N; i++) await identity.createUser(`kim${i}`, 'kim-password-1', false);
    for (let i = 0; i < 3; i++) expect((await attempt('lou', 'not-lous-password')).status).toBe(401);

    const unknown = [];
    const wrong = [];
    const locked = [];
    // Interleaved, so load on the machine falls on all three alike; each kim fails once (never locked).
    for (let i = 0; i < N; i++) {
      unknown.push(await attempt(`nobody${i}`, 'some-password-1'));
      wrong.push(await attempt(`kim${i}`, 'not-kims-password'));
      locked.push(await attempt('lou', 'lou-password-1'));
    }
    const all = [...unknown, ...wrong, ...locked];
    expect(new Set(all.map((a) => a.status))).toEqual(new Set([401]));
    expect(new Set(all.map((a) => a.text)).size).toBe(1);
    expect(new Set(all.map((a) => a.length)).size).toBe(1);
    expect(all.every((a) => a.retryAfter === null)).toBe(true);
    expect(JSON.parse(all[0]!.text)).toMatchObject({ error: { code: 'UNAUTHENTICATED', message: 'wrong username or password' }, requestId: '<request-id>' });

    // Every path runs the KDF: no kind of refusal comes back an order of magnitude sooner than another.
    const medians = { unknown: median(unknown.map((a) => a.ms)), wrong: median(wrong.map((a) => a.ms)), locked: median(locked.map((a) => a.ms)) };
    const values = Object.values(medians);
    expect(Math.max(...values) / Math.min(...values), JSON.stringify(medians)).toBeLessThan(10);

    // The lock is real: lou is locked in the store, and gets in once it has passed.
    expect((await t.server.ctx.repo.userByName('lou'))!.lockedUntil).toBeDefined();
    clock += 16 * 60_000;
    expect((await attempt('lou', 'lou-password-1')).status).toBe(200);

    // The audit log, for server admins, says which refusal was which.
    const audit = await t.call('GET', '/audit?limit=100', { token: t.adminToken });
    const details = (audit.body.entries as { path: string; detail?: string }[]).filter((e) => e.path === '/api/v1/auth/login').map((e) => e.detail ?? '');
    expect(details.some((d) => /locked until/.test(d) && d.includes('"lou"'))).toBe(true);
    expect(details.some((d) => d === 'no user "nobody0"')).toBe(true);
    expect(details.some((d) => d.startsWith('wrong password for "kim0"'))).toBe(true);
  });
});

describe('first start', () => {
  it('prints a one-time setup token when no admin password is given; it works once', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { startServer } = await import('../src/index.js');
    const dataDir = mkdtempSync(join(tmpdir(), 'cvopt-setup-'));
    const s = await startServer({ config: { dataDir, port: 0, scryptLogN: 10, minPasswordLength: 8 }, env: {}, log: createLogger('t', { level: 'silent' }) });
    try {
      expect(s.setupToken).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      const post = (body: unknown) => fetch(`${s.url}/api/v1/setup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect((await post({ token: 'wrong', username: 'boss', password: 'boss-password' })).status).toBe(401);
      expect((await post({ token: s.setupToken, username: 'boss', password: 'boss-password' })).status).toBe(201);
      expect((await post({ token: s.setupToken, username: 'boss2', password: 'boss-password' })).status).toBe(401);
      const login = await fetch(`${s.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'boss', password: 'boss-password' }) });
      expect(login.status).toBe(200);
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('creates the admin from CVOPT_ADMIN_PASSWORD', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { startServer } = await import('../src/index.js');
    const dataDir = mkdtempSync(join(tmpdir(), 'cvopt-setup-'));
    const s = await startServer({ config: { dataDir, port: 0, scryptLogN: 10, minPasswordLength: 8 }, env: { CVOPT_ADMIN_PASSWORD: 'from-the-env' }, log: createLogger('t', { level: 'silent' }) });
    try {
      expect(s.setupToken).toBeUndefined();
      expect(s.admin).toBe('admin');
      const login = await fetch(`${s.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'from-the-env' }) });
      expect(login.status).toBe(200);
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
