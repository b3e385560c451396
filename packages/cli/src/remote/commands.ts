import { CvoptError, ENGINE_IDS } from '@cvopt/core';
import { numberFlag } from '../action.js';
import type { CommonOptions } from '../output.js';
import { RemoteClient } from './client.js';
import { projectId, resourceId } from './resolve.js';
import { writeFileSync } from 'node:fs';
import { downloadArtifact, submitRemote } from './submit.js';

/**
 * Local commands with `--remote`: the same flags become a job of the same kind on the server you are logged in
 * to, with --model / --data naming the project's models (or a preset) and datasets instead of local paths.
 */
type Opts = CommonOptions & Record<string, unknown>;

function needProject(opts: Opts): string {
  if (typeof opts.project !== 'string') throw new CvoptError('INVALID_ARGUMENT', '--remote needs --project NAME', { where: { field: '--project' }, hint: 'cvopt project list' });
  return opts.project;
}

export async function remoteTrain(opts: Opts): Promise<void> {
  const project = needProject(opts);
  if (typeof opts.model !== 'string' || typeof opts.data !== 'string') {
    throw new CvoptError('INVALID_ARGUMENT', 'remote train needs --model (a project model or preset) and --data (a project dataset)', { where: { field: typeof opts.model !== 'string' ? '--model' : '--data' } });
  }
  const c = RemoteClient.fromCredentials();
  const pid = await projectId(c, project);
  await submitRemote(
    'train',
    pid,
    {
      model: await resourceId(c, pid, 'models', opts.model),
      dataset: await resourceId(c, pid, 'datasets', opts.data),
      epochs: numberFlag('epochs', opts.epochs, { int: true, min: 1 }),
      imgsz: numberFlag('imgsz', opts.imgsz, { int: true, min: 32 }),
      batch: numberFlag('batch', opts.batch, { int: true, min: 1 }),
      seed: numberFlag('seed', opts.seed, { int: true, min: 0 }),
      device: String(opts.device),
    },
    opts,
    c,
  );
}

export async function remoteBench(model: string, opts: Opts): Promise<void> {
  const project = needProject(opts);
  const c = RemoteClient.fromCredentials();
  const pid = await projectId(c, project);
  const engines = typeof opts.engines === 'string' && opts.engines !== 'all' ? opts.engines.split(',').map((s) => s.trim()) : undefined;
  const bad = engines?.filter((e) => !(ENGINE_IDS as readonly string[]).includes(e));
  if (bad?.length) throw new CvoptError('INVALID_ARGUMENT', `unknown engine ${bad.join(', ')}`, { where: { field: '--engines' }, hint: `choose from ${ENGINE_IDS.join(', ')}` });
  const fromJob = /^[0-9a-f]{8}-[0-9a-f]{4}-/.test(model);
  const job = await submitRemote(
    'bench',
    pid,
    {
      ...(fromJob ? { fromJob: model } : { model: await resourceId(c, pid, 'models', model) }),
      ...(typeof opts.data === 'string' ? { dataset: await resourceId(c, pid, 'datasets', opts.data) } : {}),
      ...(engines ? { engines } : {}),
    },
    opts,
    c,
  );
  // The report lands where --out says, as with a local run.
  if (job && typeof opts.out === 'string') writeFileSync(opts.out, await downloadArtifact(c, pid, job.id, 'report.json'));
}
