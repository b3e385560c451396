#!/usr/bin/env node
// Self-check of the impolite load generator (raw-client.mjs) against real local servers: each server tallies what
// it received and answered, and the client's report must match those tallies exactly. Also drives the response
// parser alone with responses cut at every byte and several responses in one read. Exits 1 on any mismatch.
//
//   node bench/load/raw-client.check.mjs
import http from 'node:http';
import net from 'node:net';
import { runLevel } from './client.mjs';
import { HEAD_MAX, ResponseParser } from './raw-client.mjs';

let failures = 0;
const check = (what, ok, detail = '') => {
  if (!ok) failures++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` — ${detail}` : ''}\n`);
};
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---- The parser alone ----

function parseAll(pieces) {
  const got = [];
  let error = null;
  const p = new ResponseParser(
    (status, keepAlive, bodyBytes) => got.push([status, keepAlive, bodyBytes]),
    (reason) => (error = reason),
  );
  for (const piece of pieces) p.push(piece);
  if (p.finish()) got.push('closed');
  return { got, error };
}

const stream = Buffer.from(
  [
    'HTTP/1.1 100 Continue\r\n\r\n',
    'HTTP/1.1 200 OK\r\ncontent-length: 11\r\nX-A: b\r\n\r\n{"ok":true}',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConTent-LENGTH: 3\r\n\r\n',
    '5;name=value\r\nhello\r\n6 ; a ; b="c;d"\r\n world\r\nA\r\n0123456789\r\n0;last\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n',
    'HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n',
    'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n',
    'HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    'HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\nConnection: keep-alive, Close\r\n\r\nnope',
    'HTTP/1.1 200 OK\r\n\r\nignored: after a close the parser stops',
  ].join(''),
  'latin1',
);
const expected = [
  [200, true, 11],
  [200, true, 21],
  [204, true, 0],
  [503, true, 0],
  [404, true, 0],
  [429, false, 4],
];
check('parser: 9 responses in one read (1xx skipped, chunked with extensions and trailers, close stops it)', same(parseAll([stream]).got, expected), JSON.stringify(parseAll([stream])));
const bytewise = parseAll([...stream].map((b) => Buffer.from([b])));
check('parser: the same stream one byte per read', same(bytewise.got, expected) && bytewise.error === null);
let splitsOk = true;
for (let i = 1; i < stream.length; i++) {
  const r = parseAll([stream.subarray(0, i), stream.subarray(i)]);
  if (!same(r.got, expected) || r.error !== null) splitsOk = false;
}
check(`parser: the same stream cut in two at each of its ${stream.length - 1} positions`, splitsOk);
const untilClose = parseAll([Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc'), Buffer.from('defg')]);
check('parser: a body without length ends with the socket', same(untilClose.got, [[200, false, 7], 'closed']), JSON.stringify(untilClose));
const http10 = parseAll([Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi')]);
check('parser: HTTP/1.0 without keep-alive closes', same(http10.got, [[200, false, 2]]));
const bigHead = parseAll([Buffer.from('HTTP/1.1 200 OK\r\n'), Buffer.from(`X-Big: ${'a'.repeat(HEAD_MAX)}`)]);
check('parser: headers over 64 KiB are an error, nothing buffered past it', bigHead.error !== null && bigHead.got.length === 0, bigHead.error ?? '');
const bigChunkLine = parseAll([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;'), Buffer.from('x'.repeat(HEAD_MAX))]);
check('parser: a chunk-size line over 64 KiB is an error', bigChunkLine.error !== null);
const bigTrailers = parseAll([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n'), Buffer.from(`X-T: ${'t'.repeat(HEAD_MAX)}\r\n\r\n`)]);
check('parser: trailers over 64 KiB are an error', bigTrailers.error !== null);
for (const [what, text] of [
  ['not HTTP', 'SSH-2.0-OpenSSH\r\n'],
  ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
  ['chunk data without its CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n'],
  ['a bad content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n'],
  ['two content-lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'],
]) {
  const r = parseAll([Buffer.from(text)]);
  check(`parser: ${what} is an error`, r.error !== null && r.got.length === 0, r.error ?? JSON.stringify(r.got));
}

// ---- The client against real servers ----

const body = Buffer.alloc(6000, 7);
const contentType = 'image/jpeg';

/** Calls `onRequest(socket, head, body)` for each complete request on a raw TCP server (for answers node's http server cannot write). */
function rawServer(onRequest) {
  return net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const h = buf.indexOf('\r\n\r\n');
        if (h === -1) return;
        const head = buf.toString('latin1', 0, h);
        const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < h + 4 + len) return;
        const reqBody = buf.subarray(h + 4, h + 4 + len);
        buf = buf.subarray(h + 4 + len);
        onRequest(socket, head, reqBody);
      }
    });
    socket.on('error', () => {});
  });
}

async function withServer(server, fn) {
  const tally = { connections: 0, requests: 0, badRequests: 0, sent: {} };
  server.on('connection', () => tally.connections++);
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`, tally);
  } finally {
    server.closeAllConnections?.();
    await new Promise((res) => server.close(res));
  }
}

/** A node http server: reads the request, checks it is the one the client should send, then `answer(res, n)`. */
function httpServer(tallyRef, answer) {
  const s = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const t = tallyRef.t;
      const n = t.requests++;
      const got = Buffer.concat(chunks);
      if (req.method !== 'POST' || req.url !== '/v1/predict' || req.headers['content-type'] !== contentType || req.headers.expect !== undefined || !got.equals(body)) t.badRequests++;
      answer(req, res, n, t);
    });
  });
  s.keepAliveTimeout = 60_000;
  return s;
}
const sent = (t, status) => (t.sent[status] = (t.sent[status] ?? 0) + 1);

const level = (url, extra = {}) => runLevel({ url, users: 4, seconds: 1, rampS: 0.3, body, contentType, impolite: true, expectContinue: false, timeoutMs: 2000, ...extra });

async function scenario(name, server, tallyRef, expect, extra) {
  await withServer(server, async (url, tally) => {
    tallyRef.t = tally;
    const r = await level(url, extra);
    const problems = expect(r, tally);
    const summary = `byStatus ${JSON.stringify(r.byStatus)}, dropped ${r.dropped}, timeouts ${r.timeouts}, reconnects ${r.reconnects}; server saw ${tally.requests} requests on ${tally.connections} connections, sent ${JSON.stringify(tally.sent)}`;
    check(`client: ${name}`, problems.length === 0 && tally.badRequests === 0, problems.length || tally.badRequests ? `${problems.join('; ')}${tally.badRequests ? `; ${tally.badRequests} malformed requests` : ''} (${summary})` : summary);
  });
}

/** The report against the server's tallies: the same answers, and each request accounted for exactly once. */
function accounts(r, t, { dropped = 0, timeouts = 0, reconnects } = {}) {
  const p = [];
  if (!same(Object.entries(r.byStatus).sort(), Object.entries(t.sent).sort())) p.push('byStatus differs from what the server sent');
  if (r.dropped !== dropped) p.push(`dropped ${r.dropped}, expected ${dropped}`);
  if (r.timeouts !== timeouts) p.push(`timeouts ${r.timeouts}, expected ${timeouts}`);
  const answered = Object.values(r.byStatus).reduce((a, b) => a + b, 0);
  if (answered + r.dropped + r.timeouts !== t.requests) p.push(`${answered} answered + ${r.dropped} dropped + ${r.timeouts} timed out ≠ ${t.requests} requests seen by the server`);
  if (r.users + r.reconnects !== t.connections) p.push(`${r.users} users + ${r.reconnects} reconnects ≠ ${t.connections} connections seen by the server`);
  if (reconnects !== undefined && r.reconnects !== reconnects) p.push(`reconnects ${r.reconnects}, expected ${reconnects}`);
  const refused = (r.byStatus[429] ?? 0) + (r.byStatus[503] ?? 0);
  if (r.rejected.n + r.rampRejected.n !== refused) p.push('refusal latencies do not add up to the refusals');
  if (r.ok.n > (r.byStatus[200] ?? 0) || Math.round(r.throughput * 1) > (r.byStatus[200] ?? 0)) p.push('more 200s in the window than answered');
  if (answered === 0 && r.dropped === 0 && r.timeouts === 0) p.push('nothing happened');
  return p;
}

{
  const ref = {};
  const server = httpServer(ref, (req, res, n, t) => {
    sent(t, 200);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
    res.end('{"ok":true}');
  });
  await scenario('200 with content-length, kept alive', server, ref, (r, t) => {
    const p = accounts(r, t, { reconnects: 0 });
    if (r.ok.n === 0 || !(r.throughput > 0)) p.push('no 200 in the steady window');
    return p;
  });
}
{
  const ref = {};
  const server = httpServer(ref, (req, res, n, t) => {
    sent(t, 429);
    res.writeHead(429, { 'retry-after': '1', connection: 'close', 'content-length': 0 });
    res.end();
  });
  await scenario('429 with Connection: close (a reconnect per answer, none an error)', server, ref, (r, t) => accounts(r, t, { reconnects: t.requests - r.users }));
}
{
  const ref = {};
  const cycle = [200, 503, 429, 404, 500, 200];
  const server = httpServer(ref, (req, res, n, t) => {
    const status = cycle[n % cycle.length];
    sent(t, status);
    res.writeHead(status, status === 429 ? { connection: 'close', 'content-length': 2 } : { 'content-length': 2 });
    res.end('{}');
  });
  await scenario('mixed 200/503/429 close/404/500', server, ref, (r, t) => accounts(r, t));
}
{
  const ref = {};
  const server = httpServer(ref, (req, res, n, t) => {
    sent(t, 200);
    res.writeHead(200, { 'content-type': 'application/json', trailer: 'x-sum' });
    res.write('{"a":');
    setImmediate(() => {
      res.write('1}');
      res.addTrailers({ 'x-sum': 'abc' });
      res.end();
    });
  });
  await scenario('chunked 200 with trailers (node http)', server, ref, (r, t) => accounts(r, t, { reconnects: 0 }));
}
{
  const ref = {};
  const server = rawServer((socket, head, reqBody) => {
    const t = ref.t;
    t.requests++;
    if (!head.startsWith('POST /v1/predict HTTP/1.1\r\n') || !/\r\nhost: 127\.0\.0\.1:\d+\r\n/i.test(head) || !reqBody.equals(body)) t.badRequests++;
    sent(t, 200);
    // Interim 100, chunk extensions and trailers, written in pieces that split lines and chunks.
    const answer = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6;a;b="c;d"\r\n world\r\n0;last\r\nX-Trailer: 1\r\n\r\n';
    const pieces = [];
    for (let i = 0; i < answer.length; i += 7) pieces.push(answer.slice(i, i + 7));
    const write = () => {
      if (pieces.length === 0 || socket.destroyed) return;
      socket.write(pieces.shift());
      setTimeout(write, pieces.length % 5 === 0 ? 1 : 0);
    };
    write();
  });
  server.on('connection', (s) => s.setNoDelay(true));
  await scenario('chunked 200 with extensions, trailers and a 100 first, in 7-byte writes (raw TCP)', server, ref, (r, t) => accounts(r, t, { reconnects: 0 }));
}
{
  const ref = {};
  const server = rawServer((socket, head, reqBody) => {
    const t = ref.t;
    t.requests++;
    if (!reqBody.equals(body)) t.badRequests++;
    sent(t, 200);
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body ends with the connection');
  });
  await scenario('200 without length, body ended by the close (raw TCP)', server, ref, (r, t) => accounts(r, t, { reconnects: t.requests - r.users }));
}
{
  const ref = {};
  const server = httpServer(ref, (req, res) => {
    res.writeHead(200, { 'content-length': 1000 });
    res.write('only ten b');
    setTimeout(() => req.socket.destroy(), 5);
  });
  await scenario('the server destroys the socket mid-response', server, ref, (r, t) => accounts(r, t, { dropped: t.requests, reconnects: t.requests - r.users }));
}
{
  const ref = {};
  const server = rawServer((socket) => {
    ref.t.requests++;
    socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(HEAD_MAX + 10)}\r\n\r\n`);
  });
  await scenario('headers over 64 KiB drop the socket', server, ref, (r, t) => accounts(r, t, { dropped: t.requests, reconnects: t.requests - r.users }));
}
{
  const ref = {};
  const server = httpServer(ref, () => {}); // never answers
  const t0 = performance.now();
  await scenario(
    'a server that never answers: time-outs, each on a fresh socket',
    server,
    ref,
    (r, t) => {
      const p = accounts(r, t, { timeouts: t.requests, reconnects: t.requests - r.users });
      const s = (performance.now() - t0) / 1000;
      if (s > 0.3 + 1 + 0.3 + 0.3) p.push(`took ${s.toFixed(2)} s, more than ramp + level + time-out + a tick`);
      return p;
    },
    { timeoutMs: 300 },
  );
}
{
  // The server closes each kept-alive socket right after its answer without saying so: the request already
  // written on it goes again on a fresh socket, and no request is lost or counted twice.
  const ref = {};
  const done = new WeakSet();
  const server = rawServer((socket) => {
    if (done.has(socket)) return; // what the client wrote after the answer is never read
    done.add(socket);
    ref.t.requests++;
    sent(ref.t, 200);
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}', () => setTimeout(() => socket.destroy(), 1));
  });
  await scenario('a server that closes after each answer without Connection: close', server, ref, (r, t) => accounts(r, t, { reconnects: t.requests - r.users }));
}

// The report has the polite client's shape, plus reconnects.
{
  const ref = {};
  const server = httpServer(ref, (req, res, n, t) => {
    sent(t, 200);
    res.writeHead(200, { 'content-length': 2 });
    res.end('{}');
  });
  await withServer(server, async (url, tally) => {
    ref.t = tally;
    const polite = await runLevel({ url, users: 2, seconds: 0.3, rampS: 0, body, contentType, expectContinue: false });
    const raw = await runLevel({ url, users: 2, seconds: 0.3, rampS: 0, body, contentType, impolite: true, expectContinue: false });
    check('report: same keys as the polite client, plus reconnects', same(Object.keys(raw).sort(), [...Object.keys(polite), 'reconnects'].sort()), `${Object.keys(raw).join(',')}`);
  });
}

// Nothing listening: every attempt is a socket error, and the level still ends on time.
{
  const probe = net.createServer();
  await new Promise((res) => probe.listen(0, '127.0.0.1', res));
  const port = probe.address().port;
  await new Promise((res) => probe.close(res));
  const r = await level(`http://127.0.0.1:${port}`, { seconds: 0.3, rampS: 0 });
  check('client: connection refused counts dropped, nothing else, and ends', r.dropped > 0 && r.timeouts === 0 && Object.keys(r.byStatus).length === 0 && r.elapsedS < 1, `dropped ${r.dropped}, ${r.elapsedS.toFixed(2)} s`);
}

process.stdout.write(failures === 0 ? 'all checks passed\n' : `${failures} check(s) FAILED\n`);
process.exit(failures === 0 ? 0 : 1);
