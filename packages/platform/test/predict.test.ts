import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError, DEFAULT_EVAL_PROTOCOL, PredictPayloadSchema, testDataDir, type JobContext } from '@cvopt/core';
import { createOrtEngine } from '@cvopt/engines';
import { protocolDetections } from '@cvopt/onnx';
import { parseMot, preprocess, readVideoFrames } from '@cvopt/vision';
import { COCO80_TO_91, evaluateModel } from '../src/jobs/eval.js';
import { round } from '../src/jobs/predict-output.js';
import { resolvePredictModel, runPredict, type PredictPayload } from '../src/jobs/predict.js';
import { incrementRunDir, resolveSources } from '../src/predict/sources.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-predict-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function context(onFrame?: (frames: number, abort: () => void) => void): JobContext {
  const ac = new AbortController();
  return {
    signal: ac.signal,
    workdir: tmp,
    log: () => undefined,
    progress: (p) => onFrame?.(p.step, () => ac.abort()),
  };
}

/** Frames ffmpeg decodes from a file: what a player would show. */
function decodedFrames(file: string): number {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return Number(r.stdout.trim());
}

describe('predict sources', () => {
  const dir = join(tmp, 'src');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  for (const f of ['b.jpg', 'a.png', 'clip.mp4', 'notes.md', 'sub/a.png']) writeFileSync(join(dir, f), '');

  it('expands a folder, a glob and a .txt list in a stable order with unique stems', () => {
    expect(resolveSources(dir).map((s) => [s.kind, s.stem])).toEqual([['image', 'a'], ['image', 'b'], ['video', 'clip']]);
    expect(resolveSources(join(dir, '*.{png}').replace('{png}', 'png')).map((s) => s.stem)).toEqual(['a']);
    expect(resolveSources(join(dir, '[ab].*')).map((s) => s.stem)).toEqual(['a', 'b']);
    writeFileSync(join(dir, 'list.txt'), 'a.png\n# comment\nsub/a.png\nrtsp://camera.local/stream\n');
    expect(resolveSources(join(dir, 'list.txt')).map((s) => [s.kind, s.stem])).toEqual([['image', 'a'], ['image', 'a_2'], ['video', 'stream']]);
  });

  it('names the list line of a missing file, and refuses unknown extensions', () => {
    writeFileSync(join(dir, 'bad.txt'), 'a.png\nnope.jpg\n');
    expect(() => resolveSources(join(dir, 'bad.txt'))).toThrow(/bad\.txt:2: nope\.jpg does not exist/);
    expect(() => resolveSources(join(dir, 'notes.md'))).toThrow(/neither an image nor a video/);
    expect(() => resolveSources(join(dir, '*.gif'))).toThrow(/matches no image or video/);
  });

  it('increments run folders unless existOk', () => {
    const base = join(tmp, 'runs', 'exp');
    expect(incrementRunDir(base, false)).toBe(base);
    mkdirSync(base, { recursive: true });
    expect(incrementRunDir(base, false)).toBe(`${base}2`);
    expect(incrementRunDir(base, true)).toBe(base);
  });
});

const D = testDataDir();
describe.skipIf(!D)('predict on the real models and videos (needs the shared test data)', () => {
  const data = D ?? '';
  const yolo = join(data, 'models/yolov8n_int8.onnx');
  const car = join(data, 'video/car-detection.mp4');

  it('gives exactly the detections of `cvopt eval` on the same COCO images under the default protocol (multi-label)', async () => {
    const evalJson = join(tmp, 'eval.json');
    // eval with its default protocol; predict's iou, max-det and multi-label defaults are that protocol's, only
    // its conf default (0.25, for prediction) is set to the protocol's.
    const ev = await evaluateModel({ model: yolo, data: join(data, 'coco128-val'), maxImages: 5, saveJson: evalJson, cacheDir: join(tmp, 'cache') });
    expect(ev.protocol?.multiLabel).toBe(true);
    const files = readdirSync(join(data, 'coco128-val/images/val2017')).sort().slice(0, 5);
    const list = join(tmp, 'coco5.txt');
    writeFileSync(list, files.map((f) => join(data, 'coco128-val/images/val2017', f)).join('\n'));
    const r = await runPredict({ model: yolo, source: list, conf: DEFAULT_EVAL_PROTOCOL.conf, cacheDir: join(tmp, 'cache'), saveJson: true, saveTxt: true, saveConf: true, out: join(tmp, 'runs/eq') }, context());
    expect(r.frames).toBe(5);
    type Row = { image_id: number; category_id: number; bbox: number[]; score: number };
    const key = (a: Row) => `${a.image_id}|${a.category_id}|${a.bbox.join(',')}|${a.score}`;
    const ours = (JSON.parse(readFileSync(r.json!, 'utf8')) as Row[]).map(key).sort();
    const theirs = (JSON.parse(readFileSync(evalJson, 'utf8')) as Row[]).map(key).sort();
    expect(ours.length).toBeGreaterThan(50);
    expect(ours).toEqual(theirs);
    // One YOLO label row per detection, with the confidence column.
    const rows = readdirSync(r.labels!).flatMap((f) => readFileSync(join(r.labels!, f), 'utf8').trim().split('\n'));
    expect(rows).toHaveLength(ours.length);
    expect(rows[0]!.split(' ')).toHaveLength(6);
  });

  it('tracks a real video: an annotated H.264 file ffmpeg decodes frame for frame, ids in every output', async () => {
    const r = await runPredict({ model: yolo, source: car, maxFrames: 12, save: true, saveTxt: true, saveJson: true, saveMot: true, track: true, conf: 0.1, out: join(tmp, 'runs/trk') }, context());
    const s = r.sources[0]!;
    expect(s.frames).toBe(12);
    expect(decodedFrames(s.saved!)).toBe(12);
    expect(readdirSync(r.labels!)).toHaveLength(12);
    const mot = parseMot(readFileSync(s.mot!, 'utf8'));
    const json = JSON.parse(readFileSync(r.json!, 'utf8')) as { track_id: number; frame: number }[];
    expect(mot.length).toBe(json.length);
    expect(json.every((d) => Number.isInteger(d.track_id) && d.frame >= 1 && d.frame <= 12)).toBe(true);
    expect(new Set(mot.map((m) => m.id)).size).toBe(s.tracks);
  });

  it('on video, the decode thread changes no detection: the rows of the eval protocol on frames decoded and run here', async () => {
    const bottle = join(data, 'video/bottle-detection.mp4');
    const r = await runPredict({ model: yolo, source: bottle, maxFrames: 8, saveJson: true, out: join(tmp, 'runs/same') }, context());
    const o = PredictPayloadSchema.parse({ model: yolo, source: bottle });
    const m = await resolvePredictModel(yolo);
    const engine = await createOrtEngine(m.modelPath, m.manifest, { engine: m.engine });
    const want: string[] = [];
    try {
      for await (const f of readVideoFrames(bottle, { maxFrames: 8, forModel: { spec: m.manifest.preprocess } })) {
        const pre = await preprocess(f.image, m.manifest.preprocess, { source: f.source });
        const dets = protocolDetections(await engine.run(pre.tensor, pre.dims), m.manifest, pre.meta, { conf: o.conf, iou: o.iou, maxDetections: o.maxDet, multiLabel: o.multiLabel });
        for (const d of dets) want.push(`${f.index + 1}|${COCO80_TO_91[d.classId]}|${d.box.map((v, i) => round(i < 2 ? v : v - d.box[i - 2]!, 3)).join(',')}|${d.score}`);
      }
    } finally {
      await engine.close();
    }
    const got = (JSON.parse(readFileSync(r.json!, 'utf8')) as { frame: number; category_id: number; bbox: number[]; score: number }[]).map((d) => `${d.frame}|${d.category_id}|${d.bbox.join(',')}|${d.score}`);
    expect(want.length).toBeGreaterThan(8);
    expect(got).toEqual(want);
  });

  it('reads a stream URL through ffmpeg (a real HTTP server serving the video)', async () => {
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'video/mp4' });
      createReadStream(car).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const r = await runPredict({ model: yolo, source: `http://127.0.0.1:${port}/car.mp4`, maxFrames: 3, saveTxt: true, out: join(tmp, 'runs/url') }, context());
      expect(r.sources[0]).toMatchObject({ kind: 'video', frames: 3, width: 768, height: 432 });
      expect(readdirSync(r.labels!).sort()).toEqual(['stream_1.txt', 'stream_2.txt', 'stream_3.txt']);
    } finally {
      server.close();
    }
  });

  it('speed.waiting tells a decode-bound run (a stream that trickles in) from an inference-bound one', async () => {
    // 12 intra frames of about 5.3 KB, served at 1800 bytes every 50 ms: a frame every 150 ms or so, where YOLOv8n
    // INT8 runs in about 60 ms (and decodes a file's frame in a few).
    const clip = join(tmp, 'trickle.mp4');
    const made = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-frames:v', '12', '-c:v', 'libx264', '-g', '1', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', '-y', clip]);
    expect(made.status).toBe(0);
    const file = readFileSync(clip);
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'video/mp4' });
      let at = 0;
      const timer = setInterval(() => {
        if (at >= file.length) {
          clearInterval(timer);
          res.end();
          return;
        }
        res.write(file.subarray(at, at + 1800));
        at += 1800;
      }, 50);
      res.once('close', () => clearInterval(timer));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const slow = await runPredict({ model: yolo, source: `http://127.0.0.1:${port}/clip.mp4`, out: join(tmp, 'runs/slow') }, context());
      const fast = await runPredict({ model: yolo, source: car, maxFrames: 6, out: join(tmp, 'runs/fast') }, context());
      expect(slow.frames).toBe(12);
      expect(fast.frames).toBe(6);
      // Inference sat idle for most of each trickled frame's interval, and hardly at all on the file.
      expect(slow.speed.waiting).toBeGreaterThan(40);
      expect(fast.speed.waiting).toBeLessThan(fast.speed.inference / 4);
    } finally {
      server.close();
    }
  });

  it('--vid-stride keeps every n-th frame, in order', async () => {
    const r = await runPredict({ model: yolo, source: car, maxFrames: 9, vidStride: 3, save: true, saveTxt: true, out: join(tmp, 'runs/stride') }, context());
    expect(r.frames).toBe(3);
    expect(readdirSync(r.labels!).sort()).toEqual(['car-detection_1.txt', 'car-detection_4.txt', 'car-detection_7.txt']);
    expect(decodedFrames(r.sources[0]!.saved!)).toBe(3);
  });

  it('a cancel mid-video leaves a playable video holding every frame processed', async () => {
    const r = await runPredict(
      { model: yolo, source: car, maxFrames: 40, save: true, out: join(tmp, 'runs/cut') },
      context((frames, abort) => {
        if (frames === 5) abort();
      }),
    );
    expect(r.interrupted).toBe(true);
    expect(r.frames).toBeGreaterThanOrEqual(5);
    expect(r.frames).toBeLessThan(40);
    expect(decodedFrames(r.sources[0]!.saved!)).toBe(r.frames);
  });

  it('a classifier reports its top-k per image', async () => {
    const dir = join(data, 'hymenoptera/val/bees');
    const first = readdirSync(dir).sort()[0]!;
    const r = await runPredict({ model: join(data, 'models/mobilenetv2-12-int8.onnx'), source: join(dir, first), topk: 3, saveTxt: true, out: join(tmp, 'runs/cls') } as PredictPayload, context());
    expect(r.task).toBe('classify');
    expect(r.sources[0]!.topk).toHaveLength(3);
    expect(readFileSync(join(r.labels!, `${first.replace(/\.jpg$/, '')}.txt`), 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('resolves an artifact folder and its engine through the shared model resolver and engine-variant lookup', async () => {
    const cacheDir = join(tmp, 'cache');
    const art = join(tmp, 'artifact');
    mkdirSync(art, { recursive: true });
    copyFileSync(yolo, join(art, 'model.onnx'));
    writeFileSync(join(art, 'artifact.json'), JSON.stringify({ engine: 'ort-cpu-int8' }));
    // The artifact's model is itself INT8: its engine runs it as it is.
    const r = await resolvePredictModel(art, { cacheDir });
    expect(r.engine).toBe('ort-cpu-int8');
    expect(r.modelPath).toBe(join(art, 'model.onnx'));
    expect((await resolvePredictModel(art, { engine: 'ort-cpu', cacheDir })).modelPath).toBe(join(art, 'model.onnx'));
    // An FP32 model asked for INT8 is quantized into the model cache, which needs a calibration dataset.
    const fp32 = join(data, 'models/yolox_nano.onnx');
    await expect(resolvePredictModel(fp32, { engine: 'ort-cpu-int8', cacheDir })).rejects.toThrow(/needs a dataset to calibrate/);
  });

  it('says what is wrong with a fixed-size model asked for another size, or a non-ONNX engine', async () => {
    const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
    const a = await err(runPredict({ model: yolo, source: car, imgsz: 320, out: join(tmp, 'runs/bad') }, context()));
    expect(a).toBeInstanceOf(CvoptError);
    expect((a as CvoptError).message).toMatch(/fixed at 640x640/);
    const b = await err(runPredict({ model: yolo, source: car, engine: 'pytorch', out: join(tmp, 'runs/bad') }, context()));
    expect((b as CvoptError).code).toBe('ENGINE_UNAVAILABLE');
    expect(existsSync(join(tmp, 'runs/bad2'))).toBe(false);
  });
});
