import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { CvoptError, type Preprocess } from '@cvopt/core';
import { centerCrop, letterbox, letterboxBox, packNCHW, preprocess, resizeGeometry, stretch, unletterboxBox, type RgbImage } from './index.js';

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { data, width, height };
}

const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

const yolo: Preprocess = {
  resize: 'letterbox',
  size: [640, 640],
  padValue: 114,
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  channelOrder: 'RGB',
  padPosition: 'center',
  stride: 32,
};

describe('letterbox geometry', () => {
  it('scales by the min ratio and centres the padding', () => {
    const g = resizeGeometry(1280, 720, { mode: 'letterbox', size: [640, 640] });
    expect([g.newWidth, g.newHeight, g.offsetX, g.offsetY]).toEqual([640, 360, 0, 140]);
    expect(g.meta.scale).toBe(0.5);
    const odd = resizeGeometry(100, 51, { mode: 'letterbox', size: [64, 64] });
    // 51 × 0.64 = 32.64 → 33 rows, 31 rows of padding: 15 above, 16 below.
    expect([odd.newWidth, odd.newHeight, odd.offsetY]).toEqual([64, 33, 15]);
  });

  it('pads at the bottom-right for top-left placement (YOLOX)', () => {
    const g = resizeGeometry(640, 480, { mode: 'letterbox', size: [416, 416], padPosition: 'top-left' });
    expect([g.newWidth, g.newHeight, g.offsetX, g.offsetY]).toEqual([416, 312, 0, 0]);
  });

  it('auto mode pads only to the stride', () => {
    const g = resizeGeometry(1280, 720, { mode: 'letterbox', size: [640, 640], auto: true, stride: 32 });
    expect([g.outWidth, g.outHeight, g.offsetY]).toEqual([640, 384, 12]);
  });

  it('letterbox puts pixels and padding where the geometry says, and boxes round-trip', () => {
    const img = solid(200, 100, [10, 200, 30]);
    const lb = letterbox(img, { size: [64, 64] });
    expect([lb.image.width, lb.image.height, lb.padX, lb.padY, lb.scale]).toEqual([64, 64, 0, 16, 0.32]);
    expect(px(lb.image, 5, 5)).toEqual([114, 114, 114]);
    expect(px(lb.image, 5, 60)).toEqual([114, 114, 114]);
    expect(px(lb.image, 30, 32)).toEqual([10, 200, 30]);
    const box = [20, 10, 150, 90];
    const inNet = letterboxBox(box, lb.meta);
    expect(inNet[1]).toBeCloseTo(10 * 0.32 + 16, 9);
    unletterboxBox(inNet, lb.meta).forEach((v, i) => expect(v).toBeCloseTo(box[i]!, 9));
  });

  it('stretch and center-crop map boxes back too', () => {
    const img = solid(300, 100, [1, 2, 3]);
    const st = stretch(img, { size: [50, 60] });
    expect([st.image.width, st.image.height]).toEqual([60, 50]);
    unletterboxBox(letterboxBox([30, 20, 90, 80], st.meta), st.meta).forEach((v, i) => expect(v).toBeCloseTo([30, 20, 90, 80][i]!, 9));
    const cc = centerCrop(img, { size: [50, 50] });
    expect([cc.image.width, cc.image.height, cc.scale, cc.padX, cc.padY]).toEqual([50, 50, 0.5, -50, 0]);
    // The centre of the original is the centre of the crop.
    expect(letterboxBox([150, 50, 150, 50], cc.meta).slice(0, 2)).toEqual([25, 25]);
  });

  it('bilinear upscaling interpolates between neighbours', () => {
    const img: RgbImage = { data: new Uint8Array([0, 0, 0, 100, 100, 100]), width: 2, height: 1 };
    const out = stretch(img, { size: [1, 4] }).image;
    // Pixel centres at 0.25, 0.75, 1.25, 1.75 in source pixels minus 0.5 → clamp, 0.25, 0.75, clamp.
    expect([0, 1, 2, 3].map((x) => px(out, x, 0)[0])).toEqual([0, 25, 75, 100]);
  });
});

describe('packNCHW', () => {
  const img: RgbImage = { data: new Uint8Array([10, 20, 30, 40, 50, 60]), width: 2, height: 1 };
  const base = { resize: 'letterbox' as const, size: [1, 2] as [number, number] };

  it('lays out planes in RGB or BGR order with scale', () => {
    expect(Array.from(packNCHW(img, { ...base, scale: 1, channelOrder: 'RGB' }))).toEqual([10, 40, 20, 50, 30, 60]);
    expect(Array.from(packNCHW(img, { ...base, scale: 1, channelOrder: 'BGR' }))).toEqual([30, 60, 20, 50, 10, 40]);
    const f = packNCHW(img, { ...base, scale: 1 / 255, channelOrder: 'RGB' });
    expect(f[0]).toBeCloseTo(10 / 255, 6);
  });

  it('applies mean and std per model channel', () => {
    const mean: [number, number, number] = [0.485, 0.456, 0.406];
    const std: [number, number, number] = [0.229, 0.224, 0.225];
    const f = packNCHW(img, { ...base, scale: 1 / 255, mean, std, channelOrder: 'RGB' });
    expect(f[0]).toBeCloseTo((10 / 255 - 0.485) / 0.229, 5);
    expect(f[3]).toBeCloseTo((50 / 255 - 0.456) / 0.224, 5);
    expect(f[5]).toBeCloseTo((60 / 255 - 0.406) / 0.225, 5);
  });

  it('packs into a batch buffer at an offset and refuses wrong sizes', () => {
    const batch = new Float32Array(2 * 6).fill(-1);
    packNCHW(img, { ...base, scale: 1, channelOrder: 'RGB' }, batch, 6);
    expect(Array.from(batch)).toEqual([-1, -1, -1, -1, -1, -1, 10, 40, 20, 50, 30, 60]);
    expect(() => packNCHW(img, { ...base, size: [2, 2], scale: 1, channelOrder: 'RGB' })).toThrow(CvoptError);
    expect(() => packNCHW(img, { ...base, scale: 1, channelOrder: 'RGB' }, batch, 8)).toThrow(/no room/);
  });
});

describe('preprocess', () => {
  it('encoded and decoded inputs give the same tensor when no resampling is needed', async () => {
    const img = solid(64, 48, [200, 100, 50]);
    img.data[(10 * 64 + 10) * 3] = 0;
    const png = await sharp(Buffer.from(img.data), { raw: { width: 64, height: 48, channels: 3 } }).png().toBuffer();
    const p: Preprocess = { ...yolo, size: [64, 64] };
    const a = await preprocess(png, p);
    const b = await preprocess(img, p);
    expect(a.dims).toEqual([1, 3, 64, 64]);
    expect(a.meta).toEqual(b.meta);
    expect(a.meta).toMatchObject({ padX: 0, padY: 8, scale: 1, origWidth: 64, origHeight: 48 });
    expect(Buffer.from(a.tensor.buffer).equals(Buffer.from(b.tensor.buffer))).toBe(true);
    expect(a.tensor[0]).toBeCloseTo(114 / 255, 6);
    expect(a.tensor[(8 + 10) * 64 + 10]).toBe(0);
    // Packing straight into the second slot of a batch buffer.
    const batch = new Float32Array(2 * 3 * 64 * 64);
    const c = await preprocess(png, p, { out: batch, offset: 3 * 64 * 64 });
    expect(c.tensor).toBe(batch);
    expect(batch[0]).toBe(0);
    expect(Buffer.from(batch.buffer, 3 * 64 * 64 * 4).equals(Buffer.from(a.tensor.buffer))).toBe(true);
  });

  it('a decoded image that needs resampling gives exactly letterbox() + packNCHW()', async () => {
    const data = new Uint8Array(203 * 101 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
    const img: RgbImage = { data, width: 203, height: 101 };
    for (const p of [
      { ...yolo, size: [64, 64] },
      { ...yolo, size: [48, 80], channelOrder: 'BGR', padPosition: 'top-left', padValue: 0 },
      { ...yolo, size: [32, 32], resize: 'center-crop' },
      { ...yolo, size: [30, 50], resize: 'stretch' },
    ] as Preprocess[]) {
      const r = await preprocess(img, p);
      const ref =
        p.resize === 'letterbox'
          ? letterbox(img, { size: p.size, padValue: p.padValue, padPosition: p.padPosition }).image
          : p.resize === 'stretch'
            ? stretch(img, { size: p.size }).image
            : centerCrop(img, { size: p.size }).image;
      expect(Array.from(r.tensor)).toEqual(Array.from(packNCHW(ref, p)));
    }
  });

  it('padded: a buffer reused for a same-size frame gets only its image area rewritten, and equals a fresh pack', async () => {
    const p: Preprocess = { ...yolo, size: [64, 64] };
    const source = { width: 320, height: 180 }; // ffmpeg scaled it to 64x36: pad bands of 14 rows above and below
    const frame = (seed: number): RgbImage => {
      const data = new Uint8Array(64 * 36 * 3);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed) % 256;
      return { data, width: 64, height: 36 };
    };
    const out = new Float32Array(3 * 64 * 64);
    await preprocess(frame(1), p, { source, out });
    // A marker in the padding: padded leaves it alone, so the pad really is not rewritten
    out[0] = -1;
    await preprocess(frame(2), p, { source, out, padded: true });
    expect(out[0]).toBe(-1);
    out[0] = 114 / 255;
    const fresh = await preprocess(frame(2), p, { source });
    expect(Array.from(out)).toEqual(Array.from(fresh.tensor));
    // Without `out` there is nothing to keep: padded is ignored and the fresh buffer is padded
    const ignored = await preprocess(frame(2), p, { source, padded: true });
    expect(Array.from(ignored.tensor)).toEqual(Array.from(fresh.tensor));
  });

  it('letterboxes a downscaled JPEG with YOLOX settings (BGR, 0..255, top-left)', async () => {
    const jpeg = await sharp(Buffer.from(solid(640, 480, [250, 128, 5]).data), { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 98 }).toBuffer();
    const p: Preprocess = { ...yolo, size: [416, 416], scale: 1, channelOrder: 'BGR', padPosition: 'top-left' };
    const r = await preprocess(jpeg, p);
    expect(r.meta).toMatchObject({ padX: 0, padY: 0, scale: 0.65, origWidth: 640, origHeight: 480 });
    const plane = 416 * 416;
    const at = (c: number, x: number, y: number) => r.tensor[c * plane + y * 416 + x]!;
    expect(Math.abs(at(0, 100, 100) - 5)).toBeLessThan(4); // B first
    expect(Math.abs(at(2, 100, 100) - 250)).toBeLessThan(4);
    expect(at(0, 100, 400)).toBe(114); // below 312 rows of image
  });
});
