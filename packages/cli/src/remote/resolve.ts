import { existsSync, readFileSync, statSync } from 'node:fs';
import { CvoptError } from '@cvopt/core';
import type { RemoteClient } from './client.js';

interface Named {
  id: string;
  name: string;
}

/** A project given by name or id → its id. */
export async function projectId(c: RemoteClient, nameOrId: string): Promise<string> {
  const { projects } = await c.request<{ projects: Named[] }>('GET', '/projects');
  const p = projects.find((x) => x.id === nameOrId || x.name === nameOrId);
  if (!p) throw new CvoptError('NOT_FOUND', `no project "${nameOrId}" that you hold a role in`, { where: { field: '--project' }, hint: 'cvopt project list' });
  return p.id;
}

/** A dataset or model of the project given by name or id → its id; a preset model name passes through. */
export async function resourceId(c: RemoteClient, project: string, kind: 'datasets' | 'models', nameOrId: string): Promise<string> {
  if (kind === 'models' && /^yolov8[pnsmlx](-cls)?$/.test(nameOrId)) return nameOrId;
  const list = (await c.request<Record<string, Named[]>>('GET', `/projects/${project}/${kind}`))[kind] ?? [];
  const r = list.find((x) => x.id === nameOrId || x.name === nameOrId);
  if (!r) {
    throw new CvoptError('NOT_FOUND', `no ${kind.slice(0, -1)} "${nameOrId}" in the project`, {
      where: { field: kind === 'models' ? '--model' : '--data' },
      hint: `upload it first: cvopt project upload-${kind.slice(0, -1)} PROJECT NAME FILE`,
    });
  }
  return r.id;
}

/** A local file to send, or NOT_FOUND naming it. */
export function localFile(path: string, field: string): Buffer {
  if (!existsSync(path) || !statSync(path).isFile()) throw new CvoptError('NOT_FOUND', `${path} does not exist or is not a file`, { where: { file: path, field } });
  return readFileSync(path);
}

/** `--help` ends with these examples (every command shows some). */
export function examples<C extends { addHelpText(pos: 'after', text: string): C }>(cmd: C, ...lines: string[]): C {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`);
}
