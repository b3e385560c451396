import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, totalmem } from 'node:os';
import pg from 'pg';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { cpuQuota } from '@cvopt/core';
import { engineVersions, probeExecutionProviders, probeNvidia, probeTensorRt, which } from '@cvopt/engines';
import { findPython } from '@cvopt/trainer-client';

/**
 * What this machine can run, item by item. Every item says ok / missing / unavailable, how much it matters
 * (`required` for anything, `training` for train/tune/export, `optional` for extra engines and services) and,
 * when not ok, how to fix it. Probing never throws: a failed probe is an item.
 */

export type DoctorStatus = 'ok' | 'missing' | 'unavailable';
export type DoctorNeed = 'required' | 'training' | 'optional';

export interface DoctorItem {
  name: string;
  status: DoctorStatus;
  need: DoctorNeed;
  version?: string;
  detail?: string;
  hint?: string;
}

export interface CpuInfo {
  model: string;
  logicalCores: number;
  availableParallelism: number;
  /** The cgroup CPU quota in CPUs (a container's --cpus), null when none: engines size their threads to it. */
  cpuQuota: number | null;
  /** The ISA extensions that decide which int8 / fp32 kernels ONNX Runtime and PyTorch use. */
  flags: Record<'avx2' | 'avx512f' | 'avx512_vnni' | 'avx_vnni' | 'amx_int8', boolean>;
}

export interface DoctorReport {
  /** True when every `required` item is ok. */
  ok: boolean;
  /** True when the training items are ok as well. */
  trainingOk: boolean;
  items: DoctorItem[];
  cpu: CpuInfo;
  memory: { totalMiB: number; freeMiB: number };
}

export interface DoctorOptions {
  databaseUrl?: string;
  redisUrl?: string;
  /** Connection timeout for PostgreSQL and Redis (default 2000 ms). */
  timeoutMs?: number;
  /** Skip the GPU providers' test sessions. */
  fileChecksOnly?: boolean;
}

const MIN_NODE = [20, 19] as const;

export async function probeMachine(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const databaseUrl = opts.databaseUrl ?? process.env.CVOPT_DATABASE_URL ?? 'postgres://127.0.0.1:5432/postgres';
  const redisUrl = opts.redisUrl ?? process.env.CVOPT_REDIS_URL ?? 'redis://127.0.0.1:6379';

  const [providers, ffmpeg, ffprobe, postgres, redis] = await Promise.all([
    probeExecutionProviders({ fileChecksOnly: opts.fileChecksOnly ?? false }),
    programVersion('ffmpeg'),
    programVersion('ffprobe'),
    probePostgres(databaseUrl, timeoutMs),
    probeRedis(redisUrl, timeoutMs),
  ]);

  const items: DoctorItem[] = [nodeItem(), ortItem(), sharpItem()];
  for (const p of providers) {
    items.push({
      name: `onnxruntime ${p.id} provider`,
      status: p.available ? 'ok' : 'unavailable',
      need: p.id === 'cpu' ? 'required' : 'optional',
      ...(p.reason ? { detail: p.reason } : {}),
    });
  }
  items.push(...pythonItems());
  items.push(toolItem('ffmpeg', ffmpeg, 'video benchmarks and video inference: `apt-get install ffmpeg`'));
  items.push(toolItem('ffprobe', ffprobe, 'comes with ffmpeg: `apt-get install ffmpeg`'));
  items.push(...gpuItems());
  items.push(postgres, redis);

  const cpu = cpuInfo();
  const mem = { totalMiB: Math.round(totalmem() / 2 ** 20), freeMiB: Math.round(freemem() / 2 ** 20) };
  const ok = items.filter((i) => i.need === 'required').every((i) => i.status === 'ok');
  const trainingOk = ok && items.filter((i) => i.need === 'training').every((i) => i.status === 'ok');
  return { ok, trainingOk, items, cpu, memory: mem };
}

function nodeItem(): DoctorItem {
  const v = process.versions.node;
  const [major = 0, minor = 0] = v.split('.').map(Number);
  const good = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return good
    ? { name: 'node', status: 'ok', need: 'required', version: v }
    : { name: 'node', status: 'unavailable', need: 'required', version: v, hint: `install Node.js ≥ ${MIN_NODE.join('.')}` };
}

function ortItem(): DoctorItem {
  const v = engineVersions()['onnxruntime-node'];
  return v
    ? { name: 'onnxruntime-node', status: 'ok', need: 'required', version: v }
    : { name: 'onnxruntime-node', status: 'missing', need: 'required', hint: 'run `npm install` in the cvopt folder' };
}

function sharpItem(): DoctorItem {
  const v = sharp.versions as Record<string, string | undefined>;
  return { name: 'sharp (libvips)', status: 'ok', need: 'required', version: `sharp ${v.sharp ?? '?'}, libvips ${v.vips ?? '?'}` };
}

function pythonItems(): DoctorItem[] {
  const py = findPython();
  if (py.version === 'not found') {
    return [
      { name: 'python', status: 'missing', need: 'training', hint: 'install Python 3 (`apt-get install python3`) or set CVOPT_PYTHON', ...(py.error ? { detail: py.error } : {}) },
      { name: 'pytorch', status: 'missing', need: 'training', hint: 'install PyTorch ≥ 1.13 (`apt-get install python3-torch python3-torchvision`)' },
    ];
  }
  const items: DoctorItem[] = [{ name: 'python', status: 'ok', need: 'training', version: py.version, detail: py.executable }];
  if (py.torch) {
    items.push({ name: 'pytorch', status: 'ok', need: 'training', version: `torch ${py.torch}, torchvision ${py.torchvision ?? '?'}` });
    items.push(
      py.cuda
        ? { name: 'pytorch cuda', status: 'ok', need: 'optional' }
        : { name: 'pytorch cuda', status: 'unavailable', need: 'optional', detail: 'torch.cuda.is_available() is false', hint: 'training runs on CPU; for GPU training install a CUDA build of PyTorch on a machine with an NVIDIA GPU' },
    );
  } else {
    items.push({
      name: 'pytorch',
      status: 'missing',
      need: 'training',
      ...(py.error ? { detail: py.error } : {}),
      hint: `${py.executable} cannot import torch: install PyTorch ≥ 1.13 (\`apt-get install python3-torch python3-torchvision\`) or point CVOPT_PYTHON at a Python that has it`,
    });
  }
  return items;
}

function gpuItems(): DoctorItem[] {
  const nv = probeNvidia();
  const items: DoctorItem[] = [];
  if (nv.gpus.length) {
    for (const g of nv.gpus) items.push({ name: `gpu ${g.index}`, status: 'ok', need: 'optional', version: `driver ${g.driver}`, detail: `${g.name}, ${g.memoryMiB} MiB` });
  } else {
    items.push({
      name: 'nvidia gpu',
      status: nv.driver ? 'unavailable' : 'missing',
      need: 'optional',
      ...(nv.driver ? { version: `driver ${nv.driver}` } : {}),
      detail: nv.reason ?? 'no GPU found',
      hint: 'GPU engines need an NVIDIA GPU with its driver; CPU engines work without one',
    });
  }
  const trt = probeTensorRt();
  const found = [trt.trtexec && `trtexec ${trt.trtexec}`, trt.libnvinfer && `libnvinfer ${trt.libnvinfer}`].filter(Boolean).join(', ');
  items.push(
    trt.libnvinfer
      ? { name: 'tensorrt', status: 'ok', need: 'optional', detail: found }
      : {
          name: 'tensorrt',
          status: 'missing',
          need: 'optional',
          ...(found ? { detail: found } : {}),
          hint: 'install TensorRT 10 for CUDA 12 (NVIDIA apt repository: `apt-get install tensorrt`) and add its lib folder to LD_LIBRARY_PATH',
        },
  );
  return items;
}

function programVersion(program: string): Promise<{ path?: string; version?: string; error?: string }> {
  const path = which(program);
  if (!path) return Promise.resolve({});
  return new Promise((resolve) => {
    execFile(path, ['-version'], { timeout: 5000, encoding: 'utf8' }, (err, stdout) => {
      if (err) return resolve({ path, error: err.message.split('\n')[0] ?? String(err) });
      const m = new RegExp(`${program} version (\\S+)`).exec(stdout);
      resolve({ path, version: m?.[1] ?? stdout.split('\n')[0]?.trim() ?? '' });
    });
  });
}

function toolItem(name: string, r: { path?: string; version?: string; error?: string }, hint: string): DoctorItem {
  if (!r.path) return { name, status: 'missing', need: 'optional', hint };
  if (r.error) return { name, status: 'unavailable', need: 'optional', detail: `${r.path}: ${r.error}`, hint };
  return { name, status: 'ok', need: 'optional', version: r.version ?? '', detail: r.path };
}

/** Show a connection URL without its password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

async function probePostgres(url: string, timeoutMs: number): Promise<DoctorItem> {
  // libpq would default the user to the login name; services and containers often have none, so say 'postgres'.
  let connectionString = url;
  try {
    const u = new URL(url);
    if (!u.username) {
      u.username = process.env.PGUSER || process.env.USER || 'postgres';
      connectionString = u.toString();
    }
  } catch {
    // not a URL: pg reports it below
  }
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ server_version: string }>('SHOW server_version');
    return { name: 'postgresql', status: 'ok', need: 'optional', version: r.rows[0]?.server_version ?? '?', detail: redact(url) };
  } catch (e) {
    return {
      name: 'postgresql',
      status: 'unavailable',
      need: 'optional',
      detail: `${redact(url)}: ${e instanceof Error ? e.message : String(e)}`,
      hint: 'the embedded SQLite store works without it; for a shared store start PostgreSQL and set CVOPT_DATABASE_URL=postgres://user:pass@host:5432/db',
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function probeRedis(url: string, timeoutMs: number): Promise<DoctorItem> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    const info = await client.info('server');
    const v = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    return { name: 'redis', status: 'ok', need: 'optional', version: v, detail: redact(url) };
  } catch (e) {
    return {
      name: 'redis',
      status: 'unavailable',
      need: 'optional',
      detail: `${redact(url)}: ${e instanceof Error ? e.message : String(e)}`,
      hint: 'the embedded queue works without it; for workers on several machines start Redis and set CVOPT_REDIS_URL=redis://host:6379',
    };
  } finally {
    client.disconnect();
  }
}

function cpuInfo(): CpuInfo {
  let flags = new Set<string>();
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const line = /^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
    flags = new Set(line.split(/\s+/));
  } catch {
    // not Linux: flags stay unknown (false)
  }
  const list = cpus();
  return {
    model: list[0]?.model ?? 'unknown',
    logicalCores: list.length,
    availableParallelism: availableParallelism(),
    cpuQuota: cpuQuota() ?? null,
    flags: {
      avx2: flags.has('avx2'),
      avx512f: flags.has('avx512f'),
      avx512_vnni: flags.has('avx512_vnni'),
      avx_vnni: flags.has('avx_vnni'),
      amx_int8: flags.has('amx_int8'),
    },
  };
}
