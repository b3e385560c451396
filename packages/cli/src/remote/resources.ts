import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { CvoptError } from '@cvopt/core';
import { manifestPathFor } from '@cvopt/engines';
import type { RemoteClient } from './client.js';
import { resourceId } from './resolve.js';

/**
 * The model and data inputs of a `--remote` command. Each names a project resource (name or id), a preset, an
 * earlier job (by id), or a local file or folder: that one is uploaded first — unless the project already holds
 * the same content (a model by its sha256, a dataset by the content hash in its name), so a rerun uploads nothing.
 */

/** How the server reads a model: a resource id or preset, or the output of an earlier job. */
export type ModelRef = { model: string } | { fromJob: string };

/** Where each local input went, for the rewrite of server paths in a result (see run-job.ts). */
export interface Uploaded {
  kind: 'model' | 'dataset';
  local: string;
  id: string;
  reused: boolean;
}

const PRESET = /^yolov8[pnsmlx](-cls)?$/;
/** Job ids are UUIDs (packages/jobs). */
export const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface ModelView {
  id: string;
  name: string;
  sha256: string | null;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
/** A resource name the server accepts (letters, digits, ".", "_", "-"; up to 63) that carries the content hash. */
const nameFor = (stem: string, hash: string) => `${stem.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 48) || 'input'}-${hash.slice(0, 12)}`;

export class RemoteInputs {
  readonly uploaded: Uploaded[] = [];

  constructor(
    private readonly c: RemoteClient,
    private readonly pid: string,
    private readonly say: (line: string) => void,
  ) {}

  /** A model argument: a preset, a job id (where the kind reads earlier jobs), a local file, or a project model. */
  async model(arg: string, field: string, o: { jobs?: boolean } = {}): Promise<ModelRef> {
    if (PRESET.test(arg)) return { model: arg };
    if (o.jobs !== false && JOB_ID.test(arg)) return { fromJob: arg };
    if (existsSync(arg)) {
      const file = statSync(arg).isDirectory() ? join(arg, 'model.onnx') : arg;
      if (!existsSync(file)) throw new CvoptError('NOT_FOUND', `${arg} is a folder without model.onnx`, { where: { file: arg, field } });
      return { model: await this.uploadModel(file) };
    }
    return { model: await resourceId(this.c, this.pid, 'models', arg) };
  }

  /** A dataset argument: a local data.yaml, its folder or a classification folder; or a project dataset. */
  async dataset(arg: string): Promise<string> {
    if (!existsSync(arg)) return resourceId(this.c, this.pid, 'datasets', arg);
    const root = statSync(arg).isDirectory() ? arg : dirname(arg);
    const name = nameFor(basename(root === '.' ? process.cwd() : root), folderHash(root));
    const { datasets } = await this.c.request<{ datasets: ModelView[] }>('GET', `/projects/${this.pid}/datasets`);
    const same = datasets.find((d) => d.name === name);
    if (same) {
      this.note({ kind: 'dataset', local: arg, id: same.id, reused: true }, `dataset ${root}: the project's ${same.name} (${same.id}) has the same content; not uploaded`);
      return same.id;
    }
    const tmp = mkdtempSync(join(tmpdir(), 'cvopt-upload-'));
    try {
      const archive = join(tmp, 'data.tar.gz');
      await promisify(execFile)('tar', ['czf', archive, '-C', dirname(root), basename(root)]);
      const { dataset } = await this.c.request<{ dataset: ModelView }>('POST', `/projects/${this.pid}/datasets?name=${encodeURIComponent(name)}`, { body: readFileSync(archive), type: 'application/gzip' });
      this.note({ kind: 'dataset', local: arg, id: dataset.id, reused: false }, `dataset ${root}: uploaded as ${dataset.name} (${dataset.id}, ${statSync(archive).size} bytes packed)`);
      return dataset.id;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  private async uploadModel(file: string): Promise<string> {
    const bytes = readFileSync(file);
    const hash = sha256(bytes);
    const { models } = await this.c.request<{ models: ModelView[] }>('GET', `/projects/${this.pid}/models`);
    let model = models.find((m) => m.sha256 === hash);
    if (model) this.note({ kind: 'model', local: file, id: model.id, reused: true }, `model ${file}: the project's ${model.name} (${model.id}) has the same sha256; not uploaded`);
    else {
      model = (await this.c.request<{ model: ModelView }>('POST', `/projects/${this.pid}/models?name=${encodeURIComponent(nameFor(basename(file, extname(file)), hash))}`, { body: bytes })).model;
      this.note({ kind: 'model', local: file, id: model.id, reused: false }, `model ${file}: uploaded as ${model.name} (${model.id}, ${bytes.length} bytes)`);
    }
    // The model.json beside an ONNX file (class names, preprocessing) travels with it: the server could only infer one.
    const manifest = extname(file).toLowerCase() === '.onnx' ? manifestPathFor(file).find((p) => existsSync(p)) : undefined;
    if (manifest) await this.c.request('PUT', `/projects/${this.pid}/models/${model.id}/manifest`, { json: JSON.parse(readFileSync(manifest, 'utf8')) as unknown });
    return model.id;
  }

  private note(u: Uploaded, line: string): void {
    this.uploaded.push(u);
    this.say(line);
  }
}

/** A folder's content hash: every file's relative path and bytes, in name order. */
function folderHash(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) h.update(`${relative(root, p)}\0${sha256(readFileSync(p))}\n`);
    }
  };
  walk(root);
  return h.digest('hex');
}
