import { CvoptError, type Detection } from '@cvopt/core';
import { iou } from '../boxes.js';
import type { Tracker } from './bytetrack.js';

export interface IouTrackerOptions {
  /** Detections under this score are ignored (default 0.5, ByteTrack's high threshold). */
  minScore: number;
  /** Least IoU between a track's last box and a detection (default 0.3). */
  minIou: number;
  /** Frames an unmatched track is kept at its last box (default 30, ByteTrack's buffer). */
  maxAge: number;
}

export const DEFAULT_IOU_TRACKER: IouTrackerOptions = { minScore: 0.5, minIou: 0.3, maxAge: 30 };

/**
 * The baseline the tracker is measured against: greedy IoU matching of each frame's detections to the tracks' last
 * boxes (highest IoU first), no motion model, no second association for low scores, every track reported from
 * its first frame.
 */
export class IouTracker implements Tracker {
  private readonly o: IouTrackerOptions;
  private tracks: { id: number; box: readonly number[]; lastFrame: number }[] = [];
  private frame = 0;
  private nextId = 1;

  constructor(opts: Partial<IouTrackerOptions> = {}) {
    this.o = { ...DEFAULT_IOU_TRACKER, ...opts };
    if (!(this.o.minIou >= 0 && this.o.minIou <= 1)) throw new CvoptError('INVALID_ARGUMENT', `minIou must be in [0, 1], got ${this.o.minIou}`, { where: { field: 'minIou' } });
  }

  update<D extends Detection>(dets: readonly D[]): (D & { trackId: number })[] {
    this.frame++;
    const kept = dets.filter((d) => d.score >= this.o.minScore);
    const pairs: [number, number, number][] = [];
    this.tracks.forEach((t, ti) =>
      kept.forEach((d, di) => {
        const ov = iou(t.box, d.box);
        if (ov >= this.o.minIou) pairs.push([ov, ti, di]);
      }),
    );
    pairs.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
    const usedT = new Set<number>();
    const usedD = new Set<number>();
    const out: (D & { trackId: number })[] = [];
    for (const [, ti, di] of pairs) {
      if (usedT.has(ti) || usedD.has(di)) continue;
      usedT.add(ti);
      usedD.add(di);
      const t = this.tracks[ti]!;
      t.box = kept[di]!.box;
      t.lastFrame = this.frame;
      out.push({ ...kept[di]!, trackId: t.id });
    }
    kept.forEach((d, di) => {
      if (usedD.has(di)) return;
      const t = { id: this.nextId++, box: d.box, lastFrame: this.frame };
      this.tracks.push(t);
      out.push({ ...d, trackId: t.id });
    });
    this.tracks = this.tracks.filter((t) => this.frame - t.lastFrame <= this.o.maxAge);
    return out;
  }
}
