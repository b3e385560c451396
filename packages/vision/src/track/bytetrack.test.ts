import { describe, expect, it } from 'vitest';
import type { Detection } from '@cvopt/core';
import { ByteTracker, byteTrackOptions } from './bytetrack.js';
import { IouTracker } from './iou-tracker.js';
import { BoxKalman } from './kalman.js';

const box = (cx: number, cy: number, s = 20): [number, number, number, number] => [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2];

/** Two objects crossing at 6 px per frame; both hidden (no detections) for frames 9..12 around the crossing point. */
function crossing(hideFrom = 9, hideTo = 12): Detection[][] {
  const frames: Detection[][] = [];
  for (let f = 1; f <= 20; f++) {
    const a = { box: box(40 + 6 * f, 60), score: 0.9, classId: 0 };
    const b = { box: box(200 - 6 * f, 60 + 30), score: 0.9, classId: 0 };
    frames.push(f >= hideFrom && f <= hideTo ? [] : [a, b]);
  }
  return frames;
}

describe('BoxKalman', () => {
  it('learns a constant velocity and predicts through a gap', () => {
    const kf = new BoxKalman(box(0, 0));
    for (let f = 1; f <= 30; f++) {
      kf.predict();
      kf.update(box(5 * f, 2 * f));
    }
    expect(Math.abs(kf.v[0]! - 5)).toBeLessThan(0.2);
    expect(Math.abs(kf.v[1]! - 2)).toBeLessThan(0.1);
    for (let k = 0; k < 5; k++) kf.predict();
    const [x1, y1] = kf.box();
    expect(Math.abs(x1 + 10 - 175)).toBeLessThan(1.5); // the centre moves on at 5 px per frame: 5·35
    expect(Math.abs(y1 + 10 - 70)).toBeLessThan(1);
  });
});

describe('ByteTracker', () => {
  it('keeps both ids through a 4-frame occlusion while they move (motion model), where the IoU baseline gives new ids', () => {
    const bt = new ByteTracker();
    const iouT = new IouTracker();
    const idsBefore = new Map<number, number>();
    const idsAfter = new Map<number, number>();
    const baseAfter = new Set<number>();
    crossing().forEach((dets, k) => {
      const f = k + 1;
      const out = bt.update(dets);
      const base = iouT.update(dets);
      if (f === 8) for (const d of out) idsBefore.set(Math.round(d.box[0]), d.trackId);
      if (f === 13) {
        for (const d of out) idsAfter.set(Math.round(d.box[0]), d.trackId);
        for (const d of base) baseAfter.add(d.trackId);
      }
    });
    // Object a was at x1 = 30 + 48 = 78 at frame 8 and 108 at 13; b at 142 and 112.
    expect(idsBefore.get(78)).toBe(1);
    expect(idsBefore.get(142)).toBe(2);
    expect(idsAfter.get(108)).toBe(1);
    expect(idsAfter.get(112)).toBe(2);
    expect([...baseAfter].every((id) => id > 2)).toBe(true);
  });

  it('keeps a track alive on low-score detections (second association) and does not start tracks from them', () => {
    const bt = new ByteTracker();
    const ids: number[][] = [];
    for (let f = 1; f <= 10; f++) {
      const score = f >= 4 && f <= 7 ? 0.2 : 0.9; // partly occluded: the score drops
      const dets: Detection[] = [{ box: box(50 + 3 * f, 50), score, classId: 0 }];
      if (f === 5) dets.push({ box: box(200, 200), score: 0.3, classId: 0 }); // a lone low detection
      ids.push(bt.update(dets).map((d) => d.trackId));
    }
    expect(ids.every((x) => x.length === 1 && x[0] === 1)).toBe(true);
  });

  it('confirms a new track after confirmHits frames and drops a lost one after trackBuffer frames', () => {
    const bt = new ByteTracker({ confirmHits: 3, trackBuffer: 2 });
    expect(bt.update([])).toEqual([]); // frame 1 empty: later births wait for confirmation
    const d = (x: number) => [{ box: box(x, 50), score: 0.9, classId: 0 }];
    expect(bt.update(d(50))).toHaveLength(0);
    expect(bt.update(d(51))).toHaveLength(0);
    expect(bt.update(d(52)).map((x) => x.trackId)).toEqual([1]);
    bt.update([]);
    bt.update([]);
    expect(bt.live).toBe(1);
    bt.update([]);
    expect(bt.live).toBe(0);
  });

  it('refuses options out of range with the field named', () => {
    expect(() => byteTrackOptions({ lowThresh: 0.8, highThresh: 0.5 })).toThrow(/lowThresh/);
    expect(() => byteTrackOptions({ trackBuffer: -1 })).toThrow(/trackBuffer/);
  });
});
