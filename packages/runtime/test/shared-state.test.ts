import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createLogger } from '@cvopt/core';
import { buildApp, ModelHost, parseRuntimeConfig, PgRequestLog, rateLimiterFor, RedisRateLimiter, RedisResponseCache, resolveModelSource, RuntimeMetrics, Semaphore, type RuntimeConfigInput } from '../src/index.js';
import { fixtureModels, jpeg, post } from './helpers.js';

// The real services of this machine (scripts/start-services.sh): Redis and PostgreSQL on their default ports.
const REDIS = process.env.CVOPT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES = process.env.CVOPT_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Nothing listens there: a service that went away. */
const GONE_REDIS = 'redis://127.0.0.1:1';
const GONE_POSTGRES = 'postgres://postgres@127.0.0.1:1/test';
const log = createLogger('test', { level: 'silent' });

async function replica(target: string, cfg: RuntimeConfigInput, extra: { limiter?: RedisRateLimiter; requestLog?: PgRequestLog; responseCache?: RedisResponseCache }) {
  const config = parseRuntimeConfig({ intraOpThreads: 1, ...cfg });
  const metrics = new RuntimeMetrics();
  const gpu = new Semaphore(config.gpuSlots);
  const host = new ModelHost(resolveModelSource(target), { config, metrics, gpu });
  await host.load();
  const app = await buildApp({ config, host, metrics, gpu, log, ...extra, limiter: extra.limiter ?? rateLimiterFor(config), modelVersion: 'v-test' });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: async () => (await app.close(), await host.close(), metrics.close()) };
}

describe('state shared by replicas: Redis rate limits, PostgreSQL request log', () => {
  let model: string;
  let image: Buffer;
  beforeAll(async () => {
    model = fixtureModels().detDynamic;
    image = await jpeg();
  });

  it('two replicas draw from one rate-limit budget in Redis; without Redis each falls back to its own and serves', async () => {
    const rate = { perSecond: 0.01, burst: 3 };
    const keyPrefix = `cvopt-test-${randomUUID()}:`;
    const limiters = [0, 1].map(() => new RedisRateLimiter({ url: REDIS, ...rate, keyPrefix, commandTimeoutMs: 1000, log }));
    const [a, b] = await Promise.all(limiters.map((limiter) => replica(model, { rateLimit: rate }, { limiter })));
    try {
      const codes: number[] = [];
      for (const url of [a!.url, a!.url, b!.url, b!.url, a!.url]) codes.push((await post(`${url}/v1/predict`, image, { 'content-type': 'image/jpeg' })).status);
      // Burst 3 for the one client address across both replicas: the second replica refuses what the first used.
      expect(codes).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await Promise.all([a!.close(), b!.close(), ...limiters.map((l) => l.close())]);
    }

    const lost = new RedisRateLimiter({ url: GONE_REDIS, ...rate, keyPrefix, commandTimeoutMs: 50, log });
    const c = await replica(model, { rateLimit: rate }, { limiter: lost });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) codes.push((await post(`${c.url}/v1/predict`, image, { 'content-type': 'image/jpeg' })).status);
      expect(codes).toEqual([200, 200, 200, 429]); // the replica's own bucket, same limits
      expect(lost.fallbackTakes).toBe(4);
    } finally {
      await c.close();
      await lost.close();
    }
  });

  it('writes one request-log row per answered request to PostgreSQL; with PostgreSQL gone prediction goes on', async () => {
    const table = `cvopt_test_log_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const requestLog = new PgRequestLog({ url: POSTGRES, table, flushIntervalMs: 50, batchMax: 100, bufferMax: 1000, log });
    const s = await replica(model, {}, { requestLog });
    const db = new pg.Client({ connectionString: POSTGRES });
    await db.connect();
    try {
      const r = await post(`${s.url}/v1/predict`, image, { 'content-type': 'image/jpeg' });
      expect(r.status).toBe(200);
      expect((await post(`${s.url}/v1/predict`, 'not an image', { 'content-type': 'image/jpeg' })).status).toBe(400);
      await requestLog.flush();
      const rows = (await db.query(`SELECT route, method, status, latency_ms, model, model_version, detections FROM ${table} ORDER BY id`)).rows;
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatchObject({ route: '/v1/predict', method: 'POST', status: 200, model: 'tiny-det-dynamic', model_version: 'v-test', detections: r.json.detections.length });
      expect(rows[0].latency_ms).toBeGreaterThan(0);
      expect(rows[1]).toMatchObject({ status: 400, detections: null });
    } finally {
      await s.close();
      await requestLog.close();
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.end();
    }

    const gone = new PgRequestLog({ url: GONE_POSTGRES, table, flushIntervalMs: 50, batchMax: 100, bufferMax: 3, log });
    const t = await replica(model, {}, { requestLog: gone });
    try {
      for (let i = 0; i < 5; i++) expect((await post(`${t.url}/v1/predict`, image, { 'content-type': 'image/jpeg' })).status).toBe(200);
      await gone.flush();
      expect(gone.pending).toBe(3); // bounded: the two oldest rows were dropped and counted
      expect(gone.dropped).toBe(2);
    } finally {
      await t.close();
      await gone.close(100);
    }
  });

  it('answers an identical image from the response cache in Redis, on any replica; without Redis it computes', async () => {
    const cacheOf = (url: string) => new RedisResponseCache({ url, keyPrefix: `cvopt-test-${randomUUID()}:`, commandTimeoutMs: 500, ttlS: 60, namespace: 'model-a', log });
    const prefix = `cvopt-test-${randomUUID()}:`;
    const caches = [0, 1].map(() => new RedisResponseCache({ url: REDIS, keyPrefix: prefix, commandTimeoutMs: 500, ttlS: 60, namespace: 'model-a', log }));
    const [a, b] = await Promise.all(caches.map((responseCache) => replica(model, {}, { responseCache })));
    const other = await jpeg(96, 72, 7);
    try {
      const first = await post(`${a!.url}/v1/predict`, image, { 'content-type': 'image/jpeg' });
      expect(first.headers.get('x-cache')).toBeNull();
      await new Promise((r) => setTimeout(r, 100)); // the store is fire-and-forget
      const again = await post(`${b!.url}/v1/predict`, image, { 'content-type': 'image/jpeg' });
      expect(again.headers.get('x-cache')).toBe('hit');
      expect(again.json.detections).toEqual(first.json.detections);
      expect((await post(`${b!.url}/v1/predict`, other, { 'content-type': 'image/jpeg' })).headers.get('x-cache')).toBeNull();
    } finally {
      await Promise.all([a!.close(), b!.close(), ...caches.map((c) => c.close())]);
    }
    const gone = cacheOf(GONE_REDIS);
    const c = await replica(model, {}, { responseCache: gone });
    try {
      for (let i = 0; i < 2; i++) expect((await post(`${c.url}/v1/predict`, image, { 'content-type': 'image/jpeg' })).status).toBe(200);
      expect(gone.hits).toBe(0);
    } finally {
      await c.close();
      await gone.close();
    }
  });
});
