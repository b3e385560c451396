import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { failure } from '../test/failure.js';
import { preprocess, readPreparedFrames, readVideoFrames, type PreprocessSpec } from './index.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-video-prep-'));
const dataDir = testDataDir();

// A real H.264 file made here, so the test needs no shared data: ffmpeg's moving test pattern, 320×180, 20 frames.
const synthetic = join(tmp, 'pattern.mp4');
const made = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=10', '-frames:v', '20', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-y', synthetic]);
if (made.status !== 0) throw new Error(`ffmpeg could not make the test video: ${made.stderr.toString()}`);

const letterbox: PreprocessSpec = { resize: 'letterbox', size: [160, 160], scale: 1 / 255, channelOrder: 'RGB', padValue: 114 };
const stretchBgr: PreprocessSpec = { resize: 'stretch', size: [96, 128], scale: 1, channelOrder: 'BGR', mean: [103.5, 116.3, 123.7], std: [57.4, 57.1, 58.4] };

/**
 * The reference, on this thread: readVideoFrames' model-size frames (scaled by ffmpeg) preprocessed with their
 * source size, and the full frames of a plain decode (what keepImage must hand out).
 */
async function direct(file: string, spec: PreprocessSpec, maxFrames: number, stride = 1) {
  const out = [];
  for await (const f of readVideoFrames(file, { maxFrames, forModel: { spec } })) {
    if (f.index % stride === 0) out.push({ index: f.index, pre: await preprocess(f.image, spec, { source: f.source }) });
  }
  const full = [];
  for await (const f of readVideoFrames(file, { maxFrames })) if (f.index % stride === 0) full.push(f.image);
  return out.map((o, k) => ({ ...o, image: full[k]! }));
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('readPreparedFrames (decode and preprocess on a worker thread)', () => {
  const cases: [string, string, PreprocessSpec, number][] = [
    ['the synthetic pattern, letterboxed (ffmpeg scales 320x180 to 160x90)', synthetic, letterbox, 20],
    ['the synthetic pattern, stretched to BGR with mean/std', synthetic, stretchBgr, 20],
    ['the synthetic pattern, center-cropped (ffmpeg scales to the covering 114x64)', synthetic, { ...letterbox, resize: 'center-crop', size: [64, 64] }, 6],
    ['the synthetic pattern, letterboxed up to 480 (no ffmpeg scaling: frames are never enlarged there)', synthetic, { ...letterbox, size: [480, 480] }, 4],
    ...(dataDir ? ([['car-detection.mp4 (shared data), letterboxed to 640', join(dataDir, 'video/car-detection.mp4'), { ...letterbox, size: [640, 640] }, 12]] as [string, string, PreprocessSpec, number][]) : []),
  ];
  for (const [name, file, spec, n] of cases) {
    it(`gives bit for bit the tensors, geometry and frames of the direct path, with and without keepImage: ${name}`, async () => {
      const want = await direct(file, spec, n);
      for (const keepImage of [true, false]) {
        const got = [];
        for await (const f of readPreparedFrames(file, { spec, keepImage, maxFrames: n })) got.push(f);
        expect(got.map((f) => f.index)).toEqual(want.map((f) => f.index));
        expect(got).toHaveLength(n);
        for (let k = 0; k < n; k++) {
          expect(got[k]!.pre.dims).toEqual(want[k]!.pre.dims);
          expect(got[k]!.pre.meta).toEqual(want[k]!.pre.meta);
          expect(got[k]!.pre.meta.origWidth).toBe(want[k]!.image.width);
          expect(same(got[k]!.pre.tensor, want[k]!.pre.tensor)).toBe(true);
          if (keepImage) expect(Buffer.from(got[k]!.image!.data).equals(Buffer.from(want[k]!.image.data))).toBe(true);
          else expect(got[k]!.image).toBeUndefined();
          expect(got[k]!.ms).toBeGreaterThanOrEqual(0);
        }
      }
    });
  }

  it.skipIf(!dataDir)('on a real video, frames come within a few grey levels of the image path: preprocess() of the same frames saved as PNG (libvips)', async () => {
    const video = join(dataDir!, 'video/car-detection.mp4');
    const dir = mkdtempSync(join(tmp, 'png-'));
    const made = spawnSync('ffmpeg', ['-v', 'error', '-threads', '1', '-i', video, '-frames:v', '4', '-y', join(dir, 'f%d.png')]);
    expect(made.status).toBe(0);
    for (const size of [160, 640] as const) {
      const spec = { ...letterbox, size: [size, size] as [number, number] };
      const fromVideo = await direct(video, spec, 4);
      for (let k = 0; k < 4; k++) {
        const image = await preprocess(join(dir, `f${k + 1}.png`), spec);
        const got = fromVideo[k]!.pre;
        expect(got.meta).toEqual(image.meta);
        let worst = 0;
        for (let i = 0; i < image.tensor.length; i++) worst = Math.max(worst, Math.abs(image.tensor[i]! - got.tensor[i]!) * 255);
        // 4 measured; point-sampled bilinear of the full frame (the path before) was up to 69 off at 160 px
        expect(worst).toBeLessThanOrEqual(6);
      }
    }
  });

  it('packs later frames into the buffers released to it, with the same tensors as fresh ones', async () => {
    for (const spec of [letterbox, { ...letterbox, resize: 'center-crop', size: [64, 64] } as PreprocessSpec]) {
      const want = await direct(synthetic, spec, 20);
      const copies: Float32Array[] = [];
      const frames = [];
      for await (const f of readPreparedFrames(synthetic, { spec, maxFrames: 20, depth: 2 })) {
        copies.push(f.pre.tensor.slice());
        frames.push(f);
        f.release();
        f.release(); // a second call changes nothing
      }
      expect(copies).toHaveLength(20);
      for (let k = 0; k < 20; k++) expect(same(copies[k]!, want[k]!.pre.tensor)).toBe(true);
      // A released buffer went back to the decode thread (its tensor here is empty now) and came back as a later frame's.
      const sentBack = frames.filter((f) => f.pre.tensor.length === 0).length;
      expect(sentBack).toBeGreaterThanOrEqual(18);
    }
  });

  it.skipIf(process.platform !== 'linux')('runs its decode thread at the nice value asked for ffmpeg, and leaves this thread as it was', async () => {
    const base = getPriority();
    // A task's stat fields after its name: [0] state, [1] parent pid, ..., [16] nice.
    const statOf = (path: string) => {
      const st = readFileSync(path, 'utf8');
      return { name: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), f: st.slice(st.lastIndexOf(')') + 2).split(' ') };
    };
    const niceOf = (tid: string) => Number(statOf(`/proc/self/task/${tid}/stat`).f[16]);
    const before = new Set(readdirSync('/proc/self/task'));
    // ffmpeg: this process's child, niced once (not once by inheritance from the decode thread and once more)
    const ffmpegNice = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .flatMap((p) => {
          try {
            const { name, f } = statOf(`/proc/${p}/stat`);
            return Number(f[1]) === process.pid && name === 'ffmpeg' ? [Number(f[16])] : [];
          } catch {
            return [];
          }
        });
    let seen: number[] = [];
    let decoder: number[] = [];
    // All 20 frames asked for, the loop held at the first: ffmpeg is still running, blocked on a full pipe.
    for await (const f of readPreparedFrames(synthetic, { spec: letterbox, nice: 5 })) {
      seen = readdirSync('/proc/self/task').filter((t) => !before.has(t)).map(niceOf);
      decoder = ffmpegNice();
      if (f.index === 0) break;
    }
    expect(seen).toContain(Math.min(19, base + 5));
    expect(getPriority()).toBe(base);
    expect(decoder).toEqual([Math.min(19, base + 5)]);
  });

  it('keeps every n-th frame with stride, and hands out no full frame unless asked', async () => {
    const want = await direct(synthetic, letterbox, 20, 3);
    const got = [];
    for await (const f of readPreparedFrames(synthetic, { spec: letterbox, stride: 3, depth: 1 })) got.push(f);
    expect(got.map((f) => f.index)).toEqual([0, 3, 6, 9, 12, 15, 18]);
    expect(got.every((f) => f.image === undefined)).toBe(true);
    got.forEach((f, k) => expect(same(f.pre.tensor, want[k]!.pre.tensor)).toBe(true));
  });

  it('stops on break and on abort (CANCELLED), and passes the decode errors through with their codes', async () => {
    let last = -1;
    for await (const f of readPreparedFrames(synthetic, { spec: letterbox })) {
      last = f.index;
      if (f.index === 2) break;
    }
    expect(last).toBe(2);
    const ac = new AbortController();
    const cancelled = await failure(
      (async () => {
        for await (const f of readPreparedFrames(synthetic, { spec: letterbox, signal: ac.signal })) if (f.index === 1) ac.abort();
      })(),
    );
    expect(cancelled.code).toBe('CANCELLED');
    const missing = await failure((async () => {
      for await (const _ of readPreparedFrames(join(tmp, 'nope.mp4'), { spec: letterbox }));
    })());
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.where?.file).toBe(join(tmp, 'nope.mp4'));
    const junk = join(tmp, 'junk.mp4');
    writeFileSync(junk, Buffer.alloc(20_000, 7));
    expect((await failure((async () => {
      for await (const _ of readPreparedFrames(junk, { spec: letterbox }));
    })())).code).toBe('VIDEO_INVALID');
    expect((await failure((async () => {
      for await (const _ of readPreparedFrames(synthetic, { spec: letterbox, depth: 0 }));
    })())).code).toBe('INVALID_ARGUMENT');
  });
});
