import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';
import { post, startApp, type Json, type Running } from './helpers.js';

const dataDir = testDataDir();
if (!dataDir) console.warn('skipping the YOLOv8n runtime tests: shared test data not found (set CVOPT_TEST_DATA)');

const COCO_FIRST = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light'];

describe.skipIf(!dataDir)('the real YOLOv8n behind the service', () => {
  let s: Running;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-yolov8n-'));
    copyFileSync(join(dataDir!, 'models/yolov8n_int8.onnx'), join(dir, 'model.onnx'));
    const names = [...COCO_FIRST, ...Array.from({ length: 70 }, (_, i) => `class${i + 10}`)];
    writeFileSync(
      join(dir, 'model.json'),
      JSON.stringify({
        name: 'yolov8n',
        task: 'detect',
        input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
        preprocess: { resize: 'letterbox', size: [640, 640], padValue: 114, scale: 1 / 255, channelOrder: 'RGB', padPosition: 'center' },
        output: { name: 'output0', format: 'yolov8', shape: [1, 84, 8400], scoresActivated: true },
        classNames: names,
        opset: 20,
        precision: 'int8',
      }),
    );
    s = await startApp(dir, { intraOpThreads: 0, sloMs: 60_000, video: { maxSeconds: 10 } });
  });
  afterAll(async () => s?.close());

  it('finds the people in a COCO photo, with boxes in original pixels', async () => {
    // COCO val2017 000000000139: a living room with two people, 640×426.
    const img = readFileSync(join(dataDir!, 'coco128-val/images/val2017/000000000139.jpg'));
    const r = await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' });
    expect(r.status).toBe(200);
    expect(r.json.image).toEqual({ width: 640, height: 426 });
    const people = r.json.detections.filter((d: Json) => d.className === 'person');
    expect(people.length).toBeGreaterThanOrEqual(1);
    for (const d of r.json.detections) expect(d.box[3]).toBeLessThanOrEqual(426);
  });

  it('refuses the real 30 s traffic video past a 10 s limit before decoding it', async () => {
    const video = readFileSync(join(dataDir!, 'video/car-detection.mp4'));
    const r = await post(`${s.url}/v1/predict/video`, video, { 'content-type': 'video/mp4' });
    expect(r.status).toBe(413);
    expect(r.json.error.code).toBe('VIDEO_TOO_LONG');
  });

  it('streams persistent track ids with ?track=true', async () => {
    // The first 8 frames of the real bottle video, cut without re-encoding the frames' content.
    const clip = join(mkdtempSync(join(tmpdir(), 'cvopt-track-')), 'clip.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-i', join(dataDir!, 'video/bottle-detection.mp4'), '-frames:v', '8', '-an', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', clip]);
    const r = await fetch(`${s.url}/v1/predict/video?track=true`, { method: 'POST', body: readFileSync(clip), headers: { 'content-type': 'video/mp4' } });
    expect(r.status).toBe(200);
    const frames = (await r.text()).trim().split('\n').map((l) => JSON.parse(l) as Json).slice(1, -1);
    expect(frames).toHaveLength(8);
    const ids = frames.flatMap((f) => (f.detections as { trackId: number }[]).map((d) => d.trackId));
    expect(ids.length).toBeGreaterThan(8);
    expect(ids.every((id) => Number.isInteger(id) && id >= 1)).toBe(true);
    // The bottles stand still: the ids of the last frame were already there in the first.
    const first = new Set((frames[0]!.detections as { trackId: number }[]).map((d) => d.trackId));
    expect((frames[7]!.detections as { trackId: number }[]).filter((d) => first.has(d.trackId)).length).toBeGreaterThan(0);
  });
});
