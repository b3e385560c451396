import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { runWorker } from '../src/index.js';

/**
 * A cancelled or timed-out worker must not leave anything behind: a real Python (a stand-in `cvopt_trainer`
 * package, so no PyTorch is needed) starts a grandchild the way a DataLoader does, and both must be gone after.
 */
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-trainer-group-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PY = '/usr/bin/python3';

/** A trainer package whose every command starts a grandchild, writes both pids, reports progress and never ends. */
function fakeTrainer(ignoreTerm: boolean): string {
  const dir = mkdtempSync(join(tmp, 'trainer-'));
  mkdirSync(join(dir, 'cvopt_trainer'));
  writeFileSync(join(dir, 'cvopt_trainer', '__init__.py'), '');
  writeFileSync(
    join(dir, 'cvopt_trainer', '__main__.py'),
    [
      'import json, os, signal, subprocess, sys, time',
      ...(ignoreTerm ? ['signal.signal(signal.SIGTERM, signal.SIG_IGN)'] : []),
      // The grandchild ignores SIGTERM too when asked, like a worker stuck in a system call.
      `child = subprocess.Popen([sys.executable, '-c', 'import signal, time\\n${ignoreTerm ? 'signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n' : ''}time.sleep(120)'])`,
      "open(os.environ['PID_FILE'], 'w').write(f'{os.getpid()} {child.pid}')",
      "print(json.dumps({'type': 'progress', 'stage': 'train', 'step': 0, 'total': 1}), flush=True)",
      'while True: time.sleep(0.05)',
    ].join('\n') + '\n',
  );
  return dir;
}

/** Alive and not a zombie (a killed child may linger as one until its new parent reaps it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = `/proc/${pid}/stat`;
  return !existsSync(stat) || !/^\d+ \(.*\) Z/.test(readFileSync(stat, 'utf8'));
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

async function pidsOf(file: string): Promise<number[]> {
  expect(await until(() => existsSync(file) && readFileSync(file, 'utf8').includes(' '), 15_000)).toBe(true);
  return readFileSync(file, 'utf8').trim().split(' ').map(Number);
}

describe.skipIf(!existsSync(PY))('runWorker stops the whole process group', () => {
  it('on cancel: the Python worker and the process it started are both gone', async () => {
    const pidFile = join(tmp, 'cancel.pids');
    const ac = new AbortController();
    const run = runWorker('train', {}, { python: { executable: PY, trainerDir: fakeTrainer(false) }, env: { PID_FILE: pidFile }, signal: ac.signal }).catch((e: unknown) => e);
    const pids = await pidsOf(pidFile);
    expect(pids.every(alive)).toBe(true);
    ac.abort();
    const e = await run;
    expect(e).toBeInstanceOf(CvoptError);
    expect((e as CvoptError).code).toBe('CANCELLED');
    expect(await until(() => !pids.some(alive), 5000)).toBe(true);
  });

  it('on timeout, with SIGTERM ignored by both: SIGKILL to the group after the grace time', async () => {
    const pidFile = join(tmp, 'timeout.pids');
    const started = Date.now();
    const e = await runWorker('train', {}, { python: { executable: PY, trainerDir: fakeTrainer(true) }, env: { PID_FILE: pidFile }, timeoutS: 2, graceMs: 300 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CvoptError);
    expect((e as CvoptError).code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    expect(pids.length).toBe(2);
    expect(await until(() => !pids.some(alive), 5000)).toBe(true);
  });
});
