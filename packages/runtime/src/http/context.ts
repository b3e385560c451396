import type { FastifyRequest } from 'fastify';
import { CvoptError, type Logger } from '@cvopt/core';
import type { Permission, Principal } from '../auth.js';
import type { RuntimeConfig } from '../config.js';
import type { MemoryWatch } from '../memory.js';
import type { RuntimeMetrics } from '../metrics.js';
import type { Offload } from '../offload.js';
import type { ModelHost } from '../model.js';
import type { Readiness } from '../readiness.js';
import type { PgRequestLog } from '../request-log.js';
import type { RedisResponseCache } from '../response-cache.js';
import type { Ticket } from '../scheduler.js';
import type { Semaphore } from '../semaphore.js';

/** What every route plugin is given: nothing is built inside a route file. */
export interface RouteContext {
  config: RuntimeConfig;
  host: ModelHost;
  readiness: Readiness;
  metrics: RuntimeMetrics;
  log: Logger;
  gpu: Semaphore | undefined;
  /** Node's RSS plus ffmpeg children's, for the soft cap. */
  memory: MemoryWatch;
  /** Videos being uploaded or decoded now (bounded by video.maxConcurrent at admission). */
  videos: { active: number };
  /** The worker thread for BMP decoding and KServe bodies. */
  offload: Offload;
  /** Durable request log in PostgreSQL (off when absent). */
  requestLog?: PgRequestLog | undefined;
  /** Answers to identical images shared by replicas in Redis (off when absent). */
  responseCache?: RedisResponseCache | undefined;
  /** Recorded with each request-log row (the artifact's model sha256 when known). */
  modelVersion?: string | undefined;
}

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
    /** Errors in the Open Inference Protocol's shape, `{"error": "<message>"}`. */
    v2?: boolean;
  }
}

export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/bmp', 'image/x-ms-bmp'];
export const VIDEO_TYPES = ['video/mp4', 'video/webm', 'video/quicktime', 'video/x-msvideo', 'video/x-matroska', 'application/octet-stream'];

export const mediaType = (req: FastifyRequest): string => (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

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
 * What is left of the request's deadline once its body is read and decoded. A slow upload or decode spends the
 * same budget as the queue, so an accepted answer never arrives long after its deadline.
 */
export function remainingMs(req: FastifyRequest): number {
  const left = req.deadlineAt - performance.now();
  if (left <= 0) {
    throw new CvoptError('DEADLINE_EXCEEDED', 'the deadline passed while the request body was received and decoded', {
      hint: 'retry after the Retry-After delay, send smaller images, or allow a longer deadline (X-Deadline-Ms)',
      retryAfterS: 1,
    });
  }
  return left;
}
