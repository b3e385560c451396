#!/usr/bin/env node
// Load test of the control plane (`cvopt server`): N concurrent users with a realistic mix of calls against the
// real server process (and a real worker running the light jobs), on SQLite and on PostgreSQL. Prints p50/p95/p99
// per route, errors and 5xx counts. Targets: zero 5xx; metadata routes p95 ≤ 50 ms.
//
//   node bench/api-load.mjs [--users 100] [--seconds 30] [--ramp-s 10] [--db sqlite,postgres] [--think-ms 250-750] [--seed 1] [--no-predict]
//
// Users start spread over the first --ramp-s seconds (each signs in first), then loop: one call of the mix, a
// think time, until --seconds have passed since the start.
//
// Needs a build (npx tsc -b) and the shared test data (the YOLOv8n the prediction route serves).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { Rng, testDataDir } from '../packages/core/dist/index.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'packages/cli/dist/main.js');
const PG_URL = process.env.CVOPT_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function args(argv) {
  const o = { users: 100, seconds: 30, ramp: 10, db: 'sqlite,postgres', think: [250, 750], seed: 1, predict: true };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--users') o.users = Number(v);
    else if (k === '--seconds') o.seconds = Number(v);
    else if (k === '--ramp-s') o.ramp = Number(v);
    else if (k === '--db') o.db = v;
    else if (k === '--think-ms') o.think = v.split('-').map(Number);
    else if (k === '--seed') o.seed = Number(v);
    else if (k === '--no-predict') {
      o.predict = false;
      i--;
    }
    else {
      console.error(`unknown flag ${k}`);
      process.exit(2);
    }
  }
  return o;
}

/** Start `cvopt <args…> --json` and resolve with its first stdout JSON document. */
function startCli(cliArgs, env) {
  const child = spawn(process.execPath, [CLI, ...cliArgs, '--json'], { env: { ...process.env, CVOPT_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  return new Promise((res, rej) => {
    child.stdout.on('data', (d) => {
      out += d;
      try {
        res({ child, info: JSON.parse(out) });
      } catch {
        /* not complete yet */
      }
    });
    child.once('exit', (code) => rej(new Error(`cvopt ${cliArgs[0]} exited ${code}: ${err}`)));
  });
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

async function run(db, o) {
  const dataDir = mkdtempSync(join(tmpdir(), 'cvopt-api-load-'));
  const env = { CVOPT_ADMIN_PASSWORD: 'load-admin-password' };
  let dbName;
  if (db === 'postgres') {
    dbName = `cvopt_apiload_${process.pid}`;
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`CREATE DATABASE ${dbName}`);
    await c.end();
    const u = new URL(PG_URL);
    u.pathname = `/${dbName}`;
    env.CVOPT_DATABASE_URL = u.toString();
  }
  // Login throttling is per client address and every simulated user shares 127.0.0.1: lift it for the test.
  const config = join(dataDir, 'server.json');
  writeFileSync(config, JSON.stringify({ loginPerMinute: 1_000_000 }));
  // The bench runs its own worker for the light jobs, so the measured server runs none (--no-worker).
  const server = await startCli(['server', '--port', '0', '--no-worker', '--data-dir', join(dataDir, 'data'), '--config', config], env);
  const worker = await startCli(['worker', '--queues', 'inference', '--handlers', join(ROOT, 'bench/api-load-handlers.mjs'), '--data-dir', join(dataDir, 'data')], env);
  const base = `${server.info.url}/api/v1`;
  const stats = new Map();
  const record = (route, ms, status, code) => {
    let s = stats.get(route);
    if (!s) stats.set(route, (s = { ms: [], errors: 0, s5xx: 0, codes: {} }));
    s.ms.push(ms);
    if (status >= 400) {
      s.errors++;
      const k = `${status}${code ? ` ${code}` : ''}`;
      s.codes[k] = (s.codes[k] ?? 0) + 1;
    }
    if (status >= 500) s.s5xx++;
  };
  const call = async (route, method, path, { token, json, body, type, sse } = {}) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (json !== undefined) headers['content-type'] = 'application/json';
    if (body) headers['content-type'] = type;
    const t0 = performance.now();
    let status = 0;
    let parsed;
    try {
      const res = await fetch(base + path, { method, headers, body: json !== undefined ? JSON.stringify(json) : body });
      status = res.status;
      const text = await res.text(); // SSE of a finished job: the whole replay, then the server ends it
      if (!sse || status !== 200) parsed = text ? JSON.parse(text) : undefined;
    } catch {
      status = status || 599;
    }
    record(route, performance.now() - t0, status, parsed?.error?.code);
    return { status, body: parsed };
  };

  try {
    // ---- set-up (not measured): project, users with roles, the model deployed, one finished job
    const admin = (await call('setup', 'POST', '/auth/login', { json: { username: 'admin', password: 'load-admin-password' } })).body.token;
    const project = (await call('setup', 'POST', '/projects', { token: admin, json: { name: 'load' } })).body.project.id;
    const model = readFileSync(join(testDataDir(ROOT), 'models/yolov8n_int8.onnx'));
    const m = (await call('setup', 'POST', `/projects/${project}/models?name=v8`, { token: admin, body: model, type: 'application/octet-stream' })).body.model;
    await call('setup', 'PUT', `/projects/${project}/deployment`, { token: admin, json: { modelId: m.id } });
    const roles = Array.from({ length: o.users }, (_, i) => (i % 10 === 0 ? 'admin' : i % 10 < 7 ? 'engineer' : 'viewer'));
    const users = [];
    for (let i = 0; i < o.users; i++) {
      const username = `user${i}`;
      await call('setup', 'POST', '/users', { token: admin, json: { username, password: `${username}-password` } });
      await call('setup', 'PUT', `/projects/${project}/members/${username}`, { token: admin, json: { role: roles[i] } });
      users.push({ username, role: roles[i] });
    }
    const first = (await call('setup', 'POST', `/projects/${project}/jobs`, { token: admin, json: { kind: 'check', model: m.id } })).body.job.id;
    for (let i = 0; i < 200; i++) {
      const j = (await call('setup', 'GET', `/projects/${project}/jobs/${first}`, { token: admin })).body.job;
      if (j.state === 'succeeded') break;
      if (i === 199 || j.state === 'failed') throw new Error(`the set-up job did not succeed: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const image = readFileSync(join(testDataDir(ROOT), 'coco128-val/images/val2017/000000000139.jpg'));
    stats.clear();

    // ---- the mix: every user signs in, then loops op → think time until the clock runs out
    const MIX = [
      ['health (no auth, no DB: the floor)', 4, 'viewer'],
      ['login', 3, 'viewer'],
      ['list projects', 26, 'viewer'],
      ['read job', 24, 'engineer'],
      ['job events (SSE)', 10, 'engineer'],
      ['list jobs', 14, 'engineer'],
      ['submit light job', 4, 'admin'],
      ['predict', o.predict ? 18 : 0, 'viewer'],
    ];
    const rank = { viewer: 0, engineer: 1, admin: 2 };
    const end = performance.now() + o.seconds * 1000;
    const rng = new Rng(o.seed);
    const loop = async (u, seed) => {
      const r = new Rng(seed);
      await new Promise((res) => setTimeout(res, r.uniform(0, o.ramp * 1000)));
      const login = async () => (await call('login', 'POST', '/auth/login', { json: { username: u.username, password: `${u.username}-password` } })).body?.token;
      let token = await login();
      const allowed = MIX.filter(([, w, need]) => w > 0 && rank[u.role] >= rank[need]);
      const total = allowed.reduce((a, [, w]) => a + w, 0);
      while (performance.now() < end) {
        let x = r.float() * total;
        const [op] = allowed.find(([, w]) => (x -= w) < 0) ?? allowed[0];
        if (op.startsWith('health')) await call(op, 'GET', '/health');
        else if (op === 'login') token = (await login()) ?? token;
        else if (op === 'list projects') await call(op, 'GET', '/projects', { token });
        else if (op === 'read job') await call(op, 'GET', `/projects/${project}/jobs/${first}`, { token });
        else if (op === 'job events (SSE)') await call(op, 'GET', `/projects/${project}/jobs/${first}/events`, { token, sse: true });
        else if (op === 'list jobs') await call(op, 'GET', `/projects/${project}/jobs?limit=20`, { token });
        else if (op === 'submit light job') await call(op, 'POST', `/projects/${project}/jobs`, { token, json: { kind: 'check', model: m.id } });
        else if (op === 'predict') await call(op, 'POST', `/projects/${project}/predict`, { token, body: image, type: 'image/jpeg' });
        await new Promise((res) => setTimeout(res, r.uniform(o.think[0], o.think[1])));
      }
    };
    const t0 = performance.now();
    await Promise.all(users.map((u) => loop(u, rng.nextU32())));
    const wall = (performance.now() - t0) / 1000;

    const jobs = (await call('after', 'GET', `/projects/${project}/jobs?limit=500`, { token: admin })).body.jobs;
    const doneJobs = jobs.filter((j) => j.state === 'succeeded').length;
    const rows = [];
    let requests = 0;
    let s5xx = 0;
    for (const [route, s] of stats) {
      if (route === 'after') continue;
      const sorted = [...s.ms].sort((a, b) => a - b);
      requests += sorted.length;
      s5xx += s.s5xx;
      rows.push([route, sorted.length, pct(sorted, 50), pct(sorted, 95), pct(sorted, 99), s.errors, s.s5xx, Object.entries(s.codes).map(([c, n]) => `${c}×${n}`).join(' ')]);
    }
    console.log(`\n${db}: ${o.users} users (ramp ${o.ramp} s), ${wall.toFixed(1)} s, think ${o.think.join('-')} ms, ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; ${requests} requests (${(requests / wall).toFixed(0)}/s), ${s5xx} 5xx; light jobs: ${jobs.length} submitted, ${doneJobs} done`);
    const head = ['route', 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', '5xx', 'codes'];
    const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : v);
    const all = [head, ...rows.map((r) => r.map(fmt))];
    const widths = head.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
    for (const r of all) console.log(r.map((c, i) => String(c).padEnd(widths[i])).join('  '));
    return { db, requests, s5xx, rows };
  } finally {
    worker.child.kill('SIGTERM');
    server.child.kill('SIGTERM');
    await Promise.all([worker, server].map((p) => new Promise((r) => (p.child.exitCode !== null ? r() : p.child.once('exit', r)))));
    rmSync(dataDir, { recursive: true, force: true });
    if (dbName) {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await c.end();
    }
  }
}

const o = args(process.argv.slice(2));
for (const db of o.db.split(',')) await run(db, o);
