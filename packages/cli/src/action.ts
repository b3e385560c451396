import type { Command } from 'commander';
import { reportError, type CommonOptions } from './output.js';
import { INTERRUPT_EXIT, interruptSignal, wasInterrupted } from './interrupt.js';

/**
 * Wrap a command handler: run it, map any error to its catalogue exit code, never print a stack trace for a
 * user's mistake; after Ctrl-C the exit code is 130 whatever the handler made of the interruption. Handlers
 * receive their positional arguments and merged options (globals included, and `signal`, aborted by Ctrl-C).
 */
export function action<A extends unknown[]>(
  cmd: Command,
  handler: (...args: [...A, CommonOptions & Record<string, unknown>]) => Promise<void> | void,
): void {
  cmd.action(async (...raw: unknown[]) => {
    const command = raw[raw.length - 1] as Command;
    const opts = { ...command.optsWithGlobals(), signal: interruptSignal() } as CommonOptions & Record<string, unknown>;
    const positional = raw.slice(0, raw.length - 2) as A;
    try {
      await handler(...positional, opts);
    } catch (e) {
      // An interrupted command reports where it stopped only when it says more than "cancelled".
      if (!wasInterrupted()) process.exitCode = reportError(opts, e);
    }
    if (wasInterrupted()) process.exitCode = INTERRUPT_EXIT;
  });
}
export { numberFlag } from './flags.js';
