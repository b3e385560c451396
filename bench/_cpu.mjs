import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, cpSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLevel } from './load/client.mjs';
const [model, image, users, ...sets] = process.argv.slice(2);
const cfg = { port: 0, host: '127.0.0.1', queueMax: 64 };
for (const s of sets) { const [k, v] = s.split('='); cfg[k] = JSON.parse(v); }
const dir = mkdtempSync(join(tmpdir(), 'exp-')); cpSync(model, dir, { recursive: true });
writeFileSync(join(dir, 'cvopt.runtime.json'), JSON.stringify(cfg));
const child = spawn(process.execPath, [...(process.env.NODEFLAGS ? process.env.NODEFLAGS.split(' ') : []), 'packages/runtime/dist/main.js', dir], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CVOPT_LOG_LEVEL: 'warn' } });
let out = '';
const url = await new Promise((r) => child.stdout.on('data', (d) => { out += d.toString(); const m = /http:\/\/\S+/.exec(out); if (m) r(m[0]); }));
const outStart = out.length;
const snap = (pid) => Object.fromEntries(readdirSync(`/proc/${pid}/task`).map((t) => { const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'); const f = st.slice(st.lastIndexOf(')') + 2).split(' '); const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')); return [t, { comm, nice: Number(f[16]), cpu: Number(f[11]) + Number(f[12]) }]; }));
const a = snap(child.pid), ca = snap(process.pid);
const r = await runLevel({ url, users: Number(users), seconds: 6, rampS: 0, body: readFileSync(image), contentType: 'image/jpeg', expectContinue: false });
const b = snap(child.pid), cb = snap(process.pid);
const n = r.byStatus[200];
console.log('rps', r.throughput.toFixed(1), 'n', n);
const agg = {};
for (const [t, v] of Object.entries(b)) { const k = `${v.comm} nice${v.nice}${t === String(child.pid) ? ' MAIN' : ''}`; agg[k] = (agg[k] ?? 0) + (v.cpu - (a[t]?.cpu ?? 0)) * 10; }
for (const [k, v] of Object.entries(agg).sort((x, y) => y[1] - x[1])) if (v > 0) console.log(k.padEnd(30), (v / n).toFixed(2), 'ms/req');
let c = 0; for (const [t, v] of Object.entries(cb)) c += v.cpu - (ca[t]?.cpu ?? 0);
console.log('client', (c * 10 / n).toFixed(2), 'ms/req');
const gc = out.slice(outStart);
console.log('mark-compact', (gc.match(/Mark-Compact/g) ?? []).length, 'scavenge', (gc.match(/Scavenge/g) ?? []).length, 'mark reasons', [...new Set([...gc.matchAll(/Mark-Compact[^;]*; (?:GC in old space requested|[^\n]*?)\n/g)].map(m=>m[0].split(';').slice(-1)[0].trim()).slice(0,5))]);
console.log(gc.split('\n').filter(l=>l.includes('Mark-Compact')).slice(0,3).join('\n'));
child.kill('SIGTERM');
