#!/usr/bin/env node
// What the load generator itself costs: its CPU ms per answered request against a trivial server (another
// process, reads the body, answers {"ok":true}), for node's http client (the polite path, which never waits
// here since the server never refuses) and for the raw-socket impolite client. On the 2 shared cores this CPU is
// taken from the server under test.
//
//   node bench/load/client-cost.mjs [--users 100] [--seconds 3] [--body-bytes 3744] [--delay-ms 0]
//
// --delay-ms: the server answers that long after the body (a timer), to see the cost at a service's rate
// (100 connections, 500 ms: 200 req/s) rather than at the trivial server's tens of thousands.
import { spawn } from 'node:child_process';
import { runLevel } from './client.mjs';
import { fmt } from './stats.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const users = arg('--users', 100);
const seconds = arg('--seconds', 3);
const body = Buffer.alloc(arg('--body-bytes', 3744), 0xab); // 3744 B: the quickstart's 160-px validation JPEG
const delayMs = arg('--delay-ms', 0);

const serverCode = `
const http = require('node:http');
const s = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    const answer = () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 }); res.end('{"ok":true}'); };
    if (${delayMs} > 0) setTimeout(answer, ${delayMs}); else answer();
  });
});
s.keepAliveTimeout = 60000;
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
`;
const child = spawn(process.execPath, ['-e', serverCode], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((res) => child.stdout.once('data', (d) => res(Number(String(d).trim()))));
const url = `http://127.0.0.1:${port}`;

const rows = [];
for (const [name, impolite] of [
  ['node http.request + keep-alive Agent', false],
  ['raw sockets (raw-client.mjs)', true],
]) {
  const cpu0 = process.cpuUsage();
  const r = await runLevel({ url, users, seconds, rampS: 0, body, contentType: 'image/jpeg', expectContinue: false, impolite });
  const cpu = process.cpuUsage(cpu0);
  const answered = r.byStatus[200] ?? 0;
  rows.push(`| ${name} | ${answered} | ${fmt(answered / r.elapsedS, 0)} | ${fmt((cpu.user + cpu.system) / 1000 / answered, 3)} | ${r.dropped} / ${r.timeouts} |`);
  await new Promise((res) => setTimeout(res, 300));
}
child.kill('SIGTERM');
process.stdout.write(
  [`${users} connections, ${seconds} s, ${body.length} B bodies, answers ${delayMs} ms after the body; client and server share this machine's cores`, '', '| client | answered | req/s | client CPU ms / request | dropped / time-outs |', '|---|---:|---:|---:|---:|', ...rows, ''].join('\n'),
);
