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

export function redactedConfig(config: RuntimeConfig) {
  return { ...config, auth: { enabled: authEnabled(config), keys: config.auth.keys.map((k) => ({ name: k.name, role: k.role, key: `${k.key.slice(0, 4)}…` })) } };
}
