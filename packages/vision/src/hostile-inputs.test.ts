import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { failure } from '../test/failure.js';
import { decodeImage, probeVideo, readVideoFrames, videoInputArgs } from './index.js';

// Issue 13 item 4 on the CLI's path: a video is opened with allow-listed protocols and demuxers only, so a
// playlist dressed as .mp4 cannot make ffmpeg read other files on the machine; names are never options or URLs.
const dataDir = testDataDir();
if (!dataDir) console.warn('skipping hostile-video tests: shared test data not found (set CVOPT_TEST_DATA)');
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-video-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


describe('videoInputArgs', () => {
  it('puts the allow-lists before -i and makes every name an absolute file: URL', () => {
    const args = videoInputArgs('-y');
    expect(args.slice(0, 4)).toEqual(['-protocol_whitelist', 'file,pipe', '-format_whitelist', expect.stringContaining('mov')]);
    expect(args[3]).not.toMatch(/\b(hls|concat|image2|dash)\b/);
    expect(args.slice(-2)).toEqual(['-i', `file:${join(process.cwd(), '-y')}`]);
    expect(videoInputArgs('http://example.com/x.mp4').at(-1)).toBe(`file:${join(process.cwd(), 'http:/example.com/x.mp4')}`);
    expect(videoInputArgs('pipe:0').at(-1)).toBe('pipe:0');
  });
});

describe.skipIf(!dataDir)('hostile videos', () => {
  const real = join(dataDir ?? '', 'video/car-detection.mp4');

  it('refuses an HLS playlist saved as .mp4 that names a real video on this machine', async () => {
    const secret = join(tmp, 'private.mp4');
    copyFileSync(real, secret);
    const playlist = join(tmp, 'upload.mp4');
    writeFileSync(playlist, `#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30,\n${secret}\n#EXT-X-ENDLIST\n`);
    const attempts = [() => probeVideo(playlist), async () => { for await (const _ of readVideoFrames(playlist)) break; }];
    for (const attempt of attempts) {
      const e = await failure(attempt());
      expect(e.code).toBe('VIDEO_INVALID');
      expect(e.message).toContain('not an accepted video format');
      expect(e.message).not.toMatch(/0x[0-9a-f]{6,}/);
    }
  });

  it('refuses a video whose frames are over the pixel limit before decoding (8000×7000 MJPEG)', async () => {
    const big = join(tmp, 'big.avi');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=black:s=8000x7000', '-frames:v', '1', '-c:v', 'mjpeg', '-pix_fmt', 'yuvj420p', big]);
    const e = await failure((async () => { for await (const _ of readVideoFrames(big)) break; })());
    expect(e).toMatchObject({ code: 'IMAGE_TOO_LARGE', message: expect.stringContaining('8000x7000') });
  });

  it('refuses an ffconcat list and a FIFO, and still reads a real file whose name looks like an option', async () => {
    const list = join(tmp, 'list.mp4');
    writeFileSync(list, `ffconcat version 1.0\nfile '${real}'\n`);
    expect((await failure(probeVideo(list))).code).toBe('VIDEO_INVALID');
    const fifo = join(tmp, 'pipe.mp4');
    execFileSync('mkfifo', [fifo]);
    expect(await failure(probeVideo(fifo))).toMatchObject({ code: 'VIDEO_INVALID', message: expect.stringContaining('not a regular file') });
    const dashName = join(tmp, '-i.mp4');
    copyFileSync(real, dashName);
    expect((await probeVideo(dashName)).width).toBe(768);
  });
});

describe('hostile image paths', () => {
  it('decodeImage refuses a FIFO and /dev/zero by path at once, as IMAGE_INVALID', async () => {
    const fifo = join(tmp, 'pipe.jpg');
    execFileSync('mkfifo', [fifo]);
    const zero = join(tmp, 'zero.png');
    symlinkSync('/dev/zero', zero);
    expect(await failure(decodeImage(fifo))).toMatchObject({ code: 'IMAGE_INVALID', message: expect.stringContaining('FIFO') });
    expect(await failure(decodeImage(zero))).toMatchObject({ code: 'IMAGE_INVALID', message: expect.stringContaining('device') });
  });
});
