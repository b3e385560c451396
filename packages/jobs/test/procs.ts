import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OpenBackendOptions, WorkerOptions } from '../src/index.js';

const script = fileURLToPath(new URL('./fixtures/worker-proc.mjs', import.meta.url));

export interface WorkerProc {
  proc: ChildProcess;
  pid: number;
  /** Resolves with the worker id once it serves its queues. */
  ready: Promise<string>;
  exited: Promise<number | null>;
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

type ProcWorkerOptions = Omit<WorkerOptions, 'backend' | 'handlers' | 'onLog' | 'gpu'> & { gpu?: Record<string, unknown> };

/** A real worker process (built code, see fixtures/worker-proc.mjs) on the same backend as the test. */
export function startWorkerProc(backend: OpenBackendOptions, worker: ProcWorkerOptions): WorkerProc {
  const proc = spawn(process.execPath, [script], {
    env: { ...process.env, CVOPT_TEST_BACKEND: JSON.stringify(backend), CVOPT_TEST_WORKER: JSON.stringify(worker) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr?.on('data', (d) => (err += String(d)));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const ready = new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += String(d);
      const m = /ready (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    void exited.then((code) => reject(new Error(`worker process exited with ${code} before it was ready:\n${err}`)));
  });
  return {
    proc,
    pid: proc.pid as number,
    ready,
    exited,
    stderr: () => err,
    stop: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Whether a process still runs: a zombie (exited, not yet reaped by its parent) counts as gone. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
