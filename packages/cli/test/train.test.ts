import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli as run } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-train-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Flag handling only: the worker-backed paths are tested in packages/platform (train.test.ts, export.test.ts).
describe('cvopt train / export flags', () => {
  it('train names the missing or bad flag, with a usage exit code, before starting PyTorch', async () => {
    const cases: [string[], string][] = [
      [['--model', 'yolov8n', '--data', tmp], '--out'],
      [['--data', tmp, '--out', join(tmp, 'r')], '--model'],
      [['--model', 'yolov8n', '--out', join(tmp, 'r')], '--data'],
      [['--model', 'yolov8n', '--data', tmp, '--out', join(tmp, 'r'), '--device', 'tpu'], '--device'],
      [['--model', 'yolov8n', '--data', tmp, '--out', join(tmp, 'r'), '--epochs', '0'], '--epochs'],
      [['--model', 'yolov8n', '--data', tmp, '--out', join(tmp, 'r'), '--imgsz', 'big'], '--imgsz'],
      [['--model', 'yolov8n', '--data', tmp, '--out', join(tmp, 'r'), '--vram-mb', '0'], '--vram-mb'],
    ];
    for (const [args, field] of cases) {
      const r = await run('--json', 'train', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(JSON.parse(r.out).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field } });
    }
  });

  it('train reports a missing dataset and a missing hyp file as not found', async () => {
    const noData = await run('--json', 'train', '--model', 'yolov8n', '--data', join(tmp, 'nope'), '--out', join(tmp, 'r'));
    expect(noData.code).toBe(3);
    expect(JSON.parse(noData.out).error.code).toBe('NOT_FOUND');
    const noHyp = await run('--json', 'train', '--model', 'yolov8n', '--data', tmp, '--out', join(tmp, 'r'), '--hyp', join(tmp, 'h.yaml'));
    expect(JSON.parse(noHyp.out).error).toMatchObject({ code: 'NOT_FOUND', where: { file: join(tmp, 'h.yaml') } });
  });

  it('export checks its flags before starting PyTorch', async () => {
    const badOut = await run('--json', 'export', 'yolov8n', '--out', join(tmp, 'model.pt'));
    expect(JSON.parse(badOut.out).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: 'out' } });
    const badTol = await run('--json', 'export', 'yolov8n', '--out', join(tmp, 'model.onnx'), '--tolerance', '-1');
    expect(JSON.parse(badTol.out).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { field: '--tolerance' } });
    const badSamples = await run('--json', 'export', 'yolov8n', '--out', join(tmp, 'model.onnx'), '--samples', join(tmp, 'none'));
    expect(JSON.parse(badSamples.out).error).toMatchObject({ code: 'NOT_FOUND', where: { field: 'samples' } });
  });
});
