import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { action } from '../action.js';
import { emit, table } from '../output.js';
import { RemoteClient } from '../remote/client.js';
import { projectId, resourceId } from '../remote/resolve.js';
import { downloadArtifact, followJob, submitRemote } from '../remote/submit.js';

interface JobView {
  id: string;
  kind: string;
  state: string;
  createdBy: string | null;
  createdAt: string;
  finishedAt: string | null;
  progress: { stage: string; step: number; total: number } | null;
}

/** `cvopt jobs …`: a project's jobs on the server — list, show, follow, logs, cancel, download, submit any kind. */
export function register(program: Command): void {
  const jobs = program.command('jobs').description("a project's jobs on the cvopt server");
  const client = () => RemoteClient.fromCredentials();

  action<[string]>(jobs.command('list').argument('<project>').option('--state <state>', 'queued, running, succeeded, failed or cancelled').option('--kind <kind>', 'train, bench, package …'), async (p, opts) => {
    const c = client();
    const qs = new URLSearchParams({ ...(typeof opts.state === 'string' ? { state: opts.state } : {}), ...(typeof opts.kind === 'string' ? { kind: opts.kind } : {}) });
    const r = await c.request<{ jobs: JobView[] }>('GET', `/projects/${await projectId(c, p)}/jobs?${qs}`);
    emit(opts, r.jobs, (js) =>
      table(['job', 'kind', 'state', 'progress', 'by', 'created'], js.map((j) => [j.id, j.kind, j.state, j.progress ? `${j.progress.stage} ${j.progress.step}/${j.progress.total}` : null, j.createdBy, j.createdAt])),
    );
  });

  action<[string, string]>(jobs.command('show').argument('<project>').argument('<job>'), async (p, id, opts) => {
    const c = client();
    const r = await c.request<{ job: JobView }>('GET', `/projects/${await projectId(c, p)}/jobs/${id}`);
    emit(opts, r.job, (j) => JSON.stringify(j, null, 2));
  });

  action<[string, string]>(jobs.command('follow').argument('<project>').argument('<job>').description('stream progress until the job ends; exits with its code').option('--verbose', 'print its log lines'), async (p, id, opts) => {
    const c = client();
    await followJob(c, await projectId(c, p), id, opts);
  });

  action<[string, string]>(jobs.command('logs').argument('<project>').argument('<job>'), async (p, id, opts) => {
    const c = client();
    const r = await c.request<{ logs: { at: string; level?: string; message?: string }[] }>('GET', `/projects/${await projectId(c, p)}/jobs/${id}/logs`);
    emit(opts, r.logs, (ls) => ls.map((l) => `${l.at} [${l.level ?? 'info'}] ${l.message ?? ''}`).join('\n'));
  });

  action<[string, string]>(jobs.command('cancel').argument('<project>').argument('<job>'), async (p, id, opts) => {
    const c = client();
    const r = await c.request<{ job: JobView }>('POST', `/projects/${await projectId(c, p)}/jobs/${id}/cancel`);
    emit(opts, r.job, (j) => `job ${j.id} is ${j.state}`);
  });

  action<[string, string, string | undefined]>(
    jobs.command('download').argument('<project>').argument('<job>').argument('[file]', 'a path from the list; without it, list the files').option('--out <file>', 'where to write it (default: its base name)'),
    async (p, id, file, opts) => {
      const c = client();
      const pid = await projectId(c, p);
      if (!file) {
        const r = await c.request<{ files: { path: string; bytes: number }[] }>('GET', `/projects/${pid}/jobs/${id}/artifacts`);
        emit(opts, r.files, (fs) => table(['file', 'bytes'], fs.map((f) => [f.path, f.bytes])));
        return;
      }
      const out = typeof opts.out === 'string' ? opts.out : file.split('/').pop()!;
      writeFileSync(out, await downloadArtifact(c, pid, id, file.split('/').map(encodeURIComponent).join('/')));
      emit(opts, { file, out }, (x) => `wrote ${x.out}`);
    },
  );

  const submit = jobs
    .command('submit')
    .description('submit any job kind (train, tune, export, check, quantize, bench, select, package) with its options as JSON; resources by name or id')
    .argument('<project>')
    .argument('<kind>')
    .option('--options <json>', 'the options, e.g. \'{"engine":"ort-cpu","model":"best"}\'', '{}')
    .option('--detach', 'print the job id and return without following it')
    .option('--verbose', 'print its log lines');
  action<[string, string]>(submit, async (p, kind, opts) => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(String(opts.options)) as Record<string, unknown>;
    } catch (e) {
      throw new CvoptError('INVALID_ARGUMENT', `--options is not JSON: ${(e as Error).message}`, { where: { field: '--options' } });
    }
    const c = client();
    const pid = await projectId(c, p);
    if (typeof body.model === 'string') body.model = await resourceId(c, pid, 'models', body.model);
    if (typeof body.dataset === 'string') body.dataset = await resourceId(c, pid, 'datasets', body.dataset);
    await submitRemote(kind, pid, body, opts, c);
  });
}
