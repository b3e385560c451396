import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp, type Json, type Running } from './helpers.js';

/** A real H.264 MP4 made by ffmpeg's test source. */
function makeVideo(seconds: number, fps: number): Buffer {
  const file = join(mkdtempSync(join(tmpdir(), 'cvopt-video-')), 'clip.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc=size=96x64:rate=${fps}:duration=${seconds}`, '-pix_fmt', 'yuv420p', '-c:v', 'libx264', file]);
  return readFileSync(file);
}

describe('POST /v1/predict/video', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startApp(fixtureModels().detDynamic, { video: { maxSeconds: 3, maxFrames: 40, maxBytes: 200_000 } });
  });
  afterAll(async () => s?.close());

  it('streams one NDJSON line per frame after a header, then done', async () => {
    const r = await fetch(`${s.url}/v1/predict/video`, { method: 'POST', body: makeVideo(2, 5), headers: { 'content-type': 'video/mp4' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l) as Json);
    expect(lines[0].video).toMatchObject({ width: 96, height: 64, frames: 10 });
    const frames = lines.slice(1, -1);
    expect(frames.map((f) => f.frame)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(frames[5].timeS).toBe(1);
    expect(Array.isArray(frames[0].detections)).toBe(true);
    expect(lines.at(-1)).toEqual({ done: true });
  });

  it('refuses corrupt, too long, too big and wrongly typed videos with the reason, and keeps serving', async () => {
    const url = `${s.url}/v1/predict/video`;
    const corrupt = await post(url, Buffer.from('this is not an mp4 file at all, only text'), { 'content-type': 'video/mp4' });
    expect(corrupt.status).toBe(400);
    expect(corrupt.json.error.code).toBe('VIDEO_INVALID');
    expect(corrupt.json.error.message).not.toContain(tmpdir());

    const long = await post(url, makeVideo(4, 2), { 'content-type': 'video/mp4' });
    expect(long.status).toBe(413);
    expect(long.json.error.code).toBe('VIDEO_TOO_LONG');
    expect(long.json.error.message).toMatch(/limit is 3 s/);

    const big = await post(url, Buffer.alloc(300_000, 7), { 'content-type': 'video/mp4' });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('PAYLOAD_TOO_LARGE');

    const image = await post(url, await jpeg(), { 'content-type': 'image/jpeg' });
    expect(image.status).toBe(415);

    expect((await post(`${s.url}/v1/predict`, await jpeg(), { 'content-type': 'image/jpeg' })).status).toBe(200);
    const again = await fetch(url, { method: 'POST', body: makeVideo(1, 3), headers: { 'content-type': 'video/mp4' } });
    expect(again.status).toBe(200);
    expect((await again.text()).trim().split('\n')).toHaveLength(5);
  });
});
