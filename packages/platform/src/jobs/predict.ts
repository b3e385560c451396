import { mkdirSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { z } from 'zod';
import { CvoptError, PredictPayloadSchema, QUEUE_OF, type Detection, type JobContext, type JobHandler, type ModelManifest, type PredictPayload } from '@cvopt/core';
import type { Engine } from '@cvopt/engines';
import { COCO80, protocolDetections } from '@cvopt/onnx';
import { ByteTracker, VideoWriter, annotate, byteTrackOptions, decodeImage, formatMotRow, postprocessClassification, preprocess, probeVideo, readPreparedFrames, type ByteTrackOptions, type PreprocessResult, type RgbImage, type TrackedDetection, type VideoInfo } from '@cvopt/vision';
import { COCO80_TO_91 } from './eval.js';
import { BoundedQueue } from '../predict/queue.js';
import { incrementRunDir, resolveSources, type SourceItem } from '../predict/sources.js';
import { openPredictEngine } from '../predict/threads.js';
import { PredictResultSchema, SourceResultSchema, resolvePredictModel, type Payload, type PredictModel, type PredictResult } from './predict-model.js';
import { drawTopk, imageId, round, saveCrops, saveImage, summarise, yoloLine } from './predict-output.js';

export { PredictResultSchema, resolvePredictModel, type PredictModel, type PredictResult };


/**
 * ffmpeg's nice value while it decodes for predict: on a CPU engine inference is the bottleneck and ffmpeg has slack
 * (1.7 ms of CPU a frame of car-detection.mp4 against the quickstart model's 2.3–3 ms run), so the inference thread
 * should win when the two want the same core. Three alternated pairs of `cvopt predict` runs (2-core VM): the mean
 * inference run 2.41–2.86 ms with 10 against 2.58–3.10 ms with 0, and end to end 219–247 fps against 209–230.
 */
const DECODER_NICE = 10;
/**
 * `cvopt predict` / `cvopt track`: a model on images, folders, globs, lists, videos and streams, with annotated
 * images and video, YOLO label files, COCO JSON, crops and MOT files out. Preprocess and postprocess are the very
 * functions `cvopt eval` uses, so the same image under the same protocol gives the same detections.
 *
 * Video runs as a pipeline of three stages joined by bounded queues: decode + preprocess (ffmpeg in its own
 * process, the pipe read and letterboxing on a worker thread: readPreparedFrames), inference (on this thread, which
 * onnxruntime-node holds for the whole run, and ONNX Runtime's threads) and postprocess + track + annotate + encode
 * (ffmpeg again). Each stage works on a different frame at once; frames stay in order and none is dropped except by
 * --vid-stride. The full-size frame crosses back from the decode thread only when something draws on it or crops it.
 */


type Work =
  | { type: 'begin'; item: SourceItem; index: number; width: number; height: number; fps: number; frames: number }
  | { type: 'end'; item: SourceItem; index: number }
  | { type: 'frame'; item: SourceItem; index: number; frame: number; pre: PreprocessResult; image?: RgbImage; preMs: number; release?: () => void };

type Inferred = Exclude<Work, { type: 'frame' }> | { type: 'frame'; work: Extract<Work, { type: 'frame' }>; data: Float32Array; dims: number[]; b: number; inferMs: number };

interface SourceState {
  result: z.infer<typeof SourceResultSchema>;
  writer?: VideoWriter;
  tracker?: ByteTracker;
  ids: Set<number>;
  mot: string[];
  t0: number;
}

function cancelled(): CvoptError {
  return new CvoptError('CANCELLED', 'prediction was cancelled');
}

export async function runPredict(input: PredictPayload, ctx: JobContext): Promise<PredictResult> {
  const o: Payload = PredictPayloadSchema.parse(input);
  const trackOpts: Partial<ByteTrackOptions> = o.tracker ?? {};
  if (o.track) byteTrackOptions(trackOpts); // fail on bad options before any work
  const items = resolveSources(o.source);
  const resolved = await resolvePredictModel(o.model, {
    ...(o.engine ? { engine: o.engine } : {}),
    ...(o.data ? { data: o.data } : {}),
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    signal: ctx.signal,
    onStage: (m) => ctx.log('info', m),
  });
  const manifest: ModelManifest = structuredClone(resolved.manifest);
  const notes = [...resolved.notes];
  const task = manifest.task;
  if (task === 'classify' && (o.track || o.saveMot)) {
    throw new CvoptError('INVALID_ARGUMENT', 'tracking needs a detector; this model is a classifier', { where: { field: '--track' } });
  }
  const chosen = await openPredictEngine(resolved.modelPath, manifest, resolved.engine, { spinning: o.spinning, ...(o.intraOpNumThreads ? { threads: o.intraOpNumThreads } : {}) });
  const engine: Engine = chosen.engine;
  if (chosen.note) notes.push(chosen.note);
  const info = engine.describe();
  try {
    if (o.imgsz !== undefined && (o.imgsz !== manifest.preprocess.size[0] || o.imgsz !== manifest.preprocess.size[1])) {
      const dynamicHw = typeof info.inputDims[2] === 'string' && typeof info.inputDims[3] === 'string';
      if (!dynamicHw) {
        throw new CvoptError('INVALID_ARGUMENT', `--imgsz ${o.imgsz}: this model's input is fixed at ${manifest.preprocess.size.join('x')}`, { where: { field: '--imgsz' }, hint: `omit --imgsz, or export the model with --dynamic` });
      }
      manifest.preprocess.size = [o.imgsz, o.imgsz];
    }
    if (o.batch > 1 && !info.dynamicBatch && info.maxBatch !== o.batch) {
      throw new CvoptError('INVALID_ARGUMENT', `--batch ${o.batch}: this model runs a fixed batch of ${info.maxBatch ?? 1}`, { where: { field: '--batch' }, hint: 'omit --batch, or export the model with --dynamic' });
    }
    const batch = Math.min(o.batch, info.maxBatch ?? o.batch);

    const runDir = incrementRunDir(o.out, o.existOk);
    mkdirSync(runDir, { recursive: true });
    const labelsDir = o.saveTxt ? join(runDir, 'labels') : undefined;
    if (labelsDir) mkdirSync(labelsDir, { recursive: true });
    const cropsDir = o.saveCrop && task === 'detect' ? join(runDir, 'crops') : undefined;
    const names = manifest.classNames;
    const coco = names.length === 80 && names.every((n, i) => n === COCO80[i]);
    const jsonRows: Record<string, unknown>[] = [];
    const needImage = o.save || (o.saveCrop && task === 'detect');
    const states = new Map<number, SourceState>();
    const results: z.infer<typeof SourceResultSchema>[] = [];
    let totalFrames = 0;
    let totalDets = 0;
    const ms = { pre: 0, infer: 0, post: 0, waiting: 0 };
    const t0 = performance.now();
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    if (ctx.signal.aborted) stop.abort();
    const decoded = new BoundedQueue<Work>(o.queueDepth);
    const inferred = new BoundedQueue<Inferred>(o.queueDepth);

    // Stage 1: read sources in order; decode and preprocess.
    const produce = async () => {
      for (let index = 0; index < items.length && !stop.signal.aborted; index++) {
        const item = items[index]!;
        if (item.kind === 'image') {
          const s = performance.now();
          const [pre, image] = await Promise.all([preprocess(item.path, manifest.preprocess), needImage ? decodeImage(item.path) : undefined]);
          await decoded.push({ type: 'begin', item, index, width: pre.meta.origWidth, height: pre.meta.origHeight, fps: 0, frames: 1 });
          await decoded.push({ type: 'frame', item, index, frame: 0, pre, ...(image ? { image } : {}), preMs: performance.now() - s });
          await decoded.push({ type: 'end', item, index });
          continue;
        }
        const vi: VideoInfo = await probeVideo(item.path, { allowStreams: true });
        await decoded.push({ type: 'begin', item, index, width: vi.width, height: vi.height, fps: vi.fps / o.vidStride, frames: Math.ceil(vi.frames / o.vidStride) });
        try {
          const frames = readPreparedFrames(item.path, {
            spec: manifest.preprocess,
            info: vi,
            keepImage: needImage,
            stride: o.vidStride,
            depth: o.queueDepth,
            signal: stop.signal,
            allowStreams: true,
            // The decoder has slack and the inference thread is the bottleneck: it should win when they contend.
            nice: DECODER_NICE,
            ...(o.maxFrames ? { maxFrames: o.maxFrames } : {}),
          });
          for await (const f of frames) await decoded.push({ type: 'frame', item, index, frame: f.index, pre: f.pre, ...(f.image ? { image: f.image } : {}), preMs: f.ms, release: f.release });
        } catch (e) {
          if (!(stop.signal.aborted && e instanceof CvoptError && e.code === 'CANCELLED')) throw e;
        }
        await decoded.push({ type: 'end', item, index });
      }
    };

    // Stage 2: inference, `batch` frames at a time (a source boundary flushes a partial batch).
    const infer = async () => {
      const pending: Extract<Work, { type: 'frame' }>[] = [];
      const flush = async () => {
        if (!pending.length) return;
        const n = pending.length;
        const [, c, h, w] = pending[0]!.pre.dims;
        let tensor = pending[0]!.pre.tensor;
        if (n > 1) {
          tensor = new Float32Array(n * c * h * w);
          pending.forEach((p, k) => tensor.set(p.pre.tensor, k * c * h * w));
        }
        const s = performance.now();
        const out = await engine.run(tensor, [n, c, h, w]);
        // Nothing reads a frame's tensor after its run: the decode thread packs later frames into the same buffers.
        for (const p of pending) p.release?.();
        const inferMs = (performance.now() - s) / n;
        for (let b = 0; b < n; b++) await inferred.push({ type: 'frame', work: pending[b]!, data: out.data, dims: out.dims, b, inferMs });
        pending.length = 0;
      };
      // Idle time waiting for frames, from the first frame on: not the start-up before it, nor the wait for a
      // source's decoder to wind down after its last frame (its end marker), which no frame waits behind.
      let running = false;
      for (;;) {
        const idle = performance.now();
        const w = await decoded.pop();
        if (running && w !== undefined && w.type !== 'end') ms.waiting += performance.now() - idle;
        if (w === undefined) break;
        if (w.type === 'frame') {
          running = true;
          pending.push(w);
          if (pending.length >= batch) await flush();
        } else {
          await flush();
          await inferred.push(w);
        }
      }
      await flush();
    };

    // Stage 3: postprocess, track, write every output, annotate and encode.
    const post = async () => {
      for (;;) {
        const r = await inferred.pop();
        if (r === undefined) break;
        if (r.type === 'begin') {
          const result: SourceState['result'] = { source: r.item.path, kind: r.item.kind, width: r.width, height: r.height, frames: 0, detections: 0 };
          const st: SourceState = { result, ids: new Set(), mot: [], t0: performance.now() };
          if (o.track) st.tracker = new ByteTracker(trackOpts);
          if (o.save && r.item.kind === 'video') {
            result.saved = join(runDir, `${r.item.stem}.mp4`);
            st.writer = new VideoWriter(result.saved, { width: r.width, height: r.height, fps: r.fps > 0 ? r.fps : 25, crf: o.crf });
          }
          states.set(r.index, st);
          continue;
        }
        if (r.type === 'end') {
          const st = states.get(r.index)!;
          await finishSource(st, r.item);
          results.push(st.result);
          states.delete(r.index);
          continue;
        }
        const s = performance.now();
        const { work } = r;
        const st = states.get(work.index)!;
        const isVideo = work.item.kind === 'video';
        const tag = isVideo ? `${work.item.stem}_${work.frame + 1}` : work.item.stem;
        ms.pre += work.preMs;
        ms.infer += r.inferMs;
        if (task === 'classify') {
          const top = postprocessClassification(r.data, r.dims, manifest, o.topk, r.b);
          st.result.topk = top.map((t) => ({ classId: t.classId, name: names[t.classId] ?? String(t.classId), score: t.score }));
          if (labelsDir) writeFileSync(join(labelsDir, `${tag}.txt`), top.map((t) => `${t.score.toFixed(4)} ${names[t.classId] ?? t.classId}\n`).join(''));
          if (o.saveJson) jsonRows.push({ image_id: imageId(tag), ...(isVideo ? { frame: work.frame + 1 } : {}), topk: st.result.topk });
          if (work.image && o.save) drawTopk(work.image, top, names);
          logLine(ctx, work, st, top.slice(0, 3).map((t) => `${names[t.classId] ?? t.classId} ${t.score.toFixed(2)}`).join(', '), r.inferMs);
        } else {
          let dets: Detection[] = protocolDetections(r, manifest, work.pre.meta, { conf: o.conf, iou: o.iou, maxDetections: o.classes ? 100_000 : o.maxDet, multiLabel: o.multiLabel }, r.b);
          if (o.classes) {
            const keep = new Set(o.classes);
            dets = dets.filter((d) => keep.has(d.classId)).slice(0, o.maxDet);
          }
          const shown: (Detection & { trackId?: number })[] = st.tracker ? st.tracker.update(dets) : dets;
          for (const d of shown) if ('trackId' in d && d.trackId !== undefined) st.ids.add(d.trackId);
          st.result.detections += shown.length;
          totalDets += shown.length;
          const W = work.pre.meta.origWidth;
          const H = work.pre.meta.origHeight;
          if (labelsDir) writeFileSync(join(labelsDir, `${tag}.txt`), shown.map((d) => yoloLine(d, W, H, o.saveConf)).join(''));
          if (o.saveJson) {
            for (const d of shown) {
              const [x1, y1, x2, y2] = d.box;
              jsonRows.push({
                image_id: imageId(tag),
                ...(isVideo ? { frame: work.frame + 1 } : {}),
                category_id: coco ? (COCO80_TO_91[d.classId] ?? d.classId) : d.classId,
                bbox: [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                score: d.score, // full precision, as `cvopt eval --save-json` writes it
                ...(d.trackId !== undefined ? { track_id: d.trackId } : {}),
              });
            }
          }
          if (o.saveMot && st.tracker) {
            for (const d of shown as TrackedDetection[]) st.mot.push(formatMotRow({ frame: work.frame + 1, id: d.trackId, box: d.box, conf: d.score, classId: d.classId, visibility: -1 }));
          }
          if (cropsDir && work.image) await saveCrops(work.image, shown, names, cropsDir, tag);
          if (work.image && o.save) annotate(work.image, shown, { names, showLabels: o.showLabels, showConf: o.showConf, ...(o.lineWidth ? { lineWidth: o.lineWidth } : {}) });
          logLine(ctx, work, st, summarise(shown, names), r.inferMs);
        }
        if (work.image && o.save) {
          if (st.writer) await st.writer.write(work.image);
          else st.result.saved = await saveImage(work.image, join(runDir, `${work.item.stem}${extname(work.item.path)}`));
        }
        st.result.frames++;
        totalFrames++;
        ms.post += performance.now() - s;
        const elapsed = (performance.now() - t0) / 1000;
        ctx.progress({ stage: 'predict', step: totalFrames, total: 0, message: `${(totalFrames / elapsed).toFixed(1)} fps`, metrics: { fps: totalFrames / elapsed, detections: totalDets } });
      }
    };

    const finishSource = async (st: SourceState, item: SourceItem) => {
      const secs = (performance.now() - st.t0) / 1000;
      if (item.kind === 'video') st.result.fps = secs > 0 ? st.result.frames / secs : 0;
      if (st.tracker) st.result.tracks = st.ids.size;
      if (st.writer) await st.writer.close();
      if (o.saveMot && st.tracker && item.kind === 'video') {
        mkdirSync(join(runDir, 'mot'), { recursive: true });
        st.result.mot = join(runDir, 'mot', `${item.stem}.txt`);
        writeFileSync(st.result.mot, st.mot.length ? `${st.mot.join('\n')}\n` : '');
      }
    };

    // Each stage failing stops the ones before it (abort) and after it (fail the queue it feeds).
    const guard = (p: Promise<void>, next: BoundedQueue<never> | BoundedQueue<Work> | BoundedQueue<Inferred> | undefined, prev: BoundedQueue<Work> | BoundedQueue<Inferred> | undefined) =>
      p.then(
        () => next?.close(),
        (e: unknown) => {
          stop.abort();
          next?.fail(e);
          prev?.close();
          throw e;
        },
      );
    const settled = await Promise.allSettled([guard(produce(), decoded, undefined), guard(infer(), inferred, decoded), guard(post(), undefined, inferred)]);
    ctx.signal.removeEventListener('abort', onAbort);
    // Whatever happened, close what is open so every written file is complete.
    for (const [index, st] of states) {
      try {
        await finishSource(st, items[index]!);
      } catch {
        st.writer?.kill();
      }
      results.push(st.result);
    }
    const json = o.saveJson ? join(runDir, 'predictions.json') : undefined;
    if (json) writeFileSync(json, JSON.stringify(jsonRows));
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    const interrupted = ctx.signal.aborted;
    if (failure && !interrupted) throw failure.reason;
    if (interrupted && totalFrames === 0) throw cancelled();
    const seconds = (performance.now() - t0) / 1000;
    const n = Math.max(totalFrames, 1);
    return {
      runDir,
      model: resolved.modelPath,
      engine: resolved.engine,
      task,
      sources: results,
      frames: totalFrames,
      detections: totalDets,
      seconds,
      fps: seconds > 0 ? totalFrames / seconds : 0,
      speed: { preprocess: ms.pre / n, inference: ms.infer / n, postprocess: ms.post / n, waiting: ms.waiting / Math.max(totalFrames - 1, 1) },
      intraOpThreads: chosen.threads,
      ...(labelsDir ? { labels: labelsDir } : {}),
      ...(json ? { json } : {}),
      ...(cropsDir ? { crops: cropsDir } : {}),
      interrupted,
      notes,
    };
  } finally {
    await engine.close();
  }
}


function logLine(ctx: JobContext, work: Extract<Work, { type: 'frame' }>, st: SourceState, what: string, inferMs: number): void {
  const where = work.item.kind === 'video' ? `video ${work.item.stem} frame ${work.frame + 1}` : `image ${work.item.path}`;
  const size = `${work.pre.meta.origWidth}x${work.pre.meta.origHeight}`;
  const ids = st.tracker ? `, ${st.ids.size} ids` : '';
  ctx.log('info', `${where}: ${size} ${what}${ids}, ${inferMs.toFixed(1)} ms`);
}


export const predictJob: JobHandler<PredictPayload, PredictResult> = {
  kind: 'predict',
  queue: QUEUE_OF.predict,
  payload: PredictPayloadSchema as unknown as z.ZodType<PredictPayload>,
  result: PredictResultSchema,
  summary: 'run a model on images, folders, videos or streams; annotated outputs, labels, COCO JSON, crops, tracks',
  run: runPredict,
};
