import { CvoptError } from '@cvopt/core';
import type { RgbImage } from './image.js';

/**
 * A small BMP reader: libvips as bundled with sharp has no BMP loader. Covers what cameras, Windows and dataset
 * tools write: 1/4/8-bit palettes, 16-bit (5-5-5 or bit fields), 24-bit and 32-bit, bottom-up or top-down.
 * RLE compression is refused with a hint to convert.
 */

export function isBmp(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x42 && buf[1] === 0x4d;
}

export interface BmpHeader {
  width: number;
  height: number;
}

interface ParsedHeader extends BmpHeader {
  topDown: boolean;
  bpp: number;
  compression: number;
  dataOffset: number;
  paletteOffset: number;
  paletteEntrySize: number;
  paletteCount: number;
  masks: [number, number, number, number] | undefined;
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

function parseHeader(buf: Buffer, name: string): ParsedHeader {
  const bad = (why: string): never => {
    throw new CvoptError('IMAGE_INVALID', `${name}: not a readable BMP (${why})`, {
      where: { file: name },
      hint: 'the file is corrupt or truncated; re-export it as PNG or JPEG',
    });
  };
  if (buf.length < 26) bad('file shorter than the BMP headers');
  const dataOffset = buf.readUInt32LE(10);
  const dibSize = buf.readUInt32LE(14);
  let width: number;
  let rawHeight: number;
  let bpp: number;
  let compression = BI_RGB;
  let clrUsed = 0;
  if (dibSize === 12) {
    width = buf.readUInt16LE(18);
    rawHeight = buf.readInt16LE(20);
    bpp = buf.readUInt16LE(24);
  } else if (dibSize >= 40) {
    if (buf.length < 14 + 40) bad('truncated info header');
    width = buf.readInt32LE(18);
    rawHeight = buf.readInt32LE(22);
    bpp = buf.readUInt16LE(28);
    compression = buf.readUInt32LE(30);
    clrUsed = buf.readUInt32LE(46);
  } else {
    return bad(`unknown header size ${dibSize}`);
  }
  if (width <= 0 || rawHeight === 0) bad(`invalid dimensions ${width}x${rawHeight}`);
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) bad(`unsupported bit depth ${bpp}`);
  let masks: [number, number, number, number] | undefined;
  if (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) {
    if (bpp !== 16 && bpp !== 32) bad(`bit fields with ${bpp}-bit pixels`);
    const at = 14 + 40;
    const n = compression === BI_ALPHABITFIELDS || dibSize >= 56 ? 4 : 3;
    if (buf.length < at + 4 * n) bad('truncated colour masks');
    masks = [buf.readUInt32LE(at), buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8), n === 4 ? buf.readUInt32LE(at + 12) : 0];
  } else if (compression !== BI_RGB) {
    throw new CvoptError('IMAGE_INVALID', `${name}: compressed BMP (compression type ${compression}) is not supported`, {
      where: { file: name },
      hint: 'convert the image to PNG or JPEG, or save the BMP uncompressed',
    });
  }
  const paletteEntrySize = dibSize === 12 ? 3 : 4;
  const paletteCount = bpp <= 8 ? clrUsed || 1 << bpp : 0;
  // A 40-byte header with bit fields keeps its masks between the header and the pixels.
  const paletteOffset = 14 + dibSize + (dibSize === 40 && masks ? (compression === BI_ALPHABITFIELDS ? 16 : 12) : 0);
  return {
    width,
    height: Math.abs(rawHeight),
    topDown: rawHeight < 0,
    bpp,
    compression,
    dataOffset,
    paletteOffset,
    paletteEntrySize,
    paletteCount,
    masks,
  };
}

/** Dimensions from the header alone, so size limits apply before any pixel is read. */
export function readBmpHeader(buf: Buffer, name: string): BmpHeader {
  const h = parseHeader(buf, name);
  return { width: h.width, height: h.height };
}

function maskShift(mask: number): { shift: number; max: number } {
  if (mask === 0) return { shift: 0, max: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  return { shift, max: mask >>> shift };
}

export function decodeBmp(buf: Buffer, name: string): RgbImage {
  const h = parseHeader(buf, name);
  const { width, height, bpp } = h;
  const rowBytes = Math.floor((bpp * width + 31) / 32) * 4;
  const needed = h.dataOffset + rowBytes * (height - 1) + Math.ceil((bpp * width) / 8);
  if (buf.length < needed) {
    throw new CvoptError('IMAGE_INVALID', `${name}: BMP is truncated (${buf.length} bytes, pixels need ${needed})`, {
      where: { file: name },
      hint: 'the file was cut short; copy or export it again',
    });
  }
  const out = new Uint8Array(width * height * 3);
  let palette: Uint8Array | undefined;
  if (bpp <= 8) {
    palette = new Uint8Array(256 * 3);
    for (let i = 0; i < Math.min(h.paletteCount, 256); i++) {
      const at = h.paletteOffset + i * h.paletteEntrySize;
      if (at + 3 > buf.length) break;
      palette[i * 3] = buf[at + 2]!;
      palette[i * 3 + 1] = buf[at + 1]!;
      palette[i * 3 + 2] = buf[at]!;
    }
  }
  const masks = h.masks ?? (bpp === 16 ? [0x7c00, 0x03e0, 0x001f, 0] : bpp === 32 ? [0xff0000, 0xff00, 0xff, 0] : undefined);
  const fields = masks?.map(maskShift);
  for (let y = 0; y < height; y++) {
    const src = h.dataOffset + (h.topDown ? y : height - 1 - y) * rowBytes;
    let o = y * width * 3;
    if (bpp === 24) {
      for (let x = 0, s = src; x < width; x++, s += 3, o += 3) {
        out[o] = buf[s + 2]!;
        out[o + 1] = buf[s + 1]!;
        out[o + 2] = buf[s]!;
      }
    } else if (bpp <= 8) {
      const perByte = 8 / bpp;
      const lowMask = (1 << bpp) - 1;
      for (let x = 0; x < width; x++, o += 3) {
        const byte = buf[src + Math.floor(x / perByte)]!;
        const idx = (byte >> (8 - bpp * ((x % perByte) + 1))) & lowMask;
        out[o] = palette![idx * 3]!;
        out[o + 1] = palette![idx * 3 + 1]!;
        out[o + 2] = palette![idx * 3 + 2]!;
      }
    } else {
      const [r, g, b, a] = fields as [{ shift: number; max: number }, { shift: number; max: number }, { shift: number; max: number }, { shift: number; max: number }];
      const step = bpp / 8;
      for (let x = 0, s = src; x < width; x++, s += step, o += 3) {
        const v = bpp === 16 ? buf.readUInt16LE(s) : buf.readUInt32LE(s);
        // Alpha, when the file declares it, composites onto black like every other decoded format.
        const alpha = a.max ? ((v >>> a.shift) & a.max) / a.max : 1;
        out[o] = Math.round((((v >>> r.shift) & r.max) * 255 * alpha) / (r.max || 1));
        out[o + 1] = Math.round((((v >>> g.shift) & g.max) * 255 * alpha) / (g.max || 1));
        out[o + 2] = Math.round((((v >>> b.shift) & b.max) * 255 * alpha) / (b.max || 1));
      }
    }
  }
  return { data: out, width, height };
}
