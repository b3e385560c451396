import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import {
  BenchPayloadSchema,
  CheckPayloadSchema,
  CvoptError,
  ExportPayloadSchema,
  JOB_STATES,
  PackagePayloadFields,
  QuantizePayloadSchema,
  SelectPayloadSchema,
  TrainPayloadFields,
  TunePayloadSchema,
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

const Ref = z.string().min(1).max(128);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a hex sha256');
/** What a job reads: a model resource id, a preset name, or the output of an earlier job of the project. */
const Source = { model: Ref.optional(), fromJob: Ref.optional() };
/**
 * The file name the CLI writes locally (`--out runs/x/model.onnx` → model.onnx), so the run directory mirrors the
 * local output folder and its files download to the same names.
 */
const OutName = { outName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a file name: letters, digits, ".", "_", "-"').optional() };
/** An input file's text sent by the client (train --hyp, tune --space); the server writes it for the worker. */
const Text = z.string().max(262_144).optional();

/**
 * Each kind's options are picked from core's payload schema: the CLI's flags under the same names and defaults.
 * Only options are picked; paths on the server's disk (cache folders, hyp or space files, samples, video,
 * weights) are never taken from a request, and flags about a local folder (resume, exist-ok) have no meaning here.
 */
const OPTIONS = {
  train: TrainPayloadFields.pick({ epochs: true, imgsz: true, batch: true, device: true, seed: true, hyp: true, workers: true, vramMb: true, patience: true }),
  tune: TunePayloadSchema.pick({
    strategy: true, generations: true, population: true, epochs: true, imgsz: true, batch: true, device: true, seed: true, engine: true, targetLatencyMs: true,
    latencyWeight: true, wMap50: true, wMap5095: true, latencyRuns: true, constraints: true, sizeObjective: true, maxParallel: true,
  }),
  export: ExportPayloadSchema.pick({ imgsz: true, dynamic: true, opset: true, tolerance: true, confThreshold: true }),
  check: CheckPayloadSchema.pick({ targets: true, session: true }),
  quantize: QuantizePayloadSchema.pick({
    method: true, calib: true, evalImages: true, percentile: true, activations: true, excludeNodes: true, excludeOps: true, maxDrop: true, fp16: true, intraOpNumThreads: true, protocol: true,
  }),
  bench: BenchPayloadSchema.pick({
    engines: true, iters: true, warmup: true, minTimeMs: true, maxImages: true, batchSizes: true, maxFrames: true, threads: true, calib: true, protocol: true, limits: true, pytorchDevice: true,
  }),
  select: SelectPayloadSchema.pick({ constraints: true }),
  package: PackagePayloadFields.pick({ engine: true, name: true, limits: true, gpu: true, constraints: true }),
};

/** The job kinds and their options: the CLI's flags, with server resources named by id instead of paths. */
export const SubmitSchema = z.discriminatedUnion('kind', [
  OPTIONS.train.extend({ kind: z.literal('train'), ...Source, dataset: Ref, weights: Ref.optional(), hypText: Text, ...OutName }),
  OPTIONS.tune.extend({ kind: z.literal('tune'), ...Source, dataset: Ref, spaceText: Text, ...OutName }),
  OPTIONS.export.extend({ kind: z.literal('export'), ...Source, ...OutName }),
  OPTIONS.check.extend({ kind: z.literal('check'), ...Source }),
  OPTIONS.quantize.extend({ kind: z.literal('quantize'), ...Source, dataset: Ref, ...OutName }),
  OPTIONS.bench.extend({ kind: z.literal('bench'), ...Source, dataset: Ref, ...OutName }),
  // The report: a bench job by id, or the sha256 of the report.json a remote bench of this project downloaded.
  OPTIONS.select.extend({ kind: z.literal('select'), fromJob: Ref.optional(), reportSha256: Sha256.optional(), reportName: OutName.outName, ...OutName }),
  // A model on an engine, or the decision of a select job (by id, or by the sha256 of its decision.json).
  OPTIONS.package.extend({ kind: z.literal('package'), ...Source, decision: Ref.optional(), decisionSha256: Sha256.optional(), ...OutName }),
]);
export type SubmitRequest = z.infer<typeof SubmitSchema>;
export const JOB_KINDS = SubmitSchema.options.map((o) => o.shape.kind.value);

/** Fields of a request that name resources or files rather than options; the rest passes to the payload as is. */
const REFERENCES = ['kind', 'model', 'fromJob', 'dataset', 'weights', 'hypText', 'spaceText', 'outName', 'reportSha256', 'reportName', 'decision', 'decisionSha256'] as const;

function optionsOf(r: SubmitRequest): Record<string, unknown> {
  const o: Record<string, unknown> = { ...r };
  for (const k of REFERENCES) delete o[k];
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
/** The run folder's sub-folder of inputs sent as text (hyp, search space): not the job's output. */
export const INPUTS = '.inputs';

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

/** A succeeded job of this kind, by id. */
async function mustSucceeded(ctx: ServerContext, projectId: string, id: string, kind: string, field: string): Promise<JobRecord> {
  const j = await mustJob(ctx, projectId, id);
  if (j.kind !== kind || j.state !== 'succeeded') throw new CvoptError('CONFLICT', `${field} names a succeeded ${kind} job; ${j.id} is a ${j.state} ${j.kind} job`, { where: { field } });
  return j;
}

/**
 * The project's succeeded job of this kind whose output file has this sha256: how a CLI that downloaded a job's
 * report.json or decision.json names that job again without remembering its id. Reads the newest 200 such jobs.
 */
async function jobByOutput(ctx: ServerContext, projectId: string, kind: string, sha: string, field: string): Promise<JobRecord> {
  for (const j of await service(ctx).list({ projectId, kind, state: 'succeeded', limit: 200 })) {
    const out = (j.payload as { out?: unknown }).out;
    if (typeof out === 'string' && existsSync(out) && statSync(out).isFile() && createHash('sha256').update(readFileSync(out)).digest('hex') === sha) return j;
  }
  throw new CvoptError('NOT_FOUND', `no ${kind} job of this project wrote a file with sha256 ${sha.slice(0, 12)}…`, {
    where: { field },
    hint: `name the ${kind} job by id, or write the file with \`cvopt ${kind} --remote\` first`,
  });
}

async function resolveModel(ctx: ServerContext, projectId: string, r: { model?: string | undefined; fromJob?: string | undefined }, field = 'model'): Promise<string> {
  if (r.fromJob) {
    const j = await mustJob(ctx, projectId, r.fromJob);
    if (j.state !== 'succeeded') throw new CvoptError('CONFLICT', `job ${j.id} is ${j.state}, not succeeded`, { where: { field: 'fromJob' }, hint: 'wait for it to succeed' });
    return outputOf(j);
  }
  if (!r.model) throw new CvoptError('INVALID_ARGUMENT', 'name a model (model id or preset) or an earlier job (fromJob)', { where: { field } });
  if (PRESET.test(r.model)) return r.model;
  const m = await mustModel(ctx, projectId, r.model);
  return m.preset ?? m.path!;
}

/**
 * Turn a request into the job system's payload for that kind: server paths for the resources, the output in a
 * fresh run dir (named as the CLI's local --out), inputs sent as text in its `.inputs` folder, the kind's defaults
 * filled in by core's schema. The kind travels beside the payload (submit(kind, payload)), not inside it.
 */
export async function toPayload(ctx: ServerContext, projectId: string, r: SubmitRequest): Promise<Record<string, unknown>> {
  const run = join(ctx.config.dataDir, 'runs', newId('run'));
  await mkdir(run, { recursive: true });
  // Input files sent as text live in the run folder (so they go with it), beside the output the job writes.
  const input = async (name: string, text: string) => {
    const dir = join(run, INPUTS);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };
  const data = async (id: string) => (await mustDataset(ctx, projectId, id)).path;
  const out = (fallback: string) => join(run, ('outName' in r && r.outName) || fallback);
  const parse = (p: Record<string, unknown>) => SERVER_JOB_KINDS.get(r.kind)!.payload.parse({ ...optionsOf(r), ...p }) as Record<string, unknown>;
  switch (r.kind) {
    case 'train':
      return parse({
        model: await resolveModel(ctx, projectId, r),
        data: await data(r.dataset),
        out: out('run'),
        ...(r.weights ? { weights: await resolveModel(ctx, projectId, { model: r.weights }, 'weights') } : {}),
        ...(r.hypText !== undefined ? { hypFile: await input('hyp.yaml', r.hypText) } : {}),
      });
    case 'tune':
      return parse({ model: await resolveModel(ctx, projectId, r), data: await data(r.dataset), out: out('run'), ...(r.spaceText !== undefined ? { spaceFile: await input('space.yaml', r.spaceText) } : {}) });
    case 'export':
      return parse({ checkpoint: await resolveModel(ctx, projectId, r), out: out('model.onnx') });
    case 'check':
      return parse({ model: await resolveModel(ctx, projectId, r), out: join(run, 'check.json') });
    case 'quantize':
      return parse({ model: await resolveModel(ctx, projectId, r), data: await data(r.dataset), out: out('model.int8.onnx') });
    case 'bench':
      return parse({ model: await resolveModel(ctx, projectId, r), data: await data(r.dataset), out: out('report.json') });
    case 'select': {
      if (!r.fromJob === !r.reportSha256) throw new CvoptError('INVALID_ARGUMENT', 'name the report: a bench job (fromJob) or the sha256 of its report.json (reportSha256)', { where: { field: 'fromJob' } });
      const bench = r.fromJob ? await mustSucceeded(ctx, projectId, r.fromJob, 'bench', 'fromJob') : await jobByOutput(ctx, projectId, 'bench', r.reportSha256!, 'reportSha256');
      // Select reads a copy beside its decision, as a local run reads the report beside decision.json.
      const report = join(run, r.reportName ?? 'report.json');
      await copyFile(outputOf(bench), report);
      return parse({ report, out: out('decision.json') });
    }
    case 'package': {
      if (r.decision || r.decisionSha256) {
        const sel = r.decision ? await mustSucceeded(ctx, projectId, r.decision, 'select', 'decision') : await jobByOutput(ctx, projectId, 'select', r.decisionSha256!, 'decisionSha256');
        return parse({ decision: outputOf(sel), out: out('artifact') });
      }
      return parse({ model: await resolveModel(ctx, projectId, r), out: out('artifact') });
    }
  }
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
