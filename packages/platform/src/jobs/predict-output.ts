import { mkdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { type ClassScore, type Detection } from '@cvopt/core';
import { drawText, fillRect, type RgbImage } from '@cvopt/vision';

/** What predict writes for each frame: label rows, COCO ids, crops, top-k captions, annotated images. */

export function imageId(tag: string): number | string {
  return /^\d+$/.test(tag) ? Number(tag) : tag;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** A YOLO label row, normalised: class cx cy w h [conf] [track id]. */
export function yoloLine(d: Detection & { trackId?: number }, W: number, H: number, withConf: boolean): string {
  const [x1, y1, x2, y2] = d.box;
  const f = (v: number) => v.toFixed(6);
  const parts = [String(d.classId), f((x1 + x2) / 2 / W), f((y1 + y2) / 2 / H), f((x2 - x1) / W), f((y2 - y1) / H)];
  if (withConf) parts.push(d.score.toFixed(5));
  if (d.trackId !== undefined) parts.push(String(d.trackId));
  return `${parts.join(' ')}\n`;
}

/** "2 persons, 1 bus" in class order, as a log line says it. */
export function summarise(dets: readonly Detection[], names: readonly string[]): string {
  if (!dets.length) return 'no detections';
  const counts = new Map<number, number>();
  for (const d of dets) counts.set(d.classId, (counts.get(d.classId) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([c, k]) => `${k} ${names[c] ?? c}${k > 1 ? 's' : ''}`)
    .join(', ');
}

export function drawTopk(img: RgbImage, top: readonly ClassScore[], names: readonly string[]): void {
  const scale = Math.max(img.width, img.height) > 800 ? 2 : 1;
  top.forEach((t, k) => {
    const text = `${names[t.classId] ?? t.classId} ${t.score.toFixed(2)}`;
    const y = 4 + k * 10 * scale;
    fillRect(img, 2, y - scale, 4 + text.length * 6 * scale, y + 8 * scale, [0, 0, 0]);
    drawText(img, 4, y, text, [255, 255, 255], scale);
  });
}

/** Annotated image in the source's format where sharp writes it (PNG, WebP, JPEG), else as JPEG; returns the path. */
export async function saveImage(img: RgbImage, file: string): Promise<string> {
  const ext = extname(file).toLowerCase();
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const out = ext === '.png' || ext === '.webp' || ext === '.jpg' || ext === '.jpeg' ? file : `${file}.jpg`;
  await (ext === '.png' ? s.png() : ext === '.webp' ? s.webp() : s.jpeg({ quality: 90 })).toFile(out);
  return out;
}

export async function saveCrops(img: RgbImage, dets: readonly (Detection & { trackId?: number })[], names: readonly string[], dir: string, tag: string): Promise<void> {
  let k = 0;
  for (const d of dets) {
    const left = Math.max(0, Math.floor(d.box[0]));
    const top = Math.max(0, Math.floor(d.box[1]));
    const width = Math.min(img.width, Math.ceil(d.box[2])) - left;
    const height = Math.min(img.height, Math.ceil(d.box[3])) - top;
    if (width < 1 || height < 1) continue;
    const cls = (names[d.classId] ?? String(d.classId)).replace(/[^\w.-]+/g, '_');
    mkdirSync(join(dir, cls), { recursive: true });
    const name = d.trackId !== undefined ? `${tag}_id${d.trackId}.jpg` : `${tag}${k ? `_${k + 1}` : ''}.jpg`;
    k++;
    await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).extract({ left, top, width, height }).jpeg({ quality: 90 }).toFile(join(dir, cls, name));
  }
}
