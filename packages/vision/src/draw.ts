import type { Detection } from '@cvopt/core';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph, textWidth } from './font.js';
import type { RgbImage } from './image.js';

export type Colour = readonly [number, number, number];

/** Fill the rectangle [x1, x2) × [y1, y2), clipped to the image. */
export function fillRect(img: RgbImage, x1: number, y1: number, x2: number, y2: number, c: Colour): void {
  const xs = Math.max(0, Math.floor(x1));
  const ys = Math.max(0, Math.floor(y1));
  const xe = Math.min(img.width, Math.ceil(x2));
  const ye = Math.min(img.height, Math.ceil(y2));
  const d = img.data;
  for (let y = ys; y < ye; y++) {
    let i = (y * img.width + xs) * 3;
    for (let x = xs; x < xe; x++, i += 3) {
      d[i] = c[0];
      d[i + 1] = c[1];
      d[i + 2] = c[2];
    }
  }
}

/** A box outline `thickness` pixels wide, drawn inside [x1, y1, x2, y2] (pixel corners). */
export function drawBox(img: RgbImage, box: readonly number[], c: Colour, thickness = 2): void {
  const [x1, y1, x2, y2] = box.map(Math.round) as [number, number, number, number];
  const t = Math.max(1, Math.min(thickness, Math.ceil((x2 - x1) / 2), Math.ceil((y2 - y1) / 2)));
  fillRect(img, x1, y1, x2, y1 + t, c);
  fillRect(img, x1, y2 - t, x2, y2, c);
  fillRect(img, x1, y1, x1 + t, y2, c);
  fillRect(img, x2 - t, y1, x2, y2, c);
}

/** Text with its top-left corner at (x, y), each font pixel drawn as a scale × scale square. */
export function drawText(img: RgbImage, x: number, y: number, text: string, c: Colour, scale = 1): void {
  let cx = Math.round(x);
  const cy = Math.round(y);
  for (const ch of text) {
    const rows = glyph(ch);
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      const bits = rows[r]!;
      if (!bits) continue;
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        if (bits & (1 << (GLYPH_WIDTH - 1 - col))) fillRect(img, cx + col * scale, cy + r * scale, cx + (col + 1) * scale, cy + (r + 1) * scale, c);
      }
    }
    cx += (GLYPH_WIDTH + 1) * scale;
  }
}

/** A distinct, stable colour per index: golden-ratio steps around the hue circle at full saturation. */
export function paletteColour(index: number): Colour {
  const h = (((index * 0.618033988749895) % 1) + 1) % 1;
  const s = 0.85;
  const v = 0.95;
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const [r, g, b] = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ][i % 6]!;
  return [Math.round(r! * 255), Math.round(g! * 255), Math.round(b! * 255)];
}

/** Black or white, whichever reads better on `bg` (Rec. 601 luma). */
function inkFor(bg: Colour): Colour {
  return 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 140 ? [0, 0, 0] : [255, 255, 255];
}

export interface AnnotateOptions {
  names: readonly string[];
  /** Draw the class name (default true). */
  showLabels?: boolean;
  /** Draw the confidence (default true). */
  showConf?: boolean;
  /** Box outline width in pixels; default scales with the image (2 px at 640). */
  lineWidth?: number;
  /** Font scale; default scales with the image (1 below 800 px, 2 above). */
  fontScale?: number;
}

/** A detection, optionally with the persistent id a tracker gave it. */
export interface AnnotatedDetection extends Detection {
  trackId?: number;
}

/** The label drawn above a box: "#id name 0.87", each part as the options ask. */
export function labelText(d: AnnotatedDetection, o: AnnotateOptions): string {
  const parts: string[] = [];
  if (d.trackId !== undefined) parts.push(`#${d.trackId}`);
  if (o.showLabels ?? true) parts.push(o.names[d.classId] ?? String(d.classId));
  if (o.showConf ?? true) parts.push(d.score.toFixed(2));
  return parts.join(' ');
}

/**
 * Boxes and labels drawn in place on an RGB frame. Colour follows the track id when there is one (so an object
 * keeps its colour), else the class.
 */
export function annotate(img: RgbImage, dets: readonly AnnotatedDetection[], o: AnnotateOptions): void {
  const side = Math.max(img.width, img.height);
  const lw = o.lineWidth ?? Math.max(1, Math.round(side / 320));
  const scale = o.fontScale ?? (side > 800 ? 2 : 1);
  const pad = scale;
  for (const d of dets) {
    const c = paletteColour(d.trackId ?? d.classId);
    drawBox(img, d.box, c, lw);
    const text = labelText(d, o);
    if (!text) continue;
    const tw = textWidth(text, scale) + 2 * pad;
    const th = GLYPH_HEIGHT * scale + 2 * pad;
    // Above the box when there is room, else just inside its top edge; kept inside the frame horizontally.
    const x = Math.max(0, Math.min(Math.round(d.box[0]), img.width - tw));
    const y = d.box[1] - th >= 0 ? Math.round(d.box[1]) - th : Math.round(d.box[1]);
    fillRect(img, x, y, x + tw, y + th, c);
    drawText(img, x + pad, y + pad, text, inkFor(c), scale);
  }
}
