#!/usr/bin/env node
import { buildProgram, CommanderError, commanderExitCode, wantsJson } from './program.js';
import { installInterruptHandler, INTERRUPT_EXIT, wasInterrupted } from './interrupt.js';

const json = wantsJson(process.argv.slice(2));
const program = buildProgram({ json });
installInterruptHandler();
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (!(e instanceof CommanderError)) throw e;
  const code = commanderExitCode(e);
  if (code !== 0 && json) {
    const message = e.message.replace(/^error: /, '');
    process.stdout.write(`${JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message, hint: 'run the command with --help for its usage and examples' } }, null, 2)}\n`);
  }
  process.exitCode = code;
}
if (wasInterrupted()) process.exitCode = INTERRUPT_EXIT;
