import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CvoptError } from '@cvopt/core';
import { KeyStore, authorize, keyFromHeaders } from '../auth.js';
import { authEnabled } from '../config.js';
import { errorBody, httpErrorToCvopt } from '../errors.js';
import type { RequestLimiter } from '../rate-limit.js';
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
  const { config, host, readiness, metrics, log } = ctx;
  const keys = new KeyStore(config.auth.keys);
  const needAuth = authEnabled(config);
  let rss = process.memoryUsage.rss();
  const rssTimer = setInterval(() => (rss = process.memoryUsage.rss()), 200);
  rssTimer.unref();
  app.addHook('onClose', async () => clearInterval(rssTimer));
  const rssCap = config.rssSoftCapMb * 1024 * 1024;

  app.decorateRequest('startedAt', 0);
  app.decorateRequest('deadlineAt', Infinity);
  app.decorateRequest('principal', undefined);
  app.decorateRequest('ticket', undefined);
  app.decorateRequest('abort', undefined);

  // Bodies: images raw, multipart and JSON size-capped by bodyLimit; video streamed to disk by its handler.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser(VIDEO_TYPES, (_req, payload, done) => done(null, payload));

  // Expect: 100-continue: the interim 100 is sent only after admission (end of onRequest), so a refused client
  // never uploads its body; Node then closes that connection, as RFC 9110 requires when the body is not read.
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));

  const gate = (req: FastifyRequest, reply: FastifyReply): void => {
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
    const refusal = readiness.refusal();
    if (refusal) throw refusal;
    o.limiter.take(req.principal?.name ?? req.ip);
    if (rss > rssCap) {
      throw new CvoptError('OVERLOADED', `memory use ${Math.round(rss / 2 ** 20)} MiB is above the soft cap of ${config.rssSoftCapMb} MiB`, {
        hint: 'retry shortly; the service sheds load instead of running out of memory',
        retryAfterS: 1,
      });
    }
    const deadline = requestDeadline(req, config.sloMs);
    const ticket = host.current.scheduler.admit(deadline.ms, { strict: deadline.strict });
    req.deadlineAt = req.startedAt + deadline.ms;
    req.ticket = ticket;
    const abort = new AbortController();
    req.abort = abort;
    // 'close' fires when the answer is sent or the client goes away; either way the slot is free again.
    reply.raw.once('close', () => {
      ticket.release();
      if (!reply.raw.writableFinished) abort.abort();
    });
  };

  app.addHook('onRequest', async (req, reply) => {
    gate(req, reply);
    if (/100-continue/i.test(String(req.headers.expect ?? ''))) reply.raw.writeContinue();
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { route, method: req.method, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    metrics.latency.observe((performance.now() - req.startedAt) / 1000, labels);
  });

  app.setErrorHandler(async (e, req, reply) => {
    const err = httpErrorToCvopt(e);
    const status = err.httpStatus;
    if (status === 429 || status === 503 || status === 499) metrics.rejections.inc({ reason: err.code });
    if (status >= 500 && status !== 503) log.error({ err: e, url: req.url }, 'request failed');
    if (err.retryAfterS !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterS))));
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
