import { z } from 'zod';
import { GpuController } from '@cvopt/jobs';
import type { Plugin } from '../context.js';
import { addRoute } from '../http/route.js';
import { openApiDocument } from '../http/openapi.js';

/** Health, limits, Prometheus metrics and the OpenAPI document. All open but metrics, which say what the server is doing. */
export const systemRoutes: Plugin = (app, ctx) => {
  addRoute(app, ctx, {
    method: 'GET',
    url: '/health',
    action: 'public',
    summary: 'liveness, store dialect and whether a job system is attached',
    response: z.object({ ok: z.boolean(), store: z.string(), jobs: z.boolean() }),
    handler: async () => ({ ok: true, store: ctx.repo.dialect, jobs: ctx.jobs !== undefined }),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/limits',
    action: 'public',
    summary: 'every configured limit (upload sizes, archive caps, login throttling, token lifetimes)',
    handler: async () => {
      const { databaseUrl: _db, pgSchema: _s, dataDir: _d, metricsToken: _m, ...limits } = ctx.config;
      return limits;
    },
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/gpus',
    action: 'self',
    summary: "every worker machine's GPUs as its GPU controller published them: budget, slots, reserved VRAM, jobs running and waiting",
    handler: async () => ({ machines: await GpuController.states(ctx.driver) }),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/metrics',
    action: 'server:metrics',
    summary: "Prometheus metrics (text exposition format): a server admin's token, or the scrape token CVOPT_METRICS_TOKEN as Bearer",
    handler: async ({ reply }) => reply.type('text/plain; version=0.0.4').send(ctx.metrics.render()),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/openapi.json',
    action: 'public',
    summary: 'this API as an OpenAPI 3.1 document, generated from the registered routes and their zod schemas',
    handler: async () => openApiDocument(ctx.table),
  });
};
