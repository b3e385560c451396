import { problem, type Problem } from './problem.js';
import { DEFAULT_READ_LIMITS, minMax, readTextBounded } from './read.js';

/** One labelled box: normalised centre and size, and the 1-based line it came from. */
export interface LabelBox {
  classId: number;
  cx: number;
  cy: number;
  w: number;
  h: number;
  line: number;
}

export interface LabelFile {
  boxes: LabelBox[];
  problems: Problem[];
}

export interface ReadLabelsOptions {
  /** Number of classes; when given, class ids ≥ it are errors. */
  numClasses?: number;
  /** Largest label file read (default DEFAULT_READ_LIMITS.labelBytes); larger ones are one LABEL_UNREADABLE. */
  maxBytes?: number;
  /** Problems reported for one file (default DEFAULT_READ_LIMITS.problemsPerFile); the rest are counted. */
  maxProblems?: number;
}

/**
 * Box edges may overshoot [0, 1] by this much before it counts as a problem: labels written with six decimals
 * (COCO conversions) overshoot by up to 5e-7, and a thousandth is under a pixel at 640 px.
 */
export const EDGE_TOLERANCE = 1e-3;

/**
 * Read a YOLO label file (`class cx cy w h` per line, normalised to the image). A missing file is a background
 * image: no boxes and no problems. Rows with a problem are left out of `boxes` and reported, all of them at once.
 */
export function readLabels(file: string, opts: ReadLabelsOptions = {}): LabelFile {
  const read = readTextBounded(file, opts.maxBytes ?? DEFAULT_READ_LIMITS.labelBytes);
  if (read.ok) return parseLabels(read.text, file, opts);
  if (read.reason === 'missing') return { boxes: [], problems: [] };
  const hint = read.reason === 'too-large' ? 'a label holds one short row per box; split or fix the file' : 'make it a regular, readable text file';
  return { boxes: [], problems: [problem('error', 'LABEL_UNREADABLE', file, `the label file ${read.message}`, hint)] };
}

/** Parse label text; `file` is only used to locate problems. */
export function parseLabels(text: string, file: string, opts: ReadLabelsOptions = {}): LabelFile {
  const boxes: LabelBox[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  const maxProblems = opts.maxProblems ?? DEFAULT_READ_LIMITS.problemsPerFile;
  let leftOut = 0;
  let leftOutErrors = false;
  const bad = (code: Problem['code'], line: number, message: string, hint: string, severity: Problem['severity'] = 'error') => {
    if (problems.length < maxProblems) problems.push(problem(severity, code, file, message, hint, line));
    else {
      leftOut++;
      leftOutErrors ||= severity === 'error';
    }
  };

  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const fields = raw.trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0) return;
    const isSegment = fields.length >= 7 && fields.length % 2 === 1;
    if (fields.length !== 5 && !isSegment) {
      bad('LABEL_FIELD_COUNT', line, `expected 5 fields "class cx cy w h", found ${fields.length}`, 'write one box per line as: class cx cy w h');
      return;
    }
    const nums = fields.map(Number);
    const nonNumeric = fields.findIndex((f, k) => !Number.isFinite(nums[k]) || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(f));
    if (nonNumeric >= 0) {
      bad('LABEL_NOT_NUMBER', line, `field ${nonNumeric + 1} "${fields[nonNumeric]}" is not a number`, 'every field must be a plain decimal number');
      return;
    }
    let ok = true;
    const classId = nums[0] as number;
    if (!Number.isInteger(classId) || classId < 0) {
      bad('LABEL_CLASS_INVALID', line, `class id "${fields[0]}" is not a non-negative integer`, 'the first field is the 0-based class index from data.yaml names');
      ok = false;
    } else if (opts.numClasses !== undefined && classId >= opts.numClasses) {
      bad('LABEL_CLASS_RANGE', line, `class id ${classId} is out of range: the dataset has ${opts.numClasses} classes (0..${opts.numClasses - 1})`, 'fix the class id or add the class to names in data.yaml');
      ok = false;
    }
    const coords = nums.slice(1);
    const outside = coords.findIndex((v) => v < 0 || v > 1);
    if (outside >= 0) {
      bad('LABEL_COORD_RANGE', line, `field ${outside + 2} is ${fields[outside + 1]}, outside [0, 1]`, 'coordinates are normalised: divide pixel values by the image width (x, w) or height (y, h)');
      ok = false;
    }
    let [cx, cy, w, h] = coords as [number, number, number, number];
    if (isSegment) {
      // a loop, not Math.min(...xs): a row of millions of points would overflow the stack
      const [x1, x2] = minMax(coords.filter((_, k) => k % 2 === 0));
      const [y1, y2] = minMax(coords.filter((_, k) => k % 2 === 1));
      [cx, cy, w, h] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1];
      bad('LABEL_SEGMENT', line, `a polygon row with ${(fields.length - 1) / 2} points; its bounding box is used`, 'write detection labels as class cx cy w h', 'warning');
    }
    if (ok && (w <= 0 || h <= 0)) {
      bad('LABEL_BOX_EMPTY', line, `the box has zero or negative area (w ${w}, h ${h})`, 'remove the row or give the box a positive width and height');
      ok = false;
    }
    if (ok) {
      const overshoot = Math.max(-(cx - w / 2), cx + w / 2 - 1, -(cy - h / 2), cy + h / 2 - 1);
      if (overshoot > EDGE_TOLERANCE) {
        bad('LABEL_BOX_OUTSIDE', line, `the box edges reach outside the image by ${overshoot.toPrecision(3)} (x ${(cx - w / 2).toFixed(4)}..${(cx + w / 2).toFixed(4)}, y ${(cy - h / 2).toFixed(4)}..${(cy + h / 2).toFixed(4)})`, 'clip the box to the image: cx ± w/2 and cy ± h/2 must lie in [0, 1]');
        ok = false;
      }
    }
    if (!ok) return;
    const key = [classId, cx, cy, w, h].join(' ');
    const first = seen.get(key);
    if (first !== undefined) {
      bad('LABEL_DUPLICATE', line, `duplicate of line ${first}`, 'delete the repeated row (training drops it)', 'warning');
      return;
    }
    seen.set(key, line);
    boxes.push({ classId, cx, cy, w, h, line });
  });
  if (leftOut > 0) {
    problems.push(problem(leftOutErrors ? 'error' : 'warning', 'PROBLEMS_LEFT_OUT', file, `${leftOut} more problems in this file are not listed (the first ${maxProblems} are)`, 'fix the problems listed and check again'));
  }
  return { boxes, problems };
}
