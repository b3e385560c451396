import { readdir, realpath, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import type { JobRecord } from '@cvopt/core';
import type { ServerContext } from './context.js';
import type { Project } from './store/repository.js';
import { runDirOf } from './routes/jobs.js';

/**
 * What a project owns on disk, and how it goes away. Files live in four folders of the data dir: `datasets/<id>`
 * (uploads; a registered server-side path is never ours to remove), `models/<id>`, `runs/<run>` (every job's
 * output, and so every deployment's target) and `uploads/` (bodies being received).
 *
 * The rule that keeps a crash harmless: rows go first, files after. Then no row ever names a removed file, and
 * anything a crash leaves on disk is named by no row — `sweepOrphans` removes it at the next start.
 */

/** Until a cancelled job of another process has stopped writing: its next heartbeat (1 s) + the kill grace (2 s), with room. */
const LATE_WRITES_MS = 10_000;

/**
 * Remove `target` when it lies inside `root`, without following a link out: the folder holding it must resolve
 * inside the real root (a linked `datasets/` pointing elsewhere is refused), and `rm` unlinks links it meets
 * instead of descending into them. Returns false when refused or already gone.
 */
export async function removeInside(root: string, target: string): Promise<boolean> {
  const rel = relative(root, target);
  if (!rel || rel.startsWith('..') || isAbsolute(rel)) return false;
  let realRoot: string;
  let realParent: string;
  try {
    realRoot = await realpath(root);
    realParent = await realpath(dirname(target));
  } catch {
    return false;
  }
  const inside = relative(realRoot, realParent);
  if (inside.startsWith('..') || isAbsolute(inside)) return false;
  await rm(target, { recursive: true, force: true });
  return true;
}

export interface ProjectDeletion {
  cancelledJobs: number;
  deletedJobs: number;
  removed: string[];
}

/**
 * Delete a project: stop serving it, cancel its queued and running jobs, delete its rows (jobs with their events,
 * then the project with its datasets, models and members), then remove its files — and look once more a little
 * later, for a job of another process that wrote before it noticed the cancel.
 */
export async function deleteProject(ctx: ServerContext, project: Project): Promise<ProjectDeletion> {
  await ctx.deployments.unload(project.id);
  let cancelledJobs = 0;
  if (ctx.jobs) {
    for (const state of ['running', 'queued'] as const) {
      for (;;) {
        const live = await ctx.jobs.list({ projectId: project.id, state, limit: 500 });
        for (const j of live) {
          // One that finished meanwhile is simply not cancelled.
          if (await ctx.jobs.cancel(j.id).then(() => true, () => false)) cancelledJobs++;
        }
        if (live.length < 500) break;
      }
    }
  }
  const { dataDir } = ctx.config;
  const dirs = [
    ...(await ctx.repo.listDatasets(project.id)).filter((d) => d.source === 'upload').map((d) => join(dataDir, 'datasets', d.id)),
    ...(await ctx.repo.listModels(project.id)).filter((m) => m.path).map((m) => join(dataDir, 'models', m.id)),
  ];
  const jobs: JobRecord[] = ctx.jobStore ? await ctx.jobStore.purgeProject(project.id) : [];
  for (const j of jobs) {
    const run = runDirOf(ctx, j);
    if (run) dirs.push(run);
  }
  await ctx.repo.deleteProject(project.id);
  const removed: string[] = [];
  for (const d of dirs) if (await removeInside(dataDir, d)) removed.push(relative(dataDir, d));
  if (jobs.length) {
    setTimeout(() => void Promise.all(dirs.map((d) => removeInside(dataDir, d))).catch(() => undefined), LATE_WRITES_MS).unref();
  }
  ctx.log.info({ project: project.name, id: project.id, cancelledJobs, deletedJobs: jobs.length, removed }, 'project deleted');
  return { cancelledJobs, deletedJobs: jobs.length, removed };
}

/**
 * At start, before the port opens: remove what no row names — uploads never finished, datasets and models whose
 * rows are gone, run folders no job refers to (a crash between rows and files, a submit that failed). Run
 * folders are only judged when the job store is at hand.
 */
export async function sweepOrphans(ctx: ServerContext): Promise<string[]> {
  const { dataDir } = ctx.config;
  const ids = await ctx.repo.resourceIds();
  const keep: Record<string, Set<string> | undefined> = {
    uploads: new Set(),
    datasets: new Set(ids.datasets),
    models: new Set(ids.models),
    runs: undefined,
  };
  if (ctx.jobStore) {
    const runs = new Set<string>();
    for (const payload of await ctx.jobStore.payloads()) {
      const run = runDirOf(ctx, { payload } as JobRecord);
      if (run) runs.add(relative(join(dataDir, 'runs'), run));
    }
    keep.runs = runs;
  }
  const removed: string[] = [];
  for (const [folder, names] of Object.entries(keep)) {
    if (!names) continue;
    const entries = await readdir(join(dataDir, folder)).catch(() => [] as string[]);
    for (const name of entries) {
      if (names.has(name)) continue;
      if (await removeInside(dataDir, join(dataDir, folder, name))) removed.push(`${folder}/${name}`);
    }
  }
  if (removed.length) ctx.log.info({ removed }, 'removed files no row refers to');
  return removed;
}
