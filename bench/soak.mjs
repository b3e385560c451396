#!/usr/bin/env node
// Soak test of the runtime service: the real server as a child process, 100 users for N minutes (default 10), most
// of them valid (images, KServe tensors, short videos; polite: they wait Retry-After) and some hostile, rotating
// through the attacks of issue 13 (trickled and abandoned uploads, a video client that stops reading, an uploaded
// playlist, a pixel-bomb header, malformed and deeply nested JSON, an over-limit Expect: 100-continue, garbage
// HTTP, mutated JPEGs, a multipart body of many parts). Prints: valid requests by status (the target is zero 5xx),
// the hostile outcomes, the server's RSS (with its ffmpeg children) and its slope over the run, and the upload
// folders left behind after shutdown (the target is none).
//
//   npx tsc -b packages/runtime && node bench/soak.mjs [--minutes 10] [--users 100] [--hostile 15] [--model DIR] [--seed 1]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { Rng } from '@cvopt/core';
import { syntheticArtifact, testDataDir, withConfig } from './load/targets.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const MAIN = join(ROOT, 'packages/runtime/dist/main.js');

function parseArgs(argv) {
  const o = { minutes: 10, users: 100, hostile: 15, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--minutes') o.minutes = Number(v());
    else if (a === '--users') o.users = Number(v());
    else if (a === '--hostile') o.hostile = Number(v());
    else if (a === '--model') o.model = v();
    else if (a === '--seed') o.seed = Number(v());
    else throw new Error(`unknown flag ${a}`);
  }
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** RSS (MiB) of a process and all its descendants (the server's ffmpeg children), from /proc. */
function treeRssMb(pid) {
  let total = 0;
  const visit = (p) => {
    try {
      total += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim();
        if (kids) for (const k of kids.split(/\s+/)) visit(Number(k));
      }
    } catch {
      // gone
    }
  };
  visit(pid);
  return total;
}

/** Least-squares slope of (t, y) in y-units per t-unit. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return num / den;
}

/** One request with a body; resolves {status, retryAfter} (status -1: connection error, 0: timed out). */
function request(agent, url, path, body, headers, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    const u = new URL(path, url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-length': body.length, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: Number(res.headers['retry-after'] ?? 0) }));
      res.on('error', () => resolve({ status: -1 }));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      resolve({ status: 0 });
    });
    req.on('error', () => resolve({ status: -1 }));
    req.end(body);
  });
}

/** A raw socket conversation for the attacks a normal client cannot make; resolves with the status line's code. */
function raw(url, head, feed, timeoutMs = 20_000) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let data = '';
    const done = (status) => {
      clearTimeout(t);
      s.destroy();
      resolve(status);
    };
    const t = setTimeout(() => done(0), timeoutMs);
    s.on('data', (d) => {
      data += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d+)/.exec(data);
      if (m && m[1] !== '100' && data.includes('\r\n\r\n')) done(Number(m[1]));
    });
    s.on('error', () => done(-1));
    s.on('close', () => done(Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? -1)));
    s.on('connect', () => {
      s.write(head);
      Promise.resolve(feed?.(s)).catch(() => undefined);
    });
  });
}

function bombPng(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 3, 0, 0, 0, 0, 1])), chunk('IEND', Buffer.alloc(0))]);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const data = testDataDir();
  if (!data) throw new Error('the soak test needs the shared test data (CVOPT_TEST_DATA or ../shared/data)');
  const rng = new Rng(o.seed);
  const target = o.model ? { dir: resolve(o.model), name: o.model } : syntheticArtifact(160);
  const temp = mkdtempSync(join(tmpdir(), 'cvopt-soak-'));
  // Every user holds its own key, as real users do: fairness is per key.
  const keys = Array.from({ length: o.users }, (_, i) => `soak-user-${String(i).padStart(3, '0')}-key-0123456789`);
  const auth = (i) => ({ authorization: `Bearer ${keys[i]}` });
  const dir = withConfig(target, { port: 0, host: '127.0.0.1', queueMax: 128, auth: { keys: keys.map((key, i) => ({ name: `u${i}`, key, role: 'viewer' })) }, video: { tempDir: temp, maxSeconds: 10, maxFrames: 100, stallTimeoutMs: 3000 }, upload: { graceMs: 1000 } });
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const [mh, mw] = manifest.preprocess.size;
  const jpegs = readdirSync(join(data, 'coco128-val/images/val2017')).sort().slice(0, 8).map((f) => readFileSync(join(data, 'coco128-val/images/val2017', f)));
  const clip = join(temp, 'clip.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-t', '2', '-i', join(data, 'video/bottle-detection.mp4'), '-c', 'copy', clip]);
  const video = readFileSync(clip);
  const tensor = JSON.stringify({ inputs: [{ name: manifest.input.name, shape: [1, 3, mh, mw], datatype: 'FP32', data: new Array(3 * mh * mw).fill(0.5) }] });
  const playlist = Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://${join(data, 'video/car-detection.mp4')}\n#EXT-X-ENDLIST\n`);
  const small = await sharp(jpegs[0]).resize(320).jpeg().toBuffer();

  const child = spawn(process.execPath, [MAIN, dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CVOPT_LOG_LEVEL: 'warn' } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d.toString()));
  const url = await new Promise((res, rej) => {
    child.stdout.once('data', (d) => res(d.toString().trim()));
    child.once('exit', (c) => rej(new Error(`server exited (${c}):\n${stderr}`)));
  });
  const exited = new Promise((r) => child.once('exit', (c) => r(c)));
  process.stderr.write(`soak: ${o.users} users (${o.hostile} hostile) for ${o.minutes} min against ${target.name} at ${url}\n`);

  const agent = new http.Agent({ keepAlive: true, maxSockets: o.users });
  const t0 = performance.now();
  const end = t0 + o.minutes * 60_000;
  const valid = {};
  const hostile = {};
  const count = (m, k) => (m[k] = (m[k] ?? 0) + 1);
  const rss = [];
  const sampler = setInterval(() => rss.push([(performance.now() - t0) / 60_000, treeRssMb(child.pid)]), 1000);

  const validUser = async (i) => {
    await sleep((i / o.users) * 2000);
    while (performance.now() < end) {
      const kind = rng.float();
      let r;
      if (kind < 0.8) r = await request(agent, url, '/v1/predict', jpegs[rng.int(0, jpegs.length - 1)], { 'content-type': 'image/jpeg', ...auth(i) });
      else if (kind < 0.97) r = await request(agent, url, `/v2/models/${manifest.name}/infer`, Buffer.from(tensor), { 'content-type': 'application/json', ...auth(i) });
      else r = await request(agent, url, '/v1/predict/video', video, { 'content-type': 'video/mp4', ...auth(i) }, 60_000);
      count(valid, `${kind < 0.8 ? 'image' : kind < 0.97 ? 'kserve' : 'video'} ${r.status}`);
      if (r.status === 429 || r.status === 503) await sleep(Math.max(1, r.retryAfter) * 1000 * (0.5 + rng.float()));
    }
  };

  const attacks = (h, a) => [
    ['trickle', () => raw(url, `POST /v1/predict HTTP/1.1\r\nHost: x\r\n${a}Content-Type: image/jpeg\r\nContent-Length: 200000\r\n\r\n`, async (s) => {
      for (let k = 0; k < 200 && !s.destroyed; k++) {
        s.write('x');
        await sleep(100);
      }
    })],
    ['abandon', () => raw(url, `POST /v1/predict HTTP/1.1\r\nHost: x\r\n${a}Content-Type: image/jpeg\r\nContent-Length: ${small.length}\r\n\r\n`, async (s) => {
      s.write(small.subarray(0, small.length >> 1));
      await sleep(300);
      s.destroy();
    }, 2000)],
    ['video-no-read', () => raw(url, `POST /v1/predict/video HTTP/1.1\r\nHost: x\r\n${a}Content-Type: video/mp4\r\nContent-Length: ${video.length}\r\n\r\n`, async (s) => {
      s.write(video);
      await new Promise((r) => s.once('data', r));
      s.pause();
    }, 6000)],
    ['playlist', () => request(agent, url, '/v1/predict/video', playlist, { 'content-type': 'video/mp4', ...h }).then((r) => r.status)],
    ['pixel-bomb', () => request(agent, url, '/v1/predict', bombPng(60000, 60000), { 'content-type': 'image/png', ...h }).then((r) => r.status)],
    ['bad-json', () => request(agent, url, '/v1/predict', Buffer.from('{"image": '), { 'content-type': 'application/json', ...h }).then((r) => r.status)],
    ['deep-json', () => request(agent, url, `/v2/models/${manifest.name}/infer`, Buffer.from(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":${'['.repeat(20000)}${']'.repeat(20000)}}]}`), { 'content-type': 'application/json', ...h }).then((r) => r.status)],
    ['expect-oversize', () => raw(url, `POST /v1/predict HTTP/1.1\r\nHost: x\r\n${a}Content-Type: image/jpeg\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n`, undefined, 10_000)],
    ['garbage-http', () => raw(url, 'BLAH /\r\n\r\n', undefined, 10_000)],
    ['mutated-jpeg', () => {
      const b = Buffer.from(jpegs[rng.int(0, jpegs.length - 1)]);
      for (let k = 0; k < 20; k++) b[rng.int(0, Math.min(b.length - 1, 2000))] = rng.int(0, 255);
      return request(agent, url, '/v1/predict', b, { 'content-type': 'image/jpeg', ...h }).then((r) => r.status);
    }],
    ['many-parts', () => request(agent, url, '/v1/predict', Buffer.from(`${'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'.repeat(50_000)}--b--\r\n`), { 'content-type': 'multipart/form-data; boundary=b', ...h }).then((r) => r.status)],
  ];
  const hostileUser = async (i) => {
    const h = auth(o.users - 1 - i);
    const list = attacks(h, `Authorization: ${h.authorization}\r\n`);
    await sleep(rng.int(0, 2000));
    let k = i;
    while (performance.now() < end) {
      const [name, attack] = list[k++ % list.length];
      count(hostile, `${name} ${await attack()}`);
      await sleep(rng.int(50, 500));
    }
  };

  await Promise.all([
    ...Array.from({ length: o.users - o.hostile }, (_, i) => validUser(i)),
    ...Array.from({ length: o.hostile }, (_, i) => hostileUser(i)),
  ]);
  clearInterval(sampler);
  agent.destroy();
  await sleep(4000); // stalled video clients are dropped after stallTimeoutMs
  const leftBefore = readdirSync(temp).filter((n) => n.startsWith('cvopt-video-'));
  child.kill('SIGTERM');
  const code = await exited;
  const leftAfter = readdirSync(temp).filter((n) => n.startsWith('cvopt-video-'));

  const fivexx = Object.entries(valid).filter(([k]) => Number(k.split(' ')[1]) >= 500).reduce((a, [, v]) => a + v, 0);
  const errors = Object.entries(valid).filter(([k]) => Number(k.split(' ')[1]) <= 0).reduce((a, [, v]) => a + v, 0);
  const warm = rss.filter(([t]) => t >= Math.min(1, o.minutes / 4));
  const lines = [
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB; load average at end ${loadavg().map((v) => v.toFixed(1)).join(' ')}`,
    `soak: ${o.users} users (${o.users - o.hostile} valid, ${o.hostile} hostile) for ${o.minutes} min, model ${target.name}`,
    `valid requests by kind and status: ${JSON.stringify(valid)}`,
    `hostile outcomes (status; 0 = no answer before the client gave up, -1 = connection closed by the server): ${JSON.stringify(hostile)}`,
    `valid 5xx: ${fivexx}; valid requests without an answer: ${errors}`,
    `server RSS incl. children (MiB): start ${rss[0]?.[1].toFixed(0)}, end ${rss.at(-1)?.[1].toFixed(0)}, peak ${Math.max(...rss.map((r) => r[1])).toFixed(0)}; slope after warm-up ${slope(warm).toFixed(2)} MiB/min`,
    `upload folders left: ${leftBefore.length} before shutdown, ${leftAfter.length} after; server exit code ${code}`,
    `${fivexx === 0 ? 'PASS' : 'FAIL'} zero 5xx on valid requests; ${leftAfter.length === 0 ? 'PASS' : 'FAIL'} no temp files left`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e) => {
  process.stderr.write(`soak failed: ${e.stack ?? e}\n`);
  process.exit(1);
});
