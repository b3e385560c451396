import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMot, readVideoFrames } from '@cvopt/vision';
import { synthTrack } from '../src/synth-track.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-synth-track-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('synthTrack', () => {
  it('writes a decodable video and MOT ground truth, the same for the same seed, with occlusions recorded', async () => {
    const a = await synthTrack({ out: join(tmp, 'a'), frames: 40, objects: 6, width: 160, height: 120, seed: 9, datasetEvery: 10 });
    const b = await synthTrack({ out: join(tmp, 'b'), frames: 40, objects: 6, width: 160, height: 120, seed: 9 });
    expect(readFileSync(a.gt, 'utf8')).toBe(readFileSync(b.gt, 'utf8'));
    const rows = parseMot(readFileSync(a.gt, 'utf8'));
    expect(rows).toHaveLength(240);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set([1, 2, 3, 4, 5, 6]));
    expect(rows.every((r) => r.box[0] >= 0 && r.box[2] <= 160 && r.box[1] >= 0 && r.box[3] <= 120)).toBe(true);
    // Two bars over a 160-px frame hide some objects some of the time.
    expect(rows.some((r) => r.visibility < 0.5)).toBe(true);
    expect(a.occludedRows).toBe(rows.filter((r) => r.visibility < 0.5).length);
    // Constant velocity: an object's centre moves at most maxSpeed (3 px) plus rounding per frame.
    const one = rows.filter((r) => r.id === 1);
    for (let k = 1; k < one.length; k++) expect(Math.abs(one[k]!.box[0] + one[k]!.box[2] - one[k - 1]!.box[0] - one[k - 1]!.box[2]) / 2).toBeLessThan(5);
    let frames = 0;
    for await (const f of readVideoFrames(a.video)) frames += f.image.width === 160 ? 1 : 0;
    expect(frames).toBe(40);
    // The frame dataset labels only what is at least half visible.
    expect(readdirSync(join(a.root, 'images/train'))).toHaveLength(4);
    const f1 = readFileSync(join(a.root, 'labels/train/frame_000001.txt'), 'utf8').trim().split('\n').filter(Boolean);
    expect(f1).toHaveLength(rows.filter((r) => r.frame === 1 && r.visibility >= 0.5).length);
  });

  it('refuses a folder that holds other files', async () => {
    await expect(synthTrack({ out: join(tmp, 'a', 'images') })).rejects.toThrow(/not a synthetic tracking sequence/);
  });
});
