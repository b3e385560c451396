import type { Rng } from '@cvopt/core';

/** An 8-bit RGB image in row-major, interleaved order: what sharp takes as `raw` input. */
export interface Canvas {
  width: number;
  height: number;
  data: Uint8Array;
}

export type Rgb = [number, number, number];

/** The shapes synthetic datasets draw; a shape's index in this list is its class id. */
export const SHAPE_KINDS = ['circle', 'square', 'triangle', 'cross', 'ring', 'diamond', 'hexagon', 'star'] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

/** A shape's placement: the rectangle (in continuous pixel coordinates) it is inscribed in. */
export interface ShapeRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A pixel box [x1, y1, x2, y2]: x2 and y2 are one past the last covered pixel. */
export type PixelBox = [number, number, number, number];

export function createCanvas(width: number, height: number): Canvas {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

export type Background = 'solid' | 'gradient' | 'noise';

/** Fill the canvas with one of three backgrounds; all carry a little noise so no image is perfectly flat. */
export function paintBackground(c: Canvas, kind: Background, rng: Rng): void {
  const a = randomColour(rng);
  const b = randomColour(rng);
  const angle = rng.uniform(0, 2 * Math.PI);
  const [ux, uy] = [Math.cos(angle), Math.sin(angle)];
  const amplitude = kind === 'noise' ? 28 : 6;
  const half = (Math.abs(ux) * c.width + Math.abs(uy) * c.height) / 2 || 1;
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      let t = 0;
      if (kind === 'gradient') t = ((x - c.width / 2) * ux + (y - c.height / 2) * uy) / (2 * half) + 0.5;
      const i = (y * c.width + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const base = (a[ch] as number) * (1 - t) + (b[ch] as number) * t;
        c.data[i + ch] = clamp255(base + (rng.float() * 2 - 1) * amplitude);
      }
    }
  }
}

/** A saturated or dark/light colour, spread over the whole RGB cube. */
export function randomColour(rng: Rng): Rgb {
  const h = rng.uniform(0, 360);
  const s = rng.uniform(0.2, 1);
  const v = rng.uniform(0.15, 1);
  return hsvToRgb(h, s, v);
}

export function hsvToRgb(h: number, s: number, v: number): Rgb {
  const c = v * s;
  const hp = (h % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const [r, g, b] = hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  const m = v - c;
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** Mean colour of the canvas inside a rectangle (what a new shape will be seen against). */
export function meanColour(c: Canvas, r: ShapeRect): Rgb {
  const x0 = Math.max(0, Math.floor(r.x));
  const y0 = Math.max(0, Math.floor(r.y));
  const x1 = Math.min(c.width, Math.ceil(r.x + r.w));
  const y1 = Math.min(c.height, Math.ceil(r.y + r.h));
  const sum = [0, 0, 0];
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * c.width + x) * 3;
      for (let ch = 0; ch < 3; ch++) sum[ch] = (sum[ch] as number) + (c.data[i + ch] as number);
      n++;
    }
  }
  return n === 0 ? [0, 0, 0] : [Math.round((sum[0] as number) / n), Math.round((sum[1] as number) / n), Math.round((sum[2] as number) / n)];
}

/** A colour at least `minDistance` (RGB Euclidean) from `against`, so every shape stands out from what is behind it. */
export function contrastingColour(rng: Rng, against: Rgb, minDistance = 140): Rgb {
  for (let tries = 0; tries < 32; tries++) {
    const colour = randomColour(rng);
    if (distance(colour, against) >= minDistance) return colour;
  }
  const lum = 0.299 * against[0] + 0.587 * against[1] + 0.114 * against[2];
  return lum > 127 ? [0, 0, 0] : [255, 255, 255];
}

function distance(a: Rgb, b: Rgb): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/** Whether the pixel centre (px, py) lies inside `kind` inscribed in `r`. */
export function insideShape(kind: ShapeKind, r: ShapeRect, px: number, py: number): boolean {
  // u, v in [-1, 1] across the rectangle.
  const u = ((px - r.x) / r.w) * 2 - 1;
  const v = ((py - r.y) / r.h) * 2 - 1;
  if (u < -1 || u > 1 || v < -1 || v > 1) return false;
  switch (kind) {
    case 'circle':
      return u * u + v * v <= 1;
    case 'square':
      return true;
    case 'triangle':
      // apex at the top centre, base along the bottom edge
      return Math.abs(u) <= (v + 1) / 2;
    case 'cross':
      return Math.abs(u) <= 1 / 3 || Math.abs(v) <= 1 / 3;
    case 'ring': {
      const d = u * u + v * v;
      return d <= 1 && d >= 0.3;
    }
    case 'diamond':
      return Math.abs(u) + Math.abs(v) <= 1;
    case 'hexagon':
      // pointy sides left and right
      return Math.abs(v) <= 1 && Math.abs(u) <= 1 - Math.abs(v) / 2;
    case 'star':
      return insidePolygon(STAR, u, v);
  }
}

const STAR: [number, number][] = Array.from({ length: 10 }, (_, i) => {
  const radius = i % 2 === 0 ? 1 : 0.45;
  const a = -Math.PI / 2 + (i * Math.PI) / 5;
  return [radius * Math.cos(a), radius * Math.sin(a)] as [number, number];
})
  // stretch the points to fill the rectangle: the raw star spans x ±cos 18°, y from -1 to sin 54°
  .map(([x, y]) => [x / Math.cos(Math.PI / 10), ((y + 1) / (1 + Math.sin((3 * Math.PI) / 10))) * 2 - 1] as [number, number]);

function insidePolygon(poly: [number, number][], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i] as [number, number];
    const [xj, yj] = poly[j] as [number, number];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * Draw a shape (hard edges, pixel centres inside the shape are painted) and return the box of exactly the pixels
 * it painted, so labels hug the drawing. Returns undefined when no pixel centre fell inside.
 */
export function drawShape(c: Canvas, kind: ShapeKind, r: ShapeRect, colour: Rgb): PixelBox | undefined {
  let [x1, y1, x2, y2] = [Infinity, Infinity, -Infinity, -Infinity];
  const xs = Math.max(0, Math.floor(r.x));
  const ys = Math.max(0, Math.floor(r.y));
  const xe = Math.min(c.width, Math.ceil(r.x + r.w));
  const ye = Math.min(c.height, Math.ceil(r.y + r.h));
  for (let y = ys; y < ye; y++) {
    for (let x = xs; x < xe; x++) {
      if (!insideShape(kind, r, x + 0.5, y + 0.5)) continue;
      const i = (y * c.width + x) * 3;
      c.data[i] = colour[0];
      c.data[i + 1] = colour[1];
      c.data[i + 2] = colour[2];
      if (x < x1) x1 = x;
      if (y < y1) y1 = y;
      if (x > x2) x2 = x;
      if (y > y2) y2 = y;
    }
  }
  return x2 < x1 ? undefined : [x1, y1, x2 + 1, y2 + 1];
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}
