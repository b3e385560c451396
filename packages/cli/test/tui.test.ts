import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The dashboard in a real pseudo-terminal (tmux): it starts, follows a real training run as it advances, opens a
 * real benchmark report with its selection and a real tune run's Pareto front, survives a resize and quits
 * cleanly. Everything it shows was written by the real CLI in this test.
 */

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'packages/cli/dist/main.js');
const socket = `cvopt-tui-test-${process.pid}`;
const session = 'tui';
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
}

const screen = () => tmux('capture-pane', '-p', '-t', session);

async function waitFor(pred: (s: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < timeoutMs) {
    last = screen();
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; screen was:\n${last}`);
}

function runCli(args: string[]): void {
  execFileSync(process.execPath, [cli, ...args], { stdio: 'pipe' });
}

describe.skipIf(!hasTmux)('cvopt tui in a real terminal', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cvopt-tui-'));
    runCli(['dataset', 'synth', '--task', 'detect', '--out', join(work, 'data'), '--images', '24', '--imgsz', '64']);
    // A real benchmark report (measured on this project's machine, kept in docs/) and a real selection over it.
    mkdirSync(join(work, 'bench1'));
    cpSync(join(root, 'docs/bench/yolov8n/report.json'), join(work, 'bench1/report.json'));
    runCli(['select', join(work, 'bench1/report.json'), '--max-map-drop', '0.01']);
    runCli(['tune', '--model', 'yolov8p', '--data', join(work, 'data'), '--strategy', 'nsga2', '--generations', '2', '--population', '2', '--epochs', '1', '--imgsz', '64', '--batch', '8', '--latency-runs', '3', '--out', join(work, 'tune1')]);
  }, 180_000);
  afterAll(() => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('follows a live training run, opens a benchmark and a Pareto front, resizes and quits', async () => {
    const exitFile = join(work, 'tui-exit');
    tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', `node ${cli} tui ${work} --interval 250; echo $? > ${exitFile}`);
    await waitFor((s) => s.includes('cvopt tui') && s.includes('bench1') && s.includes('tune1'), 'the run list');

    const train = spawn(process.execPath, [cli, 'train', '--model', 'yolov8p', '--data', join(work, 'data'), '--epochs', '6', '--imgsz', '64', '--batch', '4', '--out', join(work, 'live')], { stdio: 'ignore' });
    const trainDone = new Promise<number | null>((r) => train.on('close', r));
    try {
      const epochOf = (s: string) => Number(/live\s+running.*?epoch (\d+)\/6/.exec(s)?.[1] ?? 0);
      const first = await waitFor((s) => epochOf(s) >= 1, 'the live run at epoch ≥ 1');
      const later = await waitFor((s) => epochOf(s) > epochOf(first) || /live\s+finished/.test(s), 'the live run advancing');
      expect(epochOf(later) > epochOf(first) || /live\s+finished/.test(later)).toBe(true);
    } finally {
      expect(await trainDone).toBe(0);
    }
    await waitFor((s) => /live\s+finished.*epoch 6\/6/.test(s), 'the live run finished');

    tmux('send-keys', '-t', session, '4');
    await waitFor((s) => s.includes('bench1') && !s.includes('tune1'), 'the bench filter');
    tmux('send-keys', '-t', session, 'Enter');
    // A frame is one write, but the terminal may show it half drawn: wait for its last lines too.
    const bench = await waitFor((s) => s.includes('selection: ort-cpu') && /maxMapDrop/.test(s) && s.includes('p95 latency (ms)'), 'the benchmark report');
    expect(bench).toContain('ort-cpu-int8');
    expect(bench).toMatch(/maxMapDrop/);
    expect(bench).toContain('p95 latency (ms)');

    tmux('send-keys', '-t', session, 'Escape');
    tmux('send-keys', '-t', session, '3');
    await waitFor((s) => s.includes('tune1') && !s.includes('bench1'), 'the tune filter');
    tmux('send-keys', '-t', session, 'Enter');
    const tune = await waitFor((s) => s.includes('Pareto front') && s.includes('nsga2') && s.includes('knee') && /4\/4 trials/.test(s), 'the Pareto front');
    expect(tune).toMatch(/4\/4 trials/);
    expect(tune).toContain('knee');

    tmux('resize-window', '-t', session, '-x', '70', '-y', '24');
    const small = await waitFor((s) => s.split('\n').length <= 25 && s.includes('cvopt tui'), 'the redraw after resizing');
    expect(small.split('\n').every((l) => l.length <= 70)).toBe(true);

    tmux('send-keys', '-t', session, 'q');
    const t0 = Date.now();
    while (!existsSync(exitFile) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
    expect(readFileSync(exitFile, 'utf8').trim()).toBe('0');
  }, 180_000);

  it('prints a plain snapshot when stdout is not a terminal', () => {
    const out = execFileSync(process.execPath, [cli, 'tui', work], { encoding: 'utf8' });
    expect(out).not.toMatch(/\x1b\[/); // eslint-disable-line no-control-regex
    expect(out).toContain('selection: ort-cpu');
    expect(out).toContain('tune tune1: nsga2');
  });
});
