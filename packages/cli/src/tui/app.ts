import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { emitKeypressEvents } from 'node:readline';
import { plainStyle, style } from './text.js';
import { render, visibleRuns, type ListFilter, type TuiState } from './views.js';
import { scanWorkspace, type Run } from './workspace.js';

/**
 * `cvopt tui`: a keyboard-driven terminal dashboard over a folder of runs. Written on plain ANSI escape codes
 * (alternate screen, full redraw each tick): no dependency, works over SSH and in tmux, redraws on resize, and
 * prints a plain snapshot when stdout is not a terminal.
 */

export interface TuiOptions {
  root: string;
  /** Re-read the folder this often (ms). */
  intervalMs?: number;
  /** Print one plain snapshot and return (automatic when stdout is not a TTY). */
  plain?: boolean;
  /** How to run `cvopt package` for the selected decision; default: this CLI in a child process. */
  packageArgs?: (decisionPath: string, outDir: string) => string[];
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
}

export function snapshot(root: string, width = 110): string {
  const runs = scanWorkspace(root);
  const out: string[] = [];
  const base: TuiState = { root, runs, filter: 'all', selected: -1, status: '', source: root };
  out.push(...render(base, width, Math.max(8, runs.length + 8), plainStyle).filter((l) => l.trim()).map((l) => l.trimEnd()));
  for (const r of runs) {
    if (r.kind === 'train' && r.rows.length === 0) continue;
    const lines = render({ ...base, open: r.dir }, width, 60, plainStyle).slice(2, -2);
    out.push('', ...lines.map((l) => l.trimEnd()).filter((l, i, a) => l || (a[i - 1] ?? '') !== ''));
  }
  return `${out.join('\n').trimEnd()}\n`;
}

export async function runTui(o: TuiOptions): Promise<number> {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const root = resolve(o.root);
  if (o.plain || !output.isTTY || !input.isTTY) {
    output.write(snapshot(root, output.columns || 110));
    return 0;
  }
  const state: TuiState = { root, runs: scanWorkspace(root), filter: 'all', selected: 0, status: 'reading runs…', source: root };
  state.status = `${state.runs.length} runs found; refreshing every ${(o.intervalMs ?? 1000) / 1000} s`;

  const draw = () => {
    const width = Math.max(40, (output.columns || 100) - 1);
    const height = Math.max(10, output.rows || 30);
    const lines = render(state, width, height, process.env.NO_COLOR ? plainStyle : style);
    output.write(`\x1b[H${lines.join('\x1b[K\r\n')}\x1b[K`);
  };
  const refresh = () => {
    const sel = visibleRuns(state)[state.selected]?.dir;
    state.runs = scanWorkspace(root);
    const idx = visibleRuns(state).findIndex((r) => r.dir === sel);
    state.selected = Math.max(0, Math.min(idx >= 0 ? idx : state.selected, visibleRuns(state).length - 1));
  };

  output.write('\x1b[?1049h\x1b[?25l\x1b[2J');
  emitKeypressEvents(input);
  input.setRawMode(true);
  input.resume();

  return await new Promise<number>((done) => {
    const timer = setInterval(() => {
      refresh();
      draw();
    }, o.intervalMs ?? 1000);
    const onResize = () => {
      output.write('\x1b[2J');
      draw();
    };
    const finish = (code: number) => {
      clearInterval(timer);
      output.off('resize', onResize);
      input.off('keypress', onKey);
      input.setRawMode(false);
      input.pause();
      output.write('\x1b[?25h\x1b[?1049l');
      done(code);
    };
    const onKey = (_: string, key: { name?: string; ctrl?: boolean; sequence?: string } | undefined) => {
      const name = key?.name ?? key?.sequence ?? '';
      if (key?.ctrl && name === 'c') return finish(130);
      const runs = visibleRuns(state);
      if (name === 'q') return finish(0);
      if (name === 'up' || name === 'k') state.selected = Math.max(0, state.selected - 1);
      else if (name === 'down' || name === 'j') state.selected = Math.min(runs.length - 1, state.selected + 1);
      else if ((name === 'return' || name === 'enter' || name === 'right') && runs[state.selected]) state.open = runs[state.selected]!.dir;
      else if (name === 'escape' || name === 'left' || name === 'backspace') delete state.open;
      else if (name === 'r') {
        refresh();
        state.status = `refreshed at ${new Date().toLocaleTimeString()}`;
      } else if (['1', '2', '3', '4'].includes(name)) {
        state.filter = (['all', 'train', 'tune', 'bench'] as ListFilter[])[Number(name) - 1]!;
        state.selected = 0;
        delete state.open;
      } else if (name === 'p') startPackaging(state, o);
      draw();
    };
    input.on('keypress', onKey);
    output.on('resize', onResize);
    draw();
  });
}

function startPackaging(state: TuiState, o: TuiOptions): void {
  const run: Run | undefined = state.runs.find((r) => r.dir === state.open);
  if (!run || run.kind !== 'bench') {
    state.status = 'p packages a benchmark’s selected engine: open a bench run first';
    return;
  }
  if (!run.decision?.winner) {
    state.status = `no selected engine in ${run.name}: run cvopt select ${join(run.dir, 'report.json')} first`;
    return;
  }
  if (state.packaging?.state === 'running') {
    state.status = 'a packaging is already running';
    return;
  }
  const outDir = join(run.dir, 'package');
  const args = o.packageArgs ? o.packageArgs(run.decision.path, outDir) : [process.argv[1] ?? 'cvopt', 'package', '--decision', run.decision.path, '--out', outDir];
  const pk: NonNullable<TuiState['packaging']> = { run: run.dir, state: 'running', lines: [`cvopt package --decision ${run.decision.path} --out ${outDir}`] };
  state.packaging = pk;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const take = (b: Buffer) => pk.lines.push(...b.toString('utf8').split('\n').filter(Boolean).map((l) => l.slice(0, 300)));
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  child.on('close', (code) => {
    pk.state = code === 0 ? 'succeeded' : 'failed';
    state.status = `packaging ${pk.state}${code === 0 ? `: ${outDir}` : ` (exit ${code})`}`;
  });
  child.on('error', (e) => {
    pk.state = 'failed';
    pk.lines.push(e.message);
  });
}
