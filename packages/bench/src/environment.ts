import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem, type as osType } from 'node:os';
import type { Environment } from '@cvopt/core';

const INTERESTING_FLAGS = ['avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8', 'sse4_2'];

function cpuFlags(): string[] {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => l.startsWith('flags'));
    const flags = new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
    return INTERESTING_FLAGS.filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

/** GPUs as nvidia-smi reports them; empty when there is no NVIDIA driver. */
export function nvidiaGpus(): { name: string; memoryMb?: number; driver?: string }[] {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name, mem, driver] = l.split(',').map((s) => s.trim());
        return { name: name ?? 'unknown', memoryMb: Number(mem), ...(driver ? { driver } : {}) };
      });
  } catch {
    return [];
  }
}

/** The machine a report was measured on. `versions` is filled by the caller (ORT, PyTorch, TensorRT…). */
export function environmentFingerprint(versions: Record<string, string> = {}): Environment {
  const c = cpus();
  const gpus = nvidiaGpus();
  return {
    hostname: hostname(),
    os: `${osType()} ${release()}`,
    cpu: { model: c[0]?.model.trim() ?? 'unknown', cores: c.length, flags: cpuFlags() },
    memoryMb: Math.round(totalmem() / 1048576),
    gpus,
    versions: { node: process.versions.node, ...versions },
  };
}
