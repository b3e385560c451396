import { niceTicks } from '@cvopt/core';

/**
 * Text building blocks for the dashboard: every widget returns plain lines (ANSI styling allowed), and `fit`
 * cuts or pads a line to a width counted in visible characters, so layout never depends on escape codes.
 */

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g; // eslint-disable-line no-control-regex

export const style = {
  bold: (s: string) => `\x1b[1m${s}\x1b[22m`,
  dim: (s: string) => `\x1b[2m${s}\x1b[22m`,
  inverse: (s: string) => `\x1b[7m${s}\x1b[27m`,
  red: (s: string) => `\x1b[31m${s}\x1b[39m`,
  green: (s: string) => `\x1b[32m${s}\x1b[39m`,
  yellow: (s: string) => `\x1b[33m${s}\x1b[39m`,
  cyan: (s: string) => `\x1b[36m${s}\x1b[39m`,
};

/** The same styles as no-ops: plain output (not a TTY, NO_COLOR) and tests. */
export const plainStyle: typeof style = {
  bold: (s) => s,
  dim: (s) => s,
  inverse: (s) => s,
  red: (s) => s,
  green: (s) => s,
  yellow: (s) => s,
  cyan: (s) => s,
};

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

export function visibleWidth(s: string): number {
  return [...stripAnsi(s)].length;
}

/** Cut a line to `width` visible characters (keeping escape codes intact) and pad it with spaces. */
export function fit(line: string, width: number): string {
  if (width <= 0) return '';
  let out = '';
  let seen = 0;
  let i = 0;
  while (i < line.length && seen < width) {
    if (line[i] === '\x1b') {
      const m = /^\x1b\[[0-9;?]*[A-Za-z]/.exec(line.slice(i)); // eslint-disable-line no-control-regex
      if (m) {
        out += m[0];
        i += m[0].length;
        continue;
      }
    }
    const cp = line.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    out += ch;
    i += ch.length;
    seen++;
  }
  // Close any style left open by the cut.
  if (out.includes('\x1b[')) out += '\x1b[0m';
  return seen < width ? out + ' '.repeat(width - seen) : out;
}

/** A progress bar of `width` cells for a fraction in [0, 1]. */
export function bar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * width);
  return `${'█'.repeat(full)}${'░'.repeat(Math.max(0, width - full))}`;
}

/** Numbers as a person reads them: 3 significant figures, integers as they are, '-' for missing. */
export function num(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  return Number(v.toPrecision(digits)).toString();
}

/** A column table: headers, rows; numeric columns right-aligned; `selected` row marked. */
export function table(headers: string[], rows: string[][], opts: { selected?: number; numeric?: boolean[]; s?: typeof style } = {}): string[] {
  const s = opts.s ?? style;
  const widths = headers.map((h, i) => Math.max(visibleWidth(h), ...rows.map((r) => visibleWidth(r[i] ?? ''))));
  const cell = (c: string, i: number) => {
    const pad = (widths[i] ?? 0) - visibleWidth(c);
    return opts.numeric?.[i] ? ' '.repeat(pad) + c : c + ' '.repeat(pad);
  };
  const line = (r: string[]) => r.map(cell).join('  ');
  return [
    s.bold(line(headers)),
    ...rows.map((r, i) => (i === opts.selected ? s.inverse(line(r)) : line(r))),
  ];
}

export interface Point {
  x: number;
  y: number;
  mark: string;
}

/**
 * A character-cell scatter plot with round ticks on both axes; honest axes: the y axis of a fraction starts at 0
 * when asked (`yFromZero`). Later points overwrite earlier ones in a cell, so pass the important ones last.
 */
export function scatter(points: Point[], o: { width: number; height: number; xLabel: string; yLabel: string; yFromZero?: boolean }): string[] {
  const w = Math.max(10, o.width - 8);
  const h = Math.max(4, o.height - 3);
  if (!points.length) return [`(no points yet) ${o.yLabel} vs ${o.xLabel}`];
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs));
  const yt = niceTicks(o.yFromZero ? 0 : Math.min(...ys), Math.max(...ys), 3);
  const [x0, x1] = [xt[0] ?? 0, xt[xt.length - 1] ?? 1];
  const [y0, y1] = [yt[0] ?? 0, yt[yt.length - 1] ?? 1];
  const grid: string[][] = Array.from({ length: h }, () => Array.from({ length: w }, () => ' '));
  const col = (x: number) => Math.min(w - 1, Math.max(0, Math.round(((x - x0) / (x1 - x0 || 1)) * (w - 1))));
  const row = (y: number) => Math.min(h - 1, Math.max(0, h - 1 - Math.round(((y - y0) / (y1 - y0 || 1)) * (h - 1))));
  for (const p of points) grid[row(p.y)]![col(p.x)] = p.mark;
  const yLabels = new Map(yt.map((t) => [row(t), num(t)]));
  const lines = grid.map((cells, r) => `${(yLabels.get(r) ?? '').padStart(6)} ┤${cells.join('')}`);
  const axis = Array.from({ length: w }, () => '─');
  const labels = Array.from({ length: w + 8 }, () => ' ');
  for (const t of xt) {
    const c = col(t);
    axis[c] = '┬';
    const text = num(t);
    // A label that would run past the right edge ends at it instead.
    const start = Math.min(c + 8, labels.length - text.length);
    for (let k = 0; k < text.length; k++) labels[start + k] = text[k]!;
  }
  return [`${o.yLabel}`, ...lines, `${' '.repeat(7)}└${axis.join('')}`, `${labels.join('').trimEnd()}  ${o.xLabel}`];
}

/** A one-line sparkline of a series. */
export { niceTicks };

export function sparkline(values: number[], width: number): string {
  const ticks = '▁▂▃▄▅▆▇█';
  const v = values.slice(-width).filter(Number.isFinite);
  if (!v.length) return '';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return v.map((x) => ticks[hi > lo ? Math.round(((x - lo) / (hi - lo)) * 7) : 3]).join('');
}
