import Fastify, { type FastifyInstance } from 'fastify';
import { createLogger, type Logger } from '@cvopt/core';
import type { RuntimeConfig } from './config.js';
import { installGate } from './http/gate.js';
import type { RouteContext } from './http/context.js';
import { MemoryWatch } from './memory.js';
import { Offload } from './offload.js';
import { RuntimeMetrics } from './metrics.js';
import type { ModelHost } from './model.js';
import type { RequestLimiter } from './rate-limit.js';
import type { PgRequestLog } from './request-log.js';
import type { RedisResponseCache } from './response-cache.js';
import { healthRoutes } from './routes/health.js';
import { kserveRoutes } from './routes/kserve.js';
import { metricsRoutes } from './routes/metrics.js';
import { modelRoutes } from './routes/model.js';
import { predictRoutes } from './routes/predict.js';
import { videoRoutes } from './routes/video.js';
import type { Semaphore } from './semaphore.js';

export { IMAGE_TYPES, VIDEO_TYPES, deadlineOf } from './http/context.js';
export { redactedConfig } from './routes/model.js';

export interface AppOptions {
  config: RuntimeConfig;
  /** The model host; its readiness state machine is what every probe and the gate read. */
  host: ModelHost;
  /** Per-client request limiter (see rateLimiterFor); passed in, never built here. */
  limiter: RequestLimiter;
  metrics?: RuntimeMetrics;
  gpu?: Semaphore;
  log?: Logger;
  /** Durable request log (off when absent). */
  requestLog?: PgRequestLog;
  /** Answers to identical images shared by replicas (off when absent). */
  responseCache?: RedisResponseCache;
  /** Recorded with each request-log row (the artifact's model sha256 when known). */
  modelVersion?: string;
}

/**
 * The service as a Fastify app: the gate (parsers, admission, errors) and one plugin per route group. Nothing
 * here listens: server.ts does, tests call listen({port: 0}) themselves. Order per request: onRequest (readiness,
 * auth, rate limit, memory cap, admission) before any body byte is read, so refusals are immediate; then the body
 * parser; then the handler.
 */
export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { config, host } = o;
  const ctx: RouteContext = {
    config,
    host,
    readiness: host.readiness,
    metrics: o.metrics ?? new RuntimeMetrics(),
    log: o.log ?? createLogger('cvopt-runtime'),
    gpu: o.gpu,
    memory: new MemoryWatch(),
    videos: { active: 0 },
    offload: new Offload(),
    requestLog: o.requestLog,
    responseCache: o.responseCache,
    modelVersion: o.modelVersion,
  };
  const app = Fastify({
    bodyLimit: config.bodyLimitBytes,
    logger: false,
    // Long uploads and streamed video answers must not be cut by Node's default request timeout.
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Malformed HTTP (bad request line, oversized headers, header timeout) answered in the catalogue's shape too.
    clientErrorHandler: (err, socket) => {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
      const [status, code, message] =
        e.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'UPLOAD_TOO_SLOW', 'the request headers did not arrive in time']
          : e.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'INVALID_ARGUMENT', 'the request headers are too large']
            : [400, 'INVALID_ARGUMENT', 'the request is not valid HTTP/1.1'];
      const body = JSON.stringify({ error: { code, message, hint: 'use a standard HTTP client' } });
      socket.end(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nConnection: close\r\nContent-Type: application/json\r\nX-Cvopt-Error-Code: ${code}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    },
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false } },
  });
  installGate(app, ctx, { limiter: o.limiter });
  metricsRoutes(app, ctx); // first: it collects the other routes for /openapi.json
  healthRoutes(app, ctx);
  modelRoutes(app, ctx);
  await app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    predictRoutes(scope, ctx);
  });
  videoRoutes(app, ctx);
  // KServe bodies are read as bytes (JSON or binary tensors) and decoded in the offload worker, not by Fastify's parser.
  await app.register(async (v2) => {
    v2.removeAllContentTypeParsers();
    v2.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    kserveRoutes(v2, ctx);
  });
  app.addHook('onClose', async () => ctx.offload.close());
  await ctx.offload.warm();
  return app;
}
