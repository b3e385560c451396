import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLogger, type Logger } from '@cvopt/core';
import { readManifest } from '@cvopt/engines';
import { buildApp } from './app.js';
import { authEnabled, loadRuntimeConfig, type RuntimeConfig, type RuntimeConfigInput } from './config.js';
import { RuntimeMetrics } from './metrics.js';
import { ModelHost, resolveModelSource } from './model.js';
import { rateLimiterFor } from './rate-limit.js';
import { Semaphore } from './semaphore.js';
import type { RequestLimiter } from './rate-limit.js';
import { RedisRateLimiter } from './redis-rate-limit.js';
import { PgRequestLog } from './request-log.js';
import { RedisResponseCache } from './response-cache.js';

export interface StartOptions {
  /** Artifact directory or .onnx file. */
  target: string;
  configFile?: string;
  /** Highest-precedence settings (command-line flags). */
  overrides?: RuntimeConfigInput;
  log?: Logger;
  /** Install SIGTERM/SIGINT handlers that drain and exit (the serve entry does; embedding code may not want it). */
  handleSignals?: boolean;
}

export interface ServerHandle {
  /** A URL that reaches the service from this machine (127.0.0.1 when bound to every interface). */
  url: string;
  /** The address and port really bound, e.g. http://0.0.0.0:8080. */
  listening: string;
  app: FastifyInstance;
  host: ModelHost;
  config: RuntimeConfig;
  /** Stop intake, finish accepted work (up to the grace period), close. Resolves true when nothing was cut off. */
  shutdown(): Promise<boolean>;
}

/**
 * The one place that listens. The port opens before the model loads, so /healthz answers at once and /readyz
 * turns 200 only after load and warm-up.
 */
export async function startServer(o: StartOptions): Promise<ServerHandle> {
  const log = o.log ?? createLogger('cvopt-serve');
  const source = resolveModelSource(o.target);
  const config = loadRuntimeConfig({ ...(o.configFile ? { file: o.configFile } : {}), artifactDir: source.artifactDir, overrides: (o.overrides ?? {}) as Record<string, unknown> });
  readManifest(source.modelPath); // fail before opening a port when model.json is missing or wrong
  const metrics = new RuntimeMetrics();
  const gpu = new Semaphore(config.gpuSlots);
  const host = new ModelHost(source, { config, metrics, gpu, log });
  // Shared state for replicas, both off unless configured (see config: redis, requestLog).
  const limiter: RequestLimiter = config.redis.url
    ? new RedisRateLimiter({ url: config.redis.url, perSecond: config.rateLimit.perSecond, burst: config.rateLimit.burst, keyPrefix: config.redis.keyPrefix, commandTimeoutMs: config.redis.commandTimeoutMs, log })
    : rateLimiterFor(config);
  const requestLog = config.requestLog.url ? new PgRequestLog({ ...config.requestLog, log }) : undefined;
  const modelVersion = artifactModelVersion(source.artifactDir);
  const responseCache =
    config.redis.url && config.redis.responseCacheTtlS > 0
      ? new RedisResponseCache({
          url: config.redis.url,
          keyPrefix: config.redis.keyPrefix,
          commandTimeoutMs: config.redis.commandTimeoutMs,
          ttlS: config.redis.responseCacheTtlS,
          // Same bytes give the same answer only under the same model file, engine and post-processing settings.
          namespace: JSON.stringify({ model: modelVersion ?? source.modelPath, engine: config.engine, detect: config.detect, classify: config.classify }),
          log,
        })
      : undefined;
  const app = await buildApp({
    config, host, metrics, gpu, log, limiter,
    ...(requestLog ? { requestLog } : {}),
    ...(responseCache ? { responseCache } : {}),
    ...(modelVersion ? { modelVersion } : {}),
  });
  await app.listen({ port: config.port, host: config.host, backlog: config.listenBacklog });
  // The address really bound (the port too, when 0 asked for any), and a URL a client on this machine can use.
  const bound = app.server.address() as AddressInfo;
  const hostPart = (h: string) => (h.includes(':') ? `[${h}]` : h);
  const listening = `http://${hostPart(bound.address)}:${bound.port}`;
  const local = bound.address === '0.0.0.0' ? '127.0.0.1' : bound.address === '::' ? '::1' : bound.address;
  const url = `http://${hostPart(local)}:${bound.port}`.replace('[::1]', 'localhost');
  log.info({ listening, auth: authEnabled(config) }, `listening on ${listening}${authEnabled(config) ? '' : ' without API keys'}`);
  try {
    await host.load();
  } catch (e) {
    await app.close();
    await limiter.close?.();
    await requestLog?.close();
    await responseCache?.close();
    metrics.close();
    throw e;
  }

  let shuttingDown: Promise<boolean> | undefined;
  const shutdown = (): Promise<boolean> =>
    (shuttingDown ??= (async () => {
      host.stopIntake();
      log.info({ gracePeriodMs: config.gracePeriodMs }, 'draining: no new work, finishing accepted requests');
      let timer: NodeJS.Timeout | undefined;
      const clean = await Promise.race([
        host.drained().then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), config.gracePeriodMs))),
      ]);
      clearTimeout(timer);
      await app.close();
      if (clean) await host.close();
      await limiter.close?.();
      await requestLog?.close();
      await responseCache?.close();
      metrics.close();
      log.info({ clean }, clean ? 'drained; exiting' : 'grace period over; exiting with work unfinished');
      return clean;
    })());

  if (o.handleSignals) {
    const onSignal = (sig: string) => {
      log.info({ signal: sig }, 'signal received');
      void shutdown().then((clean) => {
        log.flush?.();
        process.exit(clean ? 0 : 1);
      });
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  }
  log.info({ url, model: host.current.manifest.name, engine: host.current.info.id }, 'serving');
  return { url, listening, app, host, config, shutdown };
}

/** The model's sha256 from the artifact's MANIFEST.json (first 12 hex digits), when serving a packaged artifact. */
function artifactModelVersion(dir: string): string | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'MANIFEST.json'), 'utf8')) as { model?: { sha256?: string } };
    return m.model?.sha256?.slice(0, 12);
  } catch {
    return undefined;
  }
}
