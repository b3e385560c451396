import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { engineAvailability, type MachineProbes } from './registry.js';
import { lookupTrtEngine, storeTrtEngine, tensorrtVersionOf, trtCachePaths, trtEngineKey, trtexecArgs, type TrtEngineKey } from './tensorrt.js';

const KEY: TrtEngineKey = { modelSha256: 'a'.repeat(64), tensorrtVersion: '10.3.0', gpuName: 'NVIDIA H100 80GB HBM3', precision: 'fp16' };
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'cvopt-trt-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('TensorRT engine cache key', () => {
  it('is stable and changes with each of model, TensorRT version, GPU and precision', () => {
    const k = trtEngineKey(KEY);
    expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(trtEngineKey({ ...KEY })).toBe(k);
    expect(trtEngineKey({ ...KEY, gpuName: ` ${KEY.gpuName} ` })).toBe(k); // nvidia-smi padding is not a new GPU
    const variants: TrtEngineKey[] = [
      { ...KEY, modelSha256: 'b'.repeat(64) },
      { ...KEY, tensorrtVersion: '10.3.1' },
      { ...KEY, gpuName: 'NVIDIA A100-SXM4-40GB' },
      { ...KEY, precision: 'int8' },
    ];
    const keys = new Set([k, ...variants.map(trtEngineKey)]);
    expect(keys.size).toBe(5);
  });

  it('rejects an incomplete key with the field named', () => {
    const bad = (k: Partial<TrtEngineKey>, field: string) => {
      try {
        trtEngineKey({ ...KEY, ...k } as TrtEngineKey);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(CvoptError);
        expect((e as CvoptError).code).toBe('INVALID_ARGUMENT');
        expect((e as CvoptError).where?.field).toBe(field);
      }
    };
    bad({ gpuName: '' }, 'gpuName');
    bad({ modelSha256: 'xyz' }, 'modelSha256');
    bad({ precision: 'fp32' as never }, 'precision');
  });
});

describe('TensorRT engine cache lookup', () => {
  it('finds a stored engine only under the exact key, never a stale one', () => {
    const dir = tmp();
    expect(lookupTrtEngine(dir, KEY)).toBeUndefined();
    const built = join(dir, 'fresh.engine');
    writeFileSync(built, 'serialized-engine');
    const entry = storeTrtEngine(dir, KEY, built, trtexecArgs('m.onnx', built, 'fp16'));
    expect(readFileSync(entry.engine, 'utf8')).toBe('serialized-engine');
    expect(lookupTrtEngine(dir, KEY)?.engine).toBe(entry.engine);
    expect(lookupTrtEngine(dir, { ...KEY, tensorrtVersion: '10.4.0' })).toBeUndefined();
    expect(lookupTrtEngine(dir, { ...KEY, gpuName: 'NVIDIA L4' })).toBeUndefined();
    expect(lookupTrtEngine(dir, { ...KEY, modelSha256: 'c'.repeat(64) })).toBeUndefined();
    expect(lookupTrtEngine(dir, { ...KEY, precision: 'int8' })).toBeUndefined();
  });

  it('ignores an entry whose recorded fields disagree with its key, and an empty engine', () => {
    const dir = tmp();
    const p = trtCachePaths(dir, KEY);
    writeFileSync(p.engine, 'x');
    // A meta file copied from another machine under this key's name: its fields do not match, so no hit.
    writeFileSync(p.meta, JSON.stringify({ ...KEY, key: p.key, gpuName: 'NVIDIA T4' }));
    expect(lookupTrtEngine(dir, KEY)).toBeUndefined();
    writeFileSync(p.meta, JSON.stringify({ ...KEY, key: p.key }));
    expect(lookupTrtEngine(dir, KEY)).toBeDefined();
    writeFileSync(p.engine, '');
    expect(lookupTrtEngine(dir, KEY)).toBeUndefined();
    writeFileSync(p.engine, 'x');
    writeFileSync(p.meta, '{not json');
    expect(lookupTrtEngine(dir, KEY)).toBeUndefined();
  });

  it('builds FP16 from the FP32 model and INT8 from the QDQ model with an FP16 fallback', () => {
    expect(trtexecArgs('m.onnx', 'e', 'fp16')).toEqual(['--onnx=m.onnx', '--saveEngine=e', '--skipInference', '--fp16']);
    expect(trtexecArgs('q.onnx', 'e', 'int8')).toEqual(['--onnx=q.onnx', '--saveEngine=e', '--skipInference', '--int8', '--fp16']);
    expect(tensorrtVersionOf('/usr/lib/x86_64-linux-gnu/libnvinfer.so.10.3.0')).toBe('10.3.0');
    expect(tensorrtVersionOf('/opt/libnvinfer.so')).toBeUndefined();
  });
});

describe('bench engine availability', () => {
  const noGpu: MachineProbes = {
    providers: [
      { id: 'cpu', available: true },
      { id: 'cuda', available: false, reason: 'this onnxruntime-node build has no cuda backend' },
      { id: 'tensorrt', available: false, reason: 'this onnxruntime-node build has no tensorrt backend' },
    ],
    nvidia: { gpus: [], reason: 'no NVIDIA driver' },
    tensorrt: {},
    python: { torch: '1.13.0' },
  };
  it('names every missing piece for GPU engines and runs the CPU ones', () => {
    expect(engineAvailability('ort-cpu', noGpu)).toEqual({ available: true });
    expect(engineAvailability('ort-cpu-int8', noGpu)).toEqual({ available: true });
    expect(engineAvailability('pytorch', noGpu)).toEqual({ available: true });
    const trt = engineAvailability('tensorrt-int8', noGpu);
    expect(trt.available).toBe(false);
    if (!trt.available) {
      expect(trt.reason).toContain('no NVIDIA GPU');
      expect(trt.reason).toContain('tensorrt backend');
      expect(trt.reason).toContain('trtexec');
    }
    const cuda = engineAvailability('ort-cuda-fp16', noGpu);
    expect(cuda.available === false && cuda.reason.includes('cuda backend')).toBe(true);
    const noTorch = engineAvailability('pytorch', { ...noGpu, python: { error: 'No module named torch' } });
    expect(noTorch).toEqual({ available: false, reason: "PyTorch is not importable in the worker's Python: No module named torch" });
  });
  it('needs trtexec even when the TensorRT provider works', () => {
    const withTrt: MachineProbes = { ...noGpu, providers: [{ id: 'tensorrt', available: true }], nvidia: { gpus: [{ index: 0, name: 'H100', memoryMiB: 80000, driver: '550' }] } };
    const r = engineAvailability('tensorrt-fp16', withTrt);
    expect(r.available === false && r.reason.startsWith('trtexec is not on PATH')).toBe(true);
    expect(engineAvailability('tensorrt-fp16', { ...withTrt, tensorrt: { trtexec: '/usr/bin/trtexec' } })).toEqual({ available: true });
  });
});
