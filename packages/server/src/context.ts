import type { JobService, Logger } from '@cvopt/core';
import type { JobStore, SqlDriver } from '@cvopt/jobs';
import type { Identity } from './auth/identity.js';
import type { ServerConfig } from './config.js';
import type { Deployments } from './deployments.js';
import type { ServerMetrics } from './http/metrics.js';
import type { RouteDeps } from './http/route.js';
import type { Repository, Token, User } from './store/repository.js';

/** What every resource plugin is handed: the store, the job system, identity, limits. */
export interface ServerContext extends RouteDeps {
  config: ServerConfig;
  /** The database shared with the job system. */
  driver: SqlDriver;
  repo: Repository;
  /** The job system; absent when the server runs without one (job routes answer DEPENDENCY_MISSING). */
  jobs: JobService | undefined;
  /**
   * The job system's store on the same database, for what the JobService does not do: deleting a project's jobs
   * and finding the output folders no job refers to. Absent when the server runs without a job system.
   */
  jobStore: JobStore | undefined;
  identity: Identity;
  metrics: ServerMetrics;
  deployments: Deployments;
  log: Logger;
  /** Uploads being received right now, against config.maxConcurrentUploads. */
  uploadsInFlight: { n: number };
}

export type Plugin = (app: import('fastify').FastifyInstance, ctx: ServerContext) => void;

export const userView = (u: User) => ({ id: u.id, username: u.username, isAdmin: u.isAdmin, disabled: u.disabled, lockedUntil: u.lockedUntil ?? null, createdAt: u.createdAt });

export const tokenView = (t: Token) => ({
  id: t.id,
  kind: t.kind,
  name: t.name,
  scopes: t.scopes,
  createdAt: t.createdAt,
  expiresAt: t.expiresAt,
  revokedAt: t.revokedAt ?? null,
});
