// The impolite load generator: closed-loop connections that never back off, written the way autocannon is (one
// raw TCP socket per connection, each request one pre-serialised buffer written with one call, answers parsed just
// enough to know their status and where they end, bodies counted and never copied). The load generator shares the
// 2 cores with the server under test, so what it spends per request is taken from the server: node's http client
// costs about 0.4 ms of CPU per request at a service's 200 req/s (bench/load/client-cost.mjs), this about 0.1 ms.
// No Expect header, Retry-After ignored, no think time: the next request leaves as soon as the previous answer is
// complete, on the same socket unless the server closed it.
import net from 'node:net';
import { summarize } from './stats.mjs';

/** Most bytes buffered for one status line + headers block, one chunk-size line or one trailers block. */
export const HEAD_MAX = 64 * 1024;

const STATUS = 0;
const HEADER = 1;
const BODY_LENGTH = 2;
const BODY_UNTIL_CLOSE = 3;
const CHUNK_SIZE = 4;
const CHUNK_DATA = 5;
const CHUNK_END = 6;
const TRAILER = 7;
const DEAD = 8;

/**
 * Incremental HTTP/1.1 response parser: feed it what the socket reads, in any pieces; it calls
 * `onResponse(status, keepAlive, bodyBytes)` once per final response (1xx interim responses are skipped), and
 * `onError(reason)` once when the stream is not HTTP or goes past HEAD_MAX, after which it ignores its input.
 * After a response that closes the connection it ignores its input too.
 */
export class ResponseParser {
  constructor(onResponse, onError) {
    this.onResponse = onResponse;
    this.onError = onError;
    this.state = STATUS;
    this.line = '';
    this.lineBytes = 0;
    this.startResponse();
  }

  startResponse() {
    this.status = 0;
    this.keepAlive = true;
    this.http10 = false;
    this.saidClose = false;
    this.saidKeepAlive = false;
    this.contentLength = -1;
    this.chunked = false;
    this.untilClose = false;
    this.remaining = 0;
    this.bodyBytes = 0;
    this.lineBytes = 0;
  }

  push(buf) {
    let pos = 0;
    const n = buf.length;
    while (pos < n && this.state !== DEAD) {
      const s = this.state;
      if (s === BODY_LENGTH || s === CHUNK_DATA) {
        const take = Math.min(this.remaining, n - pos);
        pos += take;
        this.remaining -= take;
        this.bodyBytes += take;
        if (this.remaining === 0) {
          if (s === BODY_LENGTH) this.complete();
          else this.state = CHUNK_END;
        }
      } else if (s === BODY_UNTIL_CLOSE) {
        this.bodyBytes += n - pos;
        pos = n;
      } else {
        // A line-oriented state: status, header, chunk size, the CRLF after chunk data, trailer.
        const nl = buf.indexOf(10, pos);
        const stop = nl === -1 ? n : nl;
        this.lineBytes += stop - pos + (nl === -1 ? 0 : 1);
        if (this.lineBytes > HEAD_MAX) return this.fail(`more than ${HEAD_MAX} bytes of ${s === CHUNK_SIZE ? 'chunk-size line' : s === TRAILER ? 'trailers' : 'status line and headers'}`);
        if (stop > pos) this.line += buf.toString('latin1', pos, stop);
        if (nl === -1) return;
        pos = nl + 1;
        let line = this.line;
        this.line = '';
        if (line.endsWith('\r')) line = line.slice(0, -1);
        this.onLine(line);
      }
    }
  }

  /** The socket ended: completes a close-delimited body; says whether that made a response. */
  finish() {
    if (this.state !== BODY_UNTIL_CLOSE) return false;
    this.keepAlive = false;
    this.complete();
    return true;
  }

  onLine(line) {
    switch (this.state) {
      case STATUS: {
        if (line === '' && this.lineBytes <= 2) {
          this.lineBytes = 0; // a stray empty line between responses is tolerated
          return;
        }
        const m = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/.exec(line);
        if (!m) return this.fail(`not an HTTP/1.x status line: ${JSON.stringify(line.slice(0, 80))}`);
        this.status = Number(m[2]);
        this.http10 = m[1] === '0';
        this.state = HEADER;
        return;
      }
      case HEADER:
        if (line === '') return this.headersDone();
        return this.header(line);
      case CHUNK_SIZE: {
        const semi = line.indexOf(';'); // chunk extensions are ignored
        const hex = (semi === -1 ? line : line.slice(0, semi)).trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return this.fail(`bad chunk size ${JSON.stringify(line.slice(0, 80))}`);
        const size = parseInt(hex, 16);
        this.lineBytes = 0;
        if (size === 0) this.state = TRAILER;
        else {
          this.remaining = size;
          this.state = CHUNK_DATA;
        }
        return;
      }
      case CHUNK_END:
        if (line !== '') return this.fail('chunk data not followed by CRLF');
        this.lineBytes = 0;
        this.state = CHUNK_SIZE;
        return;
      case TRAILER:
        if (line === '') return this.complete();
        if (line.indexOf(':') <= 0) return this.fail(`bad trailer line ${JSON.stringify(line.slice(0, 80))}`);
        return;
    }
  }

  header(line) {
    const colon = line.indexOf(':');
    if (colon <= 0) return this.fail(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    // Only three headers matter; the length test spares lower-casing the others.
    if (colon !== 14 && colon !== 10 && colon !== 17) return;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) return this.fail(`bad content-length ${JSON.stringify(value)}`);
      const len = Number(value);
      if (this.contentLength !== -1 && this.contentLength !== len) return this.fail('two different content-length headers');
      this.contentLength = len;
    } else if (name === 'connection') {
      for (const token of value.toLowerCase().split(',')) {
        const t = token.trim();
        if (t === 'close') this.saidClose = true;
        else if (t === 'keep-alive') this.saidKeepAlive = true;
      }
    } else if (name === 'transfer-encoding') {
      // The body is chunked when chunked is the last coding; any other last coding means "until close" (RFC 9112 6.3).
      const codings = value.toLowerCase().split(',');
      if (codings[codings.length - 1].trim() === 'chunked') this.chunked = true;
      else this.untilClose = true;
    }
  }

  headersDone() {
    const st = this.status;
    this.lineBytes = 0;
    this.keepAlive = !this.saidClose && (!this.http10 || this.saidKeepAlive); // HTTP/1.0 closes unless it says keep-alive
    if (st < 200) {
      if (st === 101) return this.fail('101 Switching Protocols to a POST');
      this.startResponse(); // 100 Continue, 102, 103: an interim response, the final one follows
      this.state = STATUS;
      return;
    }
    if (st === 204 || st === 304) return this.complete();
    if (this.chunked) this.state = CHUNK_SIZE;
    else if (this.untilClose || this.contentLength === -1) {
      this.keepAlive = false;
      this.state = BODY_UNTIL_CLOSE;
    } else if (this.contentLength === 0) this.complete();
    else {
      this.remaining = this.contentLength;
      this.state = BODY_LENGTH;
    }
  }

  complete() {
    const { status, keepAlive, bodyBytes } = this;
    this.startResponse();
    this.state = keepAlive ? STATUS : DEAD;
    this.onResponse(status, keepAlive, bodyBytes);
  }

  fail(reason) {
    this.state = DEAD;
    this.line = '';
    this.onError(reason);
  }
}

/**
 * One level of impolite load: `users` connections join evenly over `rampS` seconds, then run `seconds` more;
 * the same report as the polite runLevel (client.mjs), plus `reconnects` (sockets opened after each connection's
 * first). A request dropped by the socket (error, close before a complete answer, a protocol error) counts in
 * `dropped`; one unanswered after `timeoutMs` in `timeouts` (its socket is destroyed, the connection reconnects).
 */
export async function runRawLevel({ url, users, seconds, body, contentType, path = '/v1/predict', onTick, rampS = 1, timeoutMs = 30_000 }) {
  const target = new URL(path, url);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const port = Number(target.port) || 80;
  const head = `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`;
  const request = Buffer.concat([Buffer.from(head, 'latin1'), body]);
  const byStatus = {};
  const okLat = [];
  const rejectLat = [];
  const rampRejectLat = [];
  let dropped = 0;
  let timeouts = 0;
  let reconnects = 0;
  let completedInWindow = 0;
  let busy = 0;
  let finished = false;
  let resolveDone;
  const done = new Promise((res) => (resolveDone = res));
  const t0 = performance.now();
  const steady = t0 + rampS * 1000;
  const end = steady + seconds * 1000;

  const record = (status, start) => {
    const now = performance.now();
    const ms = now - start;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const inWindow = start >= steady;
    if (status === 200) {
      if (inWindow) okLat.push(ms);
      if (now >= steady && now <= end) completedInWindow++;
    } else if (status === 429 || status === 503) (inWindow ? rejectLat : rampRejectLat).push(ms);
  };

  const stop = () => {
    if (finished) return;
    finished = true;
    clearInterval(tick);
    for (const c of conns) {
      clearTimeout(c.join);
      c.socket?.destroy();
      c.socket = null;
    }
    resolveDone();
  };

  /** The request of `c` is over (answered, dropped or timed out): send the next one, or stop when all are over. */
  const next = (c) => {
    c.busy = false;
    busy--;
    send(c);
  };

  const send = (c) => {
    if (finished) return;
    const now = performance.now();
    if (now >= end) {
      if (busy === 0) stop();
      return;
    }
    c.busy = true;
    busy++;
    c.sentAt = now;
    c.answerBytes = 0;
    c.retried = false;
    write(c);
  };

  const write = (c) => {
    if (!c.socket) connect(c);
    c.socket.write(request);
  };

  /** Forgets the socket of `c` and destroys it; its later events are then ignored. */
  const drop = (c) => {
    const s = c.socket;
    c.socket = null;
    s?.destroy();
  };

  const connect = (c) => {
    if (c.connects++ > 0) reconnects++;
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    c.socket = socket;
    c.answered = 0; // complete answers on this socket
    let answer = -1; // the status completed by the current read, -1 when none
    let protocolError = false;
    const parser = new ResponseParser(
      (status) => {
        if (!c.busy || answer !== -1) protocolError = true; // an answer to nothing: not a server to trust
        else {
          answer = status;
          record(status, c.sentAt);
        }
      },
      () => (protocolError = true),
    );
    socket.on('data', (chunk) => {
      if (c.socket !== socket) return;
      if (c.busy) c.answerBytes += chunk.length;
      parser.push(chunk);
      const status = answer;
      answer = -1;
      if (protocolError) {
        // Not HTTP, too large, or an answer to no request: the socket goes, and counts as a socket error even when
        // the outstanding request had its answer just before.
        drop(c);
        dropped++;
        if (c.busy) next(c);
        return;
      }
      if (status === -1) return;
      c.answered++;
      if (parser.state === DEAD) drop(c); // the server said close: the next request reconnects
      next(c);
    });
    socket.on('error', () => {}); // 'close' follows, and decides
    socket.on('close', () => {
      if (c.socket !== socket) return;
      c.socket = null;
      if (!c.busy) return;
      if (parser.finish()) {
        // A close-delimited body: the close completed the answer (recorded by the parser's callback).
        answer = -1;
        next(c);
        return;
      }
      if (c.answerBytes === 0 && c.answered > 0 && !c.retried) {
        // The server closed a kept-alive socket right after a complete answer, as the next request left: not
        // an error; the request goes again on a fresh socket (once), keeping its start time.
        c.retried = true;
        write(c);
        return;
      }
      dropped++;
      next(c);
    });
  };

  const conns = Array.from({ length: users }, () => ({ socket: null, busy: false, sentAt: 0, answerBytes: 0, answered: 0, retried: false, connects: 0, join: undefined }));
  // One timer for the whole level: the caller's tick, and the scan for requests past their time-out.
  const tick = setInterval(() => {
    onTick?.();
    const now = performance.now();
    for (const c of conns) {
      if (c.busy && now - c.sentAt > timeoutMs) {
        timeouts++;
        drop(c);
        next(c);
      }
    }
    if (now >= end && busy === 0) stop();
  }, 100);
  conns.forEach((c, i) => (c.join = setTimeout(() => send(c), (i / users) * rampS * 1000)));
  await done;
  const elapsedS = (performance.now() - t0) / 1000;
  return { users, elapsedS, byStatus, dropped, timeouts, impolite: true, throughput: completedInWindow / seconds, ok: summarize(okLat), rejected: summarize(rejectLat), rampRejected: summarize(rampRejectLat), rampS, reconnects };
}
