import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { CvoptError } from '@cvopt/core';
import { runTui } from '../tui/app.js';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { RemoteClient } from '../remote/client.js';

export function register(program: Command): void {
  const cmd = program
    .command('tui')
    .description('terminal dashboard: live training runs, tune trials and Pareto fronts, benchmark reports with the selection margins; package the selected engine')
    .argument('[dir]', 'the folder whose runs to show (searched 4 levels down)', '.')
    .option('--interval <ms>', 're-read the folder this often', '1000')
    .option('--plain', 'print one plain-text snapshot and exit (automatic when stdout is not a terminal)')
    .option('--remote', 'also show the jobs of the cvopt server you are logged in to (cvopt login URL)')
    .addHelpText(
      'after',
      `
Keys: ↑/↓ or j/k move, Enter opens a run, Esc goes back, 1-5 filter (all, train, tune, bench, server jobs),
p packages (an open benchmark's selected engine; with --remote, an open finished export job, as a project
admin), r refreshes, q quits.

Examples:
  cvopt tui runs/                 # follow everything under runs/
  cvopt tui cvopt-quickstart      # the quickstart's training run and benchmark
  cvopt tui runs/ --plain > s.txt # a text snapshot (CI logs, e-mail)
  cvopt login http://ci-gpu:8700 && cvopt tui --remote   # the team server's jobs, live`,
    );
  action<[string]>(cmd, async (dir, opts) => {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new CvoptError('NOT_FOUND', `${dir} is not a folder`, { where: { file: dir }, hint: 'pass the folder your runs write to (the --out of train, tune, bench)' });
    }
    const code = await runTui({
      root: dir,
      intervalMs: parseFlags({ interval: flag.int({ min: 100 }) }, opts).interval,
      plain: opts.plain === true || opts.json === true,
      ...(opts.remote === true ? { remote: RemoteClient.fromCredentials() } : {}),
    });
    process.exitCode = code;
  });
}
