import { CvoptError, formatError, serializeError, toCvoptError } from '@cvopt/core';

/** Global flags every command shares. */
export interface CommonOptions {
  json?: boolean;
  /** Aborted on Ctrl-C: pass it to every long-running call. */
  signal?: AbortSignal;
}

/**
 * Print a command's result: the JSON document with --json, otherwise the human rendering.
 * stdout carries results only; progress and logs go to stderr.
 */
export function emit<T>(opts: CommonOptions, result: T, human: (r: T) => string): void {
  if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${human(result)}\n`);
}

/** Report an error in the chosen format and return its exit code. */
export function reportError(opts: CommonOptions, e: unknown): number {
  const err: CvoptError = toCvoptError(e);
  if (opts.json) process.stdout.write(`${JSON.stringify({ error: serializeError(err) }, null, 2)}\n`);
  else {
    process.stderr.write(`error: ${formatError(err)}\n`);
    if (err.code === 'INTERNAL' && err.stack && process.env.CVOPT_DEBUG) process.stderr.write(`${err.stack}\n`);
  }
  return err.exitCode;
}

/** A fixed-width text table; numbers are right-aligned. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : typeof c === 'number' ? fmtNum(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined));
  const line = (r: string[]) =>
    r.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  const a = Math.abs(n);
  return a >= 100 ? n.toFixed(1) : a >= 1 ? n.toFixed(2) : n.toFixed(4);
}

/** Progress on stderr: a redrawn bar on a terminal, plain lines otherwise (CI logs). */
export class ProgressLine {
  private lastPrinted = -1;
  constructor(
    private readonly label: string,
    private readonly quiet = false,
  ) {}

  update(step: number, total: number, message = ''): void {
    if (this.quiet) return;
    const pct = total > 0 ? Math.min(100, Math.round((step / total) * 100)) : 0;
    if (process.stderr.isTTY) {
      const width = 24;
      const filled = Math.round((pct / 100) * width);
      process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${message}`.padEnd(100));
    } else if (pct >= this.lastPrinted + 10 || step === total) {
      this.lastPrinted = pct;
      process.stderr.write(`${this.label} ${step}/${total} ${message}\n`);
    }
  }

  done(message = ''): void {
    if (this.quiet) return;
    if (process.stderr.isTTY) process.stderr.write(`\r${`${this.label} done ${message}`.padEnd(100)}\n`);
    else process.stderr.write(`${this.label} done ${message}\n`);
  }
}

export { CvoptError };
