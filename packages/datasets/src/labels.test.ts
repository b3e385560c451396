import { describe, expect, it } from 'vitest';
import { parseLabels } from './labels.js';

describe('parseLabels', () => {
  it('reads normalised boxes with their line numbers, skipping blank lines', () => {
    const r = parseLabels('0 0.5 0.5 0.2 0.4\n\n2 0.1 0.2 0.1 0.1\r\n', 'a.txt', { numClasses: 3 });
    expect(r.problems).toEqual([]);
    expect(r.boxes).toEqual([
      { classId: 0, cx: 0.5, cy: 0.5, w: 0.2, h: 0.4, line: 1 },
      { classId: 2, cx: 0.1, cy: 0.2, w: 0.1, h: 0.1, line: 3 },
    ]);
  });

  it('reports every bad row at once, each with its line and code', () => {
    const text = [
      '0 0.5 0.5 0.2', // 1: four fields
      '99 0.5 0.5 0.2 0.2', // 2: class out of range
      '0 1.4 0.5 0.2 0.2', // 3: cx outside
      '0 0.5 0.5 0 0.2', // 4: zero width
      '0 0.5 0.5 0.2 0.2', // 5: fine
      '0 0.5 0.5 0.2 0.2', // 6: duplicate of 5
      '0 0.5 abc 0.2 0.2', // 7: not a number
      '1.5 0.5 0.5 0.2 0.2', // 8: non-integer class
      '0 0.95 0.5 0.2 0.2', // 9: edge outside
      '-1 0.5 0.5 0.2 0.2', // 10: negative class
    ].join('\n');
    const r = parseLabels(text, '/x/a.txt', { numClasses: 3 });
    const got = r.problems.map((p) => [p.line, p.code, p.severity]);
    expect(got).toEqual([
      [1, 'LABEL_FIELD_COUNT', 'error'],
      [2, 'LABEL_CLASS_RANGE', 'error'],
      [3, 'LABEL_COORD_RANGE', 'error'],
      [4, 'LABEL_BOX_EMPTY', 'error'],
      [6, 'LABEL_DUPLICATE', 'warning'],
      [7, 'LABEL_NOT_NUMBER', 'error'],
      [8, 'LABEL_CLASS_INVALID', 'error'],
      [9, 'LABEL_BOX_OUTSIDE', 'error'],
      [10, 'LABEL_CLASS_INVALID', 'error'],
    ]);
    expect(r.problems.every((p) => p.file === '/x/a.txt' && p.hint.length > 0)).toBe(true);
    expect(r.boxes.map((b) => b.line)).toEqual([5]);
  });

  it('tolerates rounding overshoot of box edges but not more', () => {
    expect(parseLabels('0 0.501671 0.5 0.996659 0.5', 'a.txt').problems).toEqual([]);
    expect(parseLabels('0 0.5004 0.5 1 0.5', 'a.txt').problems).toEqual([]);
    expect(parseLabels('0 0.1 0.5 0.4 0.5', 'a.txt').problems.map((p) => p.code)).toEqual(['LABEL_BOX_OUTSIDE']);
  });

  it('turns a polygon row into its bounding box with a warning', () => {
    const r = parseLabels('1 0.1 0.2 0.5 0.2 0.3 0.6', 'a.txt');
    expect(r.problems.map((p) => p.code)).toEqual(['LABEL_SEGMENT']);
    expect(r.boxes[0]?.classId).toBe(1);
    expect(r.boxes[0]?.cx).toBeCloseTo(0.3);
    expect(r.boxes[0]?.cy).toBeCloseTo(0.4);
    expect(r.boxes[0]?.w).toBeCloseTo(0.4);
    expect(r.boxes[0]?.h).toBeCloseTo(0.4);
  });
});
