import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWith, type JobContext, type JobHandler, type JobLogLevel, type JobProgress } from '@cvopt/core';

export interface RunLocalOptions {
  onProgress?: (p: JobProgress) => void;
  onLog?: (level: JobLogLevel, message: string) => void;
  signal?: AbortSignal;
  /** Keep the job's scratch folder (default: removed when the job ends). */
  keepWorkdir?: boolean;
}

/**
 * Run a handler in this process, as the CLI's embedded mode does: validate the payload against the handler's schema
 * (a bad one is INVALID_ARGUMENT naming the field), give it a JobContext with a fresh scratch folder, and check the
 * result against its schema. The job system runs the same handler from a queue with its own context.
 */
export async function runLocal<P, R>(handler: JobHandler<P, R>, payload: unknown, o: RunLocalOptions = {}): Promise<R> {
  const parsed = parseWith(handler.payload, payload, { what: `${handler.kind} options`, code: 'INVALID_ARGUMENT' });
  const workdir = mkdtempSync(join(tmpdir(), `cvopt-${handler.kind}-`));
  const ctx: JobContext = {
    progress: (p) => o.onProgress?.(p),
    log: (level, message) => o.onLog?.(level, message),
    signal: o.signal ?? new AbortController().signal,
    workdir,
  };
  try {
    const result = await handler.run(parsed, ctx);
    return parseWith(handler.result, result, { what: `${handler.kind} result`, code: 'INTERNAL' });
  } finally {
    if (!o.keepWorkdir) rmSync(workdir, { recursive: true, force: true });
  }
}
