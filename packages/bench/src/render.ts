import { niceTicks, tickLabel } from '@cvopt/core';
import type { BenchmarkReport, Decision, EngineResult } from '@cvopt/core';

/** Human renderings of a report and a decision: a terminal table, Markdown, and an SVG latency/accuracy chart. */

type Ok = Extract<EngineResult, { status: 'ok' }>;

const n = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

function accuracyOf(r: Ok, task: 'detect' | 'classify'): { label: string; value: number | undefined; delta: number | undefined } {
  const a = r.figures.accuracy;
  return task === 'classify'
    ? { label: 'top-1', value: a?.top1, delta: a?.delta?.top1 }
    : { label: 'mAP50', value: a?.map50, delta: a?.delta?.map50 };
}

const HEADERS = ['engine', 'status', 'p50 ms', 'p95 ms', 'p99 ms', 'img/s (max batch)', 'video fps seq/pipe', 'CPU %', 'RSS MB', 'GPU MB', 'acc', 'Δ acc', 'notes'];

function rows(report: BenchmarkReport, decision?: Decision): string[][] {
  return report.engines.map((r) => {
    const mark = decision?.winner === r.engine ? ' ★' : '';
    if (r.status === 'unavailable') return [r.engine, 'unavailable', '', '', '', '', '', '', '', '', '', '', r.reason];
    if (r.status === 'failed') return [r.engine, 'failed', '', '', '', '', '', '', '', '', '', '', `${r.error.code}: ${r.error.message}`];
    const f = r.figures;
    const best = f.throughput.reduce<{ batch: number; imagesPerSec: number } | undefined>((b, t) => (!b || t.imagesPerSec > b.imagesPerSec ? t : b), undefined);
    const acc = accuracyOf(r, report.model.task);
    return [
      r.engine + mark,
      'ok',
      n(f.latencyMs.p50),
      n(f.latencyMs.p95),
      n(f.latencyMs.p99),
      best ? `${n(best.imagesPerSec, 1)} (b${best.batch})` : '-',
      f.video ? `${n(f.video.sequentialFps, 1)}/${n(f.video.pipelinedFps, 1)}` : '-',
      n(f.resources.cpuPercent, 0),
      n(f.resources.peakRssMb, 0),
      f.resources.gpuMemMb === undefined ? '-' : n(f.resources.gpuMemMb, 0),
      acc.value === undefined ? '-' : `${acc.label} ${n(acc.value, 4)}`,
      acc.delta === undefined ? '-' : (acc.delta >= 0 ? '+' : '') + n(acc.delta, 4),
      f.flags.join('; '),
    ];
  });
}

export function renderTable(report: BenchmarkReport, decision?: Decision): string {
  const body = rows(report, decision);
  const used = HEADERS.map((_, i) => body.some((r) => (r[i] ?? '') !== '' && r[i] !== '-') || i < 2);
  const headers = HEADERS.filter((_, i) => used[i]);
  const cells = body.map((r) => r.filter((_, i) => used[i]));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function renderMarkdown(report: BenchmarkReport, decision?: Decision): string {
  const env = report.environment;
  const out: string[] = [];
  out.push(`# Benchmark: ${report.model.name ?? report.model.path}`);
  out.push('');
  out.push(`- created: ${report.createdAt}`);
  out.push(`- model: \`${report.model.path}\` (${report.model.task}, sha256 ${report.model.sha256.slice(0, 12)}…)`);
  if (report.dataset) out.push(`- dataset: \`${report.dataset.path}\` (${report.dataset.images} images)`);
  out.push(`- machine: ${env.cpu.model}, ${env.cpu.cores} cores, ${Math.round(env.memoryMb / 1024)} GiB RAM, ${env.gpus.length ? env.gpus.map((g) => g.name).join(', ') : 'no GPU'}`);
  const versions = Object.entries(env.versions).map(([k, v]) => `${k} ${v}`).join(', ');
  if (versions) out.push(`- versions: ${versions}`);
  out.push('');
  out.push(`| ${HEADERS.join(' | ')} |`);
  out.push(`|${HEADERS.map(() => '---').join('|')}|`);
  for (const r of rows(report, decision)) out.push(`| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  if (decision) {
    out.push('');
    out.push('## Selection');
    out.push('');
    out.push(`**Winner: ${decision.winner ?? 'none'}** — ${decision.reason}`);
    out.push('');
    out.push(`Rule: ${decision.rule}.`);
    out.push('');
    out.push('| engine | valid | p95 ms | margins | rejected by |');
    out.push('|---|---|---|---|---|');
    for (const c of decision.candidates) {
      const margins = c.margins.map((m) => `${m.constraint} ${m.margin === null ? 'n/a' : (m.margin >= 0 ? '+' : '') + m.margin}`).join(', ');
      out.push(`| ${c.engine} | ${c.valid ? 'yes' : 'no'} | ${c.p95Ms === null ? '-' : c.p95Ms.toFixed(2)} | ${margins || '-'} | ${c.rejectedBy.join('; ').replace(/\|/g, '\\|') || '-'} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Latency (p95, x) against accuracy (y) for every engine that ran, with the p95 and accuracy constraint lines
 * and the winner ringed. Hand-written SVG: no dependencies, readable in any browser or README.
 */
export function renderChart(report: BenchmarkReport, decision?: Decision): string {
  const W = 720;
  const H = 440;
  const m = { l: 70, r: 30, t: 40, b: 60 };
  const pts = report.engines
    .filter((r): r is Ok => r.status === 'ok')
    .map((r) => ({ engine: r.engine, x: r.figures.latencyMs.p95, y: accuracyOf(r, report.model.task).value }));
  const label = report.model.task === 'classify' ? 'top-1' : 'mAP50';
  const c = decision?.constraints ?? {};
  const xs = pts.map((p) => p.x).concat(c.maxP95Ms !== undefined ? [c.maxP95Ms] : []);
  const ys = pts.map((p) => p.y).filter((y): y is number => y !== undefined);
  const minAcc = report.model.task === 'classify' ? c.minTop1 : c.minMap50;
  if (minAcc !== undefined) ys.push(minAcc);
  // Honest axes with round ticks: latency from 0, accuracy from 0 (the table beside the chart has the exact deltas).
  const xTicks = niceTicks(0, xs.reduce((a, b) => Math.max(a, b), 1), 5);
  const yTicks = niceTicks(0, ys.reduce((a, b) => Math.max(a, b), 0.1), 5);
  const xMax = xTicks[xTicks.length - 1] ?? 1;
  const yMin = 0;
  const yMax = yTicks[yTicks.length - 1] ?? 1;
  const sx = (x: number) => m.l + (x / xMax) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - yMin) / Math.max(yMax - yMin, 1e-9)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(`p95 latency vs ${label} — ${report.model.name ?? report.model.path}`)}</text>`);
  // axes and ticks
  parts.push(`<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`);
  parts.push(`<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`);
  for (const xv of xTicks) parts.push(`<text x="${sx(xv)}" y="${H - m.b + 18}" text-anchor="middle">${tickLabel(xv)}</text>`);
  for (const yv of yTicks) {
    parts.push(`<text x="${m.l - 8}" y="${sy(yv) + 4}" text-anchor="end">${tickLabel(yv)}</text>`);
    parts.push(`<line x1="${m.l}" y1="${sy(yv)}" x2="${W - m.r}" y2="${sy(yv)}" stroke="#eee"/>`);
  }
  parts.push(`<text x="${(W + m.l) / 2}" y="${H - 18}" text-anchor="middle">p95 single-image latency (ms)</text>`);
  parts.push(`<text x="18" y="${(H - m.b + m.t) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(H - m.b + m.t) / 2})">${label}</text>`);
  if (c.maxP95Ms !== undefined) {
    parts.push(`<line x1="${sx(c.maxP95Ms)}" y1="${m.t}" x2="${sx(c.maxP95Ms)}" y2="${H - m.b}" stroke="#c00" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${sx(c.maxP95Ms) + 4}" y="${m.t + 12}" fill="#c00">max p95 ${c.maxP95Ms} ms</text>`);
  }
  if (minAcc !== undefined) {
    parts.push(`<line x1="${m.l}" y1="${sy(minAcc)}" x2="${W - m.r}" y2="${sy(minAcc)}" stroke="#c00" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${W - m.r - 4}" y="${sy(minAcc) - 4}" text-anchor="end" fill="#c00">min ${label} ${minAcc}</text>`);
  }
  for (const p of pts) {
    const y = p.y ?? yMin;
    const win = decision?.winner === p.engine;
    parts.push(`<circle cx="${sx(p.x)}" cy="${sy(y)}" r="5" fill="${p.y === undefined ? '#999' : '#1f77b4'}"/>`);
    if (win) parts.push(`<circle cx="${sx(p.x)}" cy="${sy(y)}" r="10" fill="none" stroke="#2ca02c" stroke-width="2.5"/>`);
    parts.push(`<text x="${sx(p.x) + 9}" y="${sy(y) - 8}">${esc(p.engine + (win ? ' (selected)' : ''))}</text>`);
  }
  const missing = report.engines.filter((r) => r.status !== 'ok').map((r) => `${r.engine}: ${r.status}`);
  if (missing.length) parts.push(`<text x="${m.l}" y="${H - 4}" fill="#666" font-size="10">${esc(`not plotted — ${missing.join(', ')}`)}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
