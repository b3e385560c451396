import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * A child that may start children of its own (a Python trainer's DataLoader workers, a shell pipeline) runs in its
 * own process group, so stopping it stops all of them: killing only the leader would leave the grandchildren
 * running, holding memory, a GPU and the pipes the parent reads. Used by the job system's job processes and by
 * the trainer client's Python worker.
 */
export interface GroupProcessOptions extends Omit<SpawnOptions, 'detached' | 'signal'> {
  /** On abort the group is stopped (SIGTERM, then SIGKILL after `graceMs`). */
  signal?: AbortSignal;
  /** Time between SIGTERM and SIGKILL, ms (default 2000). */
  graceMs?: number;
}

export interface GroupProcess {
  child: ChildProcess;
  /** Resolves with the leader's exit code and signal; rejects when the command could not be started. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stop the whole group: SIGTERM now, SIGKILL after the grace time. Idempotent. */
  stop(): void;
  /** Whether stop() ran (by call or by the signal). */
  readonly stopped: boolean;
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
 * Spawn `command` as the leader of a new process group. When the leader exits, whatever it left in its group is
 * killed: a finished or stopped job leaves no orphans behind (and none keep its stdout pipe open).
 */
export function spawnProcessGroup(command: string, args: readonly string[], opts: GroupProcessOptions = {}): GroupProcess {
  const { signal, graceMs = 2000, ...spawnOpts } = opts;
  const child = spawn(command, args, { ...spawnOpts, detached: true });
  let stopped = false;
  let killTimer: NodeJS.Timeout | undefined;
  let exited = false;
  const stop = () => {
    if (stopped || exited || child.pid === undefined) return;
    stopped = true;
    killGroup(child.pid, 'SIGTERM');
    killTimer = setTimeout(() => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'), graceMs);
    killTimer.unref();
  };
  if (signal?.aborted) queueMicrotask(stop);
  signal?.addEventListener('abort', stop, { once: true });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (e) => {
      signal?.removeEventListener('abort', stop);
      reject(e);
    });
    child.once('exit', (code, sig) => {
      exited = true;
      signal?.removeEventListener('abort', stop);
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal: sig });
    });
  });
  return {
    child,
    exited: done,
    stop,
    get stopped() {
      return stopped;
    },
  };
}

