import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { failure } from '../test/failure.js';
import { readPreparedFrames, readVideoFrames, readVideoFramesBlocking, type BlockingReadOptions, type PreprocessSpec } from './index.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-video-blocking-'));
const dataDir = testDataDir();
const car = dataDir ? join(dataDir, 'video/car-detection.mp4') : undefined;

// A real H.264 file made here: ffmpeg's moving test pattern, 320×180, 20 frames.
const synthetic = join(tmp, 'pattern.mp4');
const made = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=10', '-frames:v', '20', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-y', synthetic]);
if (made.status !== 0) throw new Error(`ffmpeg could not make the test video: ${made.stderr.toString()}`);
const frameBytes = 320 * 180 * 3;

/** A stand-in for ffmpeg (the real ffprobe still probes the real file): a shell script with this body. */
function standIn(name: string, body: string): string {
  const path = join(tmp, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}


/** Every frame as its own copy (a reused buffer is overwritten by the next frame). */
async function frames(read: AsyncGenerator<{ index: number; image: { data: Uint8Array; width: number; height: number } }>) {
  const out: { index: number; width: number; height: number; data: Buffer }[] = [];
  for await (const f of read) out.push({ index: f.index, width: f.image.width, height: f.image.height, data: Buffer.from(f.image.data) });
  return out;
}

const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

describe('readVideoFramesBlocking (blocking reads off a FIFO)', () => {
  const cases: [string, string, number][] = [['the synthetic pattern', synthetic, 20], ...(car ? ([['car-detection.mp4 (shared data)', car, 60]] as [string, string, number][]) : [])];
  for (const [name, file, n] of cases) {
    for (const reuse of [false, true]) {
      it(`gives byte for byte readVideoFrames' frames${reuse ? ', into one reused buffer' : ''}: ${name}`, async () => {
        const want = await frames(readVideoFrames(file, { maxFrames: n }));
        const got = await frames(readVideoFramesBlocking(file, { maxFrames: n, reuse }));
        expect(got).toHaveLength(n);
        expect(got.map((f) => [f.index, f.width, f.height])).toEqual(want.map((f) => [f.index, f.width, f.height]));
        got.forEach((f, k) => expect(f.data.equals(want[k]!.data)).toBe(true));
      });
    }
  }

  it('hands out one buffer over and over with reuse, a fresh one per frame without', async () => {
    const seen = new Set<ArrayBufferLike>();
    for await (const f of readVideoFramesBlocking(synthetic, { maxFrames: 5, reuse: true })) seen.add(f.image.data.buffer);
    expect(seen.size).toBe(1);
    seen.clear();
    for await (const f of readVideoFramesBlocking(synthetic, { maxFrames: 5 })) seen.add(f.image.data.buffer);
    expect(seen.size).toBe(5);
  });

  it.skipIf(!car)('a truncated copy yields the frames before the cut, then VIDEO_INVALID with ffmpeg\'s reason', async () => {
    const bytes = readFileSync(car!);
    const cut = join(tmp, 'truncated.mp4');
    writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 5)));
    let n = 0;
    const e = await failure((async () => {
      for await (const _ of readVideoFramesBlocking(cut)) n++;
    })());
    expect(e.code).toBe('VIDEO_INVALID');
    expect(e.where?.file).toBe(cut);
    expect(e.message).toMatch(/partial file/);
    expect(n).toBeGreaterThan(10);
    expect(n).toBeLessThan(377);
  });

  it('ends a stream that stops inside a frame with VIDEO_INVALID after the whole frames', async () => {
    const ffmpegPath = standIn('short.sh', `head -c ${frameBytes + 1000} /dev/zero`);
    let n = 0;
    const e = await failure((async () => {
      for await (const _ of readVideoFramesBlocking(synthetic, { ffmpegPath })) n++;
    })());
    expect(n).toBe(1);
    expect(e.code).toBe('VIDEO_INVALID');
    expect(e.message).toMatch(/stream ended 1000 bytes into frame 1/);
  });

  it('keeps the head of a flood of ffmpeg messages without stalling on them', async () => {
    // 2 MB of messages, more than any pipe holds, written while frames are being read.
    const ffmpegPath = standIn('flood.sh', `head -c ${frameBytes} /dev/zero; yes 'decode error at MB 1 1' | head -c 2000000 >&2; head -c ${2 * frameBytes} /dev/zero`);
    let n = 0;
    const e = await failure((async () => {
      for await (const _ of readVideoFramesBlocking(synthetic, { ffmpegPath, reuse: true })) n++;
    })());
    expect(n).toBe(3);
    expect(e.code).toBe('VIDEO_INVALID');
    expect(e.message).toMatch(/decode error at MB 1 1/);
  });

  it('passes the errors of readVideoFrames through: junk, a missing file, a missing ffmpeg', async () => {
    const junk = join(tmp, 'junk.mp4');
    writeFileSync(junk, Buffer.alloc(20_000, 7));
    const drain = async (file: string, opts: BlockingReadOptions = {}) => {
      for await (const _ of readVideoFramesBlocking(file, opts));
    };
    expect((await failure(drain(junk))).code).toBe('VIDEO_INVALID');
    expect((await failure(drain(join(tmp, 'nope.mp4')))).code).toBe('NOT_FOUND');
    const missing = await failure(drain(synthetic, { ffmpegPath: '/nonexistent/ffmpeg' }));
    expect(missing.code).toBe('DEPENDENCY_MISSING');
    expect(missing.hint).toMatch(/apt-get install ffmpeg/);
  });

  it('kills ffmpeg on break and on abort (CANCELLED)', async () => {
    let pid = 0;
    for await (const f of readVideoFramesBlocking(synthetic, { reuse: true, onSpawn: (p) => (pid = p) })) if (f.index === 2) break;
    expect(pid).toBeGreaterThan(0);
    for (let k = 0; k < 100 && !gone(pid); k++) await new Promise((r) => setTimeout(r, 20));
    expect(gone(pid)).toBe(true);
    const ac = new AbortController();
    const e = await failure((async () => {
      for await (const f of readVideoFramesBlocking(synthetic, { signal: ac.signal })) if (f.index === 1) ac.abort();
    })());
    expect(e.code).toBe('CANCELLED');
  });
});

describe('a reader killed outright', () => {
  it('takes its ffmpeg with it: ffmpeg, blocked on a full pipe, fails on it instead of waiting forever', async () => {
    // A process reads one frame, then stops reading: ffmpeg fills the FIFO (64 KiB, less than a 320×180 frame) and
    // blocks in write(). SIGKILL runs no clean-up in that process; only the pipe can tell ffmpeg.
    const vision = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;
    const script = join(tmp, 'reader.mjs');
    writeFileSync(script, `const { readVideoFramesBlocking } = await import(${JSON.stringify(vision)});
for await (const f of readVideoFramesBlocking(${JSON.stringify(synthetic)}, { onSpawn: (pid) => console.log('ffmpeg', pid) })) {
  console.log('frame', f.index);
  await new Promise(() => {});
}
`);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    for (let k = 0; k < 250 && !/frame 0/.test(out); k++) await new Promise((r) => setTimeout(r, 20));
    const pid = Number(/ffmpeg (\d+)/.exec(out)?.[1]);
    expect(pid).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300)); // ffmpeg decodes on and blocks on the full pipe
    expect(gone(pid)).toBe(false);
    child.kill('SIGKILL');
    for (let k = 0; k < 250 && !gone(pid); k++) await new Promise((r) => setTimeout(r, 20));
    expect(gone(pid)).toBe(true);
  });
});

describe('readPreparedFrames on a stalled source', () => {
  const spec: PreprocessSpec = { resize: 'letterbox', size: [160, 160], scale: 1 / 255, channelOrder: 'RGB', padValue: 114 };

  it('stops a decode thread blocked in a read by killing its ffmpeg, and ends CANCELLED', async () => {
    // One frame, then silence, like a camera that stops sending: the thread waits inside read().
    const pidFile = join(tmp, 'stalled.pid');
    // ffmpeg would scale the 320×180 frames to the model's 160×90: one such frame, then nothing
    const ffmpegPath = standIn('stalled.sh', `echo $$ > ${pidFile}; head -c ${160 * 90 * 3} /dev/zero; exec sleep 60`);
    const ac = new AbortController();
    let n = 0;
    const e = await failure((async () => {
      for await (const _ of readPreparedFrames(synthetic, { spec, ffmpegPath, signal: ac.signal })) {
        n++;
        setTimeout(() => ac.abort(), 200); // while the thread sits in the read of frame 1
      }
    })());
    expect(n).toBe(1);
    expect(e.code).toBe('CANCELLED');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    for (let k = 0; k < 100 && !gone(pid); k++) await new Promise((r) => setTimeout(r, 20));
    expect(gone(pid)).toBe(true);
  });
});
