import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createLogger } from '@cvopt/core';
import { buildServer, type BuildOptions, type CvoptServer, type ServerConfigInput } from '../src/index.js';

/** Real PostgreSQL on this machine: db `test`; every test server gets its own schema, dropped at cleanup. */
export const PG_URL = process.env.CVOPT_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export type Dialect = 'sqlite' | 'postgres';
export const DIALECTS: readonly Dialect[] = ['sqlite', 'postgres'];

/** Cheap scrypt and short passwords keep the tests fast; every other limit is the default unless a test sets it. */
export const TEST_LIMITS: Partial<ServerConfigInput> = { scryptLogN: 10, minPasswordLength: 8 };
export const ADMIN = { username: 'root', password: 'root-password-1' };

let counter = 0;

export interface TestServer {
  url: string;
  server: CvoptServer;
  dataDir: string;
  /** The private folder that holds dataDir and nothing else. */
  root: string;
  /** PostgreSQL: the schema this server's tables live in. */
  pgSchema: string;
  dialect: Dialect;
  /** Close and build again on the same data (restart). */
  restart(): Promise<void>;
  /** Close, drop the schema, remove the data folder. */
  cleanup(): Promise<void>;
  /** A server admin's bearer token. */
  adminToken: string;
  call(method: string, path: string, opts?: { token?: string; json?: unknown; body?: Buffer | string; type?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  login(username: string, password: string): Promise<string>;
}

export async function startTestServer(dialect: Dialect, config: Partial<ServerConfigInput> = {}, extra: Partial<BuildOptions> = {}): Promise<TestServer> {
  // The data folder sits alone in a private parent, so a test can prove nothing was written beside it.
  const root = mkdtempSync(join(tmpdir(), 'cvopt-server-test-'));
  const dataDir = join(root, 'data');
  const schema = `srv_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const full: ServerConfigInput = { dataDir, port: 0, ...TEST_LIMITS, ...config, ...(dialect === 'postgres' ? { databaseUrl: PG_URL, pgSchema: schema } : {}) };
  const log = createLogger('cvopt-server-test', { level: process.env.CVOPT_TEST_LOG ?? 'silent' });
  let server = await buildServer({ config: full, log, ...extra });
  let url = await server.app.listen({ port: 0, host: '127.0.0.1' });
  if ((await server.ctx.repo.countUsers()) === 0) await server.ctx.identity.createUser(ADMIN.username, ADMIN.password, true);

  const t: TestServer = {
    get url() {
      return url;
    },
    get server() {
      return server;
    },
    dataDir,
    root,
    pgSchema: schema,
    dialect,
    adminToken: '',
    async restart() {
      await server.close();
      server = await buildServer({ config: full, log, ...extra });
      url = await server.app.listen({ port: 0, host: '127.0.0.1' });
    },
    async cleanup() {
      await server.close().catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
      if (dialect === 'postgres') {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      }
    },
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let body: string | Buffer | undefined;
      if (o.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(o.json);
      } else if (o.body !== undefined) {
        headers['content-type'] = o.type ?? 'application/octet-stream';
        body = o.body;
      }
      const res = await fetch(`${url}/api/v1${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async login(username, password) {
      const r = await t.call('POST', '/auth/login', { json: { username, password } });
      if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.token as string;
    },
  };
  t.adminToken = await t.login(ADMIN.username, ADMIN.password);
  return t;
}
