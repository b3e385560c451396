import { resolve } from 'node:path';
import { z } from 'zod';
import { CvoptError, usableCpus } from '@cvopt/core';

const MiB = 1024 * 1024;

/** Every limit of the control plane, with its default; validated at start and shown on GET /api/v1/limits. */
export const ServerConfigSchema = z.object({
  dataDir: z.string().min(1),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8700),
  /** PostgreSQL URL; absent → SQLite in dataDir. */
  databaseUrl: z.string().optional(),
  pgSchema: z.string().optional(),
  /**
   * The scrape token that also opens GET /api/v1/metrics (besides a server admin's token), from
   * CVOPT_METRICS_TOKEN. Never shown on /limits.
   */
  metricsToken: z.string().min(16, 'at least 16 characters').max(512).regex(/^\S+$/, 'no spaces').optional(),
  /** JSON request bodies. */
  bodyLimitBytes: z.number().int().positive().default(1 * MiB),
  /** A dataset archive as uploaded (compressed). */
  datasetUploadMaxBytes: z.number().int().positive().default(2048 * MiB),
  /** A model file. */
  modelUploadMaxBytes: z.number().int().positive().default(1024 * MiB),
  /** An image sent to a project's prediction endpoint. */
  predictMaxBytes: z.number().int().positive().default(20 * MiB),
  /** Archive limits: entries, total expanded bytes, expanded/compressed ratio. */
  archiveMaxEntries: z.number().int().positive().default(100_000),
  archiveMaxExpandedBytes: z.number().int().positive().default(8192 * MiB),
  archiveMaxRatio: z.number().positive().default(100),
  /** Uploads in progress at once; more answer 429 QUEUE_FULL. */
  maxConcurrentUploads: z.number().int().positive().default(4),
  sessionTtlHours: z.number().positive().default(12),
  /** Longest lifetime a personal API token may ask for. */
  tokenMaxDays: z.number().int().positive().default(365),
  /** Login attempts per client address per minute. */
  loginPerMinute: z.number().int().positive().default(20),
  /** Consecutive failed logins that lock an account, and for how long. */
  lockoutAfter: z.number().int().positive().default(5),
  lockoutMinutes: z.number().positive().default(15),
  /** scrypt cost (N as log2). 15 = 32 MiB per hash. */
  scryptLogN: z.number().int().min(10).max(20).default(15),
  minPasswordLength: z.number().int().min(8).default(12),
  /**
   * Password hashes computed at once; more logins wait. Default: half the cores (at least one), so a login storm
   * never takes every core from the API (measured on 2 cores: list p50 67 → 12 ms with 1 instead of 2).
   */
  maxConcurrentHashes: z.number().int().positive().default(Math.max(1, Math.floor(usableCpus() / 2))),
  /** Prediction runtimes kept loaded (one per project, least recently used unloaded). */
  maxLoadedDeployments: z.number().int().positive().default(4),
});

export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

export function parseServerConfig(input: ServerConfigInput): ServerConfig {
  const r = ServerConfigSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.');
    throw new CvoptError('INVALID_CONFIG', `server setting ${field}: ${issue.message}`, { where: { field } });
  }
  return { ...r.data, dataDir: resolve(r.data.dataDir) };
}
