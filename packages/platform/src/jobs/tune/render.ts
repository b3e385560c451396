import { niceTicks, tickLabel } from '@cvopt/core';
import type { ParamValue } from '@cvopt/optimizer';
import type { TrialRecord } from './types.js';

/** The human-facing files of a tune run: best_hyp.yaml, trials.csv and the progress chart. */

export function hypYaml(params: Record<string, ParamValue>, header: string[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [k, v] of Object.entries(params)) {
    if (k === 'imgsz') continue;
    lines.push(`${k}: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

const CSV_FIXED = ['id', 'generation', 'status', 'default', 'fitness', 'map50', 'map5095', 'p95_ms', 'size_mb', 'latency_penalty', 'violation', 'duration_s', 'error'];

export function trialsCsv(records: readonly TrialRecord[], paramNames: readonly string[]): string {
  const head = [...CSV_FIXED, ...paramNames];
  const rows = records.map((r) => [
    r.id,
    r.generation,
    r.status,
    r.isDefault ? 1 : 0,
    r.fitness ?? '',
    r.metrics?.map50 ?? '',
    r.metrics?.map5095 ?? '',
    r.p95Ms ?? '',
    r.sizeMb ?? '',
    r.terms?.latencyPenalty ?? '',
    r.violations ? r.violations.reduce((s, v) => s + v, 0) : '',
    r.durationS,
    r.error ? `${r.error.code}: ${r.error.message}` : '',
    ...paramNames.map((n) => r.params[n] ?? ''),
  ]);
  return `${[head, ...rows].map((row) => row.map(csvCell).join(',')).join('\n')}\n`;
}

function csvCell(v: unknown): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Fitness per generation as a scatter (failed trials as red crosses on the axis floor) and the best so far as a
 * step line. Hand-written SVG: no dependencies, readable in any browser.
 */
export function progressSvg(records: readonly TrialRecord[], generations: number, title: string): string {
  const W = 640;
  const H = 360;
  const m = { l: 60, r: 20, t: 36, b: 44 };
  const ok = records.filter((r) => r.fitness !== null && r.fitness !== undefined);
  const fs = ok.map((r) => r.fitness as number);
  // Round ticks that cover every trial; fitness can be negative (latency penalty), so the axis follows the data.
  const ticks = niceTicks(fs.length ? fs.reduce((a, b) => Math.min(a, b)) : 0, fs.length ? fs.reduce((a, b) => Math.max(a, b)) : 1, 4);
  const lo = ticks[0] ?? 0;
  const hi = ticks[ticks.length - 1] ?? 1;
  const gx = (g: number) => m.l + ((g - 0.5) / Math.max(1, generations)) * (W - m.l - m.r);
  const fy = (f: number) => H - m.b - ((f - lo) / (hi - lo)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">generation</text>`,
    `<text x="16" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(m.t + H - m.b) / 2})">fitness</text>`,
  ];
  for (const f of ticks) {
    out.push(`<line x1="${m.l - 4}" y1="${fy(f).toFixed(1)}" x2="${W - m.r}" y2="${fy(f).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${(fy(f) + 4).toFixed(1)}" text-anchor="end">${tickLabel(f)}</text>`);
  }
  for (let g = 1; g <= generations; g++) out.push(`<text x="${gx(g).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${g}</text>`);
  // Jitter points sideways by their index within the generation, deterministically.
  const perGen = new Map<number, number>();
  for (const r of records) {
    const k = perGen.get(r.generation) ?? 0;
    perGen.set(r.generation, k + 1);
    const x = gx(r.generation) + ((k % 9) - 4) * 4;
    if (r.fitness === null || r.fitness === undefined) {
      const y = H - m.b - 6;
      out.push(`<path d="M${x - 3} ${y - 3}L${x + 3} ${y + 3}M${x - 3} ${y + 3}L${x + 3} ${y - 3}" stroke="#c0392b"><title>trial ${r.id} failed</title></path>`);
    } else {
      out.push(
        `<circle cx="${x.toFixed(1)}" cy="${fy(r.fitness).toFixed(1)}" r="3.5" fill="${r.isDefault ? '#e67e22' : '#2e86c1'}" fill-opacity="0.75"><title>trial ${r.id}: ${r.fitness.toFixed(4)}</title></circle>`,
      );
    }
  }
  let best = -Infinity;
  const pts: string[] = [];
  for (let g = 1; g <= generations; g++) {
    for (const r of ok) if (r.generation === g) best = Math.max(best, r.fitness as number);
    if (best > -Infinity) pts.push(`${gx(g).toFixed(1)},${fy(best).toFixed(1)}`);
  }
  if (pts.length) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="#27ae60" stroke-width="2"/>`);
  out.push(
    `<g transform="translate(${W - m.r - 170},${m.t + 4})"><circle cx="6" cy="0" r="3.5" fill="#2e86c1"/><text x="14" y="4">trial</text>` +
      `<circle cx="60" cy="0" r="3.5" fill="#e67e22"/><text x="68" y="4">default</text>` +
      `<line x1="120" y1="0" x2="136" y2="0" stroke="#27ae60" stroke-width="2"/><text x="140" y="4">best</text></g>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
