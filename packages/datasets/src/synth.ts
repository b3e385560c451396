import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CvoptError, Rng } from '@cvopt/core';
import sharp from 'sharp';
import {
  SHAPE_KINDS,
  contrastingColour,
  createCanvas,
  drawShape,
  meanColour,
  paintBackground,
  type Background,
  type Canvas,
  type PixelBox,
  type ShapeRect,
} from './raster.js';

export interface SynthDetectionOptions {
  out: string;
  /** Total images, split into train and val. */
  images?: number;
  valFraction?: number;
  /** Square image side in pixels. */
  imgsz?: number;
  seed?: number;
  /** Number of shape classes (1..8): circle, square, triangle, cross, ring, diamond, hexagon, star. */
  classes?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SynthDetectionResult {
  dataYaml: string;
  root: string;
  names: string[];
  train: number;
  val: number;
  /** Images with no objects. */
  background: number;
  boxes: number;
}

export interface SynthClassificationOptions {
  out: string;
  imagesPerClass?: number;
  valFraction?: number;
  imgsz?: number;
  seed?: number;
  classes?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SynthClassificationResult {
  root: string;
  names: string[];
  train: number;
  val: number;
}

/** Share of detection images with no objects at all. */
const BACKGROUND_SHARE = 0.08;
const MAX_OBJECTS = 6;
/** An object may hide at most this share of an earlier object's box, so every shape stays recognisable. */
const MAX_OCCLUSION = 0.3;
const BACKGROUNDS: readonly Background[] = ['solid', 'gradient', 'noise'];
const ENCODE_BATCH = 8;

/**
 * A synthetic detection dataset in the Ultralytics layout (images/{train,val}, labels/{train,val}, data.yaml):
 * coloured shapes, class = shape kind, on solid, gradient or noisy backgrounds, from small (≥ 12 px at 256) to
 * half the image, some overlapping, some images empty. Every box is the exact extent of the pixels drawn.
 * The same options give byte-identical files.
 */
export async function synthDetection(opts: SynthDetectionOptions): Promise<SynthDetectionResult> {
  const images = intOption('images', opts.images ?? 300, 2, 1_000_000);
  const imgsz = intOption('imgsz', opts.imgsz ?? 256, 32, 4096);
  const classes = intOption('classes', opts.classes ?? 3, 1, SHAPE_KINDS.length);
  const valFraction = fractionOption(opts.valFraction ?? 0.2);
  const seed = intOption('seed', opts.seed ?? 0, 0, 2 ** 32 - 1);
  const root = resolve(opts.out);
  const names = SHAPE_KINDS.slice(0, classes) as string[];
  prepareOut(root, ['images', 'labels', 'data.yaml'], { task: 'detect', images, imgsz, classes, valFraction, seed });
  const rng = new Rng(seed);
  const nVal = Math.min(images - 1, Math.max(1, Math.round(images * valFraction)));
  const valSet = new Set(rng.shuffle(Array.from({ length: images }, (_, i) => i)).slice(0, nVal));
  for (const split of ['train', 'val']) {
    mkdirSync(join(root, 'images', split), { recursive: true });
    mkdirSync(join(root, 'labels', split), { recursive: true });
  }
  const minSide = Math.max(12, Math.round(imgsz * 0.05));
  const maxSide = Math.round(imgsz * 0.5);
  let background = 0;
  let boxes = 0;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < images; i++) {
    const r = rng.fork();
    const canvas = createCanvas(imgsz, imgsz);
    paintBackground(canvas, r.choice(BACKGROUNDS), r);
    const objects = r.bool(BACKGROUND_SHARE) ? [] : placeObjects(canvas, r, classes, minSide, maxSide);
    if (objects.length === 0) background++;
    boxes += objects.length;
    const split = valSet.has(i) ? 'val' : 'train';
    const stem = `img_${String(i).padStart(5, '0')}`;
    const label = objects.map(({ classId, box }) => yoloRow(classId, box, imgsz)).join('');
    writeFileSync(join(root, 'labels', split, `${stem}.txt`), label);
    pending.push(encodeJpeg(canvas, join(root, 'images', split, `${stem}.jpg`)));
    if (pending.length >= ENCODE_BATCH) {
      await Promise.all(pending.splice(0));
      opts.onProgress?.(i + 1, images);
    }
  }
  if (pending.length > 0) {
    await Promise.all(pending);
    opts.onProgress?.(images, images);
  }
  const dataYaml = join(root, 'data.yaml');
  // No `path` key: the root is the yaml's own directory, so the dataset can be moved as a folder.
  writeFileSync(
    dataYaml,
    `# synthetic shapes, cvopt dataset synth --task detect --seed ${seed} --images ${images} --imgsz ${imgsz} --classes ${classes}\n` +
      `train: images/train\nval: images/val\nnc: ${classes}\nnames:\n${names.map((n, k) => `  ${k}: ${n}\n`).join('')}`,
  );
  return { dataYaml, root, names, train: images - nVal, val: nVal, background, boxes };
}

/** Place up to MAX_OBJECTS shapes, largest first so small ones are drawn on top and never hidden. */
function placeObjects(c: Canvas, rng: Rng, classes: number, minSide: number, maxSide: number): { classId: number; box: PixelBox }[] {
  const count = rng.int(1, MAX_OBJECTS);
  const sides = Array.from({ length: count }, () => Math.exp(rng.uniform(Math.log(minSide), Math.log(maxSide)))).sort((a, b) => b - a);
  const placed: { classId: number; box: PixelBox }[] = [];
  for (const side of sides) {
    const aspect = Math.exp(rng.uniform(Math.log(0.75), Math.log(1.33)));
    // one pixel of margin: rasterising by pixel centres can lose a column at the edges of round shapes
    const w = Math.max(minSide + 1, side * Math.sqrt(aspect));
    const h = Math.max(minSide + 1, side / Math.sqrt(aspect));
    const classId = rng.int(0, classes - 1);
    for (let attempt = 0; attempt < 20; attempt++) {
      const rect: ShapeRect = { x: rng.uniform(0, c.width - w), y: rng.uniform(0, c.height - h), w, h };
      const candidate: PixelBox = [rect.x, rect.y, rect.x + w, rect.y + h];
      if (placed.some((p) => tooMuchOverlap(p.box, candidate))) continue;
      const colour = contrastingColour(rng, meanColour(c, rect));
      const box = drawShape(c, SHAPE_KINDS[classId] as (typeof SHAPE_KINDS)[number], rect, colour);
      if (box) placed.push({ classId, box });
      break;
    }
  }
  return placed;
}

function tooMuchOverlap(earlier: PixelBox, next: PixelBox): boolean {
  const iw = Math.min(earlier[2], next[2]) - Math.max(earlier[0], next[0]);
  const ih = Math.min(earlier[3], next[3]) - Math.max(earlier[1], next[1]);
  if (iw <= 0 || ih <= 0) return false;
  const inter = iw * ih;
  const area = (b: PixelBox) => (b[2] - b[0]) * (b[3] - b[1]);
  return inter > MAX_OCCLUSION * area(earlier) || inter / (area(earlier) + area(next) - inter) > MAX_OCCLUSION;
}

function yoloRow(classId: number, [x1, y1, x2, y2]: PixelBox, size: number): string {
  const f = (v: number) => (v / size).toFixed(6);
  return `${classId} ${f((x1 + x2) / 2)} ${f((y1 + y2) / 2)} ${f(x2 - x1)} ${f(y2 - y1)}\n`;
}

/**
 * A synthetic folder-per-class classification dataset (train/<class>/*.jpg, val/<class>/*.jpg): one shape per
 * image, 35–80 % of the side, anywhere on a random background. Byte-identical for the same options.
 */
export async function synthClassification(opts: SynthClassificationOptions): Promise<SynthClassificationResult> {
  const perClass = intOption('imagesPerClass', opts.imagesPerClass ?? 60, 2, 1_000_000);
  const imgsz = intOption('imgsz', opts.imgsz ?? 64, 16, 4096);
  const classes = intOption('classes', opts.classes ?? 3, 2, SHAPE_KINDS.length);
  const valFraction = fractionOption(opts.valFraction ?? 0.25);
  const seed = intOption('seed', opts.seed ?? 0, 0, 2 ** 32 - 1);
  const root = resolve(opts.out);
  const names = SHAPE_KINDS.slice(0, classes) as string[];
  prepareOut(root, ['train', 'val'], { task: 'classify', imagesPerClass: perClass, imgsz, classes, valFraction, seed });
  const rng = new Rng(seed);
  const nVal = Math.min(perClass - 1, Math.max(1, Math.round(perClass * valFraction)));
  const pending: Promise<void>[] = [];
  for (const split of ['train', 'val']) for (const name of names) mkdirSync(join(root, split, name), { recursive: true });
  for (let k = 0; k < classes; k++) {
    for (let i = 0; i < perClass; i++) {
      const r = rng.fork();
      const canvas = createCanvas(imgsz, imgsz);
      paintBackground(canvas, r.choice(BACKGROUNDS), r);
      const side = r.uniform(0.35, 0.8) * imgsz;
      const aspect = Math.exp(r.uniform(Math.log(0.8), Math.log(1.25)));
      const w = Math.min(imgsz, side * Math.sqrt(aspect));
      const h = Math.min(imgsz, side / Math.sqrt(aspect));
      const rect: ShapeRect = { x: r.uniform(0, imgsz - w), y: r.uniform(0, imgsz - h), w, h };
      drawShape(canvas, SHAPE_KINDS[k] as (typeof SHAPE_KINDS)[number], rect, contrastingColour(r, meanColour(canvas, rect)));
      const split = i < perClass - nVal ? 'train' : 'val';
      pending.push(encodeJpeg(canvas, join(root, split, names[k] as string, `img_${String(i).padStart(5, '0')}.jpg`)));
      if (pending.length >= ENCODE_BATCH) {
        await Promise.all(pending.splice(0));
        opts.onProgress?.(k * perClass + i + 1, classes * perClass);
      }
    }
  }
  if (pending.length > 0) {
    await Promise.all(pending);
    opts.onProgress?.(classes * perClass, classes * perClass);
  }
  return { root, names, train: classes * (perClass - nVal), val: classes * nVal };
}

/** Marks a directory as synthesised, so that synthesising into it again may replace what it holds. */
const MARKER = '.cvopt-synth.json';

/**
 * Make `root` ready for a fresh dataset. Leftovers of an earlier, larger run would silently join the new one, so
 * a previous synthetic dataset is replaced (only the paths we write), and any other non-empty directory is refused.
 */
function prepareOut(root: string, ours: string[], options: Record<string, unknown>): void {
  if (existsSync(root)) {
    const entries = readdirSync(root);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new CvoptError('CONFLICT', `${root} already holds files and is not a synthetic dataset`, {
        where: { file: root },
        hint: 'choose a new or empty output directory',
      });
    }
    for (const p of ours) rmSync(join(root, p), { recursive: true, force: true });
  }
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, MARKER), `${JSON.stringify(options)}\n`);
}

async function encodeJpeg(c: Canvas, file: string): Promise<void> {
  await sharp(c.data, { raw: { width: c.width, height: c.height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(file);
}

function intOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new CvoptError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], got ${value}`, { where: { field: name } });
  }
  return value;
}

function fractionOption(value: number): number {
  if (!Number.isFinite(value) || value <= 0 || value >= 1) {
    throw new CvoptError('INVALID_ARGUMENT', `valFraction must be in (0, 1), got ${value}`, { where: { field: 'valFraction' }, hint: 'e.g. 0.2 for a fifth of the images in val' });
  }
  return value;
}
