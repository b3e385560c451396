import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../src/program.js';
import { runCli } from './run-cli.js';

/** Every command's --help ends with examples, and marks its required options. */

function leaves(c: Command, prefix: string[] = []): string[][] {
  return c.commands.flatMap((sub) => [[...prefix, sub.name()], ...leaves(sub, [...prefix, sub.name()])]);
}

describe('help', () => {
  const program = buildProgram();
  for (const path of leaves(program)) {
    it(`cvopt ${path.join(' ')} --help has examples`, async () => {
      const r = await runCli(...path, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Examples:\n {2}\S/);
    });
  }

  it('marks required options', async () => {
    const r = await runCli('select', '--help');
    expect(r.code).toBe(0);
    const bench = await runCli('bench', '--help');
    expect(bench.out).toMatch(/--out <file>\s+\(required\)/);
  });
});
