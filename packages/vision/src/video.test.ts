import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, testDataDir } from '@cvopt/core';
import { failure } from '../test/failure.js';
import { preprocess, probeVideo, readVideoFrames, readVideoFramesBlocking, type PreprocessSpec } from './index.js';

const dataDir = testDataDir();
if (!dataDir) console.warn('skipping real-video tests: shared test data not found (set CVOPT_TEST_DATA)');
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-video-'));


async function drain(file: string, opts: Parameters<typeof readVideoFrames>[1] = {}): Promise<number> {
  let n = 0;
  for await (const _ of readVideoFrames(file, opts)) n++;
  return n;
}

describe.skipIf(!dataDir)('video on the real car-detection.mp4', () => {
  const video = join(dataDir ?? '', 'video/car-detection.mp4');

  it('probes size, rate, length and codec', async () => {
    const info = await probeVideo(video);
    expect(info).toMatchObject({ width: 768, height: 432, frames: 377, framesExact: true, codec: 'h264' });
    expect(info.fps).toBeCloseTo(12.5, 6);
    expect(info.durationS).toBeCloseTo(30.16, 2);
  });

  it('decodes all 377 frames at 768×432 RGB, in order', async () => {
    let n = 0;
    let mean = 0;
    for await (const f of readVideoFrames(video)) {
      expect(f.index).toBe(n++);
      expect([f.image.width, f.image.height, f.image.data.length]).toEqual([768, 432, 768 * 432 * 3]);
      if (f.index === 100) mean = f.image.data.reduce((a, b) => a + b, 0) / f.image.data.length;
    }
    expect(n).toBe(377);
    expect(mean).toBeGreaterThan(20); // a real picture, not an empty buffer
    expect(mean).toBeLessThan(235);
  });

  it('decodes small videos on one ffmpeg thread by default, the same frames as with ffmpeg\'s own thread count', async () => {
    // A wrapper that logs ffmpeg's arguments, then runs the real ffmpeg.
    const log = join(tmp, 'ffmpeg-args.log');
    const wrapper = join(tmp, 'ffmpeg-logged');
    writeFileSync(wrapper, `#!/bin/sh\necho "$@" >> '${log}'\nexec ffmpeg "$@"\n`, { mode: 0o755 });
    const frames = async (opts: Parameters<typeof readVideoFrames>[1]) => {
      writeFileSync(log, '');
      const out: Uint8Array[] = [];
      for await (const f of readVideoFrames(video, { maxFrames: 12, ffmpegPath: wrapper, ...opts })) out.push(Uint8Array.from(f.image.data));
      return { out, args: readFileSync(log, 'utf8') };
    };
    const one = await frames({});
    expect(one.args).toMatch(/-threads 1 -filter_threads 1 /); // 768×432 ≤ SINGLE_THREAD_DECODE_MAX_PIXELS
    const auto = await frames({ decodeThreads: 0 });
    expect(auto.args).toMatch(/-threads 0 /);
    expect(auto.args).not.toMatch(/-filter_threads/);
    expect(auto.out.length).toBe(12);
    for (let i = 0; i < 12; i++) expect(Buffer.compare(one.out[i]!, auto.out[i]!)).toBe(0);
    // The scale to a model's size on one filter thread gives the bytes ffmpeg's default filter threads give.
    const spec: PreprocessSpec = { resize: 'letterbox', size: [160, 160], scale: 1 / 255, channelOrder: 'RGB' };
    const forModel = { spec };
    const scaledOne = await frames({ forModel });
    const scaledAuto = await frames({ forModel, decodeThreads: 0 });
    expect(scaledOne.out[0]!.length).toBe(160 * 90 * 3);
    for (let i = 0; i < 12; i++) expect(Buffer.compare(scaledOne.out[i]!, scaledAuto.out[i]!)).toBe(0);
  });

  it("does not run ffprobe again when given probeVideo's answer (info)", async () => {
    const info = await probeVideo(video);
    const ffprobePath = join(tmp, 'no-such-ffprobe');
    let n = 0;
    for await (const f of readVideoFrames(video, { info, ffprobePath, maxFrames: 3 })) n += f.image.width === 768 ? 1 : 0;
    expect(n).toBe(3);
    const e = await failure(
      (async () => {
        for await (const _ of readVideoFrames(video, { ffprobePath, maxFrames: 3 })) void _;
      })(),
    );
    expect(e.code).toBe('DEPENDENCY_MISSING');
  });

  it('stops at maxFrames, on break, and on abort', async () => {
    expect(await drain(video, { maxFrames: 5 })).toBe(5);
    let seen = 0;
    for await (const f of readVideoFrames(video)) {
      seen = f.index;
      if (f.index === 2) break;
    }
    expect(seen).toBe(2);
    const ac = new AbortController();
    const e = await failure(
      (async () => {
        for await (const f of readVideoFrames(video, { signal: ac.signal })) if (f.index === 3) ac.abort();
      })(),
    );
    expect(e.code).toBe('CANCELLED');
  });

  it('a truncated copy yields the frames before the cut, then VIDEO_INVALID with ffmpeg\'s reason', async () => {
    const bytes = readFileSync(video);
    const cut = join(tmp, 'truncated.mp4');
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 5)));
    let n = 0;
    const e = await failure(
      (async () => {
        for await (const _ of readVideoFrames(cut)) n++;
      })(),
    );
    expect(e.code).toBe('VIDEO_INVALID');
    expect(e.where?.file).toBe(cut);
    expect(e.message).toMatch(/partial file/);
    expect(n).toBeGreaterThan(10);
    expect(n).toBeLessThan(377);
  });
});

describe('video errors', () => {
  it('random bytes are VIDEO_INVALID with the reason, a missing file NOT_FOUND', async () => {
    const rng = new Rng(3);
    const junk = join(tmp, 'junk.mp4');
    writeFileSync(junk, Buffer.from(Array.from({ length: 50_000 }, () => rng.int(0, 255))));
    const e = await failure(probeVideo(junk));
    expect(e.code).toBe('VIDEO_INVALID');
    expect(e.message).toMatch(/Invalid data/);
    expect((await failure(drain(junk))).code).toBe('VIDEO_INVALID');
    expect((await failure(probeVideo(join(tmp, 'nope.mp4')))).code).toBe('NOT_FOUND');
  });

  it('a missing ffmpeg/ffprobe is DEPENDENCY_MISSING with an install hint', async () => {
    const junk = join(tmp, 'any.mp4');
    writeFileSync(junk, 'x');
    const e = await failure(probeVideo(junk, { ffprobePath: '/nonexistent/ffprobe' }));
    expect(e.code).toBe('DEPENDENCY_MISSING');
    expect(e.hint).toMatch(/apt-get install ffmpeg/);
  });
});

describe.skipIf(!dataDir)('missing ffmpeg while reading', () => {
  it('is DEPENDENCY_MISSING', async () => {
    const e = await failure(drain(join(dataDir ?? '', 'video/car-detection.mp4'), { ffmpegPath: '/nonexistent/ffmpeg' }));
    expect(e.code).toBe('DEPENDENCY_MISSING');
  });
});

describe.skipIf(!dataDir)('hostile and large videos', () => {
  const video = join(dataDir ?? '', 'video/car-detection.mp4');

  it('refuses a playlist naming a file on this machine (allow-listed demuxers and protocols only)', async () => {
    const evil = join(tmp, 'evil.mp4');
    writeFileSync(evil, `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://${video}\n#EXT-X-ENDLIST\n`);
    expect((await failure(probeVideo(evil))).code).toBe('VIDEO_INVALID');
    expect((await failure(drain(evil))).code).toBe('VIDEO_INVALID');
    const concat = join(tmp, 'list.mp4');
    writeFileSync(concat, `ffconcat version 1.0\nfile '${video}'\n`);
    expect((await failure(probeVideo(concat))).code).toBe('VIDEO_INVALID');
  });

  it("scales frames in ffmpeg to the model's resize size; keepFull stacks the full frame from the same decode", async () => {
    const spec: PreprocessSpec = { resize: 'letterbox', size: [160, 160], scale: 1 / 255, channelOrder: 'RGB' };
    let pid = 0;
    const plain = [];
    for await (const f of readVideoFrames(video, { maxFrames: 3 })) plain.push(Buffer.from(f.image.data));
    const small = [];
    for await (const f of readVideoFrames(video, { forModel: { spec }, maxFrames: 3, onSpawn: (p) => (pid = p) })) {
      expect([f.image.width, f.image.height, f.image.data.length]).toEqual([160, 90, 160 * 90 * 3]);
      expect(f.source).toEqual({ width: 768, height: 432 });
      expect(f.full).toBeUndefined();
      small.push(Buffer.from(f.image.data));
    }
    expect(pid).toBeGreaterThan(0);
    // nice lowers ffmpeg's priority below this process's, never above
    for await (const _ of readVideoFrames(video, { nice: 5, maxFrames: 1, onSpawn: (p) => (pid = p) })) expect(getPriority(pid)).toBe(Math.min(19, getPriority() + 5));
    let k = 0;
    for await (const f of readVideoFramesBlocking(video, { forModel: { spec, keepFull: true }, maxFrames: 3 })) {
      expect(Buffer.from(f.image.data).equals(small[k]!)).toBe(true);
      expect([f.full!.width, f.full!.height]).toEqual([768, 432]);
      expect(Buffer.from(f.full!.data).equals(plain[k]!)).toBe(true);
      k++;
    }
    expect(k).toBe(3);
    // preprocess takes such a frame with its source size; any other size is refused, not stretched
    const f = { data: new Uint8Array(100 * 50 * 3), width: 100, height: 50 };
    const err = await failure(preprocess(f, spec, { source: { width: 768, height: 432 } }));
    expect(err.code).toBe('TENSOR_SHAPE');
    expect(err.message).toMatch(/must be 160x90/);
  });
});
