import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { CvoptError, PreprocessSchema, testDataDir, type Preprocess } from '@cvopt/core';
import { readJpegHeader } from './jpeg-header.js';
import { decodeJpegWasm, jpegWasmDecodes, setJpegWasm, wasmJpegEligible, wasmJpegExact, WASM_JPEG_MAX_PIXELS } from './jpeg-wasm.js';
import { preprocess } from './preprocess.js';

const data = testDataDir(resolve(import.meta.dirname, '../../..'));
const cocoDir = data && join(data, 'coco128-val/images/val2017');

/** A colourful pattern with sharp edges and gradients: chroma upsampling and IDCT rounding both show in it. */
function pattern(width: number, height: number): sharp.Sharp {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      px[i] = (x * 7 + y * 3) & 255;
      px[i + 1] = ((x >> 3) ^ (y >> 2)) & 1 ? 230 : (x * y) & 255;
      px[i + 2] = ((x ^ y) * 5) & 255;
    }
  }
  return sharp(px, { raw: { width, height, channels: 3 } });
}

// The schema's defaults: pad 114, mean 0, std 1, centred padding, stride 32.
const spec = (size: [number, number], extra: Partial<Preprocess> = {}): Preprocess =>
  PreprocessSchema.parse({ resize: 'letterbox', size, scale: 1 / 255, channelOrder: 'RGB', ...extra });
const imagenet: Partial<Preprocess> = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

type Outcome = { tensor: Buffer; meta: unknown } | { code: string; message: string };

async function outcome(run: () => Promise<{ tensor: Float32Array; meta: unknown }>): Promise<Outcome> {
  try {
    const r = await run();
    return { tensor: Buffer.from(r.tensor.buffer, r.tensor.byteOffset, r.tensor.byteLength), meta: r.meta };
  } catch (e) {
    if (!(e instanceof CvoptError)) throw e;
    return { code: e.code, message: e.message };
  }
}

/** preprocess() with the fast path allowed and with it off (libvips only), and whether the wasm decoder produced the image. */
async function bothWays(buf: Buffer, p: Preprocess) {
  setJpegWasm(true);
  const before = jpegWasmDecodes();
  const fast = await outcome(() => preprocess(buf, p));
  const taken = jpegWasmDecodes() > before;
  setJpegWasm(false);
  const slow = await outcome(() => preprocess(buf, p));
  setJpegWasm(true);
  return { fast, slow, taken };
}

/** Byte-for-byte tensors and the same letterbox meta, or the same error (vitest's toEqual on megabyte buffers takes seconds). */
function expectSame(a: Outcome, b: Outcome, label?: string) {
  if ('tensor' in a && 'tensor' in b) {
    expect(a.tensor.equals(b.tensor), label).toBe(true);
    expect(a.meta, label).toEqual(b.meta);
  } else {
    expect(a, label).toEqual(b);
  }
}

async function expectIdentical(buf: Buffer, p: Preprocess, taken: boolean) {
  const r = await bothWays(buf, p);
  expect(r.taken).toBe(taken);
  expect('tensor' in r.slow).toBe(true);
  expectSame(r.fast, r.slow);
}

afterEach(() => {
  setJpegWasm(true);
});

describe('WebAssembly JPEG fast path', () => {
  it('gives bit-identical tensors to libvips for 4:2:0, 4:4:4 and grey JPEGs, RGB and BGR, with mean/std', async () => {
    const base = pattern(160, 160);
    const jpegs = {
      '420 q75': await base.clone().jpeg({ quality: 75 }).toBuffer(),
      '444 q90': await base.clone().jpeg({ quality: 90, chromaSubsampling: '4:4:4' }).toBuffer(),
      grey: await base.clone().toColourspace('b-w').jpeg({ quality: 80 }).toBuffer(),
    };
    expect(readJpegHeader(jpegs.grey)).toMatchObject({ components: 1 });
    expect(readJpegHeader(jpegs['444 q90'])?.sampling).toEqual([0x11, 0x11, 0x11]);
    expect(readJpegHeader(jpegs['420 q75'])?.sampling).toEqual([0x22, 0x11, 0x11]);
    for (const [name, buf] of Object.entries(jpegs)) {
      for (const extra of [{}, { channelOrder: 'BGR' as const }, imagenet, { ...imagenet, channelOrder: 'BGR' as const, scale: 1 }]) {
        await expectIdentical(buf, spec([160, 160], extra), true).catch((e: unknown) => {
          throw new Error(`${name} ${JSON.stringify(extra)}: ${(e as Error).message}`);
        });
      }
    }
  });

  it('places odd sizes with letterbox padding, row by row, and into a batch buffer at an offset', async () => {
    const wide = await pattern(160, 93).jpeg({ quality: 85 }).toBuffer(); // padding above and below
    const tall = await pattern(93, 160).jpeg({ quality: 85 }).toBuffer(); // left and right margins: packed row by row
    const odd = await pattern(157, 93).jpeg({ quality: 85, chromaSubsampling: '4:4:4' }).toBuffer();
    await expectIdentical(wide, spec([160, 160], { channelOrder: 'BGR' }), true);
    await expectIdentical(tall, spec([160, 160], { ...imagenet, padPosition: 'top-left', padValue: 0 }), true);
    await expectIdentical(odd, spec([93, 157], { resize: 'stretch' }), true); // the exact size: no resize
    await expectIdentical(odd, spec([160, 160]), false); // 157×93 letterboxed into 160 is scaled: libvips
    const p = spec([160, 160]);
    const slot = 3 * 160 * 160;
    const fast = new Float32Array(2 * slot).fill(-7);
    const slow = new Float32Array(2 * slot).fill(-7);
    await preprocess(tall, p, { out: fast, offset: slot });
    setJpegWasm(false);
    await preprocess(tall, p, { out: slow, offset: slot });
    expect(Buffer.from(fast.buffer).equals(Buffer.from(slow.buffer))).toBe(true);
    expect(fast[0]).toBe(-7); // the first slot untouched
  });

  it('takes the limit itself (320×320) and leaves larger images and those needing a resize to libvips', async () => {
    const at = await pattern(320, 320).jpeg({ quality: 80 }).toBuffer();
    await expectIdentical(at, spec([320, 320]), true);
    const over = await pattern(330, 330).jpeg({ quality: 80 }).toBuffer();
    expect(330 * 330).toBeGreaterThan(WASM_JPEG_MAX_PIXELS);
    await expectIdentical(over, spec([330, 330]), false);
    const small = await pattern(160, 160).jpeg().toBuffer();
    await expectIdentical(small, spec([320, 320]), false); // upscaled
    await expectIdentical(small, spec([128, 128], { resize: 'center-crop' }), false);
  });

  it('leaves progressive, ICC-tagged and EXIF-rotated files to libvips', async () => {
    const base = pattern(160, 160);
    const progressive = await base.clone().jpeg({ progressive: true }).toBuffer();
    const p3 = await base.clone().jpeg().withIccProfile('p3').toBuffer();
    const kept = await sharp(p3).keepIccProfile().jpeg().toBuffer();
    const rotated = await pattern(160, 93).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(readJpegHeader(progressive)).toMatchObject({ sof: 0xc2, complete: true });
    expect(readJpegHeader(p3)).toMatchObject({ icc: true, complete: true });
    expect(readJpegHeader(kept)).toMatchObject({ icc: true });
    expect(readJpegHeader(rotated)).toMatchObject({ orientation: 6 });
    for (const buf of [progressive, p3, kept, rotated]) await expectIdentical(buf, spec([160, 160]), false);
    // Had the profile been ignored, the pixels would differ: the fallback is not a formality.
    const ignored = await decodeJpegWasm(p3, readJpegHeader(p3)!);
    const sharpRgb = await sharp(p3).toColourspace('srgb').raw().toBuffer();
    let differing = 0;
    for (let i = 0; i < 160 * 160; i++) for (let c = 0; c < 3; c++) if (ignored!.data[i * 4 + c] !== sharpRgb[i * 3 + c]) differing++;
    expect(differing).toBeGreaterThan(0);
  });

  it('CVOPT_JPEG_WASM off: nothing goes through the wasm decoder', async () => {
    const buf = await pattern(160, 160).jpeg().toBuffer();
    setJpegWasm(false);
    expect(wasmJpegEligible(readJpegHeader(buf)!, buf)).toBe(false);
    const before = jpegWasmDecodes();
    await preprocess(buf, spec([160, 160]));
    expect(jpegWasmDecodes()).toBe(before);
  });

  it('truncated, corrupt and padded files give exactly what libvips gives today', async () => {
    const good = await pattern(160, 160).jpeg({ quality: 90 }).toBuffer();
    const p = spec([160, 160]);
    const sos = good.indexOf(Buffer.from([0xff, 0xda]));
    const half = good.subarray(0, good.length >> 1);
    const eoi = Buffer.from([0xff, 0xd9]);
    const marker = Buffer.from(good);
    marker.set([0xff, 0xd3], sos + 300); // a stray RST marker mid-scan: libjpeg warns
    const cases: [string, Buffer][] = [
      ['first half', half], // no EOI at the end: never tried
      ['first half + EOI', Buffer.concat([half, eoi])], // tried, libjpeg warns, libvips decides
      ['stray RST marker mid-scan', marker],
      ['trailing bytes after EOI', Buffer.concat([good, Buffer.from('trailing junk')])], // no EOI at the end
    ];
    for (const [name, buf] of cases) {
      const r = await bothWays(buf, p);
      expect(r.taken, name).toBe(false);
      expectSame(r.fast, r.slow, name);
    }
    // Garbage without 0xFF bytes can still be valid entropy-coded data: no warning, so the fast path keeps the
    // image. Its blocks then hold coefficients no encoder writes, and there libvips' SIMD IDCT (16-bit lanes)
    // and the wasm build's C IDCT wrap differently (JSIMD_FORCENONE=1 makes libvips agree): the same outcome,
    // pixels that differ only inside the corrupted blocks.
    const garbage = Buffer.from(good);
    for (let i = sos + 200; i < sos + 260; i++) garbage[i] = (i * 151) & 0x7f;
    const r = await bothWays(garbage, p);
    expect(r.taken).toBe(true);
    if (!('tensor' in r.fast && 'tensor' in r.slow)) throw new Error('both should decode');
    const a = new Float32Array(r.fast.tensor.buffer, r.fast.tensor.byteOffset, 3 * 160 * 160);
    const b = new Float32Array(r.slow.tensor.buffer, r.slow.tensor.byteOffset, 3 * 160 * 160);
    expect(a.filter((v, i) => v !== b[i]).length).toBeLessThan(a.length / 100);
    // Today's answers, kept: a truncated file is refused; with an EOI appended libjpeg only warns ("premature end
    // of data segment"), which libvips accepts, so the padded image comes from libvips, not from the wasm decoder.
    const padded = Buffer.concat([half, eoi]);
    expect(wasmJpegEligible(readJpegHeader(padded)!, padded)).toBe(true);
    expect(await decodeJpegWasm(padded, readJpegHeader(padded)!)).toBeUndefined(); // the warning was caught
    expect((await bothWays(half, p)).slow).toMatchObject({ code: 'IMAGE_INVALID', message: expect.stringContaining('premature end') });
    expect('tensor' in (await bothWays(Buffer.concat([half, eoi]), p)).slow).toBe(true);
  });

  it('a fatal libjpeg error falls back to libvips, and the decoder keeps working afterwards', async () => {
    const good = await pattern(160, 160).jpeg({ quality: 90 }).toBuffer();
    const bad = Buffer.from(good);
    const dht = bad.indexOf(Buffer.from([0xff, 0xc4]));
    bad.fill(0xff, dht + 5, dht + 5 + 16); // code counts summing far past 256: "Bogus Huffman table definition"
    const r = await bothWays(bad, spec([160, 160]));
    expect(r.taken).toBe(false);
    expectSame(r.fast, r.slow);
    expect(r.slow).toMatchObject({ code: 'IMAGE_INVALID' });
    expect(wasmJpegEligible(readJpegHeader(bad)!, bad)).toBe(true);
    expect(await decodeJpegWasm(bad, readJpegHeader(bad)!)).toBeUndefined();
    await expectIdentical(good, spec([160, 160]), true);
  });

  it.skipIf(!cocoDir || !existsSync(cocoDir))('real photos: COCO images downsized to 320 px give identical tensors', async () => {
    const files = readdirSync(cocoDir!).filter((f) => f.endsWith('.jpg')).slice(0, 6);
    let taken = 0;
    for (const f of files) {
      for (const chromaSubsampling of ['4:2:0', '4:4:4']) {
        const buf = await sharp(readFileSync(join(cocoDir!, f))).resize(320, 320, { fit: 'inside' }).jpeg({ quality: 88, chromaSubsampling }).toBuffer();
        const r = await bothWays(buf, spec([320, 320], imagenet));
        expectSame(r.fast, r.slow, f);
        if (r.taken) taken++;
      }
    }
    expect(taken).toBe(files.length * 2);
  });

  it.skipIf(!data)('decodes every eligible real JPEG of the shared data exactly as libvips does, whatever its size (restart intervals, 4:2:2, other encoders)', async () => {
    const dirs = [cocoDir!, join(data!, 'hymenoptera/val/ants'), join(data!, 'hymenoptera/val/bees')];
    let compared = 0;
    const unusual = new Set<string>();
    for (const dir of dirs) {
      for (const [k, f] of readdirSync(dir).filter((x) => /\.jpe?g$/i.test(x)).entries()) {
        const buf = readFileSync(join(dir, f));
        const h = readJpegHeader(buf);
        // The size limits are about speed, not exactness.
        if (!h || !wasmJpegExact(h, buf)) continue;
        // Every file with restart intervals or chroma subsampling, and a quarter of the plain 4:4:4 ones.
        const dri = buf.indexOf(Buffer.from([0xff, 0xdd])) >= 0 && buf.indexOf(Buffer.from([0xff, 0xdd])) < buf.indexOf(Buffer.from([0xff, 0xda]));
        if (dri) unusual.add('restart intervals');
        if (h.sampling[0] !== 0x11) unusual.add(`sampling ${h.sampling[0]!.toString(16)}`);
        if (!dri && h.sampling[0] === 0x11 && k % 4 !== 0) continue;
        const wasm = await decodeJpegWasm(buf, h);
        expect(wasm, f).toBeDefined();
        const { data: rgb, info } = await sharp(buf, { failOn: 'error' }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
        expect([info.width, info.height, info.channels], f).toEqual([h.width, h.height, 3]);
        let differing = 0;
        for (let i = 0; i < h.width * h.height; i++) for (let c = 0; c < 3; c++) if (wasm!.data[i * 4 + c] !== rgb[i * 3 + c]) differing++;
        expect(differing, f).toBe(0);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(40);
    expect([...unusual].sort()).toEqual(['restart intervals', 'sampling 21', 'sampling 22']);
  });
});
