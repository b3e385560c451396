import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli as run } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-ds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('cvopt dataset', () => {
  it('synthesises a dataset, checks it clean, then fails with the planted row located', async () => {
    const out = join(tmp, 'shapes');
    const synth = await run('--json', 'dataset', 'synth', '--task', 'detect', '--out', out, '--images', '12', '--imgsz', '64', '--seed', '5');
    expect(synth.code).toBe(0);
    expect(JSON.parse(synth.out)).toMatchObject({ task: 'detect', train: 10, val: 2, dataYaml: join(out, 'data.yaml') });

    const clean = await run('dataset', 'check', out);
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/12 images \(train 10, val 2\)/);
    expect(clean.out.trim().split('\n').at(-1)).toBe('OK');

    const victim = readdirSync(join(out, 'labels/train')).sort()[0] as string;
    appendFileSync(join(out, 'labels/train', victim), '7 0.5 0.5 0.1 0.1\n');
    const lines = (await run('--json', 'dataset', 'check', out)).out;
    const report = JSON.parse(lines);
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    const bad = await run('dataset', 'check', out);
    expect(bad.code).toBe(3); // DATASET_INVALID
    expect(bad.out).toContain(`labels/train/${victim}:${report.problems[0].line}: class id 7 is out of range`);
    expect(bad.out).toContain('FAILED: 1 error, 0 warnings');
  });

  it('rejects a bad --task with a usage exit code', async () => {
    const r = await run('--json', 'dataset', 'synth', '--task', 'segment', '--out', join(tmp, 'x'));
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: '--task' } });
  });
});
