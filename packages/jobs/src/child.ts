import { CvoptError, spawnProcessGroup, type GroupProcessOptions } from '@cvopt/core';

export { killGroup } from '@cvopt/core';

export interface JobProcessOptions extends Omit<GroupProcessOptions, 'signal'> {
  /** The job's signal: on abort the whole process group gets SIGTERM, then SIGKILL after `graceMs`. */
  signal: AbortSignal;
}

export interface JobProcess {
  child: import('node:child_process').ChildProcess;
  /** Resolves with the exit code and signal when the process (the group leader) has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Start a job's child process in its own process group (core's spawnProcessGroup), so cancelling the job stops the
 * process and everything it started (a Python trainer's data-loader workers included).
 */
export function spawnJobProcess(command: string, args: readonly string[], opts: JobProcessOptions): JobProcess {
  if (opts.signal.aborted) throw new CvoptError('CANCELLED', `not starting ${command}: the job was already cancelled`);
  const p = spawnProcessGroup(command, args, opts);
  const exited = p.exited.catch((e: Error) => {
    throw new CvoptError('DEPENDENCY_MISSING', `cannot start ${command}: ${e.message}`, { cause: e });
  });
  return { child: p.child, exited };
}
