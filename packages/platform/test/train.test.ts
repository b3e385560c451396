import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProgressMessage } from '@cvopt/core';
import { synthDetection } from '@cvopt/datasets';
import { readHypFile, trainModel } from '../src/index.js';

/** The Python worker this process started, found by parentage so the test kills only its own child. */
function workerPid(): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-P', String(process.pid), '-f', 'cvopt_trainer train'], { encoding: 'utf8' });
    const pid = Number(out.trim().split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

// Each of these starts PyTorch in a worker (seconds on an idle machine, minutes on a loaded one).
const WORKER_TEST_TIMEOUT_MS = 300_000;

describe('trainModel (real PyTorch worker)', () => {
  let dir: string;
  let dataYaml: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cvopt-train-'));
    const s = await synthDetection({ out: join(dir, 'data'), images: 20, imgsz: 64, classes: 2, seed: 3 });
    dataYaml = s.dataYaml;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resumes from the last epoch after the worker is SIGKILLed mid-training, and completes', { timeout: WORKER_TEST_TIMEOUT_MS }, async () => {
    const out = join(dir, 'run');
    const opts = { model: 'yolov8p', data: dataYaml, out, epochs: 3, imgsz: 64, batch: 4, workers: 0, seed: 1 };
    // Assertions stay outside the callback: a throw inside it would surface as an unhandled error, not a failure.
    let lastPtAtKill = false;
    let killedPid: number | undefined;
    const first = trainModel(opts, {
      onProgress: (m) => {
        // last.pt is written (atomically) before the epoch message: kill the worker as soon as epoch 1 is saved
        if (m.stage === 'epoch' && m.step === 1 && killedPid === undefined) {
          lastPtAtKill = existsSync(join(out, 'last.pt'));
          killedPid = workerPid();
          if (killedPid !== undefined) process.kill(killedPid, 'SIGKILL');
        }
      },
    });
    await expect(first).rejects.toMatchObject({ code: 'WORKER_FAILED', message: expect.stringContaining('SIGKILL') });
    expect(killedPid).toBeDefined();
    expect(lastPtAtKill).toBe(true);

    const epochs: ProgressMessage[] = [];
    const trainSteps: string[] = [];
    const logs: string[] = [];
    const r = await trainModel(
      { out, resume: true, vramMb: 512 },
      {
        onLog: (line) => logs.push(line),
        onProgress: (m) => {
          if (m.stage === 'epoch') epochs.push(m);
          if (m.stage === 'train' && m.message) trainSteps.push(m.message);
        },
      },
    );
    // continues with epoch 2 of 3 (not from scratch), then finishes
    expect(trainSteps[0]).toMatch(/^epoch 2\/3 /);
    expect(epochs.map((m) => m.step)).toEqual([2, 3]);
    expect(r.epochs).toBe(3);
    expect(r.task).toBe('detect');
    expect(r.names).toEqual(['circle', 'square']);
    expect(existsSync(r.last)).toBe(true);
    // the GPU memory budget reaches the worker, which says it has nothing to cap on the CPU
    expect(logs.join('\n')).toContain('vram_limit_mb 512 ignored: training on the CPU');
  });

  it('points at the line of an unknown hyperparameter in --hyp', { timeout: WORKER_TEST_TIMEOUT_MS }, async () => {
    const hyp = join(dir, 'hyp.yaml');
    writeFileSync(hyp, 'lr0: 0.02\n# a comment\nlearning_rate: 0.1\n');
    await expect(
      trainModel({ model: 'yolov8p', data: dataYaml, out: join(dir, 'bad'), epochs: 1, imgsz: 64, hypFile: hyp }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('learning_rate'), where: { file: hyp, line: 3, field: 'learning_rate' } });
  });

  it('rejects bad options before starting the worker', async () => {
    await expect(trainModel({ model: 'yolov8p', data: join(dir, 'missing'), out: join(dir, 'x') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(trainModel({ model: 'yolov8p', data: dataYaml, out: join(dir, 'x'), imgsz: 100 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('imgsz'),
    });
    await expect(trainModel({ out: join(dir, 'x') })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('model and data') });
  });
});

describe('readHypFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cvopt-hyp-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads YAML and JSON with the line of each key', () => {
    writeFileSync(join(dir, 'h.yaml'), 'lr0: 0.01\nmosaic: 0.5\noptimizer: SGD\ncos_lr: true\n');
    expect(readHypFile(join(dir, 'h.yaml'))).toMatchObject({ values: { lr0: 0.01, mosaic: 0.5, optimizer: 'SGD', cos_lr: true }, lines: { lr0: 1, cos_lr: 4 } });
    writeFileSync(join(dir, 'h.json'), '{\n  "lr0": 0.01,\n  "fliplr": 0\n}\n');
    expect(readHypFile(join(dir, 'h.json'))).toMatchObject({ values: { lr0: 0.01, fliplr: 0 }, lines: { fliplr: 3 } });
  });

  it('says where a file is malformed', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'lr0: 0.01\nmosaic: [1, 2\n');
    expect(() => readHypFile(join(dir, 'bad.yaml'))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    writeFileSync(join(dir, 'nested.yaml'), 'lr0: 0.01\naug:\n  mosaic: 1\n');
    expect(() => readHypFile(join(dir, 'nested.yaml'))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', where: expect.objectContaining({ line: 2, field: 'aug' }) }));
    writeFileSync(join(dir, 'list.yaml'), '- 1\n- 2\n');
    expect(() => readHypFile(join(dir, 'list.yaml'))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => readHypFile(join(dir, 'none.yaml'))).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });
});
