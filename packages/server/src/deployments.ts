import type { FastifyInstance } from 'fastify';
import { CvoptError, type Logger } from '@cvopt/core';
import { buildApp, loadRuntimeConfig, ModelHost, rateLimiterFor, resolveModelSource, RuntimeMetrics, Semaphore } from '@cvopt/runtime';

interface Loaded {
  app: FastifyInstance;
  host: ModelHost;
  metrics: RuntimeMetrics;
}

/**
 * Each project's prediction endpoint runs the artifact's own inference service (packages/runtime) embedded in
 * this process, and requests reach it through `inject` — no extra port, and the runtime's admission control,
 * batching, deadlines and limits apply exactly as in `cvopt serve`. The control plane authorizes first; the
 * embedded runtime has its own key check switched off. At most `max` are loaded; the least recently used one
 * is closed to make room.
 */
export class Deployments {
  private readonly loaded = new Map<string, Promise<Loaded>>();
  private readonly targets = new Map<string, string>();
  private readonly used = new Map<string, number>();
  private clock = 0;

  constructor(
    private readonly max: number,
    private readonly log: Logger,
  ) {}

  private async load(target: string): Promise<Loaded> {
    const source = resolveModelSource(target);
    const base = loadRuntimeConfig({ artifactDir: source.artifactDir, env: {} });
    const config = { ...base, auth: { ...base.auth, enabled: false, keys: [] } };
    const metrics = new RuntimeMetrics();
    const gpu = new Semaphore(config.gpuSlots);
    const host = new ModelHost(source, { config, metrics, gpu, log: this.log });
    const app = await buildApp({ config, host, metrics, gpu, log: this.log, limiter: rateLimiterFor(config) });
    try {
      await host.load();
    } catch (e) {
      await app.close();
      metrics.close();
      throw e;
    }
    return { app, host, metrics };
  }

  /**
   * The runtime for a project's deployment, loading it (and unloading the least recently used beyond `max`) as
   * needed. The bookkeeping is synchronous, so concurrent first requests share one load.
   */
  async get(projectId: string, target: string): Promise<Loaded> {
    const have = this.loaded.get(projectId);
    if (have && this.targets.get(projectId) === target) {
      this.used.set(projectId, ++this.clock);
      return have;
    }
    if (have) await this.unload(projectId);
    const raced = this.loaded.get(projectId);
    if (raced && this.targets.get(projectId) === target) return raced;
    const p = this.load(target);
    this.loaded.set(projectId, p);
    this.targets.set(projectId, target);
    this.used.set(projectId, ++this.clock);
    p.catch(() => {
      if (this.loaded.get(projectId) === p) this.forget(projectId);
    });
    while (this.loaded.size > this.max) {
      const [oldest] = [...this.used.entries()].filter(([id]) => id !== projectId).sort((x, y) => x[1] - y[1])[0]!;
      void this.unload(oldest);
    }
    return p;
  }

  private forget(projectId: string): void {
    this.loaded.delete(projectId);
    this.targets.delete(projectId);
    this.used.delete(projectId);
  }

  async unload(projectId: string): Promise<void> {
    const p = this.loaded.get(projectId);
    if (!p) return;
    this.forget(projectId);
    const l = await p.catch(() => undefined);
    if (!l) return;
    await l.app.close();
    await l.host.close();
    l.metrics.close();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.loaded.keys()]) await this.unload(id);
  }

  static noDeployment(project: string): CvoptError {
    return new CvoptError('NOT_READY', `project ${project} has no deployment to serve`, {
      hint: 'a project admin sets one: PUT /api/v1/projects/:projectId/deployment with { modelId } or { jobId } of a package job',
    });
  }
}
