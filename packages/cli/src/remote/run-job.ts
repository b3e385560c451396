import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { CvoptError, JOB_PAYLOAD_SCHEMAS, parseWith, type JobHandler, type JobLogLevel, type JobProgress } from '@cvopt/core';
import { PLATFORM_HANDLERS, runLocal } from '@cvopt/platform';
import { emit, type CommonOptions } from '../output.js';
import { RemoteClient } from './client.js';
import { loadCredentials } from './credentials.js';
import { projectId } from './resolve.js';
import { JOB_ID, RemoteInputs } from './resources.js';
import { downloadArtifact, waitForJob, type JobView } from './submit.js';

/**
 * The one place a command chooses where it runs. A command builds its payload from its flags and calls
 * `runJob(kind, payload, opts, hooks)`; without `--remote` the platform handler runs in this process (runLocal),
 * with it the same payload becomes a job of the same kind on the server of `cvopt login`: inputs are named or
 * uploaded, the job is followed with the command's own progress hooks, the files it wrote are downloaded to the
 * local --out, and the result comes back with the local paths in place of the server's. The command then renders
 * it and picks its exit code exactly as after a local run.
 */

export type RemoteKind = 'train' | 'tune' | 'export' | 'check' | 'quantize' | 'bench' | 'select' | 'package';
type ResultOf<K extends RemoteKind> = Awaited<ReturnType<(typeof PLATFORM_HANDLERS)[K]['run']>>;
type Opts = CommonOptions & Record<string, unknown>;
type Payload = Record<string, unknown>;

export interface RunHooks {
  onProgress?: (p: JobProgress) => void;
  onLog?: (level: JobLogLevel, message: string) => void;
}

/** `--remote`, `--project`, `--detach` (and `--verbose`), worded alike on every command that can run on the server. */
export function remoteOptions(cmd: Command): Command {
  if (!cmd.options.some((o) => o.long === '--verbose')) cmd.option('--verbose', 'with --remote: say what was uploaded and print the job\'s log lines');
  return cmd
    .option('--remote', 'run it as a job on the server of `cvopt login`; local models and datasets are uploaded (once), names and ids are project resources')
    .option('--project <name>', 'the server project (with --remote; default: `cvopt project use NAME`)')
    .option('--detach', 'with --remote: print the job id and return');
}

/** Run a job here or on the server; `undefined` only when --detach printed the job id instead of waiting. */
export async function runJob<K extends RemoteKind>(kind: K, payload: object, opts: Opts, hooks: RunHooks = {}): Promise<ResultOf<K> | undefined> {
  const handler = PLATFORM_HANDLERS[kind] as unknown as JobHandler<unknown, ResultOf<K>>;
  if (!opts.remote) return runLocal(handler, payload, { ...hooks, ...(opts.signal ? { signal: opts.signal } : {}) });
  // A flag mistake is refused here, with the local run's message, before anything is uploaded or submitted.
  parseWith(JOB_PAYLOAD_SCHEMAS[kind], payload, { what: `${kind} options`, code: 'INVALID_ARGUMENT' });
  return runRemote(kind, payload as Payload, opts, hooks) as Promise<ResultOf<K> | undefined>;
}

/** --project, else the default project of `cvopt project use`, else a clear error naming both. */
function projectOf(opts: Opts): string {
  if (typeof opts.project === 'string') return opts.project;
  const saved = loadCredentials().project;
  if (saved) return saved;
  throw new CvoptError('INVALID_ARGUMENT', '--remote needs a project: pass --project NAME, or set a default with `cvopt project use NAME`', {
    where: { field: '--project' },
    hint: 'cvopt project list',
  });
}

/** A local-only flag given with --remote. */
function notRemote(flag: string, why: string): CvoptError {
  return new CvoptError('INVALID_ARGUMENT', `${flag} is not available with --remote: ${why}`, { where: { field: flag }, hint: `run without --remote, or leave out ${flag}` });
}

/** Payload fields that name files or local state; everything else is an option sent under its own name. */
const REFERENCES = ['model', 'data', 'out', 'checkpoint', 'report', 'decision', 'weights', 'hypFile', 'spaceFile', 'cacheDir', 'samples', 'video', 'resume', 'existOk', 'trustTorchscript'];

interface Request {
  body: Payload;
  /** Payload fields of the server's job whose paths stand for these local ones in the result. */
  links: { field: string; local: string; dir?: boolean }[];
  /** Run-folder files that are inputs (the report select read), not outputs to download. */
  skip: string[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
function readInput(file: string, flag: string): Buffer {
  if (!existsSync(file) || !statSync(file).isFile()) throw new CvoptError('NOT_FOUND', `${file} does not exist or is not a file`, { where: { file, field: flag } });
  return readFileSync(file);
}
const text = (file: string, flag: string) => readInput(file, flag).toString('utf8');
const sha256File = (file: string, flag: string) => createHash('sha256').update(readInput(file, flag)).digest('hex');

/** The server request for a local payload: options as they are, models and data named or uploaded, files as text. */
async function toRequest(kind: RemoteKind, p: Payload, io: RemoteInputs): Promise<Request> {
  const body: Payload = Object.fromEntries(Object.entries(p).filter(([k, v]) => !REFERENCES.includes(k) && v !== undefined));
  const links: Request['links'] = [];
  const skip: string[] = [];
  const model = async (field: string, flag: string, o: { jobs?: boolean } = {}) => {
    const arg = str(p[field])!;
    const ref = await io.model(arg, flag, o);
    if (existsSync(arg)) links.push({ field, local: statSync(arg).isDirectory() ? join(arg, 'model.onnx') : arg });
    return ref;
  };
  const dataset = async () => {
    const arg = str(p.data)!;
    if (existsSync(arg)) links.push({ field: 'data', local: statSync(arg).isDirectory() ? arg : dirname(arg) });
    return { dataset: await io.dataset(arg) };
  };
  // A file sent as text: the server's copy is named by this local path in messages (a hyp key's file:line).
  const sent = (field: string) => {
    if (str(p[field])) links.push({ field, local: str(p[field])! });
    return {};
  };
  const outName = () => {
    const out = str(p.out);
    if (!out) return {};
    const name = basename(resolve(out));
    // The server names the job's output after it; it takes plain file names only.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
      throw new CvoptError('INVALID_ARGUMENT', `--out ${out}: with --remote its last part must be a plain name (letters, digits, ".", "_", "-")`, { where: { field: '--out' } });
    }
    return { outName: name };
  };
  if (p.resume === true) throw notRemote('--resume', 'a remote run starts afresh; resume it on the machine that holds its folder');
  if (p.trustTorchscript === true) throw notRemote('--trust-torchscript', 'the server never loads TorchScript programs');
  switch (kind) {
    case 'train':
      if (p.existOk === true) throw notRemote('--exist-ok', 'a remote run always writes a fresh folder');
      return {
        body: {
          ...body,
          ...(await model('model', '--model', { jobs: true })),
          ...(await dataset()),
          ...(str(p.weights) ? { weights: ((await model('weights', '--weights', { jobs: false })) as { model: string }).model } : {}),
          ...(str(p.hypFile) ? { hypText: text(str(p.hypFile)!, '--hyp') } : {}),
          ...sent('hypFile'),
          ...outName(),
        },
        links,
        skip,
      };
    case 'tune':
      if (p.cacheDir) throw notRemote('--trial-cache', 'the trial cache is a folder on this machine');
      return { body: { ...body, ...(await model('model', '--model')), ...(await dataset()), ...(str(p.spaceFile) ? { spaceText: text(str(p.spaceFile)!, '--space') } : {}), ...sent('spaceFile'), ...outName() }, links, skip };
    case 'export':
      if (p.samples !== undefined) throw notRemote('--samples', 'the parity check runs on seeded inputs on the server');
      return { body: { ...body, ...(await model('checkpoint', 'model')), ...outName() }, links, skip };
    case 'check':
      return { body: { ...body, ...(await model('model', 'model')) }, links, skip };
    case 'quantize':
      return { body: { ...body, ...(await model('model', 'model')), ...(await dataset()), ...outName() }, links, skip };
    case 'bench':
      if (p.video !== undefined) throw notRemote('--video', 'the server has no video of yours; benchmark video locally');
      return { body: { ...body, ...(await model('model', 'model')), ...(await dataset()), ...outName() }, links, skip };
    case 'select': {
      // The report: a bench job id, or a report.json a remote bench downloaded (the server finds its job by content).
      const report = str(p.report)!;
      if (JOB_ID.test(report) && !existsSync(report)) return { body: { ...body, fromJob: report, ...outName() }, links, skip };
      skip.push(basename(report));
      return { body: { ...body, reportSha256: sha256File(report, 'report'), reportName: basename(report), ...outName() }, links, skip };
    }
    case 'package': {
      const decision = str(p.decision);
      if (decision && JOB_ID.test(decision) && !existsSync(decision)) return { body: { ...body, decision, ...outName() }, links, skip };
      if (decision) {
        links.push({ field: 'decision', local: decision }, { field: 'decision', local: decision, dir: true });
        return { body: { ...body, decisionSha256: sha256File(decision, '--decision'), ...outName() }, links, skip };
      }
      return { body: { ...body, ...(await model('model', 'model')), ...outName() }, links, skip };
    }
  }
}

async function runRemote(kind: RemoteKind, payload: Payload, opts: Opts, hooks: RunHooks): Promise<unknown> {
  const c = RemoteClient.fromCredentials();
  const project = projectOf(opts);
  const pid = await projectId(c, project);
  const say = (line: string) => {
    if (opts.verbose && !opts.json) process.stderr.write(`${line}\n`);
  };
  const io = new RemoteInputs(c, pid, say);
  const req = await toRequest(kind, payload, io);
  const { job } = await c.request<{ job: JobView & { payload: Payload } }>('POST', `/projects/${pid}/jobs`, { json: { kind, ...req.body } });
  if (opts.detach) {
    emit(opts, { job: job.id, state: job.state }, (r) => `submitted ${kind} job ${r.job} (${r.state}); follow it with: cvopt jobs follow ${project} ${r.job}`);
    return undefined;
  }
  const serverOut = str(job.payload.out);
  const localOut = str(payload.out) ?? (kind === 'select' ? join(dirname(str(payload.report)!), 'decision.json') : undefined);
  const pairs: [string, string][] = [];
  for (const l of req.links) {
    const server = str(job.payload[l.field]);
    if (server) pairs.push(l.dir ? [dirname(server), dirname(l.local)] : [server, l.local]);
  }
  // The job writes its output inside a fresh run folder under the local --out's name: that folder stands for the
  // local --out's parent.
  const roots = serverOut && localOut ? ([dirname(serverOut), dirname(localOut)] as const) : undefined;
  if (serverOut && localOut && roots) pairs.push([serverOut, localOut], [roots[0], roots[1]]);
  pairs.sort((a, b) => b[0].length - a[0].length);
  let done: JobView;
  try {
    done = await waitForJob(c, pid, job.id, opts, hooks);
  } catch (e) {
    if (!(e instanceof CvoptError)) throw e;
    const where = rewrite(e.where, pairs) as typeof e.where;
    throw new CvoptError(e.code, rewrite(e.message, pairs) as string, { ...(e.hint ? { hint: rewrite(e.hint, pairs) as string } : {}), ...(where ? { where } : {}), ...(e.details !== undefined ? { details: e.details } : {}) });
  }
  if (roots) await download(c, pid, job.id, roots[1], req.skip, kind === 'package' ? localOut : undefined);
  return rewrite(done.result, pairs);
}

/**
 * Every file the job wrote, to the same place under the local output folder. A package's artifact folder comes as
 * its .tar.gz (one download instead of a file per request) and is unpacked in place of the old one, as locally.
 */
async function download(c: RemoteClient, pid: string, jobId: string, root: string, skip: string[], artifact?: string): Promise<void> {
  const get = async (path: string, dest: string) => {
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, await downloadArtifact(c, pid, jobId, path.split('/').map(encodeURIComponent).join('/')));
  };
  if (artifact) {
    await get(`${basename(artifact)}.tar.gz`, `${artifact}.tar.gz`);
    rmSync(artifact, { recursive: true, force: true });
    await promisify(execFile)('tar', ['xzf', `${artifact}.tar.gz`, '-C', dirname(artifact)]);
    return;
  }
  const { files } = await c.request<{ files: { path: string }[] }>('GET', `/projects/${pid}/jobs/${jobId}/artifacts`);
  // `.inputs/` holds what this client sent (train --hyp, tune --space): not an output.
  for (const f of files) if (!skip.includes(f.path) && !f.path.startsWith('.inputs/')) await get(f.path, join(root, f.path));
}

/** The result with each server path replaced by the local path it stands for, in messages too (longest first). */
function rewrite(v: unknown, pairs: [string, string][]): unknown {
  if (typeof v === 'string') return pairs.reduce((s, [server, local]) => s.replace(new RegExp(`${escape(server)}(?=$|[/\\s"':,;)])`, 'g'), () => local), v);
  if (Array.isArray(v)) return v.map((x) => rewrite(x, pairs));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x, pairs)]));
  return v;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
