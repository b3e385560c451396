import {
  ENGINE_IDS,
  type BenchmarkReport,
  type Candidate,
  type Constraints,
  type Decision,
  type EngineId,
  type EngineResult,
  type Margin,
} from '@cvopt/core';

/**
 * Deterministic engine selection. Reads only the report and the constraints.
 *
 * Rule: among candidates that ran (status ok) and meet every constraint, the lowest p95 single-image latency wins.
 * p95 values are compared at 0.01 ms resolution; ties go to (1) higher primary accuracy (mAP50, or top-1),
 * (2) lower peak RSS, (3) the fixed engine order of ENGINE_IDS (TensorRT INT8 first … PyTorch last).
 * The order of engines in the report never matters.
 */
export const SELECTION_RULE =
  'fastest valid candidate by p95 latency (0.01 ms resolution); ties: higher accuracy, then lower peak RSS, then engine order ' +
  ENGINE_IDS.join(' > ');

type Ok = Extract<EngineResult, { status: 'ok' }>;

function primaryAccuracy(r: Ok, task: 'detect' | 'classify'): number | undefined {
  const a = r.figures.accuracy;
  return task === 'classify' ? a?.top1 : a?.map50;
}

/** The accuracy the drop is measured from: the report's baseline engine, else ort-cpu, else pytorch. */
function baselineAccuracy(report: BenchmarkReport): { engine: EngineId; value: number } | undefined {
  const order: EngineId[] = [...(report.baseline ? [report.baseline] : []), 'ort-cpu', 'pytorch'];
  for (const id of order) {
    const r = report.engines.find((e): e is Ok => e.engine === id && e.status === 'ok');
    const v = r ? primaryAccuracy(r, report.model.task) : undefined;
    if (v !== undefined) return { engine: id, value: v };
  }
  return undefined;
}

function margin(constraint: string, limit: number, value: number | undefined, kind: 'min' | 'max'): Margin {
  if (value === undefined) return { constraint, limit, value: null, margin: null, ok: false };
  const m = kind === 'max' ? limit - value : value - limit;
  return { constraint, limit, value, margin: round(m, 6), ok: m >= 0 };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function marginsFor(r: Ok, c: Constraints, task: 'detect' | 'classify', base: { value: number } | undefined): Margin[] {
  const f = r.figures;
  const out: Margin[] = [];
  if (c.minMap50 !== undefined) out.push(margin('minMap50', c.minMap50, f.accuracy?.map50, 'min'));
  if (c.minMap5095 !== undefined) out.push(margin('minMap5095', c.minMap5095, f.accuracy?.map5095, 'min'));
  if (c.minTop1 !== undefined) out.push(margin('minTop1', c.minTop1, f.accuracy?.top1, 'min'));
  if (c.maxMapDrop !== undefined) {
    const acc = primaryAccuracy(r, task);
    const drop = acc !== undefined && base ? base.value - acc : undefined;
    out.push(margin('maxMapDrop', c.maxMapDrop, drop === undefined ? undefined : round(drop, 9), 'max'));
  }
  if (c.maxP95Ms !== undefined) out.push(margin('maxP95Ms', c.maxP95Ms, f.latencyMs.p95, 'max'));
  if (c.maxRssMb !== undefined) out.push(margin('maxRssMb', c.maxRssMb, f.resources.peakRssMb, 'max'));
  // A CPU engine uses no GPU memory: 0 MB, not "unmeasured".
  if (c.maxGpuMemMb !== undefined) out.push(margin('maxGpuMemMb', c.maxGpuMemMb, f.resources.gpuMemMb ?? 0, 'max'));
  return out;
}

function describeRejection(m: Margin): string {
  if (m.value === null) return `${m.constraint}: not measured`;
  return `${m.constraint}: ${fmt(m.value)} vs limit ${fmt(m.limit)} (short by ${fmt(Math.abs(m.margin ?? 0))})`;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) >= 10 ? 2 : 4);
}

/** Total normalised violation, used only to name the nearest candidate when none is valid. */
function violation(ms: Margin[]): number {
  let v = 0;
  for (const m of ms) {
    if (m.ok) continue;
    v += m.margin === null ? Number.POSITIVE_INFINITY : Math.abs(m.margin) / Math.max(Math.abs(m.limit), 1e-9);
  }
  return v;
}

export function selectEngine(report: BenchmarkReport, constraints: Constraints): Decision {
  const task = report.model.task;
  const base = baselineAccuracy(report);
  const allowed = constraints.allowedEngines ? new Set(constraints.allowedEngines) : undefined;
  const engineRank = (id: EngineId) => ENGINE_IDS.indexOf(id);

  // Canonical order first, so the output never depends on the report's order.
  const results = [...report.engines].sort((a, b) => engineRank(a.engine) - engineRank(b.engine));
  const candidates: (Candidate & { _acc?: number; _rss?: number; _viol: number })[] = results.map((r) => {
    if (r.status === 'unavailable') {
      return { engine: r.engine, status: r.status, valid: false, p95Ms: null, margins: [], rejectedBy: [`unavailable: ${r.reason}`], _viol: Infinity };
    }
    if (r.status === 'failed') {
      return { engine: r.engine, status: r.status, valid: false, p95Ms: null, margins: [], rejectedBy: [`failed: ${r.error.code}: ${r.error.message}`], _viol: Infinity };
    }
    const margins = marginsFor(r, constraints, task, base);
    const rejectedBy = margins.filter((m) => !m.ok).map(describeRejection);
    if (allowed && !allowed.has(r.engine)) rejectedBy.unshift('not in allowedEngines');
    const c: Candidate & { _acc?: number; _rss?: number; _viol: number } = {
      engine: r.engine,
      status: 'ok',
      valid: rejectedBy.length === 0,
      p95Ms: r.figures.latencyMs.p95,
      margins,
      rejectedBy,
      _rss: r.figures.resources.peakRssMb,
      _viol: allowed && !allowed.has(r.engine) ? Infinity : violation(margins),
    };
    const acc = primaryAccuracy(r, task);
    if (acc !== undefined) c._acc = acc;
    return c;
  });

  const valid = candidates.filter((c) => c.valid);
  valid.sort((a, b) => {
    const pa = Math.round((a.p95Ms ?? Infinity) * 100);
    const pb = Math.round((b.p95Ms ?? Infinity) * 100);
    if (pa !== pb) return pa - pb;
    const aa = a._acc ?? -Infinity;
    const ab = b._acc ?? -Infinity;
    if (aa !== ab) return ab - aa;
    const ra = a._rss ?? Infinity;
    const rb = b._rss ?? Infinity;
    if (ra !== rb) return ra - rb;
    return engineRank(a.engine) - engineRank(b.engine);
  });

  const winner = valid[0];
  let reason: string;
  if (winner) {
    const runnerUp = valid[1];
    reason =
      `${winner.engine} is the fastest engine meeting every constraint (p95 ${fmt(winner.p95Ms ?? 0)} ms)` +
      (runnerUp ? `; next: ${runnerUp.engine} (p95 ${fmt(runnerUp.p95Ms ?? 0)} ms)` : '; no other engine qualified');
    if (runnerUp && Math.round((winner.p95Ms ?? 0) * 100) === Math.round((runnerUp.p95Ms ?? 0) * 100)) {
      reason += ' — tied on p95, decided by the tie-break order';
    }
  } else {
    const ran = candidates.filter((c) => c.status === 'ok');
    if (ran.length === 0) reason = 'no engine produced measurements: every engine was unavailable or failed';
    else {
      const nearest = [...ran].sort((a, b) => a._viol - b._viol || engineRank(a.engine) - engineRank(b.engine))[0]!;
      reason = `no engine meets the constraints; the nearest, ${nearest.engine}, was ruled out by ${nearest.rejectedBy.join('; ')}`;
    }
  }

  return {
    schemaVersion: 1,
    winner: winner ? winner.engine : null,
    rule: SELECTION_RULE,
    reason,
    constraints,
    candidates: candidates.map(({ _acc: _a, _rss: _r, _viol: _v, ...c }) => c),
  };
}
