import { CvoptError } from '@cvopt/core';

/**
 * Ctrl-C, the same for every command: the first one aborts the command's signal (children are stopped, files
 * are closed complete) and the command exits 130 once it has cleaned up; a second one exits 130 at once.
 */

export const INTERRUPT_EXIT = 130;
/** How long a command may take to stop cleanly after Ctrl-C before the process exits anyway. */
export const INTERRUPT_GRACE_MS = 5000;

let controller = new AbortController();
let interrupted = false;
let installed = false;
const onInterruptHooks = new Set<() => void>();

export function interruptSignal(): AbortSignal {
  return controller.signal;
}

export function wasInterrupted(): boolean {
  return interrupted;
}

/** Run `hook` on the first Ctrl-C (print the resume command, say where partial output is); returns its remover. */
export function onInterrupt(hook: () => void): () => void {
  onInterruptHooks.add(hook);
  return () => onInterruptHooks.delete(hook);
}

export function installInterruptHandler(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(INTERRUPT_EXIT);
    interrupted = true;
    process.exitCode = INTERRUPT_EXIT;
    process.stderr.write('\ninterrupted: stopping cleanly (press Ctrl-C again to quit at once)\n');
    for (const hook of onInterruptHooks) hook();
    controller.abort(new CvoptError('CANCELLED', 'interrupted by Ctrl-C'));
    // A step that cannot be interrupted (a native call, a library loop) does not hold the terminal hostage.
    setTimeout(() => process.exit(INTERRUPT_EXIT), INTERRUPT_GRACE_MS).unref();
  });
}

/** For in-process test runs: forget an earlier interrupt. */
export function resetInterrupt(): void {
  interrupted = false;
  controller = new AbortController();
  onInterruptHooks.clear();
}
