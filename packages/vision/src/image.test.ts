import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { decodeImage, type RgbImage } from './index.js';

/** A deterministic colour pattern: every pixel distinct enough to catch channel or row mix-ups. */
function pattern(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 6) % 256;
      data[o + 1] = (y * 8) % 256;
      data[o + 2] = 200;
    }
  }
  return { data, width, height };
}

const toSharp = (img: RgbImage) => sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } });

async function expectCode(p: Promise<unknown>, code: string): Promise<CvoptError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CvoptError);
  expect((e as CvoptError).code).toBe(code);
  return e as CvoptError;
}

/** Minimal BMP writer for the tests (sharp cannot write BMP). */
function encodeBmp(img: RgbImage, bpp: 8 | 24 | 32, topDown = false): Buffer {
  const { width, height, data } = img;
  const rowBytes = Math.floor((bpp * width + 31) / 32) * 4;
  const paletteBytes = bpp === 8 ? 256 * 4 : 0;
  const offset = 14 + 40 + paletteBytes;
  const buf = Buffer.alloc(offset + rowBytes * height);
  buf.write('BM', 0, 'ascii');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  // 8-bit: a grey palette, pixel index = red channel.
  if (bpp === 8) for (let i = 0; i < 256; i++) buf.fill(i, 54 + i * 4, 54 + i * 4 + 3);
  for (let y = 0; y < height; y++) {
    const row = offset + (topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      if (bpp === 8) buf[row + x] = data[s]!;
      else {
        const o = row + x * (bpp / 8);
        buf[o] = data[s + 2]!;
        buf[o + 1] = data[s + 1]!;
        buf[o + 2] = data[s]!;
      }
    }
  }
  return buf;
}

/** A PNG that is a header claiming `width`×`height` plus an empty IDAT: a decompression bomb stand-in. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type, 'ascii'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(tb) >>> 0);
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

describe('decodeImage', () => {
  const src = pattern(40, 30);

  it('decodes lossless PNG and WebP exactly, and JPEG closely', async () => {
    for (const [fmt, enc, exact] of [
      ['png', await toSharp(src).png().toBuffer(), true],
      ['webp', await toSharp(src).webp({ lossless: true }).toBuffer(), true],
      ['jpeg', await toSharp(src).jpeg({ quality: 95 }).toBuffer(), false],
    ] as const) {
      const img = await decodeImage(enc);
      expect([fmt, img.width, img.height, img.data.length]).toEqual([fmt, 40, 30, 40 * 30 * 3]);
      if (exact) expect(Buffer.from(img.data).equals(Buffer.from(src.data))).toBe(true);
      else {
        let err = 0;
        for (let i = 0; i < img.data.length; i++) err += Math.abs(img.data[i]! - src.data[i]!);
        expect(err / img.data.length).toBeLessThan(4);
      }
    }
  });

  it('reads a file path and names missing files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-vision-'));
    const file = join(dir, 'a.png');
    writeFileSync(file, await toSharp(src).png().toBuffer());
    expect((await decodeImage(file)).width).toBe(40);
    const e = await expectCode(decodeImage(join(dir, 'missing.png')), 'NOT_FOUND');
    expect(e.where?.file).toContain('missing.png');
  });

  it('applies EXIF orientation', async () => {
    // Stored 40x20: left half red, right half blue. Orientation 6 means "rotate 90° clockwise to display",
    // so the displayed image is 20x40 with red on top.
    const stored = new Uint8Array(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) stored.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    const jpeg = await toSharp({ data: stored, width: 40, height: 20 }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(jpeg);
    expect([img.width, img.height]).toEqual([20, 40]);
    const at = (x: number, y: number) => Array.from(img.data.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3));
    expect(at(10, 5)[0]).toBeGreaterThan(200);
    expect(at(10, 5)[2]).toBeLessThan(50);
    expect(at(10, 35)[2]).toBeGreaterThan(200);
    expect(at(10, 35)[0]).toBeLessThan(50);
  });

  it('expands grayscale to three equal channels', async () => {
    const grey = Buffer.alloc(16 * 8);
    for (let i = 0; i < grey.length; i++) grey[i] = i * 2;
    const png = await sharp(grey, { raw: { width: 16, height: 8, channels: 1 } }).png().toBuffer();
    const img = await decodeImage(png);
    expect(img.data.length).toBe(16 * 8 * 3);
    for (let i = 0; i < 16 * 8; i++) expect(Array.from(img.data.subarray(i * 3, i * 3 + 3))).toEqual([i * 2, i * 2, i * 2]);
  });

  it('reduces 16-bit PNG to 8 bits and converts CMYK JPEG to RGB', async () => {
    const png16 = await toSharp(src).toColourspace('rgb16').png().toBuffer();
    const a = await decodeImage(png16);
    expect(Buffer.from(a.data).equals(Buffer.from(src.data))).toBe(true);
    const cmyk = await toSharp(src).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const b = await decodeImage(cmyk);
    expect([b.width, b.height, b.data.length]).toEqual([40, 30, 40 * 30 * 3]);
  });

  it('composites alpha onto black', async () => {
    const rgba = Buffer.from([255, 0, 0, 0, 200, 100, 50, 255, 200, 100, 50, 128, 10, 20, 30, 255]);
    const png = await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer();
    const img = await decodeImage(png);
    const px = [0, 1, 2, 3].map((i) => Array.from(img.data.subarray(i * 3, i * 3 + 3)));
    expect(px[0]).toEqual([0, 0, 0]);
    expect(px[1]).toEqual([200, 100, 50]);
    px[2]!.forEach((v, c) => expect(Math.abs(v - [100, 50, 25][c]!)).toBeLessThanOrEqual(1));
    expect(px[3]).toEqual([10, 20, 30]);
  });

  it('reads 24-bit, 32-bit and 8-bit palette BMP, bottom-up and top-down', async () => {
    const odd = pattern(13, 7); // odd width exercises row padding
    for (const [bpp, topDown] of [[24, false], [24, true], [32, false]] as const) {
      const img = await decodeImage(encodeBmp(odd, bpp, topDown));
      expect([img.width, img.height]).toEqual([13, 7]);
      expect(Buffer.from(img.data).equals(Buffer.from(odd.data))).toBe(true);
    }
    const pal = await decodeImage(encodeBmp(odd, 8, true));
    for (let i = 0; i < 13 * 7; i++) expect(Array.from(pal.data.subarray(i * 3, i * 3 + 3))).toEqual([odd.data[i * 3]!, odd.data[i * 3]!, odd.data[i * 3]!]);
  });

  it('refuses corrupt, truncated and unsupported input with IMAGE_INVALID naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-vision-'));
    const junk = join(dir, 'junk.jpg');
    writeFileSync(junk, Buffer.from('this is not an image at all, just some bytes'));
    const e = await expectCode(decodeImage(junk), 'IMAGE_INVALID');
    expect(e.where?.file).toBe(junk);
    expect(e.message).toContain(junk);
    expect(e.hint).toBeTruthy();

    const jpeg = await toSharp(pattern(64, 64)).jpeg().toBuffer();
    await expectCode(decodeImage(jpeg.subarray(0, Math.floor(jpeg.length / 2))), 'IMAGE_INVALID');
    const png = await toSharp(pattern(64, 64)).png().toBuffer();
    await expectCode(decodeImage(png.subarray(0, png.length - 40)), 'IMAGE_INVALID');
    const bmp = encodeBmp(pattern(20, 20), 24);
    await expectCode(decodeImage(bmp.subarray(0, bmp.length - 100)), 'IMAGE_INVALID');
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    await expectCode(decodeImage(svg), 'IMAGE_INVALID');
  });

  it('refuses decompression bombs from the header, before decoding', async () => {
    const e = await expectCode(decodeImage(pngHeaderOnly(100_000, 100_000)), 'IMAGE_TOO_LARGE');
    expect(e.message).toMatch(/100000x100000/);
    const bmp = encodeBmp(pattern(4, 4), 24);
    bmp.writeInt32LE(60_000, 18);
    bmp.writeInt32LE(60_000, 22);
    await expectCode(decodeImage(bmp), 'IMAGE_TOO_LARGE');
    await expectCode(decodeImage(await toSharp(src).png().toBuffer(), { maxPixels: 1000 }), 'IMAGE_TOO_LARGE');
  });
});
