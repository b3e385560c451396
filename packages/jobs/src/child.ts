import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { CvoptError } from '@cvopt/core';

export interface JobProcessOptions extends Omit<SpawnOptions, 'detached' | 'signal'> {
  /** The job's signal: on abort the whole process group gets SIGTERM, then SIGKILL after `graceMs`. */
  signal: AbortSignal;
  /** Time between SIGTERM and SIGKILL, ms (default 2000). */
  graceMs?: number;
}

export interface JobProcess {
  child: ChildProcess;
  /** Resolves with the exit code and signal when the process (the group leader) has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Signal a whole process group; a group already gone is not an error. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/**
 * Start a job's child process in its own process group, so cancelling the job stops the process and everything it
 * started (a Python trainer's data-loader workers included): SIGTERM to the group, SIGKILL after the grace time.
 */
export function spawnJobProcess(command: string, args: readonly string[], opts: JobProcessOptions): JobProcess {
  const { signal, graceMs = 2000, ...spawnOpts } = opts;
  if (signal.aborted) throw new CvoptError('CANCELLED', `not starting ${command}: the job was already cancelled`);
  const child = spawn(command, args, { ...spawnOpts, detached: true });
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    if (child.pid === undefined) return;
    killGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'), graceMs);
    killTimer.unref();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (e) => {
      signal.removeEventListener('abort', onAbort);
      reject(new CvoptError('DEPENDENCY_MISSING', `cannot start ${command}: ${e.message}`, { cause: e }));
    });
    child.once('exit', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      // The leader is gone; make sure nothing it left in its group outlives a cancelled job.
      if (signal.aborted && child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal: sig });
    });
  });
  return { child, exited };
}
