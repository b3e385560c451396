import { Command } from 'commander';
import { COMMANDS } from './commands/index.js';

export const VERSION = '0.1.0';

/** Build the cvopt program; main.ts parses argv with it, tests drive it directly. */
export function buildProgram(): Command {
  const program = new Command('cvopt')
    .description('cvopt: model + dataset → the fastest deployable inference service that meets your accuracy bar')
    .version(VERSION)
    .option('--json', 'machine-readable output on stdout')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true });
  for (const register of COMMANDS) register(program);
  return program;
}
