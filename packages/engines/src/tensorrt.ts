import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CvoptError } from '@cvopt/core';

/**
 * TensorRT engines built with `trtexec`. onnxruntime-node hands the TensorRT provider only a device id, so FP16 or
 * INT8 cannot be asked for through it: cvopt builds the serialized engine itself (`--fp16`, or `--int8` from the
 * QDQ model, whose scales TensorRT takes as given) and serves it through ONNX Runtime's TensorRT provider from an
 * EP-context model that points at the engine file. A built engine is only valid for the exact model bytes,
 * TensorRT version, GPU and precision it was built for, so those four make the cache key.
 */

export type TrtPrecision = 'fp16' | 'int8';

export interface TrtEngineKey {
  modelSha256: string;
  tensorrtVersion: string;
  gpuName: string;
  precision: TrtPrecision;
}

/** What is stored beside each cached engine, to be compared field by field on lookup. */
export interface TrtCacheEntry extends TrtEngineKey {
  key: string;
  engine: string;
  builtAt: string;
  trtexecArgs: string[];
}

function checkKey(k: TrtEngineKey): void {
  for (const field of ['modelSha256', 'tensorrtVersion', 'gpuName'] as const) {
    if (typeof k[field] !== 'string' || !k[field].trim()) {
      throw new CvoptError('INVALID_ARGUMENT', `a TensorRT engine cache key needs ${field}`, { where: { field } });
    }
  }
  if (!/^[0-9a-f]{64}$/.test(k.modelSha256)) throw new CvoptError('INVALID_ARGUMENT', `modelSha256 must be 64 hex digits, got "${k.modelSha256}"`, { where: { field: 'modelSha256' } });
  if (k.precision !== 'fp16' && k.precision !== 'int8') throw new CvoptError('INVALID_ARGUMENT', `precision must be fp16 or int8, got "${String(k.precision)}"`, { where: { field: 'precision' } });
}

/** Stable key: sha256 of the four fields in a fixed order (GPU names trimmed; nothing else normalised). */
export function trtEngineKey(k: TrtEngineKey): string {
  checkKey(k);
  const canonical = JSON.stringify([k.modelSha256, k.tensorrtVersion.trim(), k.gpuName.trim(), k.precision]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}

export function trtCachePaths(cacheDir: string, k: TrtEngineKey): { engine: string; meta: string; key: string } {
  const key = trtEngineKey(k);
  return { key, engine: join(cacheDir, `${key}.${k.precision}.engine`), meta: join(cacheDir, `${key}.json`) };
}

/**
 * The cached engine for this key, or undefined. The stored entry must repeat every key field (a hash collision or
 * a hand-copied file never passes) and the engine file must be non-empty.
 */
export function lookupTrtEngine(cacheDir: string, k: TrtEngineKey): TrtCacheEntry | undefined {
  const p = trtCachePaths(cacheDir, k);
  if (!existsSync(p.meta) || !existsSync(p.engine) || statSync(p.engine).size === 0) return undefined;
  let entry: TrtCacheEntry;
  try {
    entry = JSON.parse(readFileSync(p.meta, 'utf8')) as TrtCacheEntry;
  } catch {
    return undefined;
  }
  const same =
    entry.key === p.key &&
    entry.modelSha256 === k.modelSha256 &&
    entry.tensorrtVersion === k.tensorrtVersion.trim() &&
    entry.gpuName === k.gpuName.trim() &&
    entry.precision === k.precision;
  return same ? { ...entry, engine: p.engine } : undefined;
}

/** Record a freshly built engine (moved into the cache) under its key. */
export function storeTrtEngine(cacheDir: string, k: TrtEngineKey, builtEngine: string, args: string[]): TrtCacheEntry {
  mkdirSync(cacheDir, { recursive: true });
  const p = trtCachePaths(cacheDir, k);
  if (builtEngine !== p.engine) renameSync(builtEngine, p.engine);
  const entry: TrtCacheEntry = {
    key: p.key,
    modelSha256: k.modelSha256,
    tensorrtVersion: k.tensorrtVersion.trim(),
    gpuName: k.gpuName.trim(),
    precision: k.precision,
    engine: p.engine,
    builtAt: new Date().toISOString(),
    trtexecArgs: args,
  };
  writeFileSync(p.meta, `${JSON.stringify(entry, null, 2)}\n`);
  return entry;
}

/**
 * trtexec arguments. INT8 is built from the QDQ model (explicit quantization: no calibrator); --fp16 beside --int8
 * lets layers TensorRT cannot run in INT8 fall back to FP16 rather than FP32.
 */
export function trtexecArgs(onnx: string, engineOut: string, precision: TrtPrecision): string[] {
  const args = [`--onnx=${onnx}`, `--saveEngine=${engineOut}`, '--skipInference'];
  if (precision === 'fp16') args.push('--fp16');
  else args.push('--int8', '--fp16');
  return args;
}

/** TensorRT's version from the libnvinfer file name (libnvinfer.so.10.3.0 → 10.3.0), else undefined. */
export function tensorrtVersionOf(libnvinfer: string | undefined): string | undefined {
  if (!libnvinfer) return undefined;
  const m = /libnvinfer\.so\.(\d+(?:\.\d+)*)/.exec(basename(libnvinfer));
  return m?.[1];
}

export interface BuildTrtOptions {
  trtexec: string;
  /** The ONNX to build from: the FP32 model for fp16, the QDQ model for int8. */
  onnx: string;
  cacheDir: string;
  key: TrtEngineKey;
  timeoutS?: number;
  signal?: AbortSignal;
}

/** The engine for this key from the cache, else built with trtexec and cached. Verified only where TensorRT exists. */
export async function buildTrtEngine(o: BuildTrtOptions): Promise<TrtCacheEntry & { cached: boolean }> {
  const hit = lookupTrtEngine(o.cacheDir, o.key);
  if (hit) return { ...hit, cached: true };
  mkdirSync(o.cacheDir, { recursive: true });
  const p = trtCachePaths(o.cacheDir, o.key);
  const tmp = `${p.engine}.building-${process.pid}`;
  const args = trtexecArgs(o.onnx, tmp, o.key.precision);
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(o.trtexec, args, { timeout: (o.timeoutS ?? 1800) * 1000, maxBuffer: 64 << 20, ...(o.signal ? { signal: o.signal } : {}) }, (err, _stdout, stderr) => {
        if (err) reject(new CvoptError('ENGINE_FAILED', `trtexec could not build a ${o.key.precision} engine from ${o.onnx}: ${String(stderr || err.message).trim().split('\n').slice(-4).join(' | ')}`, { where: { file: o.onnx } }));
        else resolve();
      });
    });
    return { ...storeTrtEngine(o.cacheDir, o.key, tmp, args), cached: false };
  } finally {
    rmSync(tmp, { force: true });
  }
}
