import { describe, expect, it } from 'vitest';
import { motMetrics } from './mot-metrics.js';
import { formatMotRow, parseMot, type MotRow } from './mot-file.js';

const sq = (x: number, y = 0, s = 10): [number, number, number, number] => [x, y, x + s, y + s];
const row = (frame: number, id: number, box: [number, number, number, number]): MotRow => ({ frame, id, box, conf: 1, classId: 0, visibility: 1 });

describe('motMetrics on hand-computed cases', () => {
  it('a miss, a new id after the gap (one switch, one fragmentation) and a false positive', () => {
    const gt: MotRow[] = [];
    for (let f = 1; f <= 4; f++) gt.push(row(f, 1, sq(0)), row(f, 2, sq(100)));
    const hyp: MotRow[] = [
      row(1, 10, sq(0)), row(1, 20, sq(100)),
      row(2, 10, sq(0)), // gt 2 missed
      row(3, 10, sq(0)), row(3, 30, sq(100)), row(3, 40, sq(200, 200)), // gt 2 back under id 30; id 40 is a false positive
      row(4, 10, sq(0)), row(4, 30, sq(100)),
    ];
    const m = motMetrics(gt, hyp);
    // GT 8, TP 7, FN 1, FP 1, IDSW 1: MOTA = 1 - 3/8.
    expect({ gt: m.gt, tp: m.tp, fn: m.fn, fp: m.fp, idsw: m.idsw, frag: m.frag }).toEqual({ gt: 8, tp: 7, fn: 1, fp: 1, idsw: 1, frag: 1 });
    expect(m.mota).toBeCloseTo(0.625, 12);
    expect(m.motp).toBeCloseTo(1, 12);
    // Identity: 1↔10 (4 frames), 2↔30 (2 frames) beats 2↔20 (1 frame). IDTP 6, IDFN 2, IDFP 2.
    expect({ idtp: m.idtp, idfn: m.idfn, idfp: m.idfp }).toEqual({ idtp: 6, idfn: 2, idfp: 2 });
    expect(m.idf1).toBeCloseTo(0.75, 12);
    expect(m.idp).toBeCloseTo(0.75, 12);
    expect(m.idr).toBeCloseTo(0.75, 12);
    expect(m.mostlyTracked).toBe(1); // gt 1 at 100%; gt 2 at 75%
  });

  it('keeps the last correspondence while it still overlaps, even when another hypothesis overlaps better', () => {
    const gt = [row(1, 1, sq(0)), row(2, 1, sq(0))];
    const hyp = [row(1, 7, sq(0)), row(2, 7, sq(1)), row(2, 8, sq(0))];
    const m = motMetrics(gt, hyp);
    expect({ tp: m.tp, fp: m.fp, idsw: m.idsw }).toEqual({ tp: 2, fp: 1, idsw: 0 });
    // IoU of [1,11] with [0,10] on a 10-high box: 9·10 / (2·100 − 90) = 90/110.
    expect(m.motp).toBeCloseTo((1 + 90 / 110) / 2, 12);
  });

  it('the identity matching is global: IDF1 takes the best one-to-one pairing, not each id\'s best', () => {
    // gt A is covered by h1 for 3 frames, gt B by h1 for 2 frames and by h2 for 2 frames.
    const gt = [...[1, 2, 3].map((f) => row(f, 1, sq(0))), ...[4, 5, 6, 7].map((f) => row(f, 2, sq(50)))];
    const hyp = [...[1, 2, 3].map((f) => row(f, 1, sq(0))), row(4, 1, sq(50)), row(5, 1, sq(50)), row(6, 2, sq(50)), row(7, 2, sq(50))];
    const m = motMetrics(gt, hyp);
    // Pairs: (A,h1) IDTP 3, (B,h2) IDTP 2 → 5; the alternative (B,h1) 2 alone is worse. IDFN = 7 − 5, IDFP = 7 − 5.
    expect({ idtp: m.idtp, idfn: m.idfn, idfp: m.idfp }).toEqual({ idtp: 5, idfn: 2, idfp: 2 });
    expect(m.idf1).toBeCloseTo(10 / 14, 12);
    // CLEAR-MOT: every box matched; gt B switches from h1 to h2 once; h1 jumping from A to B is not a switch of B.
    expect({ tp: m.tp, fp: m.fp, fn: m.fn, idsw: m.idsw }).toEqual({ tp: 7, fp: 0, fn: 0, idsw: 1 });
    expect(m.mota).toBeCloseTo(1 - 1 / 7, 12);
  });

  it('perfect output scores 1 everywhere; ignored and invisible ground truth is dropped', () => {
    const gt = [row(1, 1, sq(0)), row(2, 1, sq(5)), { ...row(2, 2, sq(80)), conf: 0 }, { ...row(2, 3, sq(40)), visibility: 0.1 }];
    const hyp = [row(1, 4, sq(0)), row(2, 4, sq(5))];
    const m = motMetrics(gt, hyp, { minVisibility: 0.5 });
    expect([m.mota, m.motp, m.idf1, m.idsw, m.frag]).toEqual([1, 1, 1, 0, 0]);
  });
});

describe('MOT files', () => {
  it('round-trips rows and names the line of a bad one', () => {
    const r = { frame: 3, id: 2, box: [1.5, 2, 11.5, 22] as [number, number, number, number], conf: 0.9, classId: 1, visibility: 1 };
    expect(parseMot(formatMotRow(r))).toEqual([r]);
    expect(() => parseMot('1,1,0,0,10,10\n2,x,0,0,1,1\n', 'gt.txt')).toThrow(/gt\.txt:2/);
  });
});
