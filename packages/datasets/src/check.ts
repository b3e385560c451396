import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { CvoptError } from '@cvopt/core';
import sharp from 'sharp';
import { resolveClassificationDataset } from './classification.js';
import { findDataYaml, resolveDetectionDataset, SPLIT_NAMES, type SplitName } from './detection.js';
import { isDirectory, listFilesRecursive } from './files.js';
import { readLabels } from './labels.js';
import { problem, type Problem } from './problem.js';
import { minMax, readLimits, regularFileSize, type DatasetReadLimits } from './read.js';

export type DatasetTask = 'detect' | 'classify';

export interface BoxStats {
  count: number;
  /**
   * `pixels` when every image with boxes has a readable header: sides in pixels, areas in pixels², and the COCO
   * size classes (small < 32², medium < 96², large ≥ 96²). Otherwise `normalised`: sides and areas as fractions
   * of the image, size classes at the same thresholds relative to a 640×640 image.
   */
  units: 'pixels' | 'normalised';
  /** Shortest box side; null without boxes. */
  minSide: number | null;
  medianArea: number | null;
  small: number;
  medium: number;
  large: number;
}

export interface CheckReport {
  ok: boolean;
  task: DatasetTask;
  root: string;
  /** Every problem found, errors and warnings, in a stable order. */
  problems: Problem[];
  stats: {
    /** Distinct images over all splits. */
    images: number;
    /** Images per split (an image in two splits counts in both). */
    splits: Partial<Record<SplitName, number>>;
    /** Detection: images whose label file has at least one row. Classification: every image. */
    labelled: number;
    /** Detection: images with no label file or an empty one (allowed: they teach "nothing here"). */
    background: number;
    labelsWithoutImages: number;
    /** Boxes (detection) or images (classification) per class, in class-id order. */
    classHistogram: { name: string; count: number }[];
    boxes: BoxStats;
  };
}

export interface CheckOptions {
  /** Default: detect when the path is or holds a yaml file, else classify. A task the layout contradicts is refused. */
  task?: DatasetTask;
  /**
   * What the dataset is for. `train` (default) holds it to what `cvopt train` needs: images in train and in val
   * (or test), exactly as training reads them; `eval` needs one split with images (evaluation and benchmarks).
   */
  purpose?: 'train' | 'eval';
  /** Images whose headers are read at once. */
  concurrency?: number;
  /** Bounds on every file read (defaults: DEFAULT_READ_LIMITS). */
  limits?: Partial<DatasetReadLimits>;
}

/** COCO's size classes, in pixels². */
const SMALL_AREA = 32 * 32;
const MEDIUM_AREA = 96 * 96;
const REFERENCE_SIDE = 640;
/** Images smaller than this on a side cannot be trained on. */
const MIN_IMAGE_SIDE = 10;

/**
 * Check a dataset and report every problem at once, each with its file and line: the data.yaml, every label row,
 * every image header, orphan labels, class ids against names, and box statistics.
 */
export async function checkDataset(path: string, opts: CheckOptions = {}): Promise<CheckReport> {
  const layout = guessTask(path);
  if (opts.task && opts.task !== layout) {
    throw new CvoptError('DATASET_INVALID', `${path} is laid out as a ${layout === 'detect' ? 'detection dataset (a data.yaml, or images/ and labels/)' : 'folder-per-class classification dataset'}, not a ${opts.task === 'detect' ? 'detection' : 'classification'} one`, {
      where: { file: path, field: '--task' },
      hint: `drop --task (the layout decides), or point at a ${opts.task === 'detect' ? 'data.yaml' : 'folder of class folders'}`,
    });
  }
  const limits = readLimits(opts.limits);
  const report = layout === 'detect' ? await checkDetection(path, opts.concurrency ?? 8, limits) : await checkClassification(path, opts.concurrency ?? 8, limits);
  // When the layout itself could not be read, that error is the cause; empty splits would only repeat it.
  const unreadable = report.problems.some((p) => p.severity === 'error' && /^(YAML_|SPLIT_|PATH_|LAYOUT_)/.test(p.code));
  if (!unreadable) report.problems.push(...splitProblems(report, opts.purpose ?? 'train'));
  report.ok = !report.problems.some((p) => p.severity === 'error');
  return report;
}

/**
 * The splits a purpose needs, read the way training reads them: train images, and val images (test stands in for a
 * missing val). A set that passes here trains; one that fails here would be refused by `cvopt train`.
 */
export function splitProblems(report: Pick<CheckReport, 'root' | 'task' | 'stats'>, purpose: 'train' | 'eval'): Problem[] {
  const n = report.stats.splits;
  const where = report.root;
  const layout = report.task === 'detect' ? 'the data.yaml' : `${report.root}/train and ${report.root}/val`;
  if (purpose === 'eval') {
    return (n.val ?? 0) + (n.test ?? 0) + (n.train ?? 0) > 0 ? [] : [problem('error', 'SPLIT_EMPTY', where, 'no split has any image', `add images to ${layout}`)];
  }
  const out: Problem[] = [];
  if (!(n.train ?? 0)) out.push(problem('error', 'SPLIT_EMPTY', where, 'no train images: `cvopt train` needs a train split', `add a train split (${layout}); to check an evaluation-only set, pass --for eval`));
  if (!(n.val ?? 0) && !(n.test ?? 0)) out.push(problem('error', 'SPLIT_EMPTY', where, 'no val (or test) images: `cvopt train` validates every epoch on val', `add a val split (${layout}); to check an evaluation-only set, pass --for eval`));
  return out;
}

function guessTask(path: string): DatasetTask {
  if (!existsSync(path)) {
    throw new CvoptError('NOT_FOUND', `the dataset path ${path} does not exist`, { where: { file: path }, hint: 'pass a data.yaml, its directory, or a folder-per-class directory' });
  }
  if (!isDirectory(path)) return 'detect';
  // images/ + labels/ without a yaml is a detection set missing its data.yaml: say that, not "odd classes"
  if (isDirectory(join(path, 'images')) && isDirectory(join(path, 'labels'))) return 'detect';
  try {
    findDataYaml(path);
    return 'detect';
  } catch {
    return 'classify';
  }
}

interface ImageHeader {
  width: number;
  height: number;
}

async function checkDetection(path: string, concurrency: number, limits: DatasetReadLimits): Promise<CheckReport> {
  const resolved = resolveDetectionDataset(path, limits);
  const problems = [...resolved.problems];
  const dataset = resolved.dataset;
  const root = dataset?.root ?? dirname(findDataYaml(path));
  const names = dataset?.names ?? [];
  const splitCounts: CheckReport['stats']['splits'] = {};
  const entries = new Map<string, string>();
  for (const split of SPLIT_NAMES) {
    const list = dataset?.splits[split];
    if (!list) continue;
    splitCounts[split] = list.length;
    for (const e of list) entries.set(e.image, e.label);
  }
  const train = new Set(dataset?.splits.train?.map((e) => e.image) ?? []);
  const shared = (dataset?.splits.val ?? []).filter((e) => train.has(e.image)).length;
  if (shared > 0 && dataset) {
    problems.push(problem('warning', 'SPLIT_OVERLAP', dataset.yamlPath, `${shared} of ${dataset.splits.val?.length} val images are also in train: validation scores will be optimistic`, 'give val its own images'));
  }

  const images = [...entries.keys()];
  const headers = await mapLimit(images, concurrency, (f) => readHeader(f, limits.imageBytes));
  const histogram = names.map((name) => ({ name, count: 0 }));
  const pixelBoxes: { w: number; h: number }[] = [];
  const normalisedBoxes: { w: number; h: number }[] = [];
  let allSized = true;
  let labelled = 0;
  let background = 0;
  images.forEach((image, i) => {
    const header = headers[i] as HeaderResult;
    for (const p of header.problems) problems.push(p);
    const label = entries.get(image) as string;
    const read = readLabels(label, { numClasses: names.length || undefined, maxBytes: limits.labelBytes, maxProblems: limits.problemsPerFile });
    for (const p of read.problems) problems.push(p);
    const rows = read.boxes.length + read.problems.filter((p) => p.line !== undefined).length;
    if (rows > 0) labelled++;
    else background++;
    for (const b of read.boxes) {
      const slot = histogram[b.classId];
      if (slot) slot.count++;
    }
    if (read.boxes.length > 0 && !header.size) allSized = false;
    for (const b of read.boxes) {
      normalisedBoxes.push({ w: b.w, h: b.h });
      if (header.size) pixelBoxes.push({ w: b.w * header.size.width, h: b.h * header.size.height });
    }
  });

  const orphans = findOrphanLabels(resolved.sources.filter((s) => s.kind === 'dir').map((s) => s.path), [...entries.values()]);
  for (const file of orphans) {
    problems.push(problem('warning', 'LABEL_ORPHAN', file, 'a label file without an image (it is ignored)', 'add the image it belongs to, or delete the label file'));
  }
  const boxCount = histogram.reduce((s, c) => s + c.count, 0);
  if (images.length > 0 && boxCount === 0 && dataset) {
    problems.push(problem('warning', 'LABELS_NONE', dataset.yamlPath, 'no image has a valid box', 'labels live in labels/ beside images/, one .txt per image'));
  }
  const unused = histogram.filter((c) => c.count === 0).map((c) => c.name);
  if (boxCount > 0 && unused.length > 0 && dataset) {
    problems.push(problem('warning', 'CLASS_UNUSED', dataset.yamlPath, `${unused.length} of ${names.length} classes have no boxes: ${unused.slice(0, 12).join(', ')}${unused.length > 12 ? ', …' : ''}`, 'add examples of those classes, or remove them from names (and renumber)'));
  }
  return {
    ok: !problems.some((p) => p.severity === 'error'),
    task: 'detect',
    root,
    problems,
    stats: {
      images: images.length,
      splits: splitCounts,
      labelled,
      background,
      labelsWithoutImages: orphans.length,
      classHistogram: histogram,
      // mixed units would make the figures meaningless: without every image size, all are normalised
      boxes: allSized ? boxStats(pixelBoxes, 'pixels') : boxStats(normalisedBoxes, 'normalised'),
    },
  };
}

function boxStats(boxes: { w: number; h: number }[], units: BoxStats['units']): BoxStats {
  const scale = units === 'pixels' ? 1 : 1 / (REFERENCE_SIDE * REFERENCE_SIDE);
  const areas = boxes.map((b) => b.w * b.h).sort((a, b) => a - b);
  const stats: BoxStats = { count: boxes.length, units, minSide: null, medianArea: null, small: 0, medium: 0, large: 0 };
  if (boxes.length === 0) return stats;
  // rounded to what a person can use: a hundredth of a pixel, or a millionth of the image
  const round = (v: number) => (units === 'pixels' ? Math.round(v * 100) / 100 : Math.round(v * 1e6) / 1e6);
  stats.minSide = round(minMax(boxes.map((b) => Math.min(b.w, b.h)))[0]);
  const mid = areas.length >> 1;
  stats.medianArea = round(areas.length % 2 ? (areas[mid] as number) : ((areas[mid - 1] as number) + (areas[mid] as number)) / 2);
  for (const a of areas) {
    if (a < SMALL_AREA * scale) stats.small++;
    else if (a < MEDIUM_AREA * scale) stats.medium++;
    else stats.large++;
  }
  return stats;
}

/**
 * Label files under the labels/ twins of the image directories that no image claims. Splits given as .txt lists
 * are not searched: a list names its images, not a directory whose contents are all meant to be used.
 */
function findOrphanLabels(imageDirs: string[], claimed: string[]): string[] {
  const claimedSet = new Set(claimed);
  const candidates = new Set<string>();
  for (const dir of imageDirs) {
    const at = `${dir}/`.lastIndexOf('/images/');
    if (at < 0) continue;
    const labelDir = `${dir.slice(0, at)}/labels/${`${dir}/`.slice(at + '/images/'.length)}`.replace(/\/$/, '');
    if (isDirectory(labelDir)) for (const f of listFilesRecursive(labelDir)) candidates.add(f);
  }
  return [...candidates].filter((f) => extname(f) === '.txt' && basename(f) !== 'classes.txt' && !claimedSet.has(f)).sort();
}

interface HeaderResult {
  size?: ImageHeader;
  problems: Problem[];
}

async function readHeader(file: string, maxBytes: number): Promise<HeaderResult> {
  // sharp opens by path: a FIFO would block it and /dev/zero never ends, so only regular files under the cap
  const checked = regularFileSize(file, maxBytes);
  if (!checked.ok) {
    return { problems: [problem('error', 'IMAGE_CORRUPT', file, `the image ${checked.message}`, 'replace it with a regular image file, or remove it and its label')] };
  }
  try {
    const meta = await sharp(file).metadata();
    if (!meta.width || !meta.height) throw new Error('no image dimensions in the header');
    // EXIF orientations 5..8 are rotated by 90°: the picture a model sees is transposed.
    const size = (meta.orientation ?? 1) >= 5 ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
    const problems: Problem[] = [];
    if (size.width < MIN_IMAGE_SIDE || size.height < MIN_IMAGE_SIDE) {
      problems.push(problem('error', 'IMAGE_TOO_SMALL', file, `the image is ${size.width}×${size.height}, under ${MIN_IMAGE_SIDE} px on a side`, 'remove it or replace it with a larger image'));
    }
    if (meta.format === 'jpeg' && !endsWithJpegEoi(file)) {
      problems.push(problem('warning', 'IMAGE_TRUNCATED', file, 'the JPEG has no end-of-image marker: it is truncated or has trailing bytes', 're-encode it (e.g. open and save it again)'));
    }
    return { size, problems };
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { problems: [problem('error', 'IMAGE_CORRUPT', file, `the image cannot be decoded: ${reason}`, 'replace the file with a valid image, or remove it and its label')] };
  }
}

function endsWithJpegEoi(file: string): boolean {
  const size = statSync(file).size;
  if (size < 2) return false;
  const fd = openSync(file, 'r');
  try {
    const tail = Buffer.alloc(2);
    readSync(fd, tail, 0, 2, size - 2);
    return tail[0] === 0xff && tail[1] === 0xd9;
  } finally {
    closeSync(fd);
  }
}

async function checkClassification(path: string, concurrency: number, limits: DatasetReadLimits): Promise<CheckReport> {
  const { dataset, problems: found } = resolveClassificationDataset(path);
  const problems = [...found];
  const splitCounts: CheckReport['stats']['splits'] = {};
  const byImage = new Map<string, number>();
  for (const split of SPLIT_NAMES) {
    const list = dataset?.splits[split];
    if (!list) continue;
    splitCounts[split] = list.length;
    for (const e of list) byImage.set(e.image, e.classId);
  }
  const images = [...byImage.keys()];
  const headers = await mapLimit(images, concurrency, (f) => readHeader(f, limits.imageBytes));
  for (const h of headers) for (const p of h.problems) problems.push(p);
  const histogram = (dataset?.names ?? []).map((name) => ({ name, count: 0 }));
  for (const classId of byImage.values()) {
    const slot = histogram[classId];
    if (slot) slot.count++;
  }
  return {
    ok: !problems.some((p) => p.severity === 'error'),
    task: 'classify',
    root: dataset?.root ?? path,
    problems,
    stats: {
      images: images.length,
      splits: splitCounts,
      labelled: images.length,
      background: 0,
      labelsWithoutImages: 0,
      classHistogram: histogram,
      boxes: boxStats([], 'pixels'),
    },
  };
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
