import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { emitKeypressEvents } from 'node:readline';
import { plainStyle, style } from './text.js';
import { render, visibleRuns, type ListFilter, type Run, type TuiState } from './views.js';
import { scanWorkspace } from './workspace.js';
import { remoteLogs, remotePackage, remoteRuns } from './remote.js';
import type { RemoteClient } from '../remote/client.js';

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
  /** A logged-in server whose jobs to show beside the folder's runs. */
  remote?: RemoteClient;
}

/** The folder's runs and, when connected, the server's jobs (the open job's log included). */
async function collect(root: string, remote: RemoteClient | undefined, open: string | undefined): Promise<{ runs: Run[]; error?: string }> {
  const local: Run[] = scanWorkspace(root);
  if (!remote) return { runs: local };
  try {
    const jobs = await remoteRuns(remote);
    const opened = jobs.find((j) => j.dir === open);
    if (opened) opened.logs = await remoteLogs(remote, opened);
    return { runs: [...jobs, ...local] };
  } catch (e) {
    return { runs: local, error: `server: ${(e as Error).message}` };
  }
}

export async function snapshot(root: string, width = 110, remote?: RemoteClient): Promise<string> {
  const { runs, error } = await collect(root, remote, undefined);
  const out: string[] = [];
  const base: TuiState = { root, runs, filter: 'all', selected: -1, status: error ?? '', source: remote ? `${root} + ${remote.url}` : root };
  out.push(...render(base, width, Math.max(8, runs.length + 8), plainStyle).filter((l) => l.trim()).map((l) => l.trimEnd()));
  for (const r of runs) {
    if ((r.kind === 'train' && r.rows.length === 0) || r.kind === 'job') continue;
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
    output.write(await snapshot(root, output.columns || 110, o.remote));
    return 0;
  }
  const first = await collect(root, o.remote, undefined);
  const state: TuiState = { root, runs: first.runs, filter: 'all', selected: 0, status: '', source: o.remote ? `${root} + ${o.remote.url}` : root };
  state.status = first.error ?? `${state.runs.length} runs found; refreshing every ${(o.intervalMs ?? 1000) / 1000} s`;

  const draw = () => {
    const width = Math.max(40, (output.columns || 100) - 1);
    const height = Math.max(10, output.rows || 30);
    const lines = render(state, width, height, process.env.NO_COLOR ? plainStyle : style);
    output.write(`\x1b[H${lines.join('\x1b[K\r\n')}\x1b[K`);
  };
  let refreshing = false;
  const refresh = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      const sel = visibleRuns(state)[state.selected]?.dir;
      const got = await collect(root, o.remote, state.open);
      state.runs = got.runs;
      if (got.error) state.status = got.error;
      const idx = visibleRuns(state).findIndex((r) => r.dir === sel);
      state.selected = Math.max(0, Math.min(idx >= 0 ? idx : state.selected, visibleRuns(state).length - 1));
    } finally {
      refreshing = false;
    }
  };

  output.write('\x1b[?1049h\x1b[?25l\x1b[2J');
  emitKeypressEvents(input);
  input.setRawMode(true);
  input.resume();

  return await new Promise<number>((done) => {
    const timer = setInterval(() => {
      void refresh().then(draw);
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
        void refresh().then(() => {
          state.status = `refreshed at ${new Date().toLocaleTimeString()}`;
          draw();
        });
      } else if (['1', '2', '3', '4', '5'].includes(name)) {
        state.filter = (['all', 'train', 'tune', 'bench', 'job'] as ListFilter[])[Number(name) - 1]!;
        state.selected = 0;
        delete state.open;
      } else if (name === 'p') {
        const open = state.runs.find((r) => r.dir === state.open);
        if (open?.kind === 'job' && o.remote) {
          state.status = 'submitting…';
          void remotePackage(o.remote, open, state.runs.filter((r) => r.kind === 'job'))
            .then((msg) => (state.status = msg))
            .catch((e: Error) => (state.status = `package: ${e.message}`))
            .then(draw);
        } else startPackaging(state, o);
      }
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
