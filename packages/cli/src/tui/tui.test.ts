import { mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bar, fit, niceTicks, scatter, stripAnsi, style, visibleWidth } from './text.js';
import { paretoFront, readSmallFile, scanWorkspace } from './workspace.js';

describe('tui text widgets', () => {
  it('fit cuts and pads by visible width, keeping escape codes and closing them', () => {
    const s = `${style.bold('abc')}def`;
    expect(visibleWidth(s)).toBe(6);
    const cut = fit(s, 4);
    expect(stripAnsi(cut)).toBe('abcd');
    expect(cut.endsWith('\x1b[0m')).toBe(true);
    expect(stripAnsi(fit('ab', 5))).toBe('ab   ');
    expect(fit('x', 0)).toBe('');
  });

  it('niceTicks are round and cover the range', () => {
    expect(niceTicks(0, 0.643, 3)).toEqual([0, 0.5, 1]);
    expect(niceTicks(191, 3384)).toEqual([0, 1000, 2000, 3000, 4000]);
    const t = niceTicks(-3.2, 7.9);
    expect(t[0]).toBeLessThanOrEqual(-3.2);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(7.9);
  });

  it('a scatter stays inside its width and puts every point on the grid', () => {
    const lines = scatter([{ x: 1, y: 0.2, mark: 'a' }, { x: 3000, y: 0.9, mark: 'b' }], { width: 40, height: 10, xLabel: 'x', yLabel: 'y' });
    expect(lines.every((l) => visibleWidth(l) <= 40 + 4)).toBe(true);
    expect(lines.join('\n')).toContain('a');
    expect(lines.join('\n')).toContain('b');
  });

  it('bar clamps its fraction', () => {
    expect(bar(2, 4)).toBe('████');
    expect(bar(Number.NaN, 3)).toBe('░░░');
  });
});

describe('tui workspace', () => {
  it('pareto front keeps only non-dominated points (max a, min b)', () => {
    const front = paretoFront([
      { id: 1, a: 0.5, b: 10 },
      { id: 2, a: 0.6, b: 12 },
      { id: 3, a: 0.4, b: 11 }, // dominated by 1
      { id: 4, a: 0.6, b: 12 }, // equal to 2: neither dominates
    ]);
    expect(front).toEqual([1, 2, 4]);
  });

  it('never reads a FIFO, a device or an oversized file, and ignores garbage', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-tui-ws-'));
    execFileSync('mkfifo', [join(dir, 'progress.json')]);
    expect(readSmallFile(join(dir, 'progress.json'))).toBeUndefined();
    expect(readSmallFile('/dev/zero')).toBeUndefined();
    writeFileSync(join(dir, 'big.json'), 'x'.repeat(2048));
    expect(readSmallFile(join(dir, 'big.json'), 1024)).toBeUndefined();
    const bad = join(dir, 'bench');
    execFileSync('mkdir', [bad]);
    writeFileSync(join(bad, 'report.json'), '{not json');
    expect(scanWorkspace(dir)).toEqual([]);
  });
});
