import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { MemoryWatch } from '../src/memory.js';
import { fixtureModels, jpeg, post, startApp, type Json, type Running } from './helpers.js';
import { rawRequest, sleep } from './raw-http.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-vh-'));
function clip(size: string, seconds: number, fps: number): Buffer {
  const file = join(tmp, `${size}-${seconds}-${fps}.mp4`);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${fps}:duration=${seconds}`, '-pix_fmt', 'yuv420p', '-c:v', 'libx264', file]);
  return readFileSync(file);
}

/** Issue 13 items 4, 5, 13 (ffmpeg stderr) and issue 16 item 5, over real HTTP with real ffmpeg. */
describe('hostile and heavy videos', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startApp(fixtureModels().detStatic, { video: { maxConcurrent: 1, maxSeconds: 10 }, detect: { scoreThreshold: 0.01 } });
  });
  afterAll(async () => s?.close());

  it('refuses a playlist that names a server file, and never shows ffmpeg’s words', async () => {
    const target = join(testDataDir() ?? tmp, 'video/car-detection.mp4');
    for (const body of [`#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://${target}\n#EXT-X-ENDLIST\n`, `ffconcat version 1.0\nfile '${target}'\n`]) {
      const r = await post(`${s.url}/v1/predict/video`, body, { 'content-type': 'video/mp4' });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('VIDEO_INVALID');
      const text = JSON.stringify(r.json);
      expect(text).not.toMatch(/0x[0-9a-f]{6,}|\/tmp\/|\/work\/|whitelist|@/);
      expect(text).not.toContain('768'); // the target's width never leaks
    }
  });

  it('decodes large frames scaled to the model size and answers boxes in the video’s own pixels', async () => {
    const r = await fetch(`${s.url}/v1/predict/video`, { method: 'POST', body: clip('1280x720', 1, 3), headers: { 'content-type': 'video/mp4' } });
    expect(r.status).toBe(200);
    const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l) as Json);
    expect(lines[0].video).toMatchObject({ width: 1280, height: 720 });
    const boxes = lines.slice(1, -1).flatMap((f) => f.detections.map((d: Json) => d.box as number[]));
    expect(boxes.length).toBeGreaterThan(0);
    expect(Math.max(...boxes.map((b) => b[2]!))).toBeGreaterThan(64); // not in the 64-px model's frame
    for (const b of boxes) expect(b[2]).toBeLessThanOrEqual(1280.01);
    expect(lines.at(-1)).toEqual({ done: true });
  });

  it('refuses a video beyond video.maxConcurrent before its body is read', async () => {
    const video = clip('96x64', 2, 5);
    const head = (expect100: boolean) =>
      `POST /v1/predict/video HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: ${video.length}\r\nConnection: close\r\n${expect100 ? 'Expect: 100-continue\r\n' : ''}\r\n`;
    // The first video is still uploading (half its body sent).
    let release: () => void = () => undefined;
    const first = rawRequest(s.url, head(false), async (sock) => {
      sock.write(video.subarray(0, video.length >> 1));
      await new Promise<void>((r) => (release = r));
      sock.write(video.subarray(video.length >> 1));
    });
    await sleep(150);
    let sentBody = false;
    const second = await rawRequest(s.url, head(true), () => undefined, 3000);
    sentBody = second.headers.includes('100 Continue');
    expect(second.status).toBe(429);
    expect(sentBody).toBe(false);
    expect(second.body).toContain('QUEUE_FULL');
    expect(second.headers.toLowerCase()).toContain('retry-after');
    release();
    expect((await first).status).toBe(200);
    expect((await post(`${s.url}/v1/predict`, await jpeg(), { 'content-type': 'image/jpeg' })).status).toBe(200);
  });
});

describe('memory cap counts children', () => {
  it('adds a tracked child’s resident memory to node’s', async () => {
    const m = new MemoryWatch(10_000);
    // A child that holds ~64 MB resident.
    const child = spawn(process.execPath, ['-e', 'const b = Buffer.alloc(64 * 2 ** 20, 1); console.log("ready"); setTimeout(() => b.length, 10000)']);
    try {
      await new Promise((r) => child.stdout.once('data', r));
      const alone = process.memoryUsage.rss();
      m.track(child.pid!);
      expect(m.sample() - alone).toBeGreaterThan(60 * 2 ** 20);
    } finally {
      child.kill();
      m.close();
    }
  });
});
