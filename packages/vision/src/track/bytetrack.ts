import { CvoptError, type Detection } from '@cvopt/core';
import { assignSparse } from './assignment.js';

const HALF = () => 0.5 + 1e-9;
import { BoxKalman, DEFAULT_KALMAN_NOISE, type KalmanNoise } from './kalman.js';

/** A detection with the persistent id its track carries. */
export interface TrackedDetection extends Detection {
  trackId: number;
}

/** Anything that turns each frame's detections into tracked ones: ByteTrack below, and the IoU baseline. */
export interface Tracker {
  /** Each frame's detections in, the tracked ones out with their ids (and every other field a detection carries). */
  update<D extends Detection>(dets: readonly D[]): (D & { trackId: number })[];
}

export interface ByteTrackOptions {
  /** Detections at or above this score take part in the first association and may start tracks (default 0.5). */
  highThresh: number;
  /** Detections in [lowThresh, highThresh) only keep existing tracks alive, in the second association (default 0.1). */
  lowThresh: number;
  /** A high detection left unmatched starts a track only at or above this score (default 0.6). */
  newTrackThresh: number;
  /** Least IoU with a track's predicted box for a high detection to match it (default 0.2). */
  matchIou: number;
  /** Least IoU for a low detection to match (default 0.5: low scores get stricter geometry). */
  lowMatchIou: number;
  /** Least IoU for a tentative track to be matched again (default 0.3). */
  unconfirmedMatchIou: number;
  /** Consecutive matched frames before a new track is confirmed and reported (default 2; frame 1 confirms at once). */
  confirmHits: number;
  /** Frames a lost track is kept (coasting on its motion model) before it is dropped (default 30). */
  trackBuffer: number;
  /** Weigh IoU by detection score in the first association (default true). */
  fuseScore: boolean;
  /** Never match across classes (default false: class-agnostic, the class follows the latest detection). */
  classAware: boolean;
  noise: KalmanNoise;
}

export const DEFAULT_BYTETRACK: ByteTrackOptions = {
  highThresh: 0.5,
  lowThresh: 0.1,
  newTrackThresh: 0.6,
  matchIou: 0.2,
  lowMatchIou: 0.5,
  unconfirmedMatchIou: 0.3,
  confirmHits: 2,
  trackBuffer: 30,
  fuseScore: true,
  classAware: false,
  noise: DEFAULT_KALMAN_NOISE,
};

type TrackState = 'tentative' | 'tracked' | 'lost';

interface Track {
  id: number;
  kf: BoxKalman;
  state: TrackState;
  hits: number;
  lastFrame: number;
  classId: number;
}

/** Check options at the edge: every field in range, thresholds ordered. */
export function byteTrackOptions(o: Partial<ByteTrackOptions> = {}): ByteTrackOptions {
  const opts = { ...DEFAULT_BYTETRACK, ...o };
  const unit = ['highThresh', 'lowThresh', 'newTrackThresh', 'matchIou', 'lowMatchIou', 'unconfirmedMatchIou'] as const;
  for (const f of unit) {
    const v = opts[f];
    if (!Number.isFinite(v) || v < 0 || v > 1) throw new CvoptError('INVALID_ARGUMENT', `tracker ${f} must be in [0, 1], got ${v}`, { where: { field: f } });
  }
  if (opts.lowThresh > opts.highThresh) {
    throw new CvoptError('INVALID_ARGUMENT', `tracker lowThresh (${opts.lowThresh}) is above highThresh (${opts.highThresh})`, { where: { field: 'lowThresh' }, hint: 'lowThresh ≤ highThresh' });
  }
  for (const f of ['confirmHits', 'trackBuffer'] as const) {
    const v = opts[f];
    if (!Number.isInteger(v) || v < (f === 'confirmHits' ? 1 : 0)) throw new CvoptError('INVALID_ARGUMENT', `tracker ${f} must be a non-negative integer${f === 'confirmHits' ? ' ≥ 1' : ''}, got ${v}`, { where: { field: f } });
  }
  return opts;
}

/**
 * A ByteTrack-style multi-object tracker (Zhang et al., 2022): every track predicts its box with a constant-velocity
 * Kalman filter; high-score detections are matched to all live tracks first, then low-score detections to the
 * tracks still unmatched (so an object whose score drops under occlusion keeps its id), each by optimal assignment
 * on IoU cost. Unmatched tracks coast for `trackBuffer` frames before they are dropped; new tracks are reported once
 * confirmed. Ids start at 1 and are never reused.
 */
export class ByteTracker implements Tracker {
  private readonly o: ByteTrackOptions;
  private tracks: Track[] = [];
  private frame = 0;
  private nextId = 1;

  constructor(opts: Partial<ByteTrackOptions> = {}) {
    this.o = byteTrackOptions(opts);
  }

  /** Tracks alive now (tracked, tentative or coasting). */
  get live(): number {
    return this.tracks.length;
  }

  update<D extends Detection>(dets: readonly D[]): (D & { trackId: number })[] {
    const o = this.o;
    this.frame++;
    for (const t of this.tracks) t.kf.predict();
    const high: number[] = [];
    const low: number[] = [];
    dets.forEach((d, k) => {
      if (d.score >= o.highThresh) high.push(k);
      else if (d.score >= o.lowThresh) low.push(k);
    });
    const out: (D & { trackId: number })[] = [];
    const emit = (t: Track, d: D) => {
      t.kf.update(d.box);
      t.hits++;
      t.lastFrame = this.frame;
      t.classId = d.classId;
      if (t.state === 'lost') t.state = 'tracked';
      if (t.state === 'tentative' && t.hits >= o.confirmHits) t.state = 'tracked';
      if (t.state === 'tracked') out.push({ ...d, trackId: t.id });
    };

    // 1. High detections against confirmed tracks, lost ones included (re-identification after a gap).
    const confirmed = this.tracks.filter((t) => t.state !== 'tentative');
    const tentative = this.tracks.filter((t) => t.state === 'tentative');
    const first = this.match(confirmed, high, dets, o.matchIou, o.fuseScore);
    for (const [ti, di] of first.pairs) emit(confirmed[ti]!, dets[high[di]!]!);

    // 2. Low detections against the tracks that were being tracked last frame and are still unmatched.
    const rest = first.unmatchedRows.map((i) => confirmed[i]!).filter((t) => t.state === 'tracked');
    const second = this.match(rest, low, dets, o.lowMatchIou, false);
    for (const [ti, di] of second.pairs) emit(rest[ti]!, dets[low[di]!]!);
    for (const ti of second.unmatchedRows) rest[ti]!.state = 'lost';

    // 3. Tentative tracks get one more chance at the remaining high detections, else they die.
    const leftHigh = first.unmatchedCols.map((k) => high[k]!);
    const third = this.match(tentative, leftHigh, dets, o.unconfirmedMatchIou, o.fuseScore);
    for (const [ti, di] of third.pairs) emit(tentative[ti]!, dets[leftHigh[di]!]!);
    const deadTentative = new Set(third.unmatchedRows.map((i) => tentative[i]!));

    // 4. Births: the first frame confirms at once (nothing to wait for), later births are tentative.
    const born: Track[] = [];
    for (const k of third.unmatchedCols) {
      const d = dets[leftHigh[k]!]!;
      if (d.score < o.newTrackThresh) continue;
      const t: Track = { id: this.nextId++, kf: new BoxKalman(d.box, o.noise), state: this.frame === 1 || o.confirmHits <= 1 ? 'tracked' : 'tentative', hits: 1, lastFrame: this.frame, classId: d.classId };
      born.push(t);
      if (t.state === 'tracked') out.push({ ...d, trackId: t.id });
    }

    // 5. Deaths: tentative tracks that missed, lost tracks past the buffer.
    this.tracks = this.tracks.filter((t) => !deadTentative.has(t) && !(t.state === 'lost' && this.frame - t.lastFrame > o.trackBuffer)).concat(born);
    return out;
  }

  private match(tracks: readonly Track[], detIdx: readonly number[], dets: readonly Detection[], minIou: number, fuse: boolean) {
    const D = detIdx.length;
    const db = new Float64Array(4 * D);
    for (let k = 0; k < D; k++) db.set(dets[detIdx[k]!]!.box, 4 * k);
    // Only overlapping pairs become edges: most tracks and detections are nowhere near each other.
    const edges: number[] = [];
    for (let ti = 0; ti < tracks.length; ti++) {
      const t = tracks[ti]!;
      const [x1, y1, x2, y2] = t.kf.box();
      const area = (x2 - x1) * (y2 - y1);
      for (let k = 0; k < D; k++) {
        const iw = Math.min(x2, db[4 * k + 2]!) - Math.max(x1, db[4 * k]!);
        if (iw <= 0) continue;
        const ih = Math.min(y2, db[4 * k + 3]!) - Math.max(y1, db[4 * k + 1]!);
        if (ih <= 0) continue;
        const inter = iw * ih;
        const ov = inter / (area + (db[4 * k + 2]! - db[4 * k]!) * (db[4 * k + 3]! - db[4 * k + 1]!) - inter);
        if (ov < minIou) continue;
        const d = dets[detIdx[k]!]!;
        if (this.o.classAware && t.classId !== d.classId) continue;
        // Gate on geometry; the score only reorders the pairs that pass it.
        edges.push(ti, k, 1 - (fuse ? ov * d.score : ov));
      }
    }
    // Every allowed pair costs at most 1 and leaving a pair unmatched costs 1, so the assignment maximises the
    // summed (score-weighted) IoU.
    return assignSparse(tracks.length, D, edges, HALF, HALF);
  }
}
