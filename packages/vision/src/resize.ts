import { CvoptError } from '@cvopt/core';
import type { RgbImage } from './image.js';

/**
 * How network-input pixels relate to original-image pixels: x_in = x_orig * scaleX + padX (same for y).
 * For letterbox and center-crop scaleX = scaleY = scale; center-crop has negative pads (the crop offset).
 */
export interface LetterboxMeta {
  scale: number;
  scaleX?: number;
  scaleY?: number;
  padX: number;
  padY: number;
  origWidth: number;
  origHeight: number;
}

export type ResizeMode = 'letterbox' | 'stretch' | 'center-crop';
export type PadPosition = 'center' | 'top-left';

/** Where the resized original lands inside the output canvas. */
export interface ResizeGeometry {
  /** The output canvas. */
  outWidth: number;
  outHeight: number;
  /** The original resized to this size before padding or cropping. */
  newWidth: number;
  newHeight: number;
  /** Offset of the resized original in the canvas (negative when cropped). */
  offsetX: number;
  offsetY: number;
  meta: LetterboxMeta;
}

export interface GeometryOptions {
  mode: ResizeMode;
  size: readonly [number, number];
  padPosition?: PadPosition;
  /** With `auto`, letterbox pads only up to the next multiple of `stride` (rectangular inference). */
  stride?: number;
  auto?: boolean;
}

function checkSize(size: readonly [number, number]): void {
  if (!(Number.isInteger(size[0]) && Number.isInteger(size[1]) && size[0] > 0 && size[1] > 0)) {
    throw new CvoptError('INVALID_ARGUMENT', `resize size must be two positive integers [h, w], got [${size.join(', ')}]`, {
      where: { field: 'preprocess.size' },
    });
  }
}

/**
 * The one place resize geometry is decided, shared by the sharp and pure-JS paths so both put pixels in the
 * same place. Letterbox follows the common YOLO convention: scale by min ratio, round the new size, and split
 * the padding with the odd pixel going to the right/bottom.
 */
export function resizeGeometry(width: number, height: number, opts: GeometryOptions): ResizeGeometry {
  checkSize(opts.size);
  const [H, W] = opts.size;
  const base = { origWidth: width, origHeight: height };
  if (opts.mode === 'stretch') {
    const sx = W / width;
    const sy = H / height;
    return { outWidth: W, outHeight: H, newWidth: W, newHeight: H, offsetX: 0, offsetY: 0, meta: { scale: Math.min(sx, sy), scaleX: sx, scaleY: sy, padX: 0, padY: 0, ...base } };
  }
  if (opts.mode === 'center-crop') {
    const r = Math.max(H / height, W / width);
    const newWidth = Math.max(W, Math.round(width * r));
    const newHeight = Math.max(H, Math.round(height * r));
    const offsetX = 0 - Math.floor((newWidth - W) / 2); // 0 - x, not -x: no negative zero
    const offsetY = 0 - Math.floor((newHeight - H) / 2);
    return { outWidth: W, outHeight: H, newWidth, newHeight, offsetX, offsetY, meta: { scale: r, scaleX: r, scaleY: r, padX: offsetX, padY: offsetY, ...base } };
  }
  const r = Math.min(H / height, W / width);
  const newWidth = Math.max(1, Math.min(W, Math.round(width * r)));
  const newHeight = Math.max(1, Math.min(H, Math.round(height * r)));
  let outWidth = W;
  let outHeight = H;
  if (opts.auto) {
    const stride = opts.stride ?? 32;
    outWidth = newWidth + ((W - newWidth) % stride);
    outHeight = newHeight + ((H - newHeight) % stride);
  }
  const center = (opts.padPosition ?? 'center') === 'center';
  const offsetX = center ? Math.floor((outWidth - newWidth) / 2) : 0;
  const offsetY = center ? Math.floor((outHeight - newHeight) / 2) : 0;
  return { outWidth, outHeight, newWidth, newHeight, offsetX, offsetY, meta: { scale: r, scaleX: r, scaleY: r, padX: offsetX, padY: offsetY, ...base } };
}

/**
 * Bilinear resample of `img` to geometry `g`, pad colour elsewhere. Pixel centres are aligned (the
 * OpenCV INTER_LINEAR convention the Python trainer uses), with no antialiasing on downscale.
 */
export function resampleInto(img: RgbImage, g: ResizeGeometry, padValue: number): RgbImage {
  const { width: w, height: h, data: src } = img;
  const W = g.outWidth;
  const H = g.outHeight;
  const out = new Uint8Array(W * H * 3);
  out.fill(padValue);
  const x0 = Math.max(0, g.offsetX);
  const x1 = Math.min(W, g.offsetX + g.newWidth);
  const y0 = Math.max(0, g.offsetY);
  const y1 = Math.min(H, g.offsetY + g.newHeight);
  if (x1 <= x0 || y1 <= y0) return { data: out, width: W, height: H };
  if (g.newWidth === w && g.newHeight === h) {
    // Same size: a straight row copy, no resampling.
    for (let y = y0; y < y1; y++) {
      const sy = y - g.offsetY;
      const s = (sy * w + (x0 - g.offsetX)) * 3;
      out.set(src.subarray(s, s + (x1 - x0) * 3), (y * W + x0) * 3);
    }
    return { data: out, width: W, height: H };
  }
  const fx = w / g.newWidth;
  const fy = h / g.newHeight;
  const n = x1 - x0;
  // Weights in 11-bit fixed point, as OpenCV does for 8-bit images: integer maths only in the inner loop.
  const ONE = 2048;
  const colA = new Int32Array(n);
  const colB = new Int32Array(n);
  const colW = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let sx = (x0 + i - g.offsetX + 0.5) * fx - 0.5;
    if (sx < 0) sx = 0;
    let a = Math.floor(sx);
    if (a > w - 1) a = w - 1;
    colA[i] = a * 3;
    colB[i] = Math.min(a + 1, w - 1) * 3;
    colW[i] = Math.round((sx - a) * ONE);
  }
  for (let y = y0; y < y1; y++) {
    let sy = (y - g.offsetY + 0.5) * fy - 0.5;
    if (sy < 0) sy = 0;
    let ra = Math.floor(sy);
    if (ra > h - 1) ra = h - 1;
    const rb = Math.min(ra + 1, h - 1);
    const wy = Math.round((sy - ra) * ONE);
    const wy0 = ONE - wy;
    const rowA = ra * w * 3;
    const rowB = rb * w * 3;
    let o = (y * W + x0) * 3;
    for (let i = 0; i < n; i++) {
      const wx = colW[i]!;
      const wx0 = ONE - wx;
      const pa = rowA + colA[i]!;
      const pb = rowA + colB[i]!;
      const qa = rowB + colA[i]!;
      const qb = rowB + colB[i]!;
      // (top·(1−wy) + bottom·wy) stays below 2^31: 255 · 2048 · 2048.
      out[o++] = ((src[pa]! * wx0 + src[pb]! * wx) * wy0 + (src[qa]! * wx0 + src[qb]! * wx) * wy + (1 << 21)) >>> 22;
      out[o++] = ((src[pa + 1]! * wx0 + src[pb + 1]! * wx) * wy0 + (src[qa + 1]! * wx0 + src[qb + 1]! * wx) * wy + (1 << 21)) >>> 22;
      out[o++] = ((src[pa + 2]! * wx0 + src[pb + 2]! * wx) * wy0 + (src[qa + 2]! * wx0 + src[qb + 2]! * wx) * wy + (1 << 21)) >>> 22;
    }
  }
  return { data: out, width: W, height: H };
}

export interface LetterboxOptions {
  /** Output [height, width]. */
  size: readonly [number, number];
  padValue?: number;
  padPosition?: PadPosition;
  stride?: number;
  /** Pad only to the next multiple of `stride` instead of the full size (for dynamic-shape models). */
  auto?: boolean;
}

export interface ResizedImage {
  image: RgbImage;
  scale: number;
  padX: number;
  padY: number;
  meta: LetterboxMeta;
}

function resized(img: RgbImage, g: ResizeGeometry, padValue: number): ResizedImage {
  return { image: resampleInto(img, g, padValue), scale: g.meta.scale, padX: g.meta.padX, padY: g.meta.padY, meta: g.meta };
}

/** Keep aspect ratio, scale to fit, pad the rest (default grey 114). */
export function letterbox(img: RgbImage, opts: LetterboxOptions): ResizedImage {
  const g = resizeGeometry(img.width, img.height, { mode: 'letterbox', size: opts.size, padPosition: opts.padPosition ?? 'center', stride: opts.stride ?? 32, auto: opts.auto ?? false });
  return resized(img, g, opts.padValue ?? 114);
}

/** Resize to exactly `size`, ignoring aspect ratio. */
export function stretch(img: RgbImage, opts: { size: readonly [number, number] }): ResizedImage {
  return resized(img, resizeGeometry(img.width, img.height, { mode: 'stretch', size: opts.size }), 0);
}

/** Scale so the image covers `size`, then cut the centre (classifier evaluation convention). */
export function centerCrop(img: RgbImage, opts: { size: readonly [number, number] }): ResizedImage {
  return resized(img, resizeGeometry(img.width, img.height, { mode: 'center-crop', size: opts.size }), 0);
}

/** Maps an [x1,y1,x2,y2] box from network-input pixels back to original-image pixels (not clipped). */
export function unletterboxBox(box: readonly number[], meta: LetterboxMeta): [number, number, number, number] {
  const sx = meta.scaleX ?? meta.scale;
  const sy = meta.scaleY ?? meta.scale;
  return [(box[0]! - meta.padX) / sx, (box[1]! - meta.padY) / sy, (box[2]! - meta.padX) / sx, (box[3]! - meta.padY) / sy];
}

/** The forward mapping, original pixels to network-input pixels. */
export function letterboxBox(box: readonly number[], meta: LetterboxMeta): [number, number, number, number] {
  const sx = meta.scaleX ?? meta.scale;
  const sy = meta.scaleY ?? meta.scale;
  return [box[0]! * sx + meta.padX, box[1]! * sy + meta.padY, box[2]! * sx + meta.padX, box[3]! * sy + meta.padY];
}
