import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { authEnabled, type RuntimeConfig } from '../config.js';
import type { RouteContext } from '../http/context.js';
import type { ModelHost } from '../model.js';
import * as S from '../schemas.js';

/** What is served (engineer+) and the admin routes: the effective config and an atomic reload. */
export function modelRoutes(app: FastifyInstance, { config, host }: RouteContext): void {
  app.get('/v1/model', { schema: S.model, config: { permission: 'model' } }, async () => describeModel(host, config));
  app.get('/v1/config', { schema: S.config, config: { permission: 'admin' } }, async () => redactedConfig(config));
  app.post('/v1/admin/reload', { schema: S.reload, config: { permission: 'admin' } }, async () => {
    const m = await host.reload();
    return { model: m.manifest.name, generation: m.generation, loadedAt: m.loadedAt, warmupMs: m.warmupMs };
  });
}

function describeModel(host: ModelHost, config: RuntimeConfig) {
  const m = host.current;
  // No server paths or secrets: provenance keeps hashes, dates and parity; the source is named by its file only.
  const { provenance, ...manifest } = m.manifest;
  const { source, trainingRun: _t, ...kept } = provenance;
  return {
    manifest: { ...manifest, provenance: { ...kept, ...(source ? { source: basename(source) } : {}) } },
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
  // Not one character of a key: a prefix narrows a guess and identifies the key across logs.
  const { tempDir: _d, ...video } = config.video;
  return { ...config, video, redis: { ...config.redis, url: redactUrl(config.redis.url) }, requestLog: { ...config.requestLog, url: redactUrl(config.requestLog.url) }, auth: { enabled: authEnabled(config), keys: config.auth.keys.map((k) => ({ name: k.name, role: k.role, key: '<redacted>' })) } };
}
