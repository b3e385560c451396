import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CvoptError, shedLoad } from '@cvopt/core';
import { KeyStore, authorize, keyFromHeaders } from '../auth.js';
import { authEnabled } from '../config.js';
import { errorBody, httpErrorToCvopt, isClientGone } from '../errors.js';
import type { RequestLimiter } from '../rate-limit.js';
import type { Ticket } from '../scheduler.js';
import type { RuntimeConfig } from '../config.js';
import type { RuntimeMetrics } from '../metrics.js';
import { IMAGE_TYPES, VIDEO_TYPES, requestDeadline, type RouteContext } from './context.js';

export interface GateOptions {
  /** Per-client request limiter (token buckets by default); passed in so a deployment can swap it. */
  limiter: RequestLimiter;
}

/**
 * Everything that runs around the routes: body parsers, the admission gate (onRequest: readiness, auth, rate
 * limit, memory cap, queue admission — before a single body byte is read), metrics per answer and the one error
 * handler that turns every failure into a catalogue body.
 */
export function installGate(app: FastifyInstance, ctx: RouteContext, o: GateOptions): void {
  const { config, host, readiness, metrics, log, memory } = ctx;
  const keys = new KeyStore(config.auth.keys);
  const needAuth = authEnabled(config);
  app.addHook('onClose', async () => memory.close());
  const rssCap = config.rssSoftCapMb * 1024 * 1024;

  app.decorateRequest('startedAt', 0);
  app.decorateRequest('deadlineAt', Infinity);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('ticket', undefined);
  app.decorateRequest('abort', undefined);
  app.decorateRequest('detections', undefined);

  // Bodies: images raw, multipart and JSON size-capped by bodyLimit; video streamed to disk by its handler.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser(VIDEO_TYPES, (_req, payload, done) => done(null, payload));

  // Expect: 100-continue: the interim 100 is sent only after admission (end of onRequest), so a refused client
  // never uploads its body; Node then closes that connection, as RFC 9110 requires when the body is not read.
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));

  // Slowloris on headers, and connections per address.
  app.server.headersTimeout = config.upload.headersTimeoutMs;
  const connections = new Map<string, number>();
  if (config.perClient.maxConnections > 0) {
    app.server.on('connection', (socket: Socket) => {
      const addr = socket.remoteAddress ?? '?';
      const n = (connections.get(addr) ?? 0) + 1;
      if (n > config.perClient.maxConnections) {
        metrics.rejections.inc({ reason: 'TOO_MANY_CONNECTIONS' });
        socket.destroy();
        return;
      }
      connections.set(addr, n);
      socket.once('close', () => {
        const left = (connections.get(addr) ?? 1) - 1;
        if (left <= 0) connections.delete(addr);
        else connections.set(addr, left);
      });
    });
  }
  const uploads = new UploadWatch(config, metrics);
  const admittedBy = new Map<string, number>();

  const gate = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    // A number at once for all but a request that slipped in before its connection's pause held.
    const paced = pacedWaitMs(req);
    const pacedMs = typeof paced === 'number' ? paced : await paced;
    req.startedAt = performance.now();
    const cfg = req.routeOptions.config;
    const permission = cfg.permission ?? 'public';
    if (permission === 'public') return;
    if (readiness.draining) throw readiness.refusal();
    if (needAuth) {
      req.principal = keys.authenticate(keyFromHeaders(req.headers));
      authorize(req.principal, permission);
    }
    if (!cfg.admits) return;
    // A declared length over the limit is refused from the headers: no 100 Continue, no body read.
    const declared = Number(req.headers['content-length'] ?? 0);
    const limit = req.routeOptions.url === '/v1/predict/video' ? config.video.maxBytes : config.bodyLimitBytes;
    if (declared > limit) {
      throw new CvoptError('PAYLOAD_TOO_LARGE', `the request declares ${declared} bytes; the limit is ${limit}`, {
        where: { field: 'content-length' },
        hint: req.routeOptions.url === '/v1/predict/video' ? 'send a shorter clip, or raise video.maxBytes' : 'send a smaller file, or raise bodyLimitBytes',
      });
    }
    const refusal = readiness.refusal();
    if (refusal) throw refusal;
    const client = req.principal?.name ?? req.ip;
    const taken = o.limiter.take(client);
    if (taken) {
      // Only a shared (Redis) limiter answers asynchronously; the state may have moved on meanwhile.
      await taken;
      const late = readiness.refusal();
      if (late) throw late;
    }
    const watch = uploads.begin(req, reply, client);
    const release = () => watch?.end();
    const rss = memory.rss;
    if (rss > rssCap) {
      throw shedLoad('OVERLOADED', `memory use (with video decoders) ${Math.round(rss / 2 ** 20)} MiB is above the soft cap of ${config.rssSoftCapMb} MiB`, {
        hint: 'retry shortly; the service sheds load instead of running out of memory',
        retryAfterS: 1,
      });
    }
    const video = req.routeOptions.url === '/v1/predict/video';
    if (video && ctx.videos.active >= config.video.maxConcurrent) {
      throw shedLoad('QUEUE_FULL', `${ctx.videos.active} videos are being processed (the limit is ${config.video.maxConcurrent})`, {
        hint: 'retry after the Retry-After delay, or raise video.maxConcurrent',
        retryAfterS: 2,
      });
    }
    const held = admittedBy.get(client) ?? 0;
    if (config.perClient.maxAdmitted > 0 && held >= config.perClient.maxAdmitted) {
      release();
      throw shedLoad('RATE_LIMITED', `this client already has ${held} requests admitted (the limit per client is ${config.perClient.maxAdmitted})`, {
        hint: 'wait for answers before sending more, or raise perClient.maxAdmitted',
        retryAfterS: 1,
      });
    }
    const deadline = requestDeadline(req, config.sloMs);
    // A request that sat behind a refusal pause has spent that part of its client's budget already.
    const budgetMs = Math.max(1, deadline.ms - pacedMs);
    let ticket: Ticket;
    try {
      ticket = host.current.scheduler.admit(budgetMs, { strict: deadline.strict });
    } catch (e) {
      release();
      throw e;
    }
    admittedBy.set(client, held + 1);
    reply.raw.once('close', () => {
      const left = (admittedBy.get(client) ?? 1) - 1;
      if (left <= 0) admittedBy.delete(client);
      else admittedBy.set(client, left);
    });
    if (video) {
      ctx.videos.active++;
      reply.raw.once('close', () => ctx.videos.active--);
    }
    req.deadlineAt = req.startedAt + budgetMs;
    req.ticket = ticket;
    const abort = new AbortController();
    req.abort = abort;
    // 'close' fires when the answer is sent or the client goes away; either way the slot is free again.
    reply.raw.once('close', () => {
      watch?.end();
      ticket.release();
      if (!reply.raw.writableFinished) abort.abort();
    });
  };

  app.addHook('onRequest', async (req, reply) => {
    await gate(req, reply);
    if (/100-continue/i.test(String(req.headers.expect ?? ''))) reply.raw.writeContinue();
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { route, method: req.method, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    const seconds = (performance.now() - req.startedAt) / 1000;
    metrics.latency.observe(seconds, labels);
    if (ctx.requestLog && route !== '/healthz' && route !== '/readyz' && route !== '/metrics') {
      ctx.requestLog.record({
        at: new Date(),
        keyId: req.principal?.name ?? null,
        route,
        method: req.method,
        status: reply.statusCode,
        latencyMs: seconds * 1000,
        model: host.ready ? host.current.manifest.name : '',
        modelVersion: ctx.modelVersion ?? (host.ready ? String(host.current.generation) : ''),
        detections: req.detections ?? null,
      });
    }
  });

  app.setErrorHandler(async (e, req, reply) => {
    // A client that left (aborted upload, reset) is no failure of ours: one info line, no stack, nothing to send.
    if (reply.raw.destroyed || req.raw.socket?.destroyed === true || (isClientGone(e) && reply.raw.writableEnded)) {
      metrics.rejections.inc({ reason: 'CANCELLED' });
      log.info({ url: req.url, reason: (e as Error).message }, 'client went away');
      if (!reply.raw.destroyed) reply.raw.destroy();
      return reply;
    }
    const err = httpErrorToCvopt(e);
    const status = err.httpStatus;
    if (status === 429 || status === 503 || status === 499) metrics.rejections.inc({ reason: err.code });
    if (status >= 500 && status !== 503) log.error({ err: e, url: req.url }, 'request failed');
    const closing = bodyCostly(req, config.refusalDrainMaxBytes);
    if (closing) closeAfterAnswer(reply, status, metrics);
    if (err.retryAfterS !== undefined) {
      const retryAfterS = Math.max(1, Math.ceil(err.retryAfterS));
      void reply.header('retry-after', String(retryAfterS));
      if ((status === 429 || status === 503) && config.refusalPauseMs > 0 && !closing) paceConnection(reply, Math.min(config.refusalPauseMs, retryAfterS * 1000));
    }
    // The Open Inference Protocol's error is a bare string; the catalogue code travels in a header for every route.
    void reply.header('x-cvopt-error-code', err.code);
    return reply.code(status).send(req.routeOptions.config?.v2 ? { error: err.message } : errorBody(err));
  });

  app.setNotFoundHandler(async (req, reply) => {
    const err = new CvoptError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { hint: 'see /openapi.json for the endpoints' });
    void reply.header('x-cvopt-error-code', err.code);
    return reply.code(404).send(req.url.startsWith('/v2') ? { error: err.message } : errorBody(err));
  });
}

/**
 * Whether an answer given now would leave a body to skip that costs more than a new connection: the body is not
 * yet read and it declares more than `maxDrain` bytes, or is chunked with no length. Node would otherwise read
 * and discard all of it after the answer to keep the connection alive.
 */
function bodyCostly(req: FastifyRequest, maxDrain: number): boolean {
  if (req.raw.complete || !hasBody(req)) return false;
  const len = req.headers['content-length'];
  if (len === undefined) return true;
  return Number(len) > maxDrain;
}

/**
 * Answer with `Connection: close` and destroy the socket the moment the answer is flushed: the unread body is never
 * read (Node's post-answer drain is scheduled for the next tick; the destroy comes first). A client still sending
 * sees the answer, then a reset — RFC 9110 §9.6 lets a server close instead of reading a body it will not use.
 */
function closeAfterAnswer(reply: FastifyReply, status: number, metrics: RuntimeMetrics): void {
  void reply.header('connection', 'close');
  metrics.unreadCloses.inc({ status: String(status) });
  const socket = reply.raw.socket;
  reply.raw.once('finish', () => socket?.destroy?.());
}

/**
 * A paced connection: refused at `refusedAt`, not to be read again before `until`. Its next request normally waits
 * in the kernel's buffer while the socket is paused (`resumedAt` set when reading resumes). A client that answers
 * faster than the refusal's 'finish' (Node resumes a socket once a response finishes, so the pause can only be set
 * on the turn after) gets its next request read before the pause holds; that request waits in the gate instead.
 * Either way the wait is part of the latency its client sees, so admission charges it to the deadline.
 */
interface Pace {
  refusedAt: number;
  until: number;
  resumedAt?: number;
}
const paces = new WeakMap<Socket, Pace>();

/** A request read within this long of its connection's resume is taken to have been waiting during the pause. */
const RESUMED_READ_MS = 100;

/**
 * Milliseconds the request now being admitted waited behind a refusal pause on its connection; a request that
 * slipped in before the pause held is held here, its socket paused, until the pause would have ended.
 */
function pacedWaitMs(req: FastifyRequest): number | Promise<number> {
  const socket = req.raw.socket;
  const pace = socket ? paces.get(socket) : undefined;
  if (!socket || !pace) return 0;
  paces.delete(socket);
  const now = performance.now();
  if (pace.resumedAt !== undefined) return now - pace.resumedAt < RESUMED_READ_MS ? pace.resumedAt - pace.refusedAt : 0;
  // The pause never held: a request read before its end slipped in; one read after it came on its own time.
  if (now >= pace.until) return 0;
  socket.pause();
  return new Promise((r) =>
    setTimeout(() => {
      if (!socket.destroyed) socket.resume();
      r(performance.now() - pace.refusedAt);
    }, pace.until - now),
  );
}

/**
 * Stop reading this connection for `ms` once the refusal is sent: its next request stays in the kernel's buffer
 * until then. Node resumes a socket when a response finishes, so the pause is set after that, on the next turn.
 */
function paceConnection(reply: FastifyReply, ms: number): void {
  const socket = reply.raw.socket;
  // An injected request (the control plane's project predict route calls the runtime with app.inject) has a
  // stand-in socket that cannot pause: there is no connection to pace.
  if (!socket || typeof socket.pause !== 'function' || typeof socket.resume !== 'function') return;
  const pace: Pace = { refusedAt: performance.now(), until: performance.now() + ms };
  paces.set(socket, pace);
  reply.raw.once('finish', () => {
    setImmediate(() => {
      // Gone, or the next request already came and the gate holds it.
      if (socket.destroyed || paces.get(socket) !== pace) return;
      const left = pace.until - performance.now();
      if (left <= 0) return;
      socket.pause();
      const t = setTimeout(() => {
        pace.resumedAt = performance.now();
        if (!socket.destroyed) socket.resume();
      }, left);
      t.unref();
      socket.once('close', () => clearTimeout(t));
    });
  });
}

/** Whether a request carries a body still to come. */
const hasBody = (req: FastifyRequest) => {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
};

/**
 * Watches request bodies while they arrive: at most `perClient.maxUploads` per client at once, each within its
 * deadline (image, JSON, multipart) and above the minimum rate after the grace period. One timer for all of them.
 */
class UploadWatch {
  private readonly perClient = new Map<string, number>();
  private readonly active = new Set<{ check: (now: number) => void }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: RuntimeConfig,
    private readonly metrics: RuntimeMetrics,
  ) {}

  /** Start watching `req`'s body; undefined when it has none. Throws RATE_LIMITED past the client's cap. */
  begin(req: FastifyRequest, reply: FastifyReply, client: string): { end: () => void } | undefined {
    if (!hasBody(req)) return undefined;
    const { maxUploads } = this.config.perClient;
    const held = this.perClient.get(client) ?? 0;
    if (maxUploads > 0 && held >= maxUploads) {
      throw shedLoad('RATE_LIMITED', `this client already has ${held} uploads in progress (the limit is ${maxUploads})`, {
        hint: 'finish the uploads under way before starting more, or raise perClient.maxUploads',
        retryAfterS: 1,
      });
    }
    this.perClient.set(client, held + 1);
    const { timeoutMs, minBytesPerSecond, graceMs } = this.config.upload;
    const video = req.routeOptions.url === '/v1/predict/video';
    const t0 = performance.now();
    // Bytes read off the socket (not 'data' listeners: those would switch the body to flowing before its parser).
    const socket = req.raw.socket;
    const read0 = socket?.bytesRead ?? 0;
    let done = false;
    const entry = {
      check: (now: number) => {
        const elapsed = now - t0;
        const bytes = (socket?.bytesRead ?? 0) - read0;
        const late = !video && elapsed > timeoutMs;
        const slow = minBytesPerSecond > 0 && elapsed > graceMs && (bytes * 1000) / elapsed < minBytesPerSecond;
        if (!late && !slow) return;
        end();
        this.metrics.rejections.inc({ reason: 'UPLOAD_TOO_SLOW' });
        const err = new CvoptError('UPLOAD_TOO_SLOW', late ? `the request body did not arrive within ${timeoutMs} ms` : `the request body arrives at ${Math.round((bytes * 1000) / elapsed)} bytes/s, below the minimum of ${minBytesPerSecond}`, {
          hint: 'send the whole body at once over a faster link, or raise upload.timeoutMs / upload.minBytesPerSecond',
        });
        // The body will never be read: answer and close the connection (RFC 9110 allows it when the body is unread).
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(408, { 'content-type': 'application/json', connection: 'close', 'x-cvopt-error-code': err.code });
          reply.raw.end(JSON.stringify(errorBody(err)));
        }
        req.raw.socket?.destroySoon?.();
        setTimeout(() => req.raw.socket?.destroy(), 200).unref();
      },
    };
    const end = () => {
      if (done) return;
      done = true;
      this.active.delete(entry);
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left <= 0) this.perClient.delete(client);
      else this.perClient.set(client, left);
      if (this.active.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
    req.raw.once('end', end);
    this.active.add(entry);
    this.timer ??= setInterval(() => {
      const now = performance.now();
      for (const e of [...this.active]) e.check(now);
    }, 250);
    this.timer.unref();
    return { end };
  }
}
