import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/program.js';
import { completionScript } from '../src/completion.js';
import { runCli } from './run-cli.js';

/** What real bash offers after sourcing the generated script, for the words typed so far. */
function bashComplete(script: string, words: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-compl-'));
  const file = join(dir, 'c.bash');
  writeFileSync(file, script);
  const arr = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync('bash', ['-c', `source ${file}; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _cvopt; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

describe('shell completion', () => {
  const program = buildProgram();

  it('bash offers the real commands, subcommands and each command’s own flags', () => {
    const script = completionScript(program, 'bash');
    expect(bashComplete(script, ['cvopt', 'ev'])).toEqual(expect.arrayContaining(['eval']));
    expect(bashComplete(script, ['cvopt', 'dataset', ''])).toEqual(expect.arrayContaining(['synth', 'check']));
    const trainFlags = bashComplete(script, ['cvopt', 'train', '--e']);
    expect(trainFlags).toContain('--epochs');
    expect(trainFlags).not.toContain('--engine'); // eval's flag, not train's
    expect(bashComplete(script, ['cvopt', 'dataset', 'synth', '--t'])).toContain('--task');
  });

  it('zsh reuses the bash function through bashcompinit, fish lists every top-level command', () => {
    expect(completionScript(program, 'zsh')).toMatch(/^#compdef cvopt[\s\S]*bashcompinit[\s\S]*complete -o default -F _cvopt cvopt/);
    const fish = completionScript(program, 'fish');
    for (const c of program.commands) expect(fish).toContain(`-a '${c.name()}'`);
    expect(fish).toContain('-l epochs -r -F');
  });

  it('an unknown shell is a usage error that names the choices', async () => {
    const r = await runCli('completion', 'tcsh');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bash, zsh, fish/);
  });
});
