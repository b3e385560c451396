import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands/index.js';
import { EXAMPLES, REQUIRED_MARK } from './examples.js';

const pathOf = (c: Command): string => (c.parent && c.parent.parent ? `${pathOf(c.parent)} ${c.name()}` : c.name());

export const VERSION = '0.1.0';

/** Exit code for commander's own outcomes: help and version are successes, everything else a usage error (2). */
export function commanderExitCode(e: CommanderError): number {
  return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' || e.exitCode === 0 ? 0 : 2;
}

/** Whether the command line asks for JSON output (also for errors commander raises before any action runs). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** Build the cvopt program; main.ts parses argv with it, tests drive it directly. */
export function buildProgram(opts: { json?: boolean } = {}): Command {
  const program = new Command('cvopt')
    .description('cvopt: model + dataset → the fastest deployable inference service that meets your accuracy bar')
    .version(VERSION)
    .option('--json', 'machine-readable output on stdout (results, and errors as {"error": {...}})')
    .configureHelp({ sortSubcommands: true });
  for (const register of COMMANDS) register(program);
  // Every command, however deep, throws usage errors to the caller instead of exiting 1 on its own, and in
  // --json mode prints nothing but the JSON document.
  const apply = (c: Command) => {
    c.exitOverride();
    for (const o of c.options) if (o.mandatory && !o.description.startsWith(REQUIRED_MARK)) o.description = `${REQUIRED_MARK}${o.description}`;
    const examples = EXAMPLES[pathOf(c)];
    if (examples) c.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
    c.showHelpAfterError(opts.json ? false : '(run with --help for usage)');
    if (opts.json) c.configureOutput({ outputError: () => undefined });
    for (const sub of c.commands) apply(sub);
  };
  apply(program);
  return program;
}

export { CommanderError };
