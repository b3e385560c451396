import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CvoptError,
  DecisionSchema,
  ENGINES,
  ModelManifestSchema,
  parseWith,
  type Decision,
  type EngineId,
  type ModelManifest,
} from '@cvopt/core';
import { readManifest } from '@cvopt/engines';
import { buildRuntimeBundle, removeTree, type Variant } from './bundle.js';
import { ArtifactManifestSchema, hashTree, MANIFEST_FILE, sha256File, type ArtifactManifest } from './manifest.js';
import { operatorReadme } from './readme.js';
import {
  composeFile,
  DOCKERIGNORE,
  dockerfileCpu,
  dockerfileGpu,
  GPU_ENTRYPOINT,
  HEALTHCHECK_SCRIPT,
  IMAGE_ROOT,
  kubernetesManifests,
  SERVICE_PORT,
  VERIFY_SCRIPT,
  type TemplateInput,
} from './templates.js';

export interface PackageOptions {
  /** decision.json written by `cvopt select`: its `model` names the exact file to ship. */
  decision?: string;
  /** Or a model: an .onnx with model.json beside it, or a folder holding model.onnx + model.json … */
  model?: string;
  /** … and the engine to serve it on (its precision must match the model's). */
  engine?: EngineId;
  /** The artifact directory to write; a `.tar.gz` of it is written beside it. Replaced whole if it exists. */
  out: string;
  /** Service name (image, Kubernetes objects); default from the model's name. */
  name?: string;
  /** Runtime config settings on top of the defaults (validated by the bundled runtime's own schema). */
  config?: Record<string, unknown>;
  /** Container limits for compose and Kubernetes (default 2 CPUs, 2048 MB). */
  limits?: { cpus: number; memoryMb: number };
  /** Node flags of the entry point (default DEFAULT_NODE_FLAGS). */
  nodeFlags?: string[];
  /** Clock for createdAt (tests pass a fixed one). */
  now?: () => Date;
}

export interface PackageResult {
  dir: string;
  tarball: string;
  manifest: ArtifactManifest;
  bytes: { dir: number; tarball: number };
}

/**
 * Node flags of the entry point. None yet: no V8 flag has been measured to help this service (the runtime's load
 * tests ran plain `node`); `node bench/package.mjs --node-flags "..."` measures one in the container when wanted.
 */
export const DEFAULT_NODE_FLAGS: string[] = [];
export const DEFAULT_LIMITS = { cpus: 2, memoryMb: 2048 };

interface ModelChoice {
  onnx: string;
  manifest: ModelManifest;
  engine: EngineId;
  decision?: { file: string; data: Decision };
}

function readDecision(file: string): { file: string; data: Decision } {
  if (!existsSync(file)) throw new CvoptError('NOT_FOUND', `decision ${file} does not exist`, { where: { file }, hint: 'write one with `cvopt select report.json`' });
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CvoptError('INVALID_ARGUMENT', `${file} is not valid JSON: ${(e as Error).message}`, { where: { file } });
  }
  return { file, data: parseWith(DecisionSchema, raw, { what: 'decision', file, code: 'INVALID_ARGUMENT' }) };
}

function chooseModel(o: PackageOptions): ModelChoice {
  if (o.decision) {
    if (o.model) throw new CvoptError('INVALID_ARGUMENT', 'pass either --decision or a model, not both', { where: { field: '--decision' } });
    const d = readDecision(resolve(o.decision));
    const m = d.data.model;
    if (!d.data.winner || !m) {
      throw new CvoptError('INVALID_ARGUMENT', `${o.decision} names ${d.data.winner ? `the winner ${d.data.winner} but no model file` : 'no winner'}`, {
        where: { file: o.decision, field: d.data.winner ? 'model' : 'winner' },
        hint: 'run `cvopt select` again with this cvopt (it records the winner\'s model), or pass MODEL --engine E',
      });
    }
    if (o.engine && o.engine !== m.engine) throw new CvoptError('INVALID_ARGUMENT', `--engine ${o.engine} differs from the decision's winner ${m.engine}`, { where: { field: '--engine' } });
    const base = dirname(d.file);
    const onnx = resolve(base, m.file);
    if (!existsSync(onnx)) throw new CvoptError('NOT_FOUND', `the decision's model ${onnx} does not exist`, { where: { file: d.file, field: 'model.file' }, hint: 'run `cvopt select` again' });
    const got = sha256File(onnx);
    if (got !== m.sha256) {
      throw new CvoptError('CHECKSUM_MISMATCH', `${onnx} does not match the decision (sha256 ${got.slice(0, 12)}… instead of ${m.sha256.slice(0, 12)}…)`, {
        where: { file: d.file, field: 'model.sha256' },
        hint: 'the selected model was changed after `cvopt select`; select again',
      });
    }
    const manifestFile = resolve(base, m.manifest);
    const manifest = parseWith(ModelManifestSchema, JSON.parse(readFileSync(manifestFile, 'utf8')), { what: 'model.json', file: manifestFile, code: 'MANIFEST_INVALID' });
    return { onnx, manifest, engine: m.engine, decision: d };
  }
  if (!o.model) throw new CvoptError('INVALID_ARGUMENT', 'nothing to package: pass --decision decision.json, or MODEL --engine E', { where: { field: 'model' } });
  if (!o.engine) throw new CvoptError('INVALID_ARGUMENT', `--engine is required with a model (one of ${Object.keys(ENGINES).join(', ')})`, { where: { field: '--engine' } });
  let onnx = resolve(o.model);
  if (!existsSync(onnx)) throw new CvoptError('NOT_FOUND', `model ${o.model} does not exist`, { where: { file: o.model } });
  if (statSync(onnx).isDirectory()) onnx = join(onnx, 'model.onnx');
  if (!existsSync(onnx)) throw new CvoptError('NOT_FOUND', `${o.model} holds no model.onnx`, { where: { file: onnx }, hint: 'pass the .onnx file, or a folder written by `cvopt export`' });
  const manifest = readManifest(onnx);
  const spec = ENGINES[o.engine];
  if (spec.precision !== manifest.precision && !(spec.transform.startsWith('trt-') && (manifest.precision === 'fp32' || manifest.precision === spec.precision))) {
    throw new CvoptError('INVALID_ARGUMENT', `${o.engine} runs a ${spec.precision} model but ${basename(onnx)} is ${manifest.precision}`, {
      where: { field: '--engine' },
      hint: spec.precision === 'int8' ? 'quantize it first (`cvopt quantize`), or package the decision of `cvopt select`' : 'package the decision of `cvopt select`, which names the converted model',
    });
  }
  return { onnx, manifest, engine: o.engine };
}

function checkEngine(engine: EngineId): void {
  const spec = ENGINES[engine];
  if (!spec.servable) {
    throw new CvoptError('INVALID_ARGUMENT', `${engine} cannot be packaged: the service runs ONNX Runtime only (${spec.summary})`, {
      where: { field: 'engine' },
      hint: 'select among ONNX Runtime engines (`cvopt select --engines ort-cpu,ort-cpu-int8,...`)',
    });
  }
}

/** A service name usable as an image name and a Kubernetes object name. */
export function serviceName(raw: string): string {
  const n = raw.toLowerCase().replace(/\.onnx$/, '').replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50);
  return n === '' ? 'cvopt-service' : /^[a-z]/.test(n) ? n : `m-${n}`;
}

/** Host paths never leave the machine: absolute paths in model.json become file names. */
function stripHostPaths<T>(value: T): T {
  if (typeof value === 'string') return (isAbsolute(value) || /^[A-Za-z]:\\/.test(value) ? basename(value) : value) as T;
  if (Array.isArray(value)) return value.map(stripHostPaths) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stripHostPaths(v)])) as T;
  return value;
}

/**
 * Validate the service config with the runtime that ships (its own schema), so the artifact never holds a config
 * its runtime would refuse. The engine is written by id (`engine:`); the runtime derives its provider from it.
 */
async function runtimeConfig(appDir: string, main: string, engine: EngineId, settings: Record<string, unknown>): Promise<Record<string, unknown>> {
  const mod = (await import(pathToFileURL(join(appDir, dirname(main), 'config.js')).href)) as { parseRuntimeConfig: (raw: unknown, file?: string) => Record<string, unknown> };
  const { provider: _legacy, ...rest } = settings;
  // The image listens on every interface; keys never ship in it (they come in a mounted config). Without keys the
  // runtime refuses a non-loopback host unless told that serving without keys is on purpose, so say so explicitly.
  const auth = (rest.auth ?? {}) as { keys?: unknown[]; enabled?: boolean };
  if (!auth.keys?.length && auth.enabled === undefined) rest.auth = { ...auth, enabled: false };
  return mod.parseRuntimeConfig({ host: '0.0.0.0', port: SERVICE_PORT, ...rest, engine });
}

function dirBytes(files: ArtifactManifest['files']): number {
  return Object.values(files).reduce((s, f) => s + ('bytes' in f ? f.bytes : 0), 0);
}

/** Write the artifact directory and its .tar.gz. */
export async function packageArtifact(o: PackageOptions): Promise<PackageResult> {
  const choice = chooseModel(o);
  checkEngine(choice.engine);
  const spec = ENGINES[choice.engine];
  const variant: Variant = spec.gpu ? 'gpu' : 'cpu';
  const out = resolve(o.out);
  if (existsSync(out) && (!statSync(out).isDirectory() || (!existsSync(join(out, MANIFEST_FILE)) && readdirNonEmpty(out)))) {
    throw new CvoptError('CONFLICT', `${o.out} exists and is not an artifact written by cvopt package`, { where: { field: '--out' }, hint: 'pass a new folder, or remove it' });
  }
  const name = serviceName(o.name ?? choice.manifest.name);
  const staging = `${out}.partial-${process.pid}`;
  removeTree(staging);
  mkdirSync(staging, { recursive: true });
  try {
    const bundle = buildRuntimeBundle(join(staging, 'app'), variant);
    writeFileSync(join(staging, 'app', 'verify-manifest.mjs'), VERIFY_SCRIPT);
    writeFileSync(join(staging, 'app', 'healthcheck.mjs'), HEALTHCHECK_SCRIPT);
    writeFileSync(join(staging, 'app', 'gpu-entrypoint.sh'), GPU_ENTRYPOINT);
    chmodSync(join(staging, 'app', 'gpu-entrypoint.sh'), 0o755);

    copyFileSync(choice.onnx, join(staging, 'model.onnx'));
    const manifest = stripHostPaths(choice.manifest);
    writeFileSync(join(staging, 'model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const config = await runtimeConfig(join(staging, 'app'), bundle.main, choice.engine, o.config ?? {});
    writeFileSync(join(staging, 'cvopt.runtime.json'), `${JSON.stringify(config, null, 2)}\n`);

    const version = choice.decision ? sha256File(choice.decision.file).slice(0, 12) : sha256File(choice.onnx).slice(0, 12);
    const t: TemplateInput = { name, version, engine: choice.engine, main: `app/${bundle.main}`, nodeFlags: o.nodeFlags ?? DEFAULT_NODE_FLAGS, limits: o.limits ?? DEFAULT_LIMITS };
    writeFileSync(join(staging, 'Dockerfile'), dockerfileCpu(t));
    writeFileSync(join(staging, 'Dockerfile.gpu'), dockerfileGpu(t));
    writeFileSync(join(staging, 'docker-compose.yml'), composeFile(t, false));
    writeFileSync(join(staging, 'docker-compose.gpu.yml'), composeFile(t, true));
    writeFileSync(join(staging, '.dockerignore'), DOCKERIGNORE);
    mkdirSync(join(staging, 'k8s'));
    for (const [file, text] of Object.entries(kubernetesManifests(t))) writeFileSync(join(staging, file), text);
    writeFileSync(join(staging, 'README.md'), operatorReadme(t, manifest, choice.engine, config));

    const d = choice.decision;
    const dm = d?.data.model;
    const artifact: ArtifactManifest = {
      schemaVersion: 1,
      kind: 'cvopt-artifact',
      name,
      createdAt: (o.now ?? (() => new Date()))().toISOString(),
      engine: choice.engine,
      variant,
      model: { file: 'model.onnx', sha256: sha256File(choice.onnx), precision: manifest.precision, task: manifest.task, name: manifest.name },
      entrypoint: { nodeFlags: t.nodeFlags, main: t.main, args: [IMAGE_ROOT] },
      provenance: {
        ...(dm
          ? { sourceModel: dm.report.sourceModel }
          : choice.manifest.provenance?.sourceSha256
            ? { sourceModel: { name: basename(choice.manifest.provenance.source ?? 'source'), sha256: choice.manifest.provenance.sourceSha256 } }
            : {}),
        ...(choice.manifest.provenance?.trainingRun ? { trainingRun: basename(choice.manifest.provenance.trainingRun) } : {}),
        ...(dm ? { benchmarkReport: { name: basename(dm.report.file), sha256: dm.report.sha256 } } : {}),
        ...(d ? { decision: { name: basename(d.file), sha256: sha256File(d.file), winner: d.data.winner, rule: d.data.rule } } : {}),
        cvoptVersion: bundleVersion(join(staging, 'app')),
        nodeVersion: process.versions.node,
      },
      runtime: { workspaces: bundle.workspaces, packages: bundle.packages },
      files: hashTree(staging),
    };
    const checked = ArtifactManifestSchema.parse(artifact);
    writeFileSync(join(staging, MANIFEST_FILE), `${JSON.stringify(checked, null, 2)}\n`);

    removeTree(out);
    mkdirSync(dirname(out), { recursive: true });
    renameSync(staging, out);
    const tarball = `${out}.tar.gz`;
    const tmpTar = `${tarball}.tmp-${process.pid}`;
    // Sorted names, fixed owner and time: the same artifact always packs to the same bytes.
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-czf', tmpTar, '-C', dirname(out), basename(out)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, GZIP: '-n' },
    });
    renameSync(tmpTar, tarball);
    return { dir: out, tarball, manifest: checked, bytes: { dir: dirBytes(checked.files), tarball: statSync(tarball).size } };
  } catch (e) {
    removeTree(staging);
    throw e;
  }
}

function bundleVersion(appDir: string): string {
  return (JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as { version: string }).version;
}

function readdirNonEmpty(dir: string): boolean {
  return readdirSync(dir).length > 0;
}
