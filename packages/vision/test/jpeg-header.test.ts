import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { readJpegHeader } from '../src/jpeg-header.js';

const data = testDataDir(resolve(import.meta.dirname, '../../..'));

/** What libvips says of the same fields; sof only as far as libvips tells it (progressive or not). */
async function fromSharp(buf: Buffer) {
  const m = await sharp(buf).metadata();
  return { width: m.width, height: m.height, orientation: m.orientation ?? 1, components: m.channels, icc: m.hasProfile ?? false, precision: 8, complete: true };
}

const isProgressive = (h: { sof: number } | undefined) => h?.sof === 0xc2;

describe('readJpegHeader', () => {
  it('agrees with libvips on size and EXIF orientation, baseline and progressive, every orientation', async () => {
    const base = sharp({ create: { width: 37, height: 21, channels: 3, background: { r: 9, g: 99, b: 199 } } });
    for (let orientation = 1; orientation <= 8; orientation++) {
      for (const progressive of [false, true]) {
        const buf = await base.clone().jpeg({ progressive }).withMetadata({ orientation }).toBuffer();
        expect(readJpegHeader(buf)).toMatchObject(await fromSharp(buf));
        expect(isProgressive(readJpegHeader(buf))).toBe(progressive);
      }
    }
    const plain = await base.clone().jpeg().toBuffer(); // no EXIF at all
    expect(readJpegHeader(plain)).toEqual({ width: 37, height: 21, orientation: 1, sof: 0xc0, precision: 8, components: 3, sampling: [0x22, 0x11, 0x11], icc: false, adobe: false, complete: true });
    const grey = await base.clone().toColourspace('b-w').jpeg().toBuffer();
    expect(readJpegHeader(grey)).toMatchObject({ components: 1, sampling: [0x11], icc: false, adobe: false, complete: true });
    const p3 = await base.clone().jpeg().withIccProfile('p3').toBuffer();
    expect(readJpegHeader(p3)).toMatchObject({ components: 3, icc: true, complete: true });
  });

  it('gives up (undefined) on what it cannot be sure of, so libvips decides', async () => {
    const buf = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).jpeg().toBuffer();
    expect(readJpegHeader(buf.subarray(0, 40))).toBeUndefined(); // truncated before the frame header
    expect(readJpegHeader(Buffer.from('not a jpeg at all'))).toBeUndefined();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).png().toBuffer();
    expect(readJpegHeader(png)).toBeUndefined();
    const broken = Buffer.from(buf);
    broken[3] = 0x00; // the first marker's 0xFF prefix is gone
    expect(readJpegHeader(Buffer.concat([broken.subarray(0, 2), Buffer.from([0x12]), broken.subarray(3)]))).toBeUndefined();
  });

  it('cut after the frame header: the size as before, but marked incomplete (an ICC profile may be missing from the view)', async () => {
    const buf = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).jpeg().toBuffer();
    const sof = buf.indexOf(Buffer.from([0xff, 0xc0]));
    const cut = buf.subarray(0, sof + 2 + buf.readUInt16BE(sof + 2) + 3);
    expect(readJpegHeader(cut)).toMatchObject({ width: 8, height: 8, orientation: 1, complete: false });
    expect(readJpegHeader(buf)).toMatchObject({ complete: true });
  });

  it.skipIf(!data)('agrees with libvips on every real JPEG of the shared data (COCO, hymenoptera)', async () => {
    const dirs = [join(data!, 'coco128-val/images/val2017'), join(data!, 'hymenoptera/val/ants'), join(data!, 'hymenoptera/val/bees')];
    let n = 0;
    for (const dir of dirs) {
      for (const f of readdirSync(dir).filter((x) => /\.jpe?g$/i.test(x))) {
        const buf = readFileSync(join(dir, f));
        const h = readJpegHeader(buf);
        if (h === undefined) continue; // left to libvips
        expect(h, f).toMatchObject(await fromSharp(buf));
        expect(isProgressive(h), f).toBe((await sharp(buf).metadata()).isProgressive);
        n++;
      }
    }
    expect(n).toBeGreaterThan(250);
  });
});
