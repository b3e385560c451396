import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.js';

const SCRAPE = 'scrape-token-for-prometheus-0123456789';

describe('OpenAPI, metrics, request ids, login throttling', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('sqlite', { loginPerMinute: 3, metricsToken: SCRAPE });
  });
  afterAll(() => t.cleanup());

  it('serves an OpenAPI document with every registered route, its action and schemas', async () => {
    const doc = (await t.call('GET', '/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, { 'x-cvopt-action': string; requestBody?: unknown }>>).flatMap(([p, m]) => Object.entries(m).map(([verb, op]) => ({ p, verb, op })));
    expect(ops.length).toBe(t.server.ctx.table.routes.length);
    const submit = ops.find((o) => o.p === '/api/v1/projects/{projectId}/jobs' && o.verb === 'post')!;
    expect(submit.op['x-cvopt-action']).toBe('job:submit');
    expect(JSON.stringify(submit.op.requestBody)).toContain('"package"');
    expect(ops.every((o) => typeof o.op['x-cvopt-action'] === 'string')).toBe(true);
  });

  it('echoes a sane X-Request-Id or makes one, and puts it in error bodies', async () => {
    const given = await fetch(`${t.url}/api/v1/auth/me`, { headers: { 'x-request-id': 'trace-123' } });
    expect(given.headers.get('x-request-id')).toBe('trace-123');
    expect((await given.json()).requestId).toBe('trace-123');
    const hostile = await fetch(`${t.url}/api/v1/health`, { headers: { 'x-request-id': 'bad id\twith junk' } });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers bad JSON and unknown routes with catalogue errors, not stack traces', async () => {
    const bad = await fetch(`${t.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":' });
    expect(bad.status).toBe(400);
    const body = await bad.json();
    expect(body.error.code).toBe('INVALID_ARGUMENT');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.js:\d+/);
    const none = await t.call('GET', '/nope');
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('NOT_FOUND');
    const field = await t.call('POST', '/projects', { token: t.adminToken, json: { name: 'Bad Name!' } });
    expect(field.status).toBe(400);
    expect(field.body.error.where.field).toBe('name');
  });

  it('throttles logins per client address (429 with Retry-After)', async () => {
    // startTestServer already logged in once from this address this minute.
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) codes.push((await t.call('POST', '/auth/login', { json: { username: 'root', password: 'wrong-password' } })).status);
    expect(codes).toEqual([401, 401, 429]);
    const r = await t.call('POST', '/auth/login', { json: { username: 'root', password: 'root-password-1' } });
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('RATE_LIMITED');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('exposes Prometheus metrics by route and status, to a server admin or the scrape token only', async () => {
    const text = (await t.call('GET', '/metrics', { token: SCRAPE })).body as string;
    expect(text).toMatch(/cvopt_server_http_requests_total\{route="\/api\/v1\/auth\/login",method="POST",status="429"\} 2/);
    expect(text).toMatch(/cvopt_server_logins_total\{outcome="refused"\}/);
    expect(text).toMatch(/cvopt_server_max_concurrent_uploads 4/);
    const admin = await t.call('GET', '/metrics', { token: t.adminToken });
    expect(admin.status).toBe(200);
    expect(admin.headers.get('content-type')).toMatch(/^text\/plain/);
    for (const token of [undefined, SCRAPE.slice(0, -1), `${SCRAPE}x`, 'x']) {
      const r = await t.call('GET', '/metrics', token === undefined ? {} : { token });
      expect(r.status, String(token)).toBe(401);
      expect(r.body.error.code).toBe('UNAUTHENTICATED');
    }
    const mona = await t.server.ctx.identity.createUser('mona', 'mona-password', false);
    const user = await t.call('GET', '/metrics', { token: (await t.server.ctx.identity.createApiToken(mona, 'm', ['read'], 1)).bearer });
    expect(user.status).toBe(403);
    // The scrape token opens nothing else, and never shows on /limits; liveness stays open.
    expect((await t.call('GET', '/auth/me', { token: SCRAPE })).status).toBe(401);
    expect(JSON.stringify((await t.call('GET', '/limits')).body)).not.toContain(SCRAPE);
    expect((await t.call('GET', '/health')).status).toBe(200);
  });

  it('refuses a scrape token too short to be a secret at start', async () => {
    const { buildServer } = await import('../src/index.js');
    await expect(buildServer({ config: { dataDir: t.dataDir, metricsToken: 'short' }, jobs: false })).rejects.toMatchObject({ code: 'INVALID_CONFIG', where: { field: 'metricsToken' } });
  });
});

describe('uploads in flight are capped', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('sqlite', { maxConcurrentUploads: 1 });
  });
  afterAll(() => t.cleanup());

  it('answers 429 QUEUE_FULL with Retry-After while the slot is taken, then takes uploads again', async () => {
    const projectId = (await t.call('POST', '/projects', { token: t.adminToken, json: { name: 'cap' } })).body.project.id;
    let finish!: () => void;
    const held = new Promise<void>((r) => (finish = r));
    const slow = new ReadableStream({
      async start(c) {
        c.enqueue(new Uint8Array([0x50, 0x4b, 0x03, 0x04]));
        await held;
        c.close();
      },
    });
    const first = fetch(`${t.url}/api/v1/projects/${projectId}/models?name=slow`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/octet-stream' },
      body: slow,
      duplex: 'half',
    } as RequestInit);
    // Wait until the server has taken the slot.
    for (let i = 0; i < 100 && t.server.ctx.uploadsInFlight.n === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const second = await t.call('POST', `/projects/${projectId}/models?name=second`, { token: t.adminToken, body: Buffer.from([0x80, 0x02, 0x4e, 0x2e]) });
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe('QUEUE_FULL');
    expect(second.headers.get('retry-after')).toBe('5');
    finish();
    expect((await first).status).toBe(415); // a zip that is not a PyTorch file
    const third = await t.call('POST', `/projects/${projectId}/models?name=third`, { token: t.adminToken, body: Buffer.from([0x80, 0x02, 0x4e, 0x2e]) });
    expect(third.status).toBe(201);
  });
});
