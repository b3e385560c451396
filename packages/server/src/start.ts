import { createLogger, type JobService, type Logger } from '@cvopt/core';
import { buildServer, type CvoptServer } from './app.js';
import type { ServerConfigInput } from './config.js';

export interface StartOptions {
  config: ServerConfigInput;
  jobs?: JobService | false;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface StartedServer extends CvoptServer {
  url: string;
  /** Printed once at the first start when no CVOPT_ADMIN_PASSWORD was given. */
  setupToken?: string;
  admin?: string;
}

/** The one place that listens: build, create the first admin (or a setup token), open the port. */
export async function startServer(o: StartOptions): Promise<StartedServer> {
  const env = o.env ?? process.env;
  const log = o.log ?? createLogger('cvopt-server');
  const databaseUrl = o.config.databaseUrl ?? env.CVOPT_DATABASE_URL;
  const metricsToken = o.config.metricsToken ?? env.CVOPT_METRICS_TOKEN;
  const server = await buildServer({
    config: { ...o.config, ...(databaseUrl ? { databaseUrl } : {}), ...(metricsToken ? { metricsToken } : {}) },
    log,
    ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
  });
  const boot = await server.ctx.identity.bootstrap(
    { ...(env.CVOPT_ADMIN_PASSWORD ? { adminPassword: env.CVOPT_ADMIN_PASSWORD } : {}), ...(env.CVOPT_ADMIN_USER ? { adminUser: env.CVOPT_ADMIN_USER } : {}) },
    log,
  );
  const address = await server.app.listen({ port: server.ctx.config.port, host: server.ctx.config.host });
  return { ...server, url: address.replace('[::1]', 'localhost'), ...boot };
}
