import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * What the dashboard shows of a folder: the runs cvopt commands left in it, read from the files they write as
 * they go (progress.json + results.csv of `train`, run.json + trials.jsonl + pareto.json of `tune`, report.json +
 * decision.json of `bench`/`select`). Reading files keeps the dashboard independent of the process that runs the
 * job: it follows a run started in another terminal, over SSH, or one that already finished.
 */

export type RunState = 'running' | 'finished' | 'failed' | 'cancelled' | 'stalled';

export interface TrainRun {
  kind: 'train';
  dir: string;
  name: string;
  state: RunState;
  epoch: number;
  epochs: number;
  step: number;
  total: number;
  message: string;
  metrics: Record<string, number>;
  /** results.csv: one row per finished epoch. */
  columns: string[];
  rows: number[][];
  updatedAt: number;
}

export interface TuneTrial {
  id: number;
  generation: number;
  status: string;
  fitness: number | null;
  map50?: number;
  map5095?: number;
  p95Ms?: number;
  isDefault: boolean;
  error?: string;
}

export interface TuneRun {
  kind: 'tune';
  dir: string;
  name: string;
  state: RunState;
  strategy: string;
  generations: number;
  population: number;
  trials: TuneTrial[];
  /** Trial ids on the Pareto front (pareto.json when written; else computed from the trials so far). */
  front: number[];
  knee?: number;
  updatedAt: number;
}

export interface BenchEngineRow {
  engine: string;
  status: string;
  p50?: number;
  p95?: number;
  fps?: number;
  map50?: number;
  map5095?: number;
  top1?: number;
  deltaMap50?: number;
  rssMb?: number;
  reason?: string;
}

export interface DecisionView {
  path: string;
  winner: string | null;
  rule: string;
  reason: string;
  candidates: { engine: string; valid: boolean; p95Ms: number | null; margins: { constraint: string; limit: number; value: number | null; margin: number | null; ok: boolean }[]; rejectedBy: string[] }[];
}

export interface BenchRun {
  kind: 'bench';
  dir: string;
  name: string;
  state: RunState;
  model: string;
  task: string;
  engines: BenchEngineRow[];
  decision?: DecisionView;
  reportPath: string;
  updatedAt: number;
}

export type Run = TrainRun | TuneRun | BenchRun;

const MAX_FILE_BYTES = 8 * 1024 * 1024;
const MAX_DIRS = 4000;
/** A running train that has not written progress for this long is shown as stalled (killed, or the machine slept). */
export const STALL_SECONDS = 120;

/** A regular file's text, or undefined: never follows a FIFO or device, never reads more than the cap. */
export function readSmallFile(path: string, cap = MAX_FILE_BYTES): string | undefined {
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size > cap) return undefined;
    const fd = openSync(path, 'r');
    try {
      if (!fstatSync(fd).isFile()) return undefined;
      const buf = Buffer.alloc(Math.min(cap, st.size));
      const n = readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function readJson(path: string): unknown {
  const text = readSmallFile(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const n = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);

function mtime(path: string): number {
  try {
    return lstatSync(path).mtimeMs / 1000;
  } catch {
    return 0;
  }
}

export function readTrainRun(dir: string, root: string, now: number): TrainRun | undefined {
  const p = obj(readJson(join(dir, 'progress.json')));
  if (p.kind !== 'train') return undefined;
  const csv = readSmallFile(join(dir, 'results.csv')) ?? '';
  const [head, ...body] = csv.trim().split('\n').filter(Boolean);
  const columns = head ? head.split(',') : [];
  const rows = body.map((l) => l.split(',').map((c) => (c === '' ? Number.NaN : Number(c))));
  const updatedAt = n(p.updatedAt) ?? mtime(join(dir, 'progress.json'));
  let state = (['running', 'finished', 'failed', 'cancelled'].includes(str(p.state)) ? p.state : 'running') as RunState;
  if (state === 'running' && now - updatedAt > STALL_SECONDS) state = 'stalled';
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj(p.metrics))) if (n(v) !== undefined) metrics[k] = v as number;
  return {
    kind: 'train',
    dir,
    name: relative(root, dir) || '.',
    state,
    epoch: n(p.epoch) ?? rows.length,
    epochs: n(p.epochs) ?? 0,
    step: n(p.step) ?? 0,
    total: n(p.total) ?? 0,
    message: str(p.message),
    metrics,
    columns,
    rows,
    updatedAt,
  };
}

/** Indices of the non-dominated points when maximising a and minimising b. */
export function paretoFront(points: { id: number; a: number; b: number }[]): number[] {
  return points
    .filter((p) => !points.some((q) => q !== p && q.a >= p.a && q.b <= p.b && (q.a > p.a || q.b < p.b)))
    .map((p) => p.id);
}

export function readTuneRun(dir: string, root: string, now: number): TuneRun | undefined {
  const cfg = obj(readJson(join(dir, 'run.json')));
  const log = readSmallFile(join(dir, 'trials.jsonl'));
  if (typeof cfg.strategy !== 'string' && log === undefined) return undefined;
  const trials: TuneTrial[] = [];
  for (const line of (log ?? '').split('\n')) {
    if (!line.trim()) continue;
    let t: Record<string, unknown>;
    try {
      t = obj(JSON.parse(line));
    } catch {
      continue; // a half-written last line while the run appends
    }
    if (t.type !== 'trial') continue;
    const m = obj(t.metrics);
    const err = obj(t.error);
    trials.push({
      id: n(t.id) ?? trials.length,
      generation: n(t.generation) ?? 0,
      status: str(t.status, '?'),
      fitness: n(t.fitness) ?? null,
      ...(n(m.map50) !== undefined ? { map50: m.map50 as number } : {}),
      ...(n(m.map5095) !== undefined ? { map5095: m.map5095 as number } : {}),
      ...(n(t.p95Ms) !== undefined ? { p95Ms: t.p95Ms as number } : {}),
      isDefault: t.isDefault === true,
      ...(err.code ? { error: `${str(err.code)}: ${str(err.message)}` } : {}),
    });
  }
  const generations = n(cfg.generations) ?? 0;
  const population = n(cfg.population) ?? 0;
  const pareto = obj(readJson(join(dir, 'pareto.json')));
  let front: number[];
  let knee: number | undefined;
  if (Array.isArray(pareto.front)) {
    front = (pareto.front as unknown[]).map((t) => n(obj(t).id)).filter((x): x is number => x !== undefined);
    knee = n(obj(pareto.knee).id);
  } else {
    front = paretoFront(trials.filter((t) => t.map50 !== undefined && t.p95Ms !== undefined).map((t) => ({ id: t.id, a: t.map50!, b: t.p95Ms! })));
  }
  const updatedAt = Math.max(mtime(join(dir, 'trials.jsonl')), mtime(join(dir, 'run.json')));
  const done = existsBest(dir) || (generations > 0 && population > 0 && trials.length >= generations * population);
  const state: RunState = done ? 'finished' : now - updatedAt > 30 * 60 ? 'stalled' : 'running';
  return { kind: 'tune', dir, name: relative(root, dir) || '.', state, strategy: str(cfg.strategy, '?'), generations, population, trials, front, ...(knee !== undefined ? { knee } : {}), updatedAt };
}

function existsBest(dir: string): boolean {
  return readSmallFile(join(dir, 'best_hyp.yaml'), 1 << 20) !== undefined;
}

export function readDecision(path: string): DecisionView | undefined {
  const d = obj(readJson(path));
  if (!Array.isArray(d.candidates)) return undefined;
  return {
    path,
    winner: typeof d.winner === 'string' ? d.winner : null,
    rule: str(d.rule),
    reason: str(d.reason),
    candidates: (d.candidates as unknown[]).map((c) => {
      const o = obj(c);
      return {
        engine: str(o.engine, '?'),
        valid: o.valid === true,
        p95Ms: n(o.p95Ms) ?? null,
        margins: (Array.isArray(o.margins) ? o.margins : []).map((m) => {
          const mm = obj(m);
          return { constraint: str(mm.constraint), limit: n(mm.limit) ?? Number.NaN, value: n(mm.value) ?? null, margin: n(mm.margin) ?? null, ok: mm.ok === true };
        }),
        rejectedBy: (Array.isArray(o.rejectedBy) ? o.rejectedBy : []).map((x) => String(x)),
      };
    }),
  };
}

export function readBenchRun(dir: string, root: string): BenchRun | undefined {
  const reportPath = join(dir, 'report.json');
  const r = obj(readJson(reportPath));
  if (!Array.isArray(r.engines)) return undefined;
  const model = obj(r.model);
  const engines: BenchEngineRow[] = (r.engines as unknown[]).map((e) => {
    const o = obj(e);
    const f = obj(o.figures);
    const lat = obj(f.latencyMs);
    const acc = obj(f.accuracy);
    const delta = obj(acc.delta);
    const video = obj(f.video);
    const res = obj(f.resources);
    const row: BenchEngineRow = { engine: str(o.engine, '?'), status: str(o.status, '?') };
    if (n(lat.p50) !== undefined) row.p50 = lat.p50 as number;
    if (n(lat.p95) !== undefined) row.p95 = lat.p95 as number;
    if (n(video.pipelinedFps) !== undefined) row.fps = video.pipelinedFps as number;
    if (n(acc.map50) !== undefined) row.map50 = acc.map50 as number;
    if (n(acc.map5095) !== undefined) row.map5095 = acc.map5095 as number;
    if (n(acc.top1) !== undefined) row.top1 = acc.top1 as number;
    if (n(delta.map50) !== undefined) row.deltaMap50 = delta.map50 as number;
    if (n(res.peakRssMb) !== undefined) row.rssMb = res.peakRssMb as number;
    if (o.status === 'unavailable') row.reason = str(o.reason);
    if (o.status === 'failed') row.reason = `${str(obj(o.error).code)}: ${str(obj(o.error).message)}`;
    return row;
  });
  const decision = readDecision(join(dir, 'decision.json'));
  return {
    kind: 'bench',
    dir,
    name: relative(root, dir) || '.',
    state: 'finished',
    model: str(model.name) || str(model.path),
    task: str(model.task),
    engines,
    ...(decision ? { decision } : {}),
    reportPath,
    updatedAt: mtime(reportPath),
  };
}

/** Every run under `root` (breadth first, at most `maxDepth` folders down), newest first. */
export function scanWorkspace(root: string, opts: { maxDepth?: number; now?: number } = {}): Run[] {
  const maxDepth = opts.maxDepth ?? 4;
  const now = opts.now ?? Date.now() / 1000;
  const runs: Run[] = [];
  const queue: { dir: string; depth: number }[] = [{ dir: root, depth: 0 }];
  let visited = 0;
  while (queue.length && visited < MAX_DIRS) {
    const { dir, depth } = queue.shift()!;
    visited++;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    const run = files.has('progress.json')
      ? readTrainRun(dir, root, now)
      : files.has('trials.jsonl') || (files.has('run.json') && files.has('state.json'))
        ? readTuneRun(dir, root, now)
        : files.has('report.json')
          ? readBenchRun(dir, root)
          : undefined;
    if (run) runs.push(run);
    // A tune run's trials are shown in the tune view, not as separate training runs.
    if (depth >= maxDepth || run?.kind === 'tune') continue;
    for (const e of entries) {
      // Symbolic links are not followed: a link cycle or a link out of the workspace is never walked.
      if (!e.isDirectory() || e.name === 'node_modules' || e.name.startsWith('.')) continue;
      queue.push({ dir: join(dir, e.name), depth: depth + 1 });
    }
  }
  const rank = (r: Run) => (r.state === 'running' ? 0 : 1);
  return runs.sort((a, b) => rank(a) - rank(b) || b.updatedAt - a.updatedAt || a.name.localeCompare(b.name));
}
