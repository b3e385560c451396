import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ExecutionProviderId } from './engine.js';
import { tinyAddModel } from './tiny-model.js';

/**
 * Honest answers to "can this machine run provider X": look at the files the installed onnxruntime-node really
 * ships, at the driver and libraries the provider needs, and finally start a tiny session with it. Session tests
 * for GPU providers run in a child process, so a native crash or a hang in a driver cannot take the caller down.
 */

export interface ProviderProbe {
  id: ExecutionProviderId;
  available: boolean;
  /** Why it is unavailable: what is missing and how to get it. */
  reason?: string;
}

export interface NvidiaGpu {
  index: number;
  name: string;
  memoryMiB: number;
  driver: string;
}

export interface NvidiaProbe {
  /** Kernel driver version from /proc/driver/nvidia/version, when loaded. */
  driver?: string;
  nvidiaSmi?: string;
  gpus: NvidiaGpu[];
  /** Why no GPU is listed. */
  reason?: string;
}

export interface TensorRtProbe {
  trtexec?: string;
  libnvinfer?: string;
}

const requireHere = createRequire(import.meta.url);

/** The folder holding the native ONNX Runtime libraries of the installed onnxruntime-node. */
export function ortBinaryDir(): string {
  const pkg = dirname(requireHere.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

/** Find a program on PATH. */
export function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, program);
    if (existsSync(p)) return p;
  }
  return undefined;
}

let ldCache: string | undefined;
function ldconfigListing(): string {
  if (ldCache === undefined) {
    try {
      ldCache = execFileSync(existsSync('/sbin/ldconfig') ? '/sbin/ldconfig' : 'ldconfig', ['-p'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      ldCache = '';
    }
  }
  return ldCache;
}

/** Where the dynamic loader would find a library (`libnvinfer.so`), via LD_LIBRARY_PATH or the ldconfig cache. */
export function findSharedLibrary(prefix: string): string | undefined {
  for (const dir of (process.env.LD_LIBRARY_PATH ?? '').split(':')) {
    if (!dir || !existsSync(dir)) continue;
    try {
      const hit = readdirSync(dir).find((f) => f.startsWith(prefix));
      if (hit) return join(dir, hit);
    } catch {
      // unreadable folder on the path: the loader would skip it too
    }
  }
  for (const line of ldconfigListing().split('\n')) {
    const m = /^\s*(\S+) .*=> (\S+)$/.exec(line);
    if (m && m[1]?.startsWith(prefix)) return m[2];
  }
  return undefined;
}

export function probeNvidia(): NvidiaProbe {
  const out: NvidiaProbe = { gpus: [] };
  try {
    const v = readFileSync('/proc/driver/nvidia/version', 'utf8');
    const m = /Kernel Module\s+(?:for \S+\s+)?([\d.]+)/.exec(v);
    out.driver = m?.[1] ?? v.split('\n')[0]?.trim();
  } catch {
    // no kernel driver loaded
  }
  const smi = which('nvidia-smi');
  if (smi) out.nvidiaSmi = smi;
  if (!smi) {
    out.reason = out.driver ? 'nvidia-smi is not on PATH' : 'no NVIDIA driver (no /proc/driver/nvidia, no nvidia-smi): install the NVIDIA driver on a machine with an NVIDIA GPU';
    return out;
  }
  try {
    const csv = execFileSync(smi, ['--query-gpu=index,name,memory.total,driver_version', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const line of csv.trim().split('\n')) {
      const [index, name, mem, driver] = line.split(',').map((s) => s.trim());
      if (name) out.gpus.push({ index: Number(index), name, memoryMiB: Number(mem), driver: driver ?? '' });
    }
    if (!out.driver && out.gpus[0]) out.driver = out.gpus[0].driver;
    if (out.gpus.length === 0) out.reason = 'nvidia-smi lists no GPU';
  } catch (e) {
    out.reason = `nvidia-smi failed: ${firstLine(e)}`;
  }
  return out;
}

export function probeTensorRt(): TensorRtProbe {
  const out: TensorRtProbe = {};
  const trtexec = which('trtexec') ?? ['/usr/src/tensorrt/bin/trtexec', '/opt/tensorrt/bin/trtexec'].find((p) => existsSync(p));
  if (trtexec) out.trtexec = trtexec;
  const lib = findSharedLibrary('libnvinfer.so');
  if (lib) out.libnvinfer = lib;
  return out;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n').find((l) => l.trim()) ?? msg).trim().slice(0, 600);
}

/** Start the tiny model on a provider in a child process; resolves with the error text, or undefined on success. */
function sessionTest(provider: ExecutionProviderId, timeoutMs: number): Promise<string | undefined> {
  const model = Buffer.from(tinyAddModel()).toString('base64');
  const script = `
    const ort = require(${JSON.stringify(requireHere.resolve('onnxruntime-node'))});
    (async () => {
      try {
        const s = await ort.InferenceSession.create(Buffer.from(${JSON.stringify(model)}, 'base64'), { executionProviders: [${JSON.stringify(provider)}], logSeverityLevel: 4 });
        const r = await s.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]) });
        process.stdout.write(JSON.stringify({ ok: r.y.data[3] === 8 }));
      } catch (e) { process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) })); }
    })();`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', script], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 1 << 20 }, (err, stdout) => {
      try {
        const r = JSON.parse(stdout) as { ok: boolean; error?: string };
        if (r.ok) resolve(undefined);
        else resolve(r.error ? firstLine(r.error) : 'the test session returned a wrong result');
      } catch {
        resolve(err ? `the test session did not finish: ${firstLine(err)}` : 'the test session printed nothing');
      }
    });
  });
}

/** Dawn's errors start with a source path and an assertion; the sentence after them is the useful part. */
function shortWebGpuError(err: string): string {
  const m = /(Failed to get a WebGPU adapter[^\n]*)/.exec(err);
  return (m?.[1] ?? err).trim();
}

const CUDA_FIX = 'on a Linux x64 machine with CUDA 12 and cuDNN 9, run `npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12`';

export interface ProbeOptions {
  /** Skip starting test sessions on GPU providers (fast, file checks only). */
  fileChecksOnly?: boolean;
  /** Time allowed for each provider's test session (default 30 s). */
  sessionTimeoutMs?: number;
}

/** Every execution provider cvopt knows, each available or not with the reason. Never throws. */
export async function probeExecutionProviders(opts: ProbeOptions = {}): Promise<ProviderProbe[]> {
  const timeout = opts.sessionTimeoutMs ?? 30_000;
  const backends = new Map(ort.listSupportedBackends().map((b) => [b.name, b.bundled]));
  const bin = ortBinaryDir();
  const hasLib = (name: string) => existsSync(join(bin, name));
  const nvidia = probeNvidia();
  const trt = probeTensorRt();
  const results: ProviderProbe[] = [];

  // CPU: the provider is compiled into libonnxruntime; prove it in-process, it is cheap and quiet.
  try {
    const s = await ort.InferenceSession.create(tinyAddModel(), { executionProviders: ['cpu'], logSeverityLevel: 4 });
    const r = await s.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]) });
    await s.release();
    const y = r.y?.data as Float32Array | undefined;
    results.push(y?.[3] === 8 ? { id: 'cpu', available: true } : { id: 'cpu', available: false, reason: 'the CPU test session returned a wrong result' });
  } catch (e) {
    results.push({ id: 'cpu', available: false, reason: `ONNX Runtime cannot start on this machine: ${firstLine(e)}; reinstall onnxruntime-node` });
  }

  for (const id of ['cuda', 'tensorrt'] as const) {
    const missing: string[] = [];
    if (!backends.has(id)) missing.push(`this onnxruntime-node build has no ${id} backend`);
    const lib = `libonnxruntime_providers_${id}.so`;
    if (!hasLib(lib) || !hasLib('libonnxruntime_providers_shared.so')) missing.push(`onnxruntime-node was installed without GPU providers (${lib} is not in ${bin}); ${CUDA_FIX}`);
    if (!nvidia.driver && nvidia.gpus.length === 0) missing.push(nvidia.reason ?? 'no NVIDIA driver');
    if (id === 'cuda' && !findSharedLibrary('libcudart.so.12')) {
      const other = findSharedLibrary('libcudart.so');
      missing.push(
        `the CUDA 12 runtime (libcudart.so.12) is not on the loader path${other ? ` (found only ${other})` : ''}: install CUDA 12 or add its lib64 folder to LD_LIBRARY_PATH`,
      );
    }
    if (id === 'tensorrt' && !trt.libnvinfer) missing.push('TensorRT (libnvinfer.so) is not on the loader path: install TensorRT 10 for CUDA 12 and add its lib folder to LD_LIBRARY_PATH');
    if (missing.length) {
      results.push({ id, available: false, reason: missing.join('; ') });
      continue;
    }
    if (opts.fileChecksOnly) {
      results.push({ id, available: true });
      continue;
    }
    const err = await sessionTest(id, timeout);
    results.push(err ? { id, available: false, reason: `the ${id} provider files are present but a test session failed: ${err}` } : { id, available: true });
  }

  if (!backends.has('webgpu')) {
    results.push({ id: 'webgpu', available: false, reason: 'this onnxruntime-node build has no WebGPU backend (it ships on Windows and Linux x64 from 1.22)' });
  } else if (opts.fileChecksOnly) {
    results.push({ id: 'webgpu', available: false, reason: 'not tested (file checks only); the WebGPU backend is bundled but needs a GPU adapter' });
  } else {
    const err = await sessionTest('webgpu', timeout);
    results.push(
      err
        ? { id: 'webgpu', available: false, reason: `the WebGPU backend is bundled but a test session failed (${shortWebGpuError(err)}); it needs a GPU with a Vulkan driver` }
        : { id: 'webgpu', available: true },
    );
  }
  return results;
}
