import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { Transform, type Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CvoptError, createLogger, type Logger } from '@cvopt/core';
import { KeyStore, authorize, keyFromHeaders, type Permission, type Principal } from './auth.js';
import { authEnabled, type RuntimeConfig } from './config.js';
import { errorBody, httpErrorToCvopt } from './errors.js';
import { RuntimeMetrics } from './metrics.js';
import { filePart, parseMultipart } from './multipart.js';
import type { LoadedModel, ModelHost } from './model.js';
import { buildOpenApi, routeDoc, type RouteDoc } from './openapi.js';
import { predictImage, runVideo } from './pipeline.js';
import { RateLimiter, type RequestLimiter } from './rate-limit.js';
import type { PgRequestLog } from './request-log.js';
import type { RedisResponseCache } from './response-cache.js';
import type { Ticket } from './scheduler.js';
import type { Semaphore } from './semaphore.js';
import * as S from './schemas.js';

/** Whether the service still takes work; SIGTERM flips it and /readyz follows. */
export class Lifecycle {
  draining = false;
}

export interface AppOptions {
  config: RuntimeConfig;
  host: ModelHost;
  metrics?: RuntimeMetrics;
  lifecycle?: Lifecycle;
  gpu?: Semaphore;
  log?: Logger;
  /** Rate limiter (default: in-process token buckets from config.rateLimit). */
  limiter?: RequestLimiter;
  /** Durable request log (off when absent). */
  requestLog?: PgRequestLog;
  /** Answers to identical images shared by replicas (off when absent). */
  responseCache?: RedisResponseCache;
  /** Recorded with each request-log row (the artifact's model sha256 when known). */
  modelVersion?: string;
}

export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/bmp', 'image/x-ms-bmp'];
export const VIDEO_TYPES = ['video/mp4', 'video/webm', 'video/quicktime', 'video/x-msvideo', 'video/x-matroska', 'application/octet-stream'];

declare module 'fastify' {
  interface FastifyRequest {
    startedAt: number;
    /** When the request's deadline runs out (performance.now() clock), fixed at arrival. */
    deadlineAt: number;
    principal: Principal | undefined;
    ticket: Ticket | undefined;
    abort: AbortController | undefined;
    /** Detections in the answer, for the request log. */
    detections: number | undefined;
  }
  interface FastifyContextConfig {
    permission?: Permission;
    /** Work that goes through the model queue: admitted (or refused) on arrival, before the body is read. */
    admits?: boolean;
  }
}

const mediaType = (req: FastifyRequest) => (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

/** The deadline in ms: the configured SLO, lowered (never raised) by X-Deadline-Ms or ?deadline_ms=. */
export function deadlineOf(req: FastifyRequest, sloMs: number): number {
  return requestDeadline(req, sloMs).ms;
}

/** The deadline and whether the client chose it (a client's own deadline is held strictly at admission). */
export function requestDeadline(req: FastifyRequest, sloMs: number): { ms: number; strict: boolean } {
  const fromHeader = req.headers['x-deadline-ms'];
  const fromQuery = (req.query as Record<string, unknown> | undefined)?.deadline_ms;
  let d = sloMs;
  let strict = false;
  for (const [field, raw] of [
    ['X-Deadline-Ms', fromHeader],
    ['deadline_ms', fromQuery],
  ] as const) {
    if (raw === undefined) continue;
    const n = Number(Array.isArray(raw) ? raw[0] : raw);
    if (!Number.isFinite(n) || n <= 0) {
      throw new CvoptError('INVALID_ARGUMENT', `${field} must be a positive number of milliseconds, got "${String(raw)}"`, { where: { field } });
    }
    d = Math.min(d, n);
    strict = true;
  }
  return { ms: d, strict };
}

/**
 * The service as a Fastify app. Nothing here listens: server.ts does, tests call listen({port: 0}) themselves.
 * Order per request: onRequest (drain check, auth, rate limit, memory cap, admission) before any body byte is
 * read, so refusals are immediate; then the body parser; then the handler.
 */
export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { config, host } = o;
  const metrics = o.metrics ?? new RuntimeMetrics();
  const lifecycle = o.lifecycle ?? new Lifecycle();
  const log = o.log ?? createLogger('cvopt-runtime');
  const keys = new KeyStore(config.auth.keys);
  const needAuth = authEnabled(config);
  const limiter = o.limiter ?? new RateLimiter(config.rateLimit.perSecond, config.rateLimit.burst);
  let rss = process.memoryUsage.rss();
  const rssTimer = setInterval(() => (rss = process.memoryUsage.rss()), 200);
  rssTimer.unref();
  const rssCap = config.rssSoftCapMb * 1024 * 1024;

  const app = Fastify({
    bodyLimit: config.bodyLimitBytes,
    logger: false,
    // Long uploads and streamed video answers must not be cut by Node's default request timeout.
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false } },
  });
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

  const docs: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    docs.push(...routeDoc(r));
  });

  const gate = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    req.startedAt = performance.now();
    const cfg = req.routeOptions.config;
    const permission = cfg.permission ?? 'public';
    if (permission === 'public') return;
    if (lifecycle.draining) {
      throw new CvoptError('SHUTTING_DOWN', 'the service is shutting down and accepts no new work', { hint: 'retry against another replica', retryAfterS: 1 });
    }
    if (needAuth) {
      req.principal = keys.authenticate(keyFromHeaders(req.headers));
      authorize(req.principal, permission);
    }
    if (!cfg.admits) return;
    const taken = limiter.take(req.principal?.name ?? req.ip);
    if (taken) await taken; // only a shared (Redis) limiter answers asynchronously
    if (lifecycle.draining) {
      throw new CvoptError('SHUTTING_DOWN', 'the service is shutting down and accepts no new work', { hint: 'retry against another replica', retryAfterS: 1 });
    }
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
    await gate(req, reply);
    if (/100-continue/i.test(String(req.headers.expect ?? ''))) reply.raw.writeContinue();
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = { route, method: req.method, status: String(reply.statusCode) };
    metrics.requests.inc(labels);
    const seconds = (performance.now() - req.startedAt) / 1000;
    metrics.latency.observe(seconds, labels);
    if (o.requestLog && route !== '/healthz' && route !== '/readyz' && route !== '/metrics') {
      o.requestLog.record({
        at: new Date(),
        keyId: req.principal?.name ?? null,
        route,
        method: req.method,
        status: reply.statusCode,
        latencyMs: seconds * 1000,
        model: host.ready ? host.current.manifest.name : '',
        modelVersion: o.modelVersion ?? (host.ready ? String(host.current.generation) : ''),
        detections: req.detections ?? null,
      });
    }
  });

  app.setErrorHandler(async (e, req, reply) => {
    const err = httpErrorToCvopt(e);
    const status = err.httpStatus;
    if (status === 429 || status === 503 || status === 499) metrics.rejections.inc({ reason: err.code });
    if (status >= 500 && status !== 503) log.error({ err: e, url: req.url }, 'request failed');
    if (err.retryAfterS !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterS))));
    return reply.code(status).send(errorBody(err));
  });

  app.setNotFoundHandler(async (req, reply) => {
    const err = new CvoptError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { hint: 'see /openapi.json for the endpoints' });
    return reply.code(404).send(errorBody(err));
  });

  // ---- operations ----
  app.get('/healthz', { schema: S.healthz }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: S.readyz }, async (_req, reply) => {
    const ready = host.ready && !lifecycle.draining;
    return reply.code(ready ? 200 : 503).send({ ready, state: lifecycle.draining ? 'draining' : host.ready ? 'ready' : 'loading' });
  });
  app.get('/metrics', { schema: S.metrics, config: { permission: 'metrics' } }, async (_req, reply) => {
    return reply.type('text/plain; version=0.0.4').send(metrics.render());
  });
  app.get('/openapi.json', { schema: S.openapi }, async () => buildOpenApi(docs, { title: 'cvopt inference service', version: '1' }));
  app.get('/v1/model', { schema: S.model, config: { permission: 'model' } }, async () => describeModel(host, config));
  app.get('/v1/config', { schema: S.config, config: { permission: 'admin' } }, async () => redactedConfig(config));
  app.post('/v1/admin/reload', { schema: S.reload, config: { permission: 'admin' } }, async () => {
    const m = await host.reload();
    return { model: m.manifest.name, generation: m.generation, loadedAt: m.loadedAt, warmupMs: m.warmupMs };
  });

  // ---- prediction ----
  app.post('/v1/predict', { schema: S.predict, config: { permission: 'predict', admits: true } }, async (req, reply) => {
    const image = imageFromBody(req);
    const model = host.current;
    const cacheKey = o.responseCache?.keyOf(image, model.generation);
    if (cacheKey) {
      const cached = await o.responseCache!.get(cacheKey);
      if (cached) {
        req.detections = cached.detections?.length;
        void reply.header('x-cache', 'hit');
        return { ...cached, timeMs: Math.round((performance.now() - req.startedAt) * 100) / 100 };
      }
    }
    // Decoding waits for the next turn of the event loop: in a burst, every request already read gets its
    // admission answer (and refusals go out) before any admitted one spends the thread on its image.
    await yieldToIo();
    const answer = await predictImage(image, model, host, config, {
      signal: req.abort!.signal,
      ticket: req.ticket!,
      deadlineMs: () => remainingMs(req),
      // The wait for a decode slot is queueing, which admission already estimates from the queue; only the
      // request's own work before the queue (body, decode, letterbox) is "prep".
      onPrepared: (slotWaitMs) => model.scheduler.observePrep(performance.now() - req.startedAt - slotWaitMs),
      timeMs: () => performance.now() - req.startedAt,
    });
    req.detections = answer.detections?.length;
    if (cacheKey) o.responseCache!.set(cacheKey, answer);
    return answer;
  });

  app.post('/v1/predict/video', { schema: S.predictVideo, config: { permission: 'predict', admits: true } }, async (req, reply) => {
    const type = mediaType(req);
    if (!VIDEO_TYPES.includes(type)) {
      throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `content type "${type || '(none)'}" is not a video type for /v1/predict/video`, {
        where: { field: 'content-type' },
        hint: `send the file raw with one of: ${VIDEO_TYPES.join(', ')}`,
      });
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > config.video.maxBytes) throw tooBig(config.video.maxBytes);
    const dir = await mkdtemp(join(tmpdir(), 'cvopt-video-'));
    try {
      const file = join(dir, `upload-${randomUUID()}`);
      await saveCapped(req.body as Readable, file, config.video.maxBytes);
      const model = host.current;
      const signal = req.abort!.signal;
      const frames = runVideo(file, model, host, config, { signal, ticket: req.ticket!, deadlineMs: config.sloMs });
      const first = await frames.next();
      // Errors before the first frame (corrupt, too long) still get a proper status code and JSON body.
      reply.type('application/x-ndjson');
      reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (!first.done) reply.raw.write(`${JSON.stringify(first.value)}\n`);
      try {
        for (let f = await frames.next(); !f.done; f = await frames.next()) {
          if (!reply.raw.write(`${JSON.stringify(f.value)}\n`)) await new Promise((r) => reply.raw.once('drain', r));
        }
        reply.raw.end(`${JSON.stringify({ done: true })}\n`);
      } catch (e) {
        // Headers are gone: the stream's last line carries the error instead.
        reply.raw.end(`${JSON.stringify(errorBody(httpErrorToCvopt(e)))}\n`);
      }
      return reply;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // ---- Open Inference Protocol (KServe v2) ----
  app.get('/v2/health/live', { schema: S.v2live }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: S.v2ready }, async (_req, reply) => {
    const ready = host.ready && !lifecycle.draining;
    return reply.code(ready ? 200 : 503).send({ ready });
  });
  app.get('/v2/models/:name', { schema: S.v2metadata, config: { permission: 'model' } }, async (req) => {
    const m = modelNamed(host, (req.params as { name: string }).name);
    return v2Metadata(m);
  });
  app.get('/v2/models/:name/ready', { schema: S.v2modelReady, config: { permission: 'predict' } }, async (req, reply) => {
    const name = (req.params as { name: string }).name;
    modelNamed(host, name);
    const ready = host.ready && !lifecycle.draining;
    return reply.code(ready ? 200 : 503).send({ name, ready });
  });
  app.post('/v2/models/:name/infer', { schema: S.v2infer, config: { permission: 'predict', admits: true } }, async (req) => {
    const m = modelNamed(host, (req.params as { name: string }).name);
    const body = req.body as S.V2InferRequest;
    const input = body.inputs[0]!;
    const [n, ...sample] = input.shape;
    const per = m.sampleDims.reduce((a, b) => a * b, 1);
    if (input.datatype !== 'FP32' || sample.join(',') !== m.sampleDims.join(',') || !n || n < 1) {
      throw new CvoptError('TENSOR_SHAPE', `input "${input.name}" must be FP32 [N, ${m.sampleDims.join(', ')}], got ${input.datatype} [${input.shape.join(', ')}]`, {
        where: { field: 'inputs.0.shape' },
        hint: 'send the preprocessed NCHW tensor described by GET /v2/models/{name}',
      });
    }
    const flat = Float32Array.from(input.data.flat(Infinity as 1) as number[]);
    if (flat.length !== n * per) {
      throw new CvoptError('TENSOR_SHAPE', `input "${input.name}" holds ${flat.length} values; shape [${input.shape.join(', ')}] needs ${n * per}`, { where: { field: 'inputs.0.data' } });
    }
    const signal = req.abort!.signal;
    const deadlineMs = remainingMs(req);
    const outs = await Promise.all(
      Array.from({ length: n }, (_, i) => host.run(flat.subarray(i * per, (i + 1) * per), { deadlineMs, signal, ticket: req.ticket! }, m)),
    );
    const [, ...outRest] = outs[0]!.dims;
    const data: number[] = [];
    for (const o of outs) for (const v of o.data) data.push(v);
    return {
      model_name: m.manifest.name,
      model_version: String(m.generation),
      ...(body.id !== undefined ? { id: body.id } : {}),
      outputs: [{ name: m.manifest.output.name, datatype: 'FP32', shape: [n, ...outRest], data }],
    };
  });

  app.addHook('onClose', async () => {
    clearInterval(rssTimer);
  });

  metrics.gauge('cvopt_queue_depth', 'requests waiting in the model queue', () => (host.ready ? host.current.scheduler.depth : 0));
  metrics.gauge('cvopt_admitted_requests', 'requests admitted and not yet answered (decoding, queued, running)', () => (host.ready ? host.current.scheduler.admitted : 0));
  metrics.gauge('cvopt_inflight_requests', 'requests inside a running model execution', () => (host.ready ? host.current.scheduler.inFlight : 0));
  metrics.gauge('cvopt_service_time_seconds', 'EWMA of one model execution', () => (host.ready ? host.current.scheduler.serviceMs / 1000 : 0));
  metrics.gauge('cvopt_prepare_time_seconds', 'EWMA of upload + decode + preprocess before the queue', () => (host.ready ? host.current.scheduler.prepMs / 1000 : 0));
  metrics.gauge('cvopt_gpu_slots_in_use', 'GPU tasks running now', () => o.gpu?.inUse ?? 0);
  metrics.gauge('cvopt_gpu_slots_max_observed', 'highest number of GPU tasks ever running at once', () => o.gpu?.maxObserved ?? 0);
  metrics.gauge('cvopt_ready', '1 when the model is loaded, warmed and the service takes work', () => (host.ready && !lifecycle.draining ? 1 : 0));
  metrics.gauge('cvopt_limit', 'configured limits', () => limitGauges(config));

  return app;
}

/**
 * What is left of the request's deadline once its body is read and decoded. A slow upload or decode spends the
 * same budget as the queue, so an accepted answer never arrives long after its deadline.
 */
function remainingMs(req: FastifyRequest): number {
  const left = req.deadlineAt - performance.now();
  if (left <= 0) {
    throw new CvoptError('DEADLINE_EXCEEDED', 'the deadline passed while the request body was received and decoded', {
      hint: 'retry after the Retry-After delay, send smaller images, or allow a longer deadline (X-Deadline-Ms)',
      retryAfterS: 1,
    });
  }
  return left;
}

function imageFromBody(req: FastifyRequest): Buffer {
  const type = mediaType(req);
  if (IMAGE_TYPES.includes(type)) return req.body as Buffer;
  if (type === 'multipart/form-data') {
    const part = filePart(parseMultipart(req.body as Buffer, req.headers['content-type'] ?? ''));
    if (part.contentType && !IMAGE_TYPES.includes(part.contentType) && part.contentType !== 'application/octet-stream') {
      throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `the uploaded part has content type "${part.contentType}", not an image`, {
        where: { field: part.name ?? 'file' },
        hint: 'upload a JPEG, PNG, WebP or BMP image',
      });
    }
    return part.data;
  }
  if (type === 'application/json') {
    const body = req.body as { image?: unknown } | null;
    if (!body || typeof body.image !== 'string' || body.image.length === 0) {
      throw new CvoptError('INVALID_ARGUMENT', 'the JSON body needs "image": a base64-encoded image', { where: { field: 'body.image' } });
    }
    const b64 = body.image.replace(/^data:[^;]+;base64,/, '');
    if (!/^[A-Za-z0-9+/=\s_-]+$/.test(b64)) {
      throw new CvoptError('INVALID_ARGUMENT', '"image" is not valid base64', { where: { field: 'body.image' }, hint: 'encode the file bytes with base64' });
    }
    return Buffer.from(b64, 'base64');
  }
  throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `content type "${type || '(none)'}" is not accepted by /v1/predict`, {
    where: { field: 'content-type' },
    hint: `send one of ${IMAGE_TYPES.join(', ')}, multipart/form-data or application/json {"image": "<base64>"}`,
  });
}

function tooBig(max: number): CvoptError {
  return new CvoptError('PAYLOAD_TOO_LARGE', `the video upload exceeds the limit of ${max} bytes`, { where: { field: 'body' }, hint: 'send a shorter clip, or raise video.maxBytes' });
}

/** Stream an upload to disk, failing as soon as it passes `max` bytes. */
async function saveCapped(body: Readable, file: string, max: number): Promise<void> {
  let n = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > max) cb(tooBig(max));
      else cb(null, chunk);
    },
  });
  await streamPipeline(body, counter, createWriteStream(file));
  if (n === 0) throw new CvoptError('VIDEO_INVALID', 'the video upload is empty', { where: { field: 'body' } });
}

function modelNamed(host: ModelHost, name: string) {
  const m = host.current;
  if (name !== m.manifest.name) {
    throw new CvoptError('NOT_FOUND', `no model named "${name}" here`, { hint: `this service serves "${m.manifest.name}"` });
  }
  return m;
}

const v2Dim = (d: number | string) => (typeof d === 'number' ? d : -1);

function v2Metadata(m: LoadedModel) {
  return {
    name: m.manifest.name,
    versions: [String(m.generation)],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: m.info.inputName, datatype: 'FP32', shape: m.info.inputDims.map(v2Dim) }],
    outputs: [{ name: m.manifest.output.name, datatype: 'FP32', shape: m.manifest.output.shape.map(v2Dim) }],
  };
}

function describeModel(host: ModelHost, config: RuntimeConfig) {
  const m = host.current;
  return {
    manifest: m.manifest,
    engine: m.info,
    generation: m.generation,
    loadedAt: m.loadedAt,
    warmupMs: m.warmupMs,
    scheduling: {
      queueMax: config.queueMax,
      concurrency: config.concurrency,
      maxBatch: m.info.dynamicBatch ? Math.min(config.batchMax, m.info.maxBatch ?? config.batchMax) : 1,
      batchDelayMs: config.batchDelayMs,
      sloMs: config.sloMs,
    },
  };
}

/** Connection URLs keep their host but never their password. */
const redactUrl = (u: string) => u.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');

export function redactedConfig(config: RuntimeConfig) {
  return { ...config, redis: { ...config.redis, url: redactUrl(config.redis.url) }, requestLog: { ...config.requestLog, url: redactUrl(config.requestLog.url) }, auth: { enabled: authEnabled(config), keys: config.auth.keys.map((k) => ({ name: k.name, role: k.role, key: `${k.key.slice(0, 4)}…` })) } };
}

function limitGauges(c: RuntimeConfig) {
  const l = (name: string, v: number) => ({ labels: { name }, v });
  return [
    l('queue_max', c.queueMax),
    l('concurrency', c.concurrency),
    l('gpu_slots', c.gpuSlots),
    l('batch_max', c.batchMax),
    l('batch_delay_ms', c.batchDelayMs),
    l('slo_ms', c.sloMs),
    l('body_limit_bytes', c.bodyLimitBytes),
    l('max_image_pixels', c.maxImagePixels),
    l('video_max_bytes', c.video.maxBytes),
    l('video_max_seconds', c.video.maxSeconds),
    l('video_max_frames', c.video.maxFrames),
    l('rate_limit_per_second', c.rateLimit.perSecond),
    l('rate_limit_burst', c.rateLimit.burst),
    l('grace_period_ms', c.gracePeriodMs),
    l('rss_soft_cap_bytes', c.rssSoftCapMb * 1024 * 1024),
  ];
}

