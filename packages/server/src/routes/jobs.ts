import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import {
  ConstraintsSchema,
  CvoptError,
  DeviceSchema,
  EngineIdSchema,
  JOB_STATES,
  type JobEvent,
  type JobRecord,
  type JobService,
} from '@cvopt/core';
import type { Plugin, ServerContext } from '../context.js';
import { addRoute } from '../http/route.js';
import { newId } from '../auth/tokens.js';
import { mustDataset } from './datasets.js';
import { mustModel, PRESET } from './models.js';
import { SERVER_JOB_KINDS } from '../job-kinds.js';

const Params = z.object({ projectId: z.string().min(1).max(64) });
const JobParams = Params.extend({ jobId: z.string().min(1).max(128) });

/** What a job reads: a model resource id, a preset name, or the output of an earlier job of the project. */
const Source = { model: z.string().min(1).max(64).optional(), fromJob: z.string().min(1).max(128).optional() };

/** The job kinds and their options: the CLI's flags, with server resources named by id instead of paths. */
export const SubmitSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('train'),
    ...Source,
    dataset: z.string().min(1),
    epochs: z.number().int().positive().max(10_000).optional(),
    imgsz: z.number().int().positive().multipleOf(32).optional(),
    batch: z.number().int().positive().optional(),
    device: DeviceSchema.optional(),
    seed: z.number().int().nonnegative().optional(),
    hyp: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).optional(),
  }),
  z.object({
    kind: z.literal('tune'),
    ...Source,
    dataset: z.string().min(1),
    strategy: z.enum(['tournament', 'elitist', 'adaptive', 'constrained', 'nsga2']),
    generations: z.number().int().positive().optional(),
    population: z.number().int().positive().optional(),
    seed: z.number().int().nonnegative().optional(),
    targetLatencyMs: z.number().positive().optional(),
    engine: EngineIdSchema.optional(),
  }),
  z.object({ kind: z.literal('export'), ...Source, imgsz: z.number().int().positive().multipleOf(32).optional(), dynamic: z.boolean().optional(), opset: z.number().int().positive().optional() }),
  z.object({ kind: z.literal('check'), ...Source, targets: z.array(z.string()).optional() }),
  z.object({ kind: z.literal('quantize'), ...Source, dataset: z.string().min(1), method: z.enum(['minmax', 'percentile', 'entropy']).optional(), calib: z.number().int().positive().optional() }),
  z.object({ kind: z.literal('bench'), ...Source, dataset: z.string().min(1).optional(), engines: z.array(EngineIdSchema).optional() }),
  z.object({ kind: z.literal('select'), fromJob: z.string().min(1).max(128), constraints: ConstraintsSchema.optional() }),
  z.object({ kind: z.literal('package'), ...Source, engine: EngineIdSchema, gpu: z.boolean().optional(), constraints: ConstraintsSchema.optional() }),
]);
export type SubmitRequest = z.infer<typeof SubmitSchema>;
export const JOB_KINDS = SubmitSchema.options.map((o) => o.shape.kind.value);

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

function service(ctx: ServerContext): JobService {
  if (!ctx.jobs) throw new CvoptError('DEPENDENCY_MISSING', 'this server runs without a job system', { hint: 'start `cvopt server` with the job system (packages/jobs) attached' });
  return ctx.jobs;
}

const jobView = (j: JobRecord) => ({
  id: j.id,
  kind: j.kind,
  queue: j.queue,
  state: j.state,
  progress: j.progress ?? null,
  result: j.result ?? null,
  error: j.error ?? null,
  attempts: j.attempts,
  createdBy: j.createdBy ?? null,
  createdAt: j.createdAt,
  startedAt: j.startedAt ?? null,
  finishedAt: j.finishedAt ?? null,
  payload: j.payload,
});

/** A job of this project, or NOT_FOUND (a job of another project is exactly as absent). */
export async function mustJob(ctx: ServerContext, projectId: string, jobId: string): Promise<JobRecord> {
  const j = await service(ctx).get(jobId);
  if (!j || j.projectId !== projectId) throw new CvoptError('NOT_FOUND', `job ${jobId} not found in this project`, { where: { field: 'jobId' } });
  return j;
}

/** Where a job writes: `<dataDir>/runs/<runId>/…`, named in its payload's `out`. */
export function runDirOf(ctx: ServerContext, j: JobRecord): string | undefined {
  const out = (j.payload as { out?: unknown })?.out;
  if (typeof out !== 'string') return undefined;
  const runs = join(ctx.config.dataDir, 'runs');
  const rel = relative(runs, resolve(out));
  if (rel.startsWith('..') || rel === '') return undefined;
  return join(runs, rel.split(sep)[0]!);
}

/** The file or folder a finished job produced, for the next job to read. */
export function outputOf(j: JobRecord): string {
  const out = (j.payload as { out?: unknown }).out;
  if (typeof out !== 'string') throw new CvoptError('CONFLICT', `job ${j.id} (${j.kind}) has no output to read`, { where: { field: 'fromJob' } });
  return j.kind === 'train' || j.kind === 'tune' ? join(out, 'best.pt') : out;
}

async function resolveModel(ctx: ServerContext, projectId: string, r: { model?: string; fromJob?: string }): Promise<string> {
  if (r.fromJob) {
    const j = await mustJob(ctx, projectId, r.fromJob);
    if (j.state !== 'succeeded') throw new CvoptError('CONFLICT', `job ${j.id} is ${j.state}, not succeeded`, { where: { field: 'fromJob' }, hint: 'wait for it to succeed' });
    return outputOf(j);
  }
  if (!r.model) throw new CvoptError('INVALID_ARGUMENT', 'name a model (model id or preset) or an earlier job (fromJob)', { where: { field: 'model' } });
  if (PRESET.test(r.model)) return r.model;
  const m = await mustModel(ctx, projectId, r.model);
  return m.preset ?? m.path!;
}

/**
 * Turn a request into the job system's payload for that kind: server paths for the resources, outputs in a
 * fresh run dir, the kind's defaults filled in. The kind travels beside the payload (submit(kind, payload)),
 * not inside it.
 */
export async function toPayload(ctx: ServerContext, projectId: string, r: SubmitRequest): Promise<Record<string, unknown>> {
  const run = join(ctx.config.dataDir, 'runs', newId('run'));
  await mkdir(run, { recursive: true });
  const data = async (id: string) => (await mustDataset(ctx, projectId, id)).path;
  const schema = SERVER_JOB_KINDS.get(r.kind)!.payload;
  const parse = (p: Record<string, unknown>) => schema.parse(p) as Record<string, unknown>;
  switch (r.kind) {
    case 'train':
      return parse({ model: await resolveModel(ctx, projectId, r), data: await data(r.dataset), out: run, ...pick(r, ['epochs', 'imgsz', 'batch', 'device', 'seed', 'hyp']) });
    case 'tune':
      return parse({ model: await resolveModel(ctx, projectId, r), data: await data(r.dataset), out: run, ...pick(r, ['strategy', 'generations', 'population', 'seed', 'targetLatencyMs', 'engine']) });
    case 'export':
      return parse({ checkpoint: await resolveModel(ctx, projectId, r), out: join(run, 'model.onnx'), ...pick(r, ['imgsz', 'dynamic', 'opset']) });
    case 'check':
      return parse({ model: await resolveModel(ctx, projectId, r), out: join(run, 'check.json'), ...pick(r, ['targets']) });
    case 'quantize':
      return parse({ model: await resolveModel(ctx, projectId, r), data: await data(r.dataset), out: join(run, 'model.int8.onnx'), ...pick(r, ['method', 'calib']) });
    case 'bench':
      return parse({ model: await resolveModel(ctx, projectId, r), ...(r.dataset ? { data: await data(r.dataset) } : {}), out: join(run, 'report.json'), ...pick(r, ['engines']) });
    case 'select': {
      const bench = await mustJob(ctx, projectId, r.fromJob);
      if (bench.kind !== 'bench' || bench.state !== 'succeeded') throw new CvoptError('CONFLICT', `select reads a succeeded bench job; ${bench.id} is a ${bench.state} ${bench.kind} job`, { where: { field: 'fromJob' } });
      return parse({ report: outputOf(bench), out: join(run, 'decision.json'), ...pick(r, ['constraints']) });
    }
    case 'package':
      return parse({ model: await resolveModel(ctx, projectId, r), out: join(run, 'artifact'), ...pick(r, ['engine', 'gpu', 'constraints']) });
  }
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** Jobs of a project: submit, read, follow (SSE), cancel, download what they wrote. */
export const jobRoutes: Plugin = (app, ctx) => {
  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects/:projectId/jobs',
    action: 'job:submit',
    summary: `submit a job: ${JOB_KINDS.join(', ')}, with the CLI's options; resources by id`,
    params: Params,
    body: SubmitSchema,
    handler: async ({ body, principal, reply }) => {
      const jobs = service(ctx);
      const payload = await toPayload(ctx, principal.project!.id, body);
      const j = await jobs.submit(body.kind, payload, { projectId: principal.project!.id, createdBy: principal.user.username });
      return reply.status(202).send({ job: jobView(j) });
    },
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/jobs',
    action: 'job:read',
    summary: "the project's jobs, newest first",
    params: Params,
    query: z.object({ state: z.enum(JOB_STATES).optional(), kind: z.string().max(32).optional(), limit: z.coerce.number().int().min(1).max(500).default(50) }),
    handler: async ({ principal, query }) => ({
      jobs: (await service(ctx).list({ projectId: principal.project!.id, limit: query.limit, ...(query.state ? { state: query.state } : {}), ...(query.kind ? { kind: query.kind } : {}) })).map(jobView),
    }),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/jobs/:jobId',
    action: 'job:read',
    summary: 'one job: state, progress, result or error',
    params: JobParams,
    handler: async ({ params }) => ({ job: jobView(await mustJob(ctx, params.projectId, params.jobId)) }),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/jobs/:jobId/logs',
    action: 'job:read',
    summary: "the job's log lines so far",
    params: JobParams,
    query: z.object({ after: z.coerce.number().int().nonnegative().default(0) }),
    handler: async ({ params, query }) => {
      await mustJob(ctx, params.projectId, params.jobId);
      const events = await service(ctx).events(params.jobId, query.after);
      return { logs: events.filter((e) => e.type === 'log').map((e) => ({ seq: e.seq, at: e.at, ...(e.data as object) })) };
    },
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/jobs/:jobId/events',
    action: 'job:read',
    summary: 'server-sent events (state, progress, log, result); resume with the Last-Event-ID header',
    params: JobParams,
    query: z.object({ after: z.coerce.number().int().nonnegative().optional() }),
    sse: true,
    handler: async ({ params, query, req, reply }) => {
      const jobs = service(ctx);
      const job = await mustJob(ctx, params.projectId, params.jobId);
      const header = Number(req.headers['last-event-id']);
      let last = Number.isInteger(header) && header >= 0 ? header : (query.after ?? 0);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': req.id });
      let closed = false;
      let unsubscribe = () => {};
      const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(ping);
        unsubscribe();
        res.end();
      };
      const send = (e: JobEvent) => {
        if (closed || e.seq <= last) return;
        last = e.seq;
        res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
        if (e.type === 'state' && TERMINAL.has(String((e.data as { state?: unknown })?.state))) close();
      };
      req.raw.on('close', close);
      // Subscribe first, then replay the backlog: an event landing in between is delivered once (seq filter).
      unsubscribe = jobs.subscribe(job.id, last, send);
      for (const e of await jobs.events(job.id, last)) send(e);
      if (!closed && TERMINAL.has((await jobs.get(job.id))?.state ?? '')) close();
    },
  });
  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects/:projectId/jobs/:jobId/cancel',
    action: 'job:cancel',
    summary: 'cancel a queued or running job',
    params: JobParams,
    handler: async ({ params }) => {
      await mustJob(ctx, params.projectId, params.jobId);
      return { job: jobView(await service(ctx).cancel(params.jobId)) };
    },
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/jobs/:jobId/artifacts',
    action: 'artifact:read',
    summary: 'files the job wrote (paths relative to its run directory)',
    params: JobParams,
    handler: async ({ params }) => {
      const dir = runDirOf(ctx, await mustJob(ctx, params.projectId, params.jobId));
      return { files: dir && existsSync(dir) ? listFiles(dir) : [] };
    },
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/jobs/:jobId/artifacts/*',
    action: 'artifact:read',
    summary: 'download one file the job wrote',
    params: JobParams.extend({ '*': z.string().min(1).max(1024) }),
    handler: async ({ params, reply }) => {
      const dir = runDirOf(ctx, await mustJob(ctx, params.projectId, params.jobId));
      const file = dir && resolve(dir, params['*']);
      if (!dir || !file || !file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
        throw new CvoptError('NOT_FOUND', `no artifact ${params['*']} in job ${params.jobId}`, { where: { field: 'path' }, hint: 'list them with GET …/artifacts' });
      }
      return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${file.split(sep).pop()!.replace(/"/g, '')}"`).send(createReadStream(file));
    },
  });
};

function listFiles(dir: string, base = dir, out: { path: string; bytes: number }[] = []): { path: string; bytes: number }[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) listFiles(p, base, out);
    else if (e.isFile()) out.push({ path: relative(base, p), bytes: statSync(p).size });
    if (out.length >= 1000) break;
  }
  return out;
}
