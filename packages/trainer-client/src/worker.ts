import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CvoptError,
  WorkerMessageSchema,
  type ErrorCode,
  ERROR_CATALOGUE,
  type MetricMessage,
  type ProgressMessage,
  type WorkerCommand,
} from '@cvopt/core';
import { findPython, trainerDir } from './python.js';

export interface RunWorkerOptions {
  onProgress?: (m: ProgressMessage) => void;
  onMetric?: (m: MetricMessage) => void;
  /** Human log lines from the worker's stderr. */
  onLog?: (line: string) => void;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Seconds before the worker is killed; default none. */
  timeoutS?: number;
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
  const child = spawn(py.executable, ['-m', 'cvopt_trainer', command, '--json-args', argsFile], {
    cwd: opts.python?.trainerDir ?? trainerDir(),
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let result: Record<string, unknown> | undefined;
  let workerError: CvoptError | undefined;
  const stderrTail: string[] = [];
  const onAbort = () => child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = opts.timeoutS ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutS * 1000) : undefined;

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
    child.on('error', (e) =>
      rej(new CvoptError('DEPENDENCY_MISSING', `cannot start the Python worker ${py.executable}: ${e.message}`, { hint: 'set CVOPT_PYTHON to a Python with torch, or run `cvopt doctor`', cause: e })),
    );
    child.on('close', (c, s) => res([c, s]));
  }).finally(() => {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    rmSync(dir, { recursive: true, force: true });
  });

  if (opts.signal?.aborted) throw new CvoptError('CANCELLED', `worker ${command} was cancelled`);
  if (workerError) throw workerError;
  if (code === 0 && result) return result;
  throw new CvoptError(
    'WORKER_FAILED',
    `python worker "${command}" exited with ${signal ? `signal ${signal}` : `code ${code}`}${code === 0 ? ' without a result' : ''}`,
    { details: { stderr: stderrTail.join('\n') }, hint: stderrTail.slice(-5).join('\n') || undefined },
  );
}
