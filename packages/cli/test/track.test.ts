import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { runCli as run } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-track-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('cvopt dataset synth --task track and cvopt eval-track', () => {
  it('writes a video with MOT ground truth that scores perfectly against itself and worse with an id swapped', async () => {
    const out = join(tmp, 'seq');
    const synth = await run('--json', 'dataset', 'synth', '--task', 'track', '--out', out, '--frames', '30', '--objects', '4', '--size', '160x120', '--seed', '3');
    expect(synth.code).toBe(0);
    const r = JSON.parse(synth.out) as { gt: string; video: string; rows: number };
    expect(r.rows).toBe(120);
    const self = await run('--json', 'eval-track', '--gt', r.gt, '--pred', r.gt);
    expect(JSON.parse(self.out)).toMatchObject({ mota: 1, idf1: 1, idsw: 0, frag: 0, gtIds: 4 });
    // From frame 16 on, object 1 is reported under a new id: exactly one identity switch.
    const swapped = readFileSync(r.gt, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const f = l.split(',');
        if (f[1] === '1' && Number(f[0]) >= 16) f[1] = '99';
        return f.join(',');
      });
    writeFileSync(join(tmp, 'pred.txt'), `${swapped.join('\n')}\n`);
    const m = JSON.parse((await run('--json', 'eval-track', '--gt', r.gt, '--pred', join(tmp, 'pred.txt'))).out) as { idsw: number; mota: number; idf1: number };
    expect(m.idsw).toBe(1);
    expect(m.mota).toBeCloseTo(1 - 1 / 120, 12);
    expect(m.idf1).toBeCloseTo((2 * 105) / (2 * 105 + 15 + 15), 12); // ids 1↔1 cover 15 of 30 frames
    const human = await run('eval-track', '--gt', r.gt, '--pred', join(tmp, 'pred.txt'));
    expect(human.out).toMatch(/MOTA\s+MOTP\s+IDF1/);
  });

  it('names the line of a malformed MOT file', async () => {
    writeFileSync(join(tmp, 'bad.txt'), '1,1,0,0,10,10\n2,1,zero,0,10,10\n');
    const r = await run('--json', 'eval-track', '--gt', join(tmp, 'bad.txt'), '--pred', join(tmp, 'bad.txt'));
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).error).toMatchObject({ code: 'INVALID_ARGUMENT', where: { line: 2 } });
  });
});

const D = testDataDir();
describe.skipIf(!D)('cvopt track on a real video (needs the shared test data)', () => {
  it('writes the annotated video and MOT rows, which eval-track reads', async () => {
    const out = join(tmp, 'runs', 'exp');
    const r = await run('--json', 'track', join(D!, 'models/yolov8n_int8.onnx'), '--source', join(D!, 'video/bottle-detection.mp4'), '--max-frames', '6', '--save', '--save-mot', '--out', out);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out) as { runDir: string; frames: number; sources: { mot: string; tracks: number; saved: string }[] };
    expect(res.frames).toBe(6);
    expect(res.sources[0]!.tracks).toBeGreaterThan(0);
    const again = await run('--json', 'eval-track', '--gt', res.sources[0]!.mot, '--pred', res.sources[0]!.mot);
    expect(JSON.parse(again.out)).toMatchObject({ mota: 1, idf1: 1 });
    // The run folder is not overwritten: a second run goes to exp2.
    const second = await run('--json', 'predict', join(D!, 'models/yolov8n_int8.onnx'), '--source', join(D!, 'video/bottle-detection.mp4'), '--max-frames', '1', '--out', out);
    expect(JSON.parse(second.out).runDir).toBe(`${out}2`);
  });
});
