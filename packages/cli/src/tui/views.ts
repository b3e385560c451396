import { bar, fit, num, scatter, sparkline, style as ansiStyle, table, type Point } from './text.js';
import type { BenchRun, Run as LocalRun, TrainRun, TuneRun } from './workspace.js';
import type { RemoteJobRun } from './remote.js';

export type Run = LocalRun | RemoteJobRun;

/** Pure rendering: a dashboard state and a terminal size in, exactly `height` lines out. */

export type ListFilter = 'all' | 'bench' | 'tune' | 'train' | 'job';

export interface TuiState {
  root: string;
  runs: Run[];
  filter: ListFilter;
  selected: number;
  /** The run opened with Enter (by folder), or undefined on the list. */
  open?: string;
  status: string;
  /** Output of a packaging started from the dashboard. */
  packaging?: { run: string; state: 'running' | 'succeeded' | 'failed'; lines: string[] };
  /** Where the runs come from, for the header. */
  source: string;
}

export function visibleRuns(s: TuiState): Run[] {
  return s.filter === 'all' ? s.runs : s.runs.filter((r) => r.kind === s.filter);
}

const STATE_STYLE = (st: typeof ansiStyle, state: string) =>
  state === 'running' ? st.cyan(state) : state === 'finished' ? st.green(state) : state === 'stalled' || state === 'queued' ? st.yellow(state) : st.red(state);

function progressOf(r: Run): number {
  if (r.kind === 'job') return r.total > 0 ? r.step / r.total : r.state === 'finished' ? 1 : 0;
  if (r.kind === 'train') return r.total > 0 ? r.step / r.total : r.epochs ? r.epoch / r.epochs : 0;
  if (r.kind === 'tune') return r.generations * r.population > 0 ? r.trials.length / (r.generations * r.population) : 0;
  return 1;
}

function summaryOf(r: Run): string {
  if (r.kind === 'job') return r.error ?? (r.message || (r.state === 'queued' ? 'waiting for a worker' : ''));
  if (r.kind === 'train') {
    const m = r.metrics;
    const acc = m.map50 !== undefined ? `mAP50 ${num(m.map50)}` : m.top1 !== undefined ? `top-1 ${num(m.top1)}` : '';
    return `epoch ${r.epoch}/${r.epochs || '?'} ${acc} ${r.message}`.trim();
  }
  if (r.kind === 'tune') {
    const fit = r.trials.map((t) => t.fitness).filter((f): f is number => f !== null);
    return `${r.strategy}: ${r.trials.length}/${r.generations * r.population || '?'} trials, best fitness ${num(fit.length ? Math.max(...fit) : null)}`;
  }
  const ok = r.engines.filter((e) => e.status === 'ok').length;
  return `${r.model}: ${ok}/${r.engines.length} engines measured${r.decision ? `, selected ${r.decision.winner ?? 'none'}` : ''}`;
}

function header(s: TuiState, width: number, st: typeof ansiStyle): string[] {
  const tabs = (['all', 'train', 'tune', 'bench', 'job'] as const).map((f, i) => (s.filter === f ? st.inverse(` ${i + 1} ${f} `) : ` ${i + 1} ${f} `)).join('');
  return [fit(`${st.bold('cvopt tui')}  ${s.source}  ${st.dim(`${s.runs.length} runs`)}`, width), fit(tabs, width)];
}

function footer(s: TuiState, width: number, st: typeof ansiStyle): string[] {
  const keys = s.open
    ? 'esc back  ↑↓ move  p package  r refresh  q quit'
    : '↑↓/jk move  enter open  1-5 filter  r refresh  q quit';
  return [fit(st.dim(keys), width), fit(s.status, width)];
}

function listView(s: TuiState, width: number, height: number, st: typeof ansiStyle): string[] {
  const runs = visibleRuns(s);
  if (!runs.length) {
    return [`No ${s.filter === 'all' ? '' : `${s.filter} `}runs under ${s.root}.`, 'Start one (cvopt train / tune / bench … --out DIR under this folder) and it appears here.'];
  }
  const barW = 16;
  const rows = runs.map((r) => [r.kind === 'job' ? `job:${r.jobKind}` : r.kind, r.name, STATE_STYLE(st, r.state), `${bar(progressOf(r), barW)} ${String(Math.round(progressOf(r) * 100)).padStart(3)}%`, summaryOf(r)]);
  const lines = table(['kind', 'run', 'state', 'progress', 'summary'], rows, { selected: s.selected, s: st });
  const sel = runs[s.selected];
  const preview = sel ? previewOf(sel, width, Math.max(0, height - lines.length - 2), st) : [];
  return [...lines.slice(0, Math.max(1, height - preview.length - 1)), '', ...preview];
}

function previewOf(r: Run, width: number, height: number, st: typeof ansiStyle): string[] {
  if (height < 3) return [];
  if (r.kind === 'train') return trainView(r, width, height, st);
  if (r.kind === 'job') return jobView(r, width, height, st);
  return [st.dim(`enter: open ${r.kind === 'bench' ? 'the comparison table, chart and selection margins' : 'the trials and the Pareto front'}`)];
}

function trainView(r: TrainRun, width: number, height: number, st: typeof ansiStyle): string[] {
  const out = [
    st.bold(`train ${r.name}: ${r.state}, epoch ${r.epoch}/${r.epochs || '?'}`),
    `${bar(progressOf(r), Math.min(50, width - 20))} ${Math.round(progressOf(r) * 100)}%  ${r.message}`,
  ];
  const cols = r.columns.slice(1);
  for (let c = 0; c < cols.length && out.length < Math.min(height, 2 + 8); c++) {
    const series = r.rows.map((row) => row[c + 1] ?? Number.NaN);
    out.push(`${cols[c]!.padEnd(12)} ${sparkline(series, 40).padEnd(40)} ${num(series[series.length - 1])}`);
  }
  const room = height - out.length - 2;
  if (room > 2 && r.rows.length) {
    out.push('', ...table(r.columns, r.rows.slice(-(room - 1)).map((row) => row.map((v) => num(v))), { numeric: r.columns.map(() => true), s: st }));
  }
  return out;
}

function benchView(r: BenchRun, width: number, height: number, st: typeof ansiStyle): string[] {
  const classify = r.engines.some((e) => e.top1 !== undefined);
  const rows = r.engines.map((e) => [
    r.decision?.winner === e.engine ? st.green(`★ ${e.engine}`) : `  ${e.engine}`,
    e.status,
    num(e.p50),
    num(e.p95),
    num(e.fps),
    classify ? num(e.top1) : num(e.map50),
    num(e.deltaMap50),
    num(e.rssMb),
  ]);
  const out = [
    st.bold(`benchmark ${r.name}: ${r.model} (${r.task})`),
    ...table(['engine', 'status', 'p50 ms', 'p95 ms', 'video fps', classify ? 'top-1' : 'mAP50', 'Δ mAP50', 'RSS MB'], rows, { numeric: [false, false, true, true, true, true, true, true], s: st }),
  ];
  // Engines that share a reason (no GPU on this machine, say) are listed once.
  const reasons = new Map<string, string[]>();
  for (const e of r.engines) if (e.reason) reasons.set(e.reason, [...(reasons.get(e.reason) ?? []), e.engine]);
  for (const [reason, engines] of reasons) out.push(st.dim(`  ${engines.join(', ')}: ${reason}`));
  const plotted = r.engines.filter((e) => e.p95 !== undefined && (e.map50 ?? e.top1) !== undefined);
  // Each plotted engine gets a digit, the selected one a star; the legend says which is which.
  const markOf = (e: (typeof plotted)[number], i: number) => (r.decision?.winner === e.engine ? '★' : String((i + 1) % 10));
  const pts: Point[] = plotted.map((e, i) => ({ x: e.p95!, y: (e.map50 ?? e.top1)!, mark: markOf(e, i) }));
  const legend = plotted.map((e, i) => `${markOf(e, i)} ${e.engine}`).join('  ');
  const d = r.decision;
  const marginLines: string[] = [];
  if (d) {
    marginLines.push('', st.bold(`selection: ${d.winner ?? 'no engine meets the constraints'}`), fit(d.rule, width), fit(d.reason, width));
    const unmeasured = d.candidates.filter((c) => c.p95Ms === null && c.margins.every((x) => x.value === null));
    if (unmeasured.length) marginLines.push(`  not measured: ${unmeasured.map((c) => c.engine).join(', ')}`);
    for (const c of d.candidates) {
      if (unmeasured.includes(c)) continue;
      const m = c.margins.map((x) => `${x.constraint} ${x.ok ? st.green(`+${num(x.margin)}`) : st.red(num(x.margin))}`).join('  ');
      marginLines.push(`  ${c.valid ? st.green('valid  ') : st.red('invalid')} ${c.engine.padEnd(14)} p95 ${num(c.p95Ms).padStart(7)}  ${m}`);
    }
  }
  const chartH = Math.max(0, height - out.length - marginLines.length - 1);
  if (chartH >= 6 && pts.length) {
    out.push('', ...scatter(pts, { width: Math.min(width, 70), height: Math.min(14, chartH - 1), xLabel: 'p95 latency (ms)', yLabel: classify ? 'top-1' : 'mAP50', yFromZero: true }));
    out.push(st.dim(`  ${legend}`));
  }
  return [...out, ...marginLines];
}

function tuneView(r: TuneRun, width: number, height: number, st: typeof ansiStyle): string[] {
  const best = r.trials.reduce<number | null>((b, t) => (t.fitness !== null && (b === null || t.fitness > b) ? t.fitness : b), null);
  const out = [st.bold(`tune ${r.name}: ${r.strategy}, ${r.trials.length}/${r.generations * r.population || '?'} trials, ${r.state}, best fitness ${num(best)}`)];
  const front = new Set(r.front);
  const pts: Point[] = r.trials
    .filter((t) => t.map50 !== undefined && t.p95Ms !== undefined)
    .map((t) => ({ x: t.p95Ms!, y: t.map50!, mark: t.id === r.knee ? '★' : front.has(t.id) ? '●' : t.isDefault ? 'd' : '·' }))
    // Front and knee last, so they are not hidden under ordinary trials.
    .sort((a, b) => ' ·d●★'.indexOf(a.mark) - ' ·d●★'.indexOf(b.mark));
  const chartH = Math.min(16, Math.max(8, Math.floor(height * 0.5)));
  out.push(...scatter(pts, { width: Math.min(width, 72), height: chartH, xLabel: 'p95 latency (ms)', yLabel: 'mAP50 (● Pareto front, ★ knee, d default)', yFromZero: true }));
  const room = height - out.length - 2;
  const recent = r.trials.slice(-Math.max(1, room));
  out.push(
    '',
    ...table(
      ['trial', 'gen', 'status', 'fitness', 'mAP50', 'mAP50-95', 'p95 ms', 'front'],
      recent.map((t) => [String(t.id), String(t.generation), t.status === 'failed' ? st.red(t.status) : t.status, num(t.fitness), num(t.map50), num(t.map5095), num(t.p95Ms), front.has(t.id) ? (t.id === r.knee ? 'knee' : 'yes') : '']),
      { numeric: [true, true, false, true, true, true, true, false], s: st },
    ),
  );
  return out;
}

function jobView(r: RemoteJobRun, width: number, height: number, st: typeof ansiStyle): string[] {
  const out = [
    st.bold(`${r.jobKind} job ${r.jobId} in ${r.projectName} (your role: ${r.role}): ${r.state}`),
    `${bar(progressOf(r), Math.min(50, width - 20))} ${Math.round(progressOf(r) * 100)}%  ${r.message}`,
  ];
  if (r.error) out.push(st.red(r.error));
  if (r.result !== undefined) out.push(`result: ${JSON.stringify(r.result).slice(0, Math.max(20, width * 2))}`);
  const room = Math.max(0, height - out.length - 2);
  if (room > 0) out.push('', st.bold('log'), ...r.logs.slice(-room));
  return out;
}

function detailView(s: TuiState, r: Run, width: number, height: number, st: typeof ansiStyle): string[] {
  if (r.kind === 'job') return jobView(r, width, height, st);
  const body = r.kind === 'bench' ? benchView(r, width, height, st) : r.kind === 'tune' ? tuneView(r, width, height, st) : trainView(r, width, height, st);
  if (s.packaging && s.packaging.run === r.dir) {
    const p = s.packaging;
    const tail = p.lines.slice(-6);
    body.push('', st.bold(`package: ${p.state}`), ...tail.map((l) => `  ${l}`));
  }
  return body;
}

export function render(s: TuiState, width: number, height: number, st: typeof ansiStyle = ansiStyle): string[] {
  const top = header(s, width, st);
  const bottom = footer(s, width, st);
  const bodyH = Math.max(0, height - top.length - bottom.length);
  const opened = s.open ? s.runs.find((r) => r.dir === s.open) : undefined;
  const body = opened ? detailView(s, opened, width, bodyH, st) : listView(s, width, bodyH, st);
  const lines = [...top, ...body.slice(0, bodyH).map((l) => fit(l, width))];
  while (lines.length < height - bottom.length) lines.push(' '.repeat(width));
  return [...lines, ...bottom].slice(0, height);
}
