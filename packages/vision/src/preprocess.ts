import { CvoptError, type Preprocess } from '@cvopt/core';
import { decodeBmp } from './bmp.js';
import { DEFAULT_MAX_PIXELS, loadEncoded, readImageHeader, sharpPipeline, toRgb, type RgbImage } from './image.js';
import { decodeJpegWasm, wasmJpegEligible, type RgbaImage } from './jpeg-wasm.js';
import { resampleInto, resizeGeometry, type LetterboxMeta, type ResizeGeometry } from './resize.js';

/** The fields of a manifest's preprocess block that packing and resizing read; defaults as in the schema. */
export type PreprocessSpec = Pick<Preprocess, 'resize' | 'size' | 'scale' | 'channelOrder'> & Partial<Pick<Preprocess, 'padValue' | 'mean' | 'std' | 'padPosition' | 'stride'>>;

export interface PreprocessResult {
  /** NCHW, 1×3×H×W (or the caller's `out` buffer, filled at `offset`). */
  tensor: Float32Array;
  dims: [1, 3, number, number];
  meta: LetterboxMeta;
}

export interface PreprocessOptions {
  maxPixels?: number;
  /** Pack into this buffer at `offset` (a batch buffer, or one reused across calls) instead of a fresh one. */
  out?: Float32Array;
  offset?: number;
  /**
   * For a decoded image already resized from a frame of this size (a video frame ffmpeg scaled to
   * modelFrameSize): the geometry, and so the meta that maps boxes back, are the source's, and the image is only
   * padded or cropped. It must be the source's size or modelFrameSize's. Undefined: the image's own size.
   */
  source?: { width: number; height: number } | undefined;
  /**
   * `out` already holds, at `offset`, this geometry's padding with this spec's pad value: it last packed an image
   * of the same size and spec (a frame of the same video) and nothing wrote into it since. Only the image area is
   * written then. For a buffer reused frame after frame: the padding is written once, and its cache lines, read on
   * another core by the inference, are not pulled back for the same values on every frame.
   */
  padded?: boolean;
}

function isRgbImage(x: unknown): x is RgbImage {
  return typeof x === 'object' && x !== null && !Buffer.isBuffer(x) && 'data' in x && 'width' in x && 'height' in x;
}

function geometryFor(width: number, height: number, p: PreprocessSpec): ResizeGeometry {
  return resizeGeometry(width, height, { mode: p.resize, size: p.size, padPosition: p.padPosition ?? 'center', stride: p.stride ?? 32 });
}

/** The size `p`'s resize step gives a `width`×`height` image, before letterbox padding or a center crop. */
export function modelFrameSize(width: number, height: number, p: PreprocessSpec): { width: number; height: number } {
  const g = geometryFor(width, height, p);
  return { width: g.newWidth, height: g.newHeight };
}

/** The geometry of a decoded image: its own, or its source's when it was resized from one (opts.source). */
function decodedGeometry(img: RgbImage, p: PreprocessSpec, source: PreprocessOptions['source']): ResizeGeometry {
  if (!source || (source.width === img.width && source.height === img.height)) return geometryFor(img.width, img.height, p);
  const g = geometryFor(source.width, source.height, p);
  if (img.width !== g.newWidth || img.height !== g.newHeight) {
    throw new CvoptError('TENSOR_SHAPE', `preprocess: an image resized from ${source.width}x${source.height} must be ${g.newWidth}x${g.newHeight} for this model, got ${img.width}x${img.height}`, {
      hint: 'resize it to modelFrameSize(source, spec), or pass the full-size image without `source`',
    });
  }
  return g;
}

/**
 * Image to network tensor. Encoded input goes through one libvips pipeline (decode with shrink-on-load,
 * orient, resize, crop) and one packing loop that also writes the letterbox padding; an already-decoded RgbImage (or a BMP) is resampled in JS.
 * libvips antialiases when shrinking while the JS path does not, so the two can differ by a few grey levels
 * on downscaled images; geometry is identical. A small JPEG that needs no resize is decoded in WebAssembly
 * instead (jpeg-wasm.ts), with the same pixels and a fraction of libvips' fixed cost per call.
 */
export async function preprocess(input: Buffer | string | RgbImage, p: PreprocessSpec, opts: PreprocessOptions = {}): Promise<PreprocessResult> {
  if (isRgbImage(input)) return packDecoded(input, decodedGeometry(input, p, opts.source), p, opts);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const enc = await loadEncoded(input);
  const header = await readImageHeader(enc, maxPixels);
  const g = geometryFor(header.width, header.height, p);
  if (header.kind === 'bmp') return packDecoded(decodeBmp(enc.buf, enc.name), g, p, opts);
  const [H, W] = p.size;
  const cropped = g.offsetX < 0 || g.offsetY < 0;
  const resized = g.newWidth !== header.width || g.newHeight !== header.height;
  if (!cropped && !resized && header.jpeg && wasmJpegEligible(header.jpeg, enc.buf)) {
    const rgba = await decodeJpegWasm(enc.buf, header.jpeg);
    if (rgba) return { tensor: packPlaced(rgba, 4, p, g.offsetX, g.offsetY, opts.out, opts.offset ?? 0), dims: [1, 3, H, W], meta: g.meta };
  }
  let pipe = sharpPipeline(enc, maxPixels);
  if (resized) pipe = pipe.resize(g.newWidth, g.newHeight, { fit: 'fill', kernel: 'linear' });
  if (cropped) pipe = pipe.extract({ left: -g.offsetX, top: -g.offsetY, width: g.outWidth, height: g.outHeight });
  const image = await toRgb(pipe, enc.name);
  // Letterbox padding is written by the packing loop, not by libvips: one less full-size copy.
  const tensor = cropped ? packNCHW(image, p, opts.out, opts.offset ?? 0) : packPlaced(image, 3, p, g.offsetX, g.offsetY, opts.out, opts.offset ?? 0);
  return { tensor, dims: [1, 3, H, W], meta: g.meta };
}

/**
 * The JS path: resample only the image area (or nothing, when no resize is needed) and let the packing loop
 * write the letterbox padding; crops resample straight to the output canvas.
 */
function packDecoded(img: RgbImage, g: ResizeGeometry, p: PreprocessSpec, opts: PreprocessOptions): PreprocessResult {
  const [H, W] = p.size;
  const dims: [1, 3, number, number] = [1, 3, H, W];
  if (g.offsetX < 0 || g.offsetY < 0) {
    return { tensor: packNCHW(resampleInto(img, g, p.padValue ?? 114), p, opts.out, opts.offset ?? 0), dims, meta: g.meta };
  }
  const inner =
    g.newWidth === img.width && g.newHeight === img.height
      ? img
      : resampleInto(img, { ...g, outWidth: g.newWidth, outHeight: g.newHeight, offsetX: 0, offsetY: 0 }, 0);
  return { tensor: packPlaced(inner, 3, p, g.offsetX, g.offsetY, opts.out, opts.offset ?? 0, opts.padded === true && opts.out !== undefined), dims, meta: g.meta };
}

/** Per-channel lookup tables: 256 values each, so packing is one load and one store per element. */
const lutCache = new Map<string, Float32Array>();

function lutsFor(p: PreprocessSpec): Float32Array {
  const mean = p.mean ?? [0, 0, 0];
  const std = p.std ?? [1, 1, 1];
  const key = `${p.scale}|${mean.join(',')}|${std.join(',')}`;
  let lut = lutCache.get(key);
  if (!lut) {
    lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v * p.scale - mean[c]!) / std[c]!;
    if (lutCache.size > 64) lutCache.clear();
    lutCache.set(key, lut);
  }
  return lut;
}

/**
 * Packs an already-sized HWC RGB image into CHW floats at `offset` of `out` (a batch buffer, or a fresh one).
 * Each value is (pixel × scale − mean[c]) / std[c], where c indexes the model's channels, i.e. mean and std
 * are given in the model's channel order (after the RGB/BGR swap).
 */
export function packNCHW(image: RgbImage, p: PreprocessSpec, out?: Float32Array, offset = 0): Float32Array {
  const [H, W] = p.size;
  if (image.width !== W || image.height !== H) {
    throw new CvoptError('TENSOR_SHAPE', `packNCHW: image is ${image.width}x${image.height} but the model input is ${W}x${H}`, {
      hint: 'letterbox, stretch or crop the image to preprocess.size first (preprocess() does this)',
    });
  }
  return packPlaced(image, 3, p, 0, 0, out, offset);
}

/**
 * Packs `image` with its top-left corner at (x0, y0) of the p.size canvas; the rest gets the pad value.
 * `stride` is the bytes per source pixel: 3 for RGB, 4 for RGBA (alpha ignored).
 */
function packPlaced(image: RgbImage | RgbaImage, stride: 3 | 4, p: PreprocessSpec, x0: number, y0: number, out: Float32Array | undefined, offset: number, padded = false): Float32Array {
  const [H, W] = p.size;
  const { width: w, height: h } = image;
  if (x0 < 0 || y0 < 0 || x0 + w > W || y0 + h > H) {
    throw new CvoptError('TENSOR_SHAPE', `an image of ${w}x${h} at (${x0}, ${y0}) does not fit the ${W}x${H} model input`);
  }
  const plane = H * W;
  const dst = out ?? new Float32Array(3 * plane);
  if (offset < 0 || offset + 3 * plane > dst.length) {
    throw new CvoptError('TENSOR_SHAPE', `packNCHW: buffer of ${dst.length} floats has no room for 3x${H}x${W} at offset ${offset}`);
  }
  const lut = lutsFor(p);
  const pad = p.padValue ?? 114;
  const bgr = p.channelOrder === 'BGR';
  for (let k = 0; k < 3 && !padded; k++) {
    const v = lut[k * 256 + pad]!;
    const d = offset + k * plane;
    // Pad bands above and below, then the left and right margins of the image rows.
    if (y0 > 0) dst.fill(v, d, d + y0 * W);
    if (y0 + h < H) dst.fill(v, d + (y0 + h) * W, d + plane);
    if (w < W) {
      for (let y = y0; y < y0 + h; y++) {
        if (x0 > 0) dst.fill(v, d + y * W, d + y * W + x0);
        if (x0 + w < W) dst.fill(v, d + y * W + x0 + w, d + (y + 1) * W);
      }
    }
  }
  const src = image.data;
  const pack = stride === 4 ? (bgr ? packBgrFromRgba : packRgbFromRgba) : bgr ? packBgr : packRgb;
  if (w === W) {
    // Rows are contiguous in the destination: one loop over the whole image.
    pack(src, lut, dst, offset + y0 * W, plane, 0, w * h);
  } else {
    for (let y = 0; y < h; y++) pack(src, lut, dst, offset + (y0 + y) * W + x0, plane, y * w * stride, w);
  }
  return dst;
}

// Two loops with constant source offsets: measurably faster than one loop with variable ones.
function packRgb(src: Uint8Array, lut: Float32Array, dst: Float32Array, d0: number, plane: number, s0: number, n: number): void {
  const d1 = d0 + plane;
  const d2 = d1 + plane;
  for (let i = 0, s = s0; i < n; i++, s += 3) {
    dst[d0 + i] = lut[src[s]!]!;
    dst[d1 + i] = lut[256 + src[s + 1]!]!;
    dst[d2 + i] = lut[512 + src[s + 2]!]!;
  }
}

function packBgr(src: Uint8Array, lut: Float32Array, dst: Float32Array, d0: number, plane: number, s0: number, n: number): void {
  const d1 = d0 + plane;
  const d2 = d1 + plane;
  for (let i = 0, s = s0; i < n; i++, s += 3) {
    dst[d0 + i] = lut[src[s + 2]!]!;
    dst[d1 + i] = lut[256 + src[s + 1]!]!;
    dst[d2 + i] = lut[512 + src[s]!]!;
  }
}

// The same for RGBA sources (the WebAssembly JPEG decoder's output): stride 4, alpha never read.
function packRgbFromRgba(src: Uint8Array, lut: Float32Array, dst: Float32Array, d0: number, plane: number, s0: number, n: number): void {
  const d1 = d0 + plane;
  const d2 = d1 + plane;
  for (let i = 0, s = s0; i < n; i++, s += 4) {
    dst[d0 + i] = lut[src[s]!]!;
    dst[d1 + i] = lut[256 + src[s + 1]!]!;
    dst[d2 + i] = lut[512 + src[s + 2]!]!;
  }
}

function packBgrFromRgba(src: Uint8Array, lut: Float32Array, dst: Float32Array, d0: number, plane: number, s0: number, n: number): void {
  const d1 = d0 + plane;
  const d2 = d1 + plane;
  for (let i = 0, s = s0; i < n; i++, s += 4) {
    dst[d0 + i] = lut[src[s + 2]!]!;
    dst[d1 + i] = lut[256 + src[s + 1]!]!;
    dst[d2 + i] = lut[512 + src[s]!]!;
  }
}
