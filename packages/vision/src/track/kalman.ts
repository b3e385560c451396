/**
 * A constant-velocity Kalman filter over a box's centre, width and height (state: cx, cy, w, h and their
 * velocities; measurement: cx, cy, w, h). With a diagonal process and measurement noise — each scaled by the box's
 * size, as in SORT/ByteTrack — the four coordinates never couple, so the 8-dimensional filter is exactly four
 * independent 2-state filters (position, velocity); they are written out that way, which keeps 100 tracks far below
 * a millisecond per frame.
 */

export interface KalmanNoise {
  /** Position noise per frame, as a fraction of the box side (default 1/20). */
  position: number;
  /** Velocity noise per frame, as a fraction of the box side (default 1/160). */
  velocity: number;
}

export const DEFAULT_KALMAN_NOISE: KalmanNoise = { position: 1 / 20, velocity: 1 / 160 };

/** Box state: mean (x, v) and covariance [[pp, pv], [pv, vv]] for each of cx, cy, w, h. */
export class BoxKalman {
  /** Positions and velocities: [cx, cy, w, h] and [vcx, vcy, vw, vh]. */
  readonly x = new Float64Array(4);
  readonly v = new Float64Array(4);
  private readonly pp = new Float64Array(4);
  private readonly pv = new Float64Array(4);
  private readonly vv = new Float64Array(4);

  constructor(
    box: readonly number[],
    private readonly noise: KalmanNoise = DEFAULT_KALMAN_NOISE,
  ) {
    const [cx, cy, w, h] = toCxcywh(box);
    this.x.set([cx, cy, w, h]);
    const sides = [w, h, w, h];
    for (let k = 0; k < 4; k++) {
      const s = sides[k]!;
      this.pp[k] = (2 * noise.position * s) ** 2;
      this.vv[k] = (10 * noise.velocity * s) ** 2;
    }
  }

  /** Advance one frame: x += v; P = F P Fᵀ + Q. */
  predict(): void {
    const w = Math.max(this.x[2]!, 1);
    const h = Math.max(this.x[3]!, 1);
    for (let k = 0; k < 4; k++) {
      const s = k % 2 === 0 ? w : h;
      const qp = (this.noise.position * s) ** 2;
      const qv = (this.noise.velocity * s) ** 2;
      this.x[k] = this.x[k]! + this.v[k]!;
      const pp = this.pp[k]! + 2 * this.pv[k]! + this.vv[k]! + qp;
      const pv = this.pv[k]! + this.vv[k]!;
      this.pp[k] = pp;
      this.pv[k] = pv;
      this.vv[k] = this.vv[k]! + qv;
    }
    // A shrinking box must not turn itself inside out while it coasts through an occlusion.
    for (const k of [2, 3]) {
      if (this.x[k]! < 1) {
        this.x[k] = 1;
        this.v[k] = 0;
      }
    }
  }

  /** Fold in a measured box. */
  update(box: readonly number[]): void {
    const z = toCxcywh(box);
    for (let k = 0; k < 4; k++) {
      const s = k % 2 === 0 ? z[2]! : z[3]!;
      const r = (this.noise.position * s) ** 2;
      const S = this.pp[k]! + r;
      const kp = this.pp[k]! / S;
      const kv = this.pv[k]! / S;
      const innov = z[k]! - this.x[k]!;
      this.x[k] = this.x[k]! + kp * innov;
      this.v[k] = this.v[k]! + kv * innov;
      const pp = this.pp[k]!;
      const pv = this.pv[k]!;
      this.pp[k] = (1 - kp) * pp;
      this.pv[k] = (1 - kp) * pv;
      this.vv[k] = this.vv[k]! - kv * pv;
    }
  }

  /** The state's box, corner form. */
  box(): [number, number, number, number] {
    const [cx, cy, w, h] = this.x as unknown as [number, number, number, number];
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
  }
}

function toCxcywh(b: readonly number[]): [number, number, number, number] {
  const [x1, y1, x2, y2] = b as [number, number, number, number];
  return [(x1 + x2) / 2, (y1 + y2) / 2, Math.max(x2 - x1, 1), Math.max(y2 - y1, 1)];
}
