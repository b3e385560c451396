import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createLogger, type JobService, type Logger } from '@cvopt/core';
import { Identity } from './auth/identity.js';
import { parseServerConfig, type ServerConfig, type ServerConfigInput } from './config.js';
import type { Plugin, ServerContext } from './context.js';
import { Deployments } from './deployments.js';
import { installErrorHandling } from './http/errors.js';
import { ServerMetrics } from './http/metrics.js';
import { guardRoutes, RouteTable } from './http/route.js';
import { ACTIONS } from './permissions.js';
import { authRoutes } from './routes/auth.js';
import { ARCHIVE_TYPES, datasetRoutes } from './routes/datasets.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { PREDICT_TYPES, predictRoutes } from './routes/predict.js';
import { projectRoutes } from './routes/projects.js';
import { systemRoutes } from './routes/system.js';
import { tokenRoutes } from './routes/tokens.js';
import { userRoutes } from './routes/users.js';
import { embeddedQueue, openJobStore, SqlJobService, type SqlDriver } from '@cvopt/jobs';
import { SERVER_JOB_KINDS } from './job-kinds.js';
import { openDriver, openRepository } from './store/open.js';
import { sweepOrphans } from './project-files.js';

/** Every resource, one plugin (file) each, mounted under /api/v1. */
export const PLUGINS: Plugin[] = [systemRoutes, authRoutes, tokenRoutes, userRoutes, projectRoutes, datasetRoutes, modelRoutes, jobRoutes, predictRoutes];

export interface BuildOptions {
  config: ServerConfigInput | ServerConfig;
  /**
   * The job system. Default: the embedded one (job tables and queue in the same database, workers are
   * `cvopt worker` processes on it); `false`: none (job routes answer DEPENDENCY_MISSING).
   */
  jobs?: JobService | false;
  /** An already open database (tests share one); otherwise opened from the config. */
  driver?: SqlDriver;
  log?: Logger;
  now?: () => Date;
  /** Extra plugins (tests use this to prove an unguarded route fails the start). */
  extraPlugins?: Plugin[];
}

export interface CvoptServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** Close HTTP, loaded runtimes, the store. */
  close(): Promise<void>;
}

/** Build the control plane without listening: tests drive it with inject or listen on port 0. */
export async function buildServer(o: BuildOptions): Promise<CvoptServer> {
  const config = parseServerConfig(o.config);
  const log = o.log ?? createLogger('cvopt-server');
  const driver = o.driver ?? (await openDriver({ dataDir: config.dataDir, ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}), ...(config.pgSchema ? { pgSchema: config.pgSchema } : {}) }));
  const repo = await openRepository(driver, false);
  let jobs: JobService | undefined = o.jobs === false ? undefined : o.jobs;
  let closeQueue = async () => {};
  // The embedded job system's store is on this database; a job service handed in may not be, so it gets none.
  const jobStore = o.jobs === undefined ? await openJobStore(driver) : undefined;
  if (jobStore) {
    const store = jobStore;
    const queue = await embeddedQueue(store);
    closeQueue = () => queue.close();
    const service = new SqlJobService({ db: driver, store, queue, close: async () => queue.close() }, { kinds: SERVER_JOB_KINDS });
    await service.recover();
    jobs = service;
  }
  const now = o.now ?? (() => new Date());
  const metrics = new ServerMetrics();
  const ctx: ServerContext = {
    config,
    driver,
    repo,
    jobs,
    jobStore,
    identity: new Identity(repo, config, now),
    metrics,
    deployments: new Deployments(config.maxLoadedDeployments, log),
    log,
    table: new RouteTable(),
    now,
    uploadsInFlight: { n: 0 },
  };
  metrics.gauge('cvopt_server_uploads_in_flight', 'uploads being received', () => ctx.uploadsInFlight.n);
  metrics.gauge('cvopt_server_max_concurrent_uploads', 'configured cap on uploads in flight', () => config.maxConcurrentUploads);

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    exposeHeadRoutes: false,
    // One log line per request, written by the onResponse hook below with the route, user and timing.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
  });
  installErrorHandling(app);
  guardRoutes(app);
  // Upload and image bodies are streamed by their handlers, never buffered by Fastify.
  app.addContentTypeParser([...new Set([...ARCHIVE_TYPES, ...PREDICT_TYPES])], (_req, _payload, done) => done(null));

  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const seconds = reply.elapsedTime / 1000;
    metrics.requests.inc({ route, method: req.method, status: String(status) });
    metrics.latency.observe(seconds, { route });
    req.log.info({ method: req.method, route, status, ms: Math.round(reply.elapsedTime * 10) / 10, user: req.cvoptPrincipal?.user.username }, 'request');
    const action = req.routeOptions.config?.action;
    // Every change, and every refusal, goes to the audit log; plain reads that succeed do not.
    if (!action || (req.method === 'GET' && status < 400) || (action === 'public' && status < 400)) return;
    const p = req.cvoptPrincipal;
    // A refusal is recorded under the project of the URL too, so its admins see who was turned away.
    const projectId = p?.project?.id ?? (req.params as Record<string, string | undefined> | undefined)?.projectId;
    try {
      await repo.appendAudit({
        at: now().toISOString(),
        ...(p ? { userId: p.user.id, username: p.user.username } : {}),
        ...(projectId ? { projectId: projectId.slice(0, 64) } : {}),
        action,
        method: req.method,
        path: req.url.split('?')[0]!.slice(0, 500),
        status,
        outcome: status < 400 ? 'ok' : status === 401 || status === 403 || status === 404 ? 'denied' : 'error',
        requestId: req.id,
        ...(req.cvoptAuditDetail ? { detail: req.cvoptAuditDetail.slice(0, 500) } : {}),
      });
    } catch (err) {
      req.log.error({ err }, 'audit write failed');
    }
  });

  await app.register(
    async (api) => {
      for (const plugin of [...PLUGINS, ...(o.extraPlugins ?? [])]) plugin(api, ctx);
    },
    { prefix: '/api/v1' },
  );
  await app.ready();
  // Nothing is served yet: whatever a crash left on disk with no row naming it goes now.
  await sweepOrphans(ctx);

  return {
    app,
    ctx,
    close: async () => {
      await app.close();
      await ctx.deployments.closeAll();
      metrics.close();
      await closeQueue();
      if (!o.driver) await driver.close();
    },
  };
}

export { ACTIONS };
