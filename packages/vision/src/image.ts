import { createRequire } from 'node:module';
import type { Metadata, Sharp } from 'sharp';
import type sharpFn from 'sharp';
import { CvoptError, readRegularFile } from '@cvopt/core';
import { decodeBmp, isBmp, readBmpHeader } from './bmp.js';
import { readJpegHeader, type JpegHeader } from './jpeg-header.js';

/**
 * libvips through sharp, loaded on first use: a process or thread that never decodes an encoded image (the video
 * decode thread, which gets raw frames from ffmpeg) does not pay its 100-odd ms of loading.
 */
type SharpFn = typeof sharpFn;
let sharpLib: SharpFn | undefined;
const sharp = (input: Buffer, options: NonNullable<Parameters<SharpFn>[1]>): Sharp => (sharpLib ??= createRequire(import.meta.url)('sharp') as SharpFn)(input, options);

/** Decoded pixels: HWC, RGB, 8 bits per channel, rows packed with no padding. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this, judged from the header before decoding. Default 50 MP. */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 50_000_000;
/** Largest image file read from a path (a 50 MP PNG is ~150 MB); a FIFO or device is refused outright. */
export const DEFAULT_MAX_IMAGE_BYTES = 256 << 20;

/** Formats we hand to libvips. SVG is refused: rendering it is a resource and security risk a detector never needs. */
const SHARP_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

/** An encoded image read into memory, with the name errors should carry. */
export interface EncodedImage {
  buf: Buffer;
  name: string;
}

export async function loadEncoded(input: Buffer | string, maxBytes = DEFAULT_MAX_IMAGE_BYTES): Promise<EncodedImage> {
  if (typeof input !== 'string') return { buf: input, name: '<buffer>' };
  const r = readRegularFile(input, maxBytes);
  if (r.ok) return { buf: r.bytes, name: input };
  if (r.reason === 'missing') {
    throw new CvoptError('NOT_FOUND', `image ${input} does not exist`, { where: { file: input }, hint: 'check the path' });
  }
  throw new CvoptError('IMAGE_INVALID', `cannot read image ${input}: it ${r.message}`, {
    where: { file: input },
    hint: r.reason === 'too-large' ? 'downscale or recompress the image' : 'pass an image file, not a pipe, device or folder',
  });
}

function invalid(name: string, why: string, cause?: unknown): CvoptError {
  return new CvoptError('IMAGE_INVALID', `${name}: image is corrupt, truncated or unsupported (${why})`, {
    where: { file: name },
    hint: 'use a JPEG, PNG, WebP or BMP file that opens in an image viewer',
    cause,
  });
}

function checkPixels(name: string, width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new CvoptError('IMAGE_TOO_LARGE', `${name}: ${width}x${height} is ${((width * height) / 1e6).toFixed(1)} MP, over the limit of ${(maxPixels / 1e6).toFixed(1)} MP`, {
      where: { file: name },
      hint: 'downscale the image, or raise maxPixels if such images are expected',
      details: { width, height, maxPixels },
    });
  }
}

/** Header facts: size as displayed (EXIF orientation applied) and which decoder reads it. */
export interface ImageHeader {
  kind: 'bmp' | 'sharp';
  width: number;
  height: number;
  /** The markers, when the file is a JPEG whose header was read without libvips. */
  jpeg?: JpegHeader;
}

/**
 * Reads only the header and enforces the pixel limit, so a decompression bomb is refused before any pixel
 * memory is allocated.
 */
export async function readImageHeader(enc: EncodedImage, maxPixels = DEFAULT_MAX_PIXELS): Promise<ImageHeader> {
  if (isBmp(enc.buf)) {
    const h = readBmpHeader(enc.buf, enc.name);
    checkPixels(enc.name, h.width, h.height, maxPixels);
    return { kind: 'bmp', ...h };
  }
  // JPEG, by far the common case: the markers are read here, no libvips round trip.
  const jpeg = readJpegHeader(enc.buf);
  if (jpeg) {
    checkPixels(enc.name, jpeg.width, jpeg.height, maxPixels);
    const swapped = jpeg.orientation >= 5;
    return { kind: 'sharp', width: swapped ? jpeg.height : jpeg.width, height: swapped ? jpeg.width : jpeg.height, jpeg };
  }
  let meta: Metadata;
  try {
    meta = await sharp(enc.buf, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw invalid(enc.name, (e as Error).message, e);
  }
  if (!meta.format || !SHARP_FORMATS.has(meta.format)) throw invalid(enc.name, `format ${meta.format ?? 'unknown'} is not accepted`);
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w <= 0 || h <= 0) throw invalid(enc.name, 'no dimensions in the header');
  checkPixels(enc.name, w, h, maxPixels);
  // EXIF orientations 5..8 are transposed: width and height swap once applied.
  const swap = (meta.orientation ?? 1) >= 5;
  return { kind: 'sharp', width: swap ? h : w, height: swap ? w : h };
}

/** A sharp pipeline that applies EXIF orientation; the caller adds geometry and asks for raw RGB. */
export function sharpPipeline(enc: EncodedImage, maxPixels: number): Sharp {
  // failOn 'error' refuses truncated data that libvips would otherwise pad with grey.
  return sharp(enc.buf, { limitInputPixels: maxPixels, failOn: 'error', animated: false }).autoOrient();
}

/** Runs a pipeline to raw 8-bit RGB, alpha composited onto black. */
export async function toRgb(pipeline: Sharp, name: string): Promise<RgbImage> {
  try {
    const { data, info } = await pipeline
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoder produced ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof CvoptError) throw e;
    throw invalid(name, (e as Error).message, e);
  }
}

/**
 * Decodes JPEG, PNG, WebP, BMP (and GIF/TIFF/HEIF through libvips) to RGB. EXIF orientation is applied,
 * grayscale becomes three equal channels, and alpha is composited onto black, which is also what OpenCV and
 * PIL give for the fully transparent pixels most PNGs store as (0,0,0,0).
 */
export async function decodeImage(input: Buffer | string, opts: DecodeOptions = {}): Promise<RgbImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const enc = await loadEncoded(input);
  const header = await readImageHeader(enc, maxPixels);
  if (header.kind === 'bmp') return decodeBmp(enc.buf, enc.name);
  return toRgb(sharpPipeline(enc, maxPixels), enc.name);
}
