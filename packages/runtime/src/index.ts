export { buildApp, deadlineOf, redactedConfig, IMAGE_TYPES, VIDEO_TYPES, type AppOptions } from './app.js';
export { Readiness, type ReadyState } from './readiness.js';
export type { RouteContext } from './http/context.js';
export {
  RuntimeConfigSchema,
  RoleSchema,
  loadRuntimeConfig,
  parseRuntimeConfig,
  applyEnvOverrides,
  authEnabled,
  CONFIG_FILE_NAMES,
  SERVABLE_ENGINE_IDS,
  providerOf,
  type RuntimeConfig,
  type RuntimeConfigInput,
  type Role,
} from './config.js';
export { Scheduler, type SchedulerOptions, type SubmitOptions, type Ticket, type BatchRunner } from './scheduler.js';
export { decideBatch, type BatchPolicy, type BatchDecision } from './batcher.js';
export { Semaphore } from './semaphore.js';
export { RateLimiter, rateLimiterFor, type RequestLimiter } from './rate-limit.js';
export { RedisRateLimiter, type RedisLimiterOptions } from './redis-rate-limit.js';
export { RedisResponseCache, type ResponseCacheOptions } from './response-cache.js';
export { PgRequestLog, type RequestLogOptions, type RequestLogRow } from './request-log.js';
export { KeyStore, roleAllows, keyFromHeaders, authorize, type Permission, type Principal } from './auth.js';
export { RuntimeMetrics, Counter, Gauge, Histogram } from './metrics.js';
export { parseMultipart, filePart, type FormPart } from './multipart.js';
export { ModelHost, loadModel, resolveModelSource, splitBatch, packBatch, type LoadedModel, type ModelSource } from './model.js';
export { startServer, type ServerHandle, type StartOptions } from './server.js';
