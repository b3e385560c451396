import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import {
  CvoptError,
  WorkerMessageSchema,
  type ErrorCode,
  ERROR_CATALOGUE,
  type MetricMessage,
  type ProgressMessage,
  type WorkerCommand,
  spawnProcessGroup,
} from '@cvopt/core';
import { findPython, trainerDir } from './python.js';

export interface RunWorkerOptions {
  onProgress?: (m: ProgressMessage) => void;
  onMetric?: (m: MetricMessage) => void;
  /** Human log lines from the worker's stderr. */
  onLog?: (line: string) => void;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Seconds before the worker is stopped (TIMEOUT); default none. */
  timeoutS?: number;
  /** On cancel or timeout, ms between SIGTERM and SIGKILL to the worker's process group (default 2000). */
  graceMs?: number;
  /**
   * The Python to run and the folder holding cvopt_trainer, when the caller already found them (a benchmark child
   * process is handed the parent's); default findPython() and trainerDir().
   */
  python?: { executable: string; trainerDir: string };
}

/**
 * Run `python3 -m cvopt_trainer <command> --json-args <file>` and resolve with its `result` data.
 * The worker's `error` message becomes a CvoptError with the same code; a worker that dies without either
 * becomes WORKER_FAILED with the tail of its stderr.
 */
export async function runWorker(
  command: WorkerCommand,
  args: Record<string, unknown>,
  opts: RunWorkerOptions = {},
): Promise<Record<string, unknown>> {
  const py = opts.python ? { executable: opts.python.executable, torch: 'given' as string | undefined, error: undefined as string | undefined } : findPython();
  if (!py.torch) {
    throw new CvoptError('DEPENDENCY_MISSING', `PyTorch is not importable from ${py.executable}: ${py.error ?? 'unknown reason'}`, {
      hint: 'run `npm run setup` (installs python3-torch from Debian) or set CVOPT_PYTHON to a Python with torch',
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-worker-'));
  const argsFile = join(dir, 'args.json');
  writeFileSync(argsFile, JSON.stringify(args));
  // Its own process group: a cancel or a timeout stops Python and everything it started (DataLoader workers, …).
  const proc = spawnProcessGroup(py.executable, ['-m', 'cvopt_trainer', command, '--json-args', argsFile], {
    cwd: opts.python?.trainerDir ?? trainerDir(),
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : {}),
  });
  const child = proc.child as ChildProcessWithoutNullStreams;

  let result: Record<string, unknown> | undefined;
  let workerError: CvoptError | undefined;
  const stderrTail: string[] = [];
  let timedOut = false;
  const timer = opts.timeoutS
    ? setTimeout(() => {
        timedOut = true;
        proc.stop();
      }, opts.timeoutS * 1000)
    : undefined;

  const out = createInterface({ input: child.stdout });
  out.on('line', (line) => {
    if (!line.trim()) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      opts.onLog?.(line);
      return;
    }
    const msg = WorkerMessageSchema.safeParse(parsed);
    if (!msg.success) {
      opts.onLog?.(`worker sent an invalid protocol message: ${line.slice(0, 200)}`);
      return;
    }
    const m = msg.data;
    if (m.type === 'progress') opts.onProgress?.(m);
    else if (m.type === 'metric') opts.onMetric?.(m);
    else if (m.type === 'result') result = m.data;
    else {
      const code: ErrorCode = m.code in ERROR_CATALOGUE ? (m.code as ErrorCode) : 'WORKER_FAILED';
      const errOpts: { hint?: string; where?: { file?: string; line?: number; field?: string } } = {};
      if (m.hint) errOpts.hint = m.hint;
      if (m.where) errOpts.where = m.where;
      workerError = new CvoptError(code, m.message, errOpts);
    }
  });
  const err = createInterface({ input: child.stderr });
  err.on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 40) stderrTail.shift();
    opts.onLog?.(line);
  });

  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res, rej) => {
    proc.exited.catch(() => undefined); // the same failure arrives as 'error' below
    child.on('error', (e) =>
      rej(new CvoptError('DEPENDENCY_MISSING', `cannot start the Python worker ${py.executable}: ${e.message}`, { hint: 'set CVOPT_PYTHON to a Python with torch, or run `cvopt doctor`', cause: e })),
    );
    child.on('close', (c, s) => res([c, s]));
  }).finally(() => {
    if (timer) clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  });

  if (opts.signal?.aborted) throw new CvoptError('CANCELLED', `worker ${command} was cancelled`);
  if (timedOut) {
    throw new CvoptError('DEADLINE_EXCEEDED', `python worker "${command}" did not finish within ${opts.timeoutS} s and was stopped`, {
      details: { stderr: stderrTail.join('\n') },
      hint: 'raise the timeout, or make the job smaller',
    });
  }
  if (workerError) throw workerError;
  if (code === 0 && result) return result;
  throw new CvoptError(
    'WORKER_FAILED',
    `python worker "${command}" exited with ${signal ? `signal ${signal}` : `code ${code}`}${code === 0 ? ' without a result' : ''}`,
    { details: { stderr: stderrTail.join('\n') }, hint: stderrTail.slice(-5).join('\n') || undefined },
  );
}
