import { CvoptError, ERROR_CATALOGUE, type ErrorCode, type JobLogLevel, type JobProgress, type SerializedError } from '@cvopt/core';
import { emit, ProgressLine, type CommonOptions } from '../output.js';
import { RemoteClient } from './client.js';
import { projectId } from './resolve.js';

export interface JobView {
  id: string;
  kind: string;
  state: string;
  result: unknown;
  error: SerializedError | null;
}

/**
 * The one path every `--remote` command takes: submit the job by kind with the command's options, follow its
 * events (progress on stderr, logs with --verbose), then print the result and exit with the code the local run
 * would have (the job's error code through the catalogue). `--detach` prints the job id and returns at once.
 */
export async function submitRemote(kind: string, project: string, body: Record<string, unknown>, opts: CommonOptions & Record<string, unknown>, client = RemoteClient.fromCredentials()): Promise<JobView | undefined> {
  const pid = await projectId(client, project);
  const { job } = await client.request<{ job: JobView }>('POST', `/projects/${pid}/jobs`, { json: { kind, ...body } });
  if (opts.detach) {
    emit(opts, { job: job.id, state: job.state }, (r) => `submitted ${kind} job ${r.job} (${r.state}); follow it with: cvopt jobs follow ${project} ${r.job}`);
    return undefined;
  }
  return followJob(client, pid, job.id, opts);
}

/** Download a file a job wrote. */
export async function downloadArtifact(client: RemoteClient, pid: string, jobId: string, file: string): Promise<Buffer> {
  const res = await client.raw(`/projects/${pid}/jobs/${jobId}/artifacts/${file}`);
  return Buffer.from(await res.arrayBuffer());
}

/** What a local run would do with the job's progress and log lines; by default a progress bar and --verbose logs. */
export interface JobHooks {
  onProgress?: (p: JobProgress) => void;
  onLog?: (level: JobLogLevel, message: string) => void;
}

/**
 * Follow a job's events to its end: progress and logs to the hooks (a local command's own), the job id on stderr.
 * Succeeded → the job; failed → the job's own error, code, where and hint as the local run would have thrown it.
 */
export async function waitForJob(client: RemoteClient, pid: string, jobId: string, opts: CommonOptions & Record<string, unknown>, hooks: JobHooks = {}): Promise<JobView> {
  const bar = hooks.onProgress ? undefined : new ProgressLine('job', opts.json === true);
  if (!opts.json) process.stderr.write(`job ${jobId}\n`);
  for await (const e of client.events(pid, jobId)) {
    if (e.type === 'progress') {
      const p = e.data as JobProgress;
      if (hooks.onProgress) hooks.onProgress(p);
      else bar?.update(p.step, p.total, `${p.stage}${p.message ? ` ${p.message}` : ''}`);
    } else if (e.type === 'log') {
      const l = e.data as { level?: JobLogLevel; message?: string };
      if (hooks.onLog) hooks.onLog(l.level ?? 'info', l.message ?? '');
      else if (opts.verbose && !opts.json) process.stderr.write(`[${l.level ?? 'info'}] ${l.message ?? ''}\n`);
    }
  }
  const { job } = await client.request<{ job: JobView }>('GET', `/projects/${pid}/jobs/${jobId}`);
  if (job.state === 'succeeded') {
    bar?.done(job.state);
    return job;
  }
  if (job.state === 'cancelled') throw new CvoptError('CANCELLED', `job ${job.id} was cancelled`);
  const err = job.error;
  const code = (err?.code && err.code in ERROR_CATALOGUE ? err.code : 'INTERNAL') as ErrorCode;
  throw new CvoptError(code, err?.message ?? `${job.kind} job ${job.id} failed with no error recorded`, {
    ...(err?.hint ? { hint: err.hint } : {}),
    ...(err?.where ? { where: err.where } : {}),
    ...(err?.details !== undefined ? { details: err.details } : {}),
  });
}

/** `cvopt jobs follow`: wait for the job, then print its raw result. */
export async function followJob(client: RemoteClient, pid: string, jobId: string, opts: CommonOptions & Record<string, unknown>): Promise<JobView> {
  const job = await waitForJob(client, pid, jobId, opts);
  emit(opts, { job: job.id, kind: job.kind, state: job.state, result: job.result }, (r) => `${r.kind} job ${r.job} succeeded\n${JSON.stringify(r.result, null, 2)}`);
  return job;
}
