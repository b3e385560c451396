import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { CvoptError, Rng } from '@cvopt/core';
import { VideoWriter } from '@cvopt/vision';
import { SHAPE_KINDS, contrastingColour, createCanvas, insideShape, paintBackground, type Canvas, type Rgb, type ShapeKind } from './raster.js';

export interface SynthTrackOptions {
  out: string;
  /** Frames in the video (default 150). */
  frames?: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Moving objects (default 8). */
  objects?: number;
  /** Shape classes, 1..8 (default 3). */
  classes?: number;
  /** Static vertical bars drawn in front of everything: full occlusions lasting several frames (default 2). */
  occluders?: number;
  /** Object speed range in pixels per frame (default 1..3). */
  minSpeed?: number;
  maxSpeed?: number;
  seed?: number;
  /** Also write every n-th frame as a YOLO detection dataset (images/, labels/, data.yaml) for training a detector. */
  datasetEvery?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SynthTrackResult {
  root: string;
  video: string;
  /** MOTChallenge ground truth: frame, id, left, top, width, height, 1, class, visibility. */
  gt: string;
  names: string[];
  frames: number;
  objects: number;
  /** Ground-truth rows written (one per object per frame). */
  rows: number;
  /** Rows with visibility under 0.5 (objects mostly hidden by a bar or another object). */
  occludedRows: number;
  /** With datasetEvery: the data.yaml of the frame dataset. */
  dataYaml?: string;
}

interface Mover {
  id: number;
  kind: ShapeKind;
  classId: number;
  colour: Rgb;
  x: number;
  y: number;
  w: number;
  h: number;
  vx: number;
  vy: number;
}

const MARKER = '.cvopt-synth-track';

function int(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new CvoptError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], got ${v}`, { where: { field: name } });
  return v;
}

/**
 * A synthetic multi-object tracking sequence: shapes moving at constant velocity (with small random turns), bouncing
 * off the edges, crossing each other (drawn in a fixed depth order, so nearer shapes hide farther ones) and passing
 * behind static bars. Writes an H.264 video and MOT ground truth with each object's full box and the share of its
 * pixels that are visible. The same options give the same files.
 */
export async function synthTrack(opts: SynthTrackOptions): Promise<SynthTrackResult> {
  const frames = int('frames', opts.frames ?? 150, 1, 100_000);
  const width = int('width', opts.width ?? 320, 32, 4096);
  const height = int('height', opts.height ?? 240, 32, 4096);
  const nObj = int('objects', opts.objects ?? 8, 1, 1000);
  const classes = int('classes', opts.classes ?? 3, 1, SHAPE_KINDS.length);
  const nOcc = int('occluders', opts.occluders ?? 2, 0, 16);
  const seed = int('seed', opts.seed ?? 0, 0, 2 ** 32 - 1);
  const fps = opts.fps ?? 25;
  const minSpeed = opts.minSpeed ?? 1;
  const maxSpeed = opts.maxSpeed ?? 3;
  if (!(minSpeed >= 0 && maxSpeed >= minSpeed)) throw new CvoptError('INVALID_ARGUMENT', `speed range [${minSpeed}, ${maxSpeed}] is empty`, { where: { field: 'minSpeed' } });
  const every = opts.datasetEvery === undefined ? 0 : int('datasetEvery', opts.datasetEvery, 1, frames);
  const root = resolve(opts.out);
  if (existsSync(root) && readdirSync(root).length > 0 && !existsSync(join(root, MARKER))) {
    throw new CvoptError('CONFLICT', `${root} already holds files and is not a synthetic tracking sequence`, { where: { file: root }, hint: 'choose a new or empty output directory' });
  }
  for (const p of ['video.mp4', 'gt', 'images', 'labels', 'data.yaml']) rmSync(join(root, p), { recursive: true, force: true });
  mkdirSync(join(root, 'gt'), { recursive: true });
  writeFileSync(join(root, MARKER), `${JSON.stringify({ frames, width, height, objects: nObj, classes, occluders: nOcc, seed, fps })}\n`);
  const names = SHAPE_KINDS.slice(0, classes) as string[];

  const rng = new Rng(seed);
  const background = createCanvas(width, height);
  paintBackground(background, rng.choice(['solid', 'gradient'] as const), rng);
  const bgMean: Rgb = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = c; i < background.data.length; i += 3) s += background.data[i]!;
    return s / (width * height);
  }) as Rgb;
  const side = Math.min(width, height);
  const movers: Mover[] = Array.from({ length: nObj }, (_, k) => {
    const s = rng.uniform(0.08, 0.15) * side;
    const w = s * rng.uniform(0.85, 1.15);
    const h = s * rng.uniform(0.85, 1.15);
    const classId = rng.int(0, classes - 1);
    const speed = rng.uniform(minSpeed, maxSpeed);
    const a = rng.uniform(0, 2 * Math.PI);
    return { id: k + 1, kind: SHAPE_KINDS[classId]!, classId, colour: contrastingColour(rng, bgMean), x: rng.uniform(0, width - w), y: rng.uniform(0, height - h), w, h, vx: speed * Math.cos(a), vy: speed * Math.sin(a) };
  });
  const barColour = contrastingColour(rng, bgMean, 80);
  const bars = Array.from({ length: nOcc }, (_, k) => {
    const bw = Math.round(rng.uniform(0.05, 0.09) * width);
    const x = Math.round(((k + 0.5) / nOcc) * width - bw / 2 + rng.uniform(-0.1, 0.1) * width);
    return [Math.max(0, x), Math.min(width, x + bw)] as const;
  });

  const video = join(root, 'video.mp4');
  const writer = new VideoWriter(video, { width, height, fps, crf: 18 });
  const gtLines: string[] = [];
  const labelDir = join(root, 'labels', 'train');
  const imageDir = join(root, 'images', 'train');
  if (every) {
    mkdirSync(labelDir, { recursive: true });
    mkdirSync(imageDir, { recursive: true });
  }
  const owner = new Int32Array(width * height);
  const total = new Int32Array(nObj);
  const seen = new Int32Array(nObj);
  let occludedRows = 0;
  const pendingImages: Promise<unknown>[] = [];
  try {
    for (let f = 1; f <= frames; f++) {
      const canvas: Canvas = { width, height, data: new Uint8Array(background.data) };
      owner.fill(-1);
      total.fill(0);
      const boxes: [number, number, number, number][] = [];
      movers.forEach((m, k) => {
        let [x1, y1, x2, y2] = [Infinity, Infinity, -Infinity, -Infinity];
        const rect = { x: m.x, y: m.y, w: m.w, h: m.h };
        for (let y = Math.max(0, Math.floor(m.y)); y < Math.min(height, Math.ceil(m.y + m.h)); y++) {
          for (let x = Math.max(0, Math.floor(m.x)); x < Math.min(width, Math.ceil(m.x + m.w)); x++) {
            if (!insideShape(m.kind, rect, x + 0.5, y + 0.5)) continue;
            const i = y * width + x;
            canvas.data.set(m.colour, i * 3);
            owner[i] = k;
            total[k]!++;
            if (x < x1) x1 = x;
            if (y < y1) y1 = y;
            if (x > x2) x2 = x;
            if (y > y2) y2 = y;
          }
        }
        boxes.push([x1, y1, x2 + 1, y2 + 1]);
      });
      for (const [bx1, bx2] of bars) {
        for (let y = 0; y < height; y++) {
          for (let x = bx1; x < bx2; x++) {
            canvas.data.set(barColour, (y * width + x) * 3);
            owner[y * width + x] = -1;
          }
        }
      }
      seen.fill(0);
      for (let i = 0; i < owner.length; i++) if (owner[i]! >= 0) seen[owner[i]!]!++;
      const labels: string[] = [];
      movers.forEach((m, k) => {
        const b = boxes[k]!;
        if (!total[k]) return;
        const vis = seen[k]! / total[k]!;
        if (vis < 0.5) occludedRows++;
        gtLines.push(`${f},${m.id},${b[0]},${b[1]},${b[2] - b[0]},${b[3] - b[1]},1,${m.classId},${vis.toFixed(3)}`);
        // The detector learns what it can see: mostly hidden objects are not labelled.
        if (vis >= 0.5) labels.push(`${m.classId} ${(((b[0] + b[2]) / 2) / width).toFixed(6)} ${(((b[1] + b[3]) / 2) / height).toFixed(6)} ${((b[2] - b[0]) / width).toFixed(6)} ${((b[3] - b[1]) / height).toFixed(6)}\n`);
      });
      await writer.write(canvas);
      if (every && (f - 1) % every === 0) {
        const stem = `frame_${String(f).padStart(6, '0')}`;
        writeFileSync(join(labelDir, `${stem}.txt`), labels.join(''));
        pendingImages.push(sharp(canvas.data, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toFile(join(imageDir, `${stem}.jpg`)));
        if (pendingImages.length >= 8) await Promise.all(pendingImages.splice(0));
      }
      step(movers, rng, width, height);
      if (f % 10 === 0 || f === frames) opts.onProgress?.(f, frames);
    }
    await Promise.all(pendingImages);
    await writer.close();
  } catch (e) {
    writer.kill();
    throw e;
  }
  const gt = join(root, 'gt', 'gt.txt');
  writeFileSync(gt, `${gtLines.join('\n')}\n`);
  writeFileSync(join(root, 'seqinfo.ini'), `[Sequence]\nname=synth-track-${seed}\nimDir=video.mp4\nframeRate=${fps}\nseqLength=${frames}\nimWidth=${width}\nimHeight=${height}\n`);
  let dataYaml: string | undefined;
  if (every) {
    dataYaml = join(root, 'data.yaml');
    // Frames of one sequence are near-duplicates, so train and val share them: the split is for monitoring only.
    writeFileSync(dataYaml, `# cvopt dataset synth --task track --seed ${seed}\ntrain: images/train\nval: images/train\nnc: ${classes}\nnames:\n${names.map((n, k) => `  ${k}: ${n}\n`).join('')}`);
  }
  return { root, video, gt, names, frames, objects: nObj, rows: gtLines.length, occludedRows, ...(dataYaml ? { dataYaml } : {}) };
}

/** Constant velocity with a small random turn, bouncing off the frame edges. */
function step(movers: Mover[], rng: Rng, width: number, height: number): void {
  for (const m of movers) {
    const turn = rng.normal(0, 0.03);
    const [c, s] = [Math.cos(turn), Math.sin(turn)];
    [m.vx, m.vy] = [m.vx * c - m.vy * s, m.vx * s + m.vy * c];
    m.x += m.vx;
    m.y += m.vy;
    if (m.x < 0 || m.x + m.w > width) {
      m.vx = -m.vx;
      m.x = Math.min(Math.max(m.x, 0), width - m.w);
    }
    if (m.y < 0 || m.y + m.h > height) {
      m.vy = -m.vy;
      m.y = Math.min(Math.max(m.y, 0), height - m.h);
    }
  }
}
