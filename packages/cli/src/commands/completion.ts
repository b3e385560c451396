import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { completionScript, SHELLS, type Shell } from '../completion.js';
import { action } from '../action.js';

export function register(program: Command): void {
  const cmd = program
    .command('completion')
    .description('print a shell completion script for bash, zsh or fish')
    .argument('<shell>', SHELLS.join(' | '))
    .addHelpText(
      'after',
      `
Examples:
  cvopt completion bash > /etc/bash_completion.d/cvopt        # or: source <(cvopt completion bash)
  cvopt completion zsh > "\${fpath[1]}/_cvopt"
  cvopt completion fish > ~/.config/fish/completions/cvopt.fish`,
    );
  action<[string]>(cmd, (shell) => {
    if (!(SHELLS as readonly string[]).includes(shell)) {
      throw new CvoptError('INVALID_ARGUMENT', `no completion for shell "${shell}"`, { where: { field: 'shell' }, hint: `choose one of ${SHELLS.join(', ')}` });
    }
    let root = cmd.parent!;
    while (root.parent) root = root.parent;
    process.stdout.write(completionScript(root, shell as Shell));
  });
}
