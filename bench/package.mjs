#!/usr/bin/env node
// The packaged service, measured: artifact size, CPU image size (target ≤ 350 MB), image build time, container cold
// start to ready, and the container's throughput at 100 keep-alive connections against `cvopt serve` of the same
// artifact on the host, in the same run (target ≥ 0.95×). Builds on real podman (scripts/container-base.sh first).
// Default model: the shared pretrained YOLOv8n (INT8, 640 px) on ort-cpu-int8, sent a 640×426 COCO photo.
//
//   npx tsc -b && node bench/package.mjs [--model DIR --engine E --image FILE] [--users 100] [--seconds 15] [--rounds 2]
//        [--node-flags "--single-threaded-gc"] [--json OUT.json]
//
// The two servers run one after the other (never at once) and alternate over --rounds, so a busy shared machine
// weighs on both alike; each figure is the mean over rounds. Everything the script creates is removed by name.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { entrypointCommand, packageArtifact } from '@cvopt/packager';
import { runLevel } from './load/client.mjs';
import { testDataDir, yoloArtifact } from './load/targets.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const env = { ...process.env, CONTAINERS_CONF: join(ROOT, 'scripts/containers.conf') };
const podman = (...args) => execFileSync('podman', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const quiet = (...args) => { try { podman(...args); } catch { /* already gone */ } };

function parseArgs(argv) {
  const o = { users: 100, seconds: 15, rounds: 2, nodeFlags: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--model') o.model = next();
    else if (a === '--engine') o.engine = next();
    else if (a === '--image') o.image = next();
    else if (a === '--users') o.users = Number(next());
    else if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--node-flags') o.nodeFlags = next().split(' ').filter(Boolean);
    else if (a === '--json') o.json = next();
    else throw new Error(`unknown flag ${a}`);
  }
  return o;
}

const freePort = () => new Promise((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });

async function waitReady(url, timeoutMs = 120_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try { if ((await fetch(`${url}/readyz`)).status === 200) return; } catch { /* not up yet */ }
    if (Date.now() > until) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let model = o.model;
  let image = o.image;
  let engine = o.engine;
  if (!model) {
    const data = testDataDir();
    if (!data) throw new Error('shared test data not found: pass --model DIR --engine E --image FILE');
    const t = yoloArtifact(data);
    model = t.dir;
    image = image ?? t.image;
    engine = engine ?? 'ort-cpu-int8';
  }
  if (!image || !engine) throw new Error('--model needs --engine and --image');
  const body = readFileSync(image);
  const base = execFileSync('bash', [join(ROOT, 'scripts/container-base.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
  const tmp = mkdtempSync(join(tmpdir(), 'cvopt-bench-package-'));
  const tag = `localhost/cvopt-bench-package-${process.pid}:latest`;
  const name = `cvopt-bench-package-${process.pid}`;
  const out = {};
  try {
    let t = performance.now();
    const art = await packageArtifact({ model, engine, out: join(tmp, 'svc'), ...(o.nodeFlags.length ? { nodeFlags: o.nodeFlags } : {}) });
    out.packageS = (performance.now() - t) / 1000;
    out.artifactMb = Number(mb(art.bytes.dir));
    out.tarballMb = Number(mb(art.bytes.tarball));

    t = performance.now();
    podman('build', '-q', '--layers=false', '--format', 'docker', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, art.dir);
    out.buildS = (performance.now() - t) / 1000;
    out.imageMb = Number(mb(Number(podman('image', 'inspect', tag, '--format', '{{.Size}}'))));
    out.baseImageMb = Number(mb(Number(podman('image', 'inspect', base, '--format', '{{.Size}}'))));

    const rounds = [];
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? ['container', 'host'] : ['host', 'container'];
      const round = {};
      for (const which of order) {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        t = performance.now();
        let stop;
        if (which === 'container') {
          podman('run', '-d', '--name', name, '-p', `127.0.0.1:${port}:8080`, tag);
          stop = async () => quiet('rm', '-f', '-t', '10', name);
        } else {
          const { command, args } = entrypointCommand(art.dir);
          const child = spawn(command, args, { env: { ...process.env, CVOPT_HOST: '127.0.0.1', CVOPT_PORT: String(port) }, stdio: 'ignore' });
          stop = async () => { child.kill('SIGTERM'); await new Promise((res) => child.once('exit', res)); };
        }
        try {
          await waitReady(url);
          const readyS = (performance.now() - t) / 1000;
          const level = await runLevel({ url, users: o.users, seconds: o.seconds, body, contentType: 'image/jpeg', rampS: 1 });
          round[which] = { readyS, throughput: level.throughput, ok: level.ok, byStatus: level.byStatus, load1: loadavg()[0] };
        } finally {
          await stop();
        }
      }
      rounds.push(round);
      process.stderr.write(`  round ${r + 1}: container ${round.container.throughput.toFixed(2)}/s, cvopt serve ${round.host.throughput.toFixed(2)}/s\n`);
    }
    const mean = (f) => rounds.reduce((s, r) => s + f(r), 0) / rounds.length;
    out.coldStartS = mean((r) => r.container.readyS);
    out.hostStartS = mean((r) => r.host.readyS);
    out.containerRps = mean((r) => r.container.throughput);
    out.hostRps = mean((r) => r.host.throughput);
    out.ratio = out.containerRps / out.hostRps;
    out.rounds = rounds;

    const rows = [
      ['artifact (dir / .tar.gz)', `${out.artifactMb} MB / ${out.tarballMb} MB`, ''],
      ['package time', `${out.packageS.toFixed(1)} s`, ''],
      ['image size (CPU)', `${out.imageMb} MB (base ${out.baseImageMb} MB)`, out.imageMb <= 350 ? 'meets ≤ 350 MB' : 'MISSES ≤ 350 MB'],
      ['image build time', `${out.buildS.toFixed(1)} s`, ''],
      ['cold start to ready', `container ${out.coldStartS.toFixed(2)} s, cvopt serve ${out.hostStartS.toFixed(2)} s`, ''],
      [`throughput at ${o.users} connections`, `container ${out.containerRps.toFixed(2)}/s vs cvopt serve ${out.hostRps.toFixed(2)}/s = ${out.ratio.toFixed(3)}×`, out.ratio >= 0.95 ? 'meets ≥ 0.95×' : 'MISSES ≥ 0.95×'],
    ];
    console.log(`model ${model} on ${engine}, image ${image}, ${o.rounds} rounds of ${o.seconds} s, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    for (const [k, v, note] of rows) console.log(`${k.padEnd(32)} ${v}${note ? `   (${note})` : ''}`);
    if (o.json) writeFileSync(o.json, JSON.stringify(out, null, 2));
  } finally {
    quiet('rm', '-f', '-t', '0', name);
    quiet('rmi', '-f', tag);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
