import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli as run } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-tune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// The full run is covered end to end in packages/platform/test/tune.test.ts; here only the flag edge.
describe('cvopt tune flags', () => {
  const base = ['--json', 'tune', '--model', 'yolov8p', '--data', tmp, '--out', join(tmp, 'run')];

  it('rejects an unknown strategy and bad numbers with the flag and exit code 2', async () => {
    const bad = await run(...base, '--strategy', 'greedy');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.out).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: '--strategy' } });

    const pop = await run(...base, '--strategy', 'nsga2', '--population', 'lots');
    expect(pop.code).toBe(2);
    expect(JSON.parse(pop.out).error.where.field).toBe('--population');

    const size = await run(...base, '--strategy', 'elitist', '--imgsz', '100');
    expect(size.code).toBe(2);
    expect(JSON.parse(size.out).error.where.field).toBe('imgsz');
  });

  it('reports a bad search space file with its line', async () => {
    const space = join(tmp, 'space.yaml');
    writeFileSync(space, 'lr0: {low: 0.1, high: 0.01}\n');
    const r = await run(...base, '--strategy', 'elitist', '--space', space);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).error).toMatchObject({ code: 'INVALID_CONFIG', where: { file: space, line: 1, field: 'lr0.low' } });
  });
});
