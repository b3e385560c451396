import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { action } from '../action.js';
import { emit, table } from '../output.js';
import { RemoteClient } from '../remote/client.js';
import { examples, projectId, resourceId } from '../remote/resolve.js';
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
  const jobs = examples(program.command('jobs').description("a project's jobs on the cvopt server"), 'cvopt jobs list shapes', 'cvopt jobs follow shapes JOB_ID');
  const client = () => RemoteClient.fromCredentials();

  action<[string]>(examples(
      jobs.command('list').argument('<project>').option('--state <state>', 'queued, running, succeeded, failed or cancelled').option('--kind <kind>', 'train, bench, package …'),
      'cvopt jobs list shapes --state running',
    ), async (p, opts) => {
    const c = client();
    const qs = new URLSearchParams({ ...(typeof opts.state === 'string' ? { state: opts.state } : {}), ...(typeof opts.kind === 'string' ? { kind: opts.kind } : {}) });
    const r = await c.request<{ jobs: JobView[] }>('GET', `/projects/${await projectId(c, p)}/jobs?${qs}`);
    emit(opts, r.jobs, (js) =>
      table(['job', 'kind', 'state', 'progress', 'by', 'created'], js.map((j) => [j.id, j.kind, j.state, j.progress ? `${j.progress.stage} ${j.progress.step}/${j.progress.total}` : null, j.createdBy, j.createdAt])),
    );
  });

  action<[string, string]>(examples(jobs.command('show').argument('<project>').argument('<job>'), 'cvopt jobs show shapes JOB_ID --json'), async (p, id, opts) => {
    const c = client();
    const r = await c.request<{ job: JobView }>('GET', `/projects/${await projectId(c, p)}/jobs/${id}`);
    emit(opts, r.job, (j) => JSON.stringify(j, null, 2));
  });

  action<[string, string]>(examples(
      jobs.command('follow').argument('<project>').argument('<job>').description('stream progress until the job ends; exits with its code').option('--verbose', 'print its log lines'),
      'cvopt jobs follow shapes JOB_ID --verbose',
    ), async (p, id, opts) => {
    const c = client();
    await followJob(c, await projectId(c, p), id, opts);
  });

  action<[string, string]>(examples(jobs.command('logs').argument('<project>').argument('<job>'), 'cvopt jobs logs shapes JOB_ID'), async (p, id, opts) => {
    const c = client();
    const r = await c.request<{ logs: { at: string; level?: string; message?: string }[] }>('GET', `/projects/${await projectId(c, p)}/jobs/${id}/logs`);
    emit(opts, r.logs, (ls) => ls.map((l) => `${l.at} [${l.level ?? 'info'}] ${l.message ?? ''}`).join('\n'));
  });

  action<[string, string]>(examples(jobs.command('cancel').argument('<project>').argument('<job>'), 'cvopt jobs cancel shapes JOB_ID'), async (p, id, opts) => {
    const c = client();
    const r = await c.request<{ job: JobView }>('POST', `/projects/${await projectId(c, p)}/jobs/${id}/cancel`);
    emit(opts, r.job, (j) => `job ${j.id} is ${j.state}`);
  });

  action<[string, string, string | undefined]>(
    examples(
      jobs.command('download').argument('<project>').argument('<job>').argument('[file]', 'a path from the list; without it, list the files').option('--out <file>', 'where to write it (default: its base name)'),
      'cvopt jobs download shapes JOB_ID',
      'cvopt jobs download shapes JOB_ID report.json --out bench.json',
    ),
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
  examples(
    submit,
    `cvopt jobs submit shapes package --options '{"model":"v8n","engine":"ort-cpu"}'`,
    `cvopt jobs submit shapes tune --options '{"model":"base","dataset":"shapes","strategy":"nsga2"}' --detach`,
  );
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
