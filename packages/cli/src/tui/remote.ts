import type { RemoteClient } from '../remote/client.js';

/**
 * The dashboard's view of a cvopt server (after `cvopt login`): every job of every project the user holds a role
 * in, with its progress and log, read through the same API and permissions as the CLI; packaging is submitted as
 * a job, and only a project admin is offered it (the server refuses anyone else anyway).
 */

export interface RemoteJobRun {
  kind: 'job';
  /** `projectId/jobId`: the dashboard's key for a run. */
  dir: string;
  name: string;
  state: 'queued' | 'running' | 'finished' | 'failed' | 'cancelled' | 'stalled';
  jobKind: string;
  projectId: string;
  projectName: string;
  role: string;
  jobId: string;
  step: number;
  total: number;
  message: string;
  error?: string;
  result?: unknown;
  logs: string[];
  updatedAt: number;
}

interface ProjectView {
  id: string;
  name: string;
  role?: string;
}

interface JobView {
  id: string;
  kind: string;
  state: string;
  progress: { stage: string; step: number; total: number; message?: string } | null;
  result: unknown;
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const STATE: Record<string, RemoteJobRun['state']> = { queued: 'queued', running: 'running', succeeded: 'finished', failed: 'failed', cancelled: 'cancelled' };

export async function remoteRuns(client: RemoteClient, opts: { limit?: number } = {}): Promise<RemoteJobRun[]> {
  const { projects } = await client.request<{ projects: ProjectView[] }>('GET', '/projects');
  const out: RemoteJobRun[] = [];
  for (const p of projects) {
    // A viewer may predict only: the server answers 404 for their job list, so it is not asked.
    if (p.role === 'viewer') continue;
    const { jobs } = await client.request<{ jobs: JobView[] }>('GET', `/projects/${p.id}/jobs?limit=${opts.limit ?? 50}`);
    for (const j of jobs) {
      const at = Date.parse(j.finishedAt ?? j.startedAt ?? j.createdAt) / 1000;
      out.push({
        kind: 'job',
        dir: `${p.id}/${j.id}`,
        name: `${p.name}/${j.kind} ${j.id.slice(-8)}`,
        state: STATE[j.state] ?? 'running',
        jobKind: j.kind,
        projectId: p.id,
        projectName: p.name,
        role: p.role ?? '',
        jobId: j.id,
        step: j.progress?.step ?? (j.state === 'succeeded' ? 1 : 0),
        total: j.progress?.total ?? (j.state === 'succeeded' ? 1 : 0),
        message: j.progress ? `${j.progress.stage} ${j.progress.message ?? ''}`.trim() : '',
        ...(j.error ? { error: `${j.error.code}: ${j.error.message}` } : {}),
        ...(j.result !== null && j.result !== undefined ? { result: j.result } : {}),
        logs: [],
        updatedAt: Number.isFinite(at) ? at : 0,
      });
    }
  }
  return out.sort((a, b) => (a.state === 'running' ? 0 : 1) - (b.state === 'running' ? 0 : 1) || b.updatedAt - a.updatedAt);
}

export async function remoteLogs(client: RemoteClient, run: RemoteJobRun): Promise<string[]> {
  const { logs } = await client.request<{ logs: { level?: string; message?: string }[] }>('GET', `/projects/${run.projectId}/jobs/${run.jobId}/logs`);
  return logs.map((l) => `${l.level ?? 'info'}: ${l.message ?? ''}`);
}

/** The engine a project's latest selection chose, for packaging a model job; ort-cpu when none chose one. */
function selectedEngine(runs: readonly RemoteJobRun[], projectId: string): string {
  for (const r of runs) {
    if (r.projectId !== projectId || r.state !== 'finished' || (r.jobKind !== 'select' && r.jobKind !== 'bench')) continue;
    const res = r.result as { winner?: unknown; decision?: { winner?: unknown } } | undefined;
    const w = res?.winner ?? res?.decision?.winner;
    if (typeof w === 'string') return w;
  }
  return 'ort-cpu';
}

/** Submit `package` for a finished export job (its ONNX + model.json) with the project's selected engine. */
export async function remotePackage(client: RemoteClient, run: RemoteJobRun, runs: readonly RemoteJobRun[]): Promise<string> {
  if (run.role !== 'admin') return `packaging needs the admin role in ${run.projectName} (you are ${run.role || 'not a member'})`;
  if (run.jobKind !== 'export' || run.state !== 'finished') {
    return 'p packages the ONNX model of a finished export job: open one (export a trained checkpoint first)';
  }
  const engine = selectedEngine(runs, run.projectId);
  const { job } = await client.request<{ job: { id: string } }>('POST', `/projects/${run.projectId}/jobs`, { json: { kind: 'package', fromJob: run.jobId, engine } });
  return `submitted package job ${job.id} (${engine}) in ${run.projectName}`;
}
