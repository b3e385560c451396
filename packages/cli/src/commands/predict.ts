import type { Command } from 'commander';
import { CvoptError, ENGINE_IDS, isEngineId, type JobContext } from '@cvopt/core';
import { runPredict, type PredictPayload, type PredictResult } from '@cvopt/platform';
import { action, numberFlag } from '../action.js';
import { emit, table } from '../output.js';

/** Flags `predict` and `track` share, as an Ultralytics user knows them. */
export function predictOptions(cmd: Command, defaultOut: string): Command {
  return cmd
    .argument('<model>', 'an .onnx model (model.json beside it, or inferred) or an artifact folder')
    .requiredOption('--source <s>', 'an image, a folder, a glob ("imgs/*.jpg"), a .txt list, a video, or a stream URL (rtsp://, http://)')
    .option('--engine <id>', `engine id (${ENGINE_IDS.filter((e) => e !== 'pytorch').join(', ')}); default: the artifact's, else ort-cpu`)
    .option('--conf <x>', 'confidence threshold', '0.25')
    .option('--iou <x>', 'NMS IoU threshold', '0.7')
    .option('--classes <ids>', 'keep only these class ids, comma-separated (e.g. 0,2)')
    .option('--max-det <n>', 'most detections per image', '300')
    .option('--multi-label', 'one box per class above --conf, not only the best class (evaluation protocols)')
    .option('--imgsz <n>', 'network input size (models with a dynamic input size only)')
    .option('--batch <n>', 'images or frames per engine run (dynamic-batch models)', '1')
    .option('--topk <n>', 'classifiers: classes to report', '5')
    .option('--save', 'write annotated images and videos (H.264 MP4, same fps, no audio)')
    .option('--save-txt', 'write YOLO label rows per image/frame (class cx cy w h [conf] [id])')
    .option('--save-conf', 'with --save-txt: add the confidence column')
    .option('--save-json', 'write COCO-format results (predictions.json; track_id when tracking)')
    .option('--save-crop', 'write each detection as an image under crops/<class>/')
    .option('--hide-labels', 'draw boxes without class names')
    .option('--hide-conf', 'draw boxes without confidences')
    .option('--line-width <n>', 'box outline width in pixels (default: scales with the image)')
    .option('--vid-stride <n>', 'use every n-th video frame', '1')
    .option('--max-frames <n>', 'stop each video after n frames')
    .option('--out <dir>', 'run folder; exp → exp2, exp3… when it exists', defaultOut)
    .option('--exist-ok', 'write into --out even when it exists')
    .option('--queue-depth <n>', 'frames held between pipeline stages', '4')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: its own choice)');
}

/** Parse the shared flags into a predict payload. */
export function predictPayload(model: string, opts: Record<string, unknown>, track: boolean): PredictPayload {
  const engine = opts.engine === undefined ? undefined : String(opts.engine);
  if (engine !== undefined && !isEngineId(engine)) {
    throw new CvoptError('INVALID_ARGUMENT', `--engine must be one of ${ENGINE_IDS.join(', ')}, got "${engine}"`, { where: { field: '--engine' } });
  }
  const classes =
    opts.classes === undefined
      ? undefined
      : String(opts.classes)
          .split(',')
          .filter((s) => s.trim() !== '')
          .map((s) => numberFlag('classes', s.trim(), { int: true, min: 0 }));
  const opt = (name: string, v: unknown, o: Parameters<typeof numberFlag>[2]) => (v === undefined ? undefined : numberFlag(name, v, o));
  const payload: PredictPayload = {
    model,
    source: String(opts.source),
    ...(engine ? { engine: engine as PredictPayload['engine'] } : {}),
    conf: numberFlag('conf', opts.conf, { min: 0, max: 1 }),
    iou: numberFlag('iou', opts.iou, { min: 0, max: 1 }),
    maxDet: numberFlag('max-det', opts.maxDet, { int: true, min: 1 }),
    multiLabel: opts.multiLabel === true,
    batch: numberFlag('batch', opts.batch, { int: true, min: 1, max: 256 }),
    topk: numberFlag('topk', opts.topk, { int: true, min: 1, max: 100 }),
    save: opts.save === true,
    saveTxt: opts.saveTxt === true,
    saveConf: opts.saveConf === true,
    saveJson: opts.saveJson === true,
    saveCrop: opts.saveCrop === true,
    saveMot: opts.saveMot === true,
    showLabels: opts.hideLabels !== true,
    showConf: opts.hideConf !== true,
    vidStride: numberFlag('vid-stride', opts.vidStride, { int: true, min: 1, max: 1000 }),
    out: String(opts.out),
    existOk: opts.existOk === true,
    queueDepth: numberFlag('queue-depth', opts.queueDepth, { int: true, min: 1, max: 256 }),
    track,
  };
  const extra = {
    classes,
    imgsz: opt('imgsz', opts.imgsz, { int: true, min: 32, max: 8192 }),
    lineWidth: opt('line-width', opts.lineWidth, { int: true, min: 1, max: 64 }),
    maxFrames: opt('max-frames', opts.maxFrames, { int: true, min: 1 }),
    intraOpNumThreads: opt('threads', opts.threads, { int: true, min: 1 }),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (payload as Record<string, unknown>)[k] = v;
  return payload;
}

/**
 * Run a predict payload in this process. Ctrl-C (the CLI's one interrupt signal) stops the pipeline reading: it
 * finishes the frames in flight and closes every file, so the outputs hold every frame processed; the command then
 * prints its result and exits 130.
 */
export async function runLocal(payload: PredictPayload, opts: { json?: boolean; verbose?: boolean; signal?: AbortSignal }): Promise<PredictResult> {
  let lastProgress = 0;
  const ctx: JobContext = {
    signal: opts.signal ?? new AbortController().signal,
    workdir: process.cwd(),
    log: (_level, message) => {
      if (!opts.json && opts.verbose) process.stderr.write(`${message}\n`);
    },
    progress: (p) => {
      if (opts.json) return;
      const now = performance.now();
      if (now - lastProgress < (process.stderr.isTTY ? 500 : 5000)) return;
      lastProgress = now;
      process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}${p.stage} ${p.step} frames, ${p.message ?? ''}${process.stderr.isTTY ? '   ' : '\n'}`);
    },
  };
  try {
    return await runPredict(payload, ctx);
  } finally {
    if (!opts.json && process.stderr.isTTY) process.stderr.write('\n');
  }
}

export function renderPredict(r: PredictResult): string {
  const out: string[] = [`${r.model} on ${r.engine} (${r.task})`, ...r.notes.map((n) => `  note: ${n}`), ''];
  out.push(
    table(
      ['source', 'size', 'frames', r.task === 'detect' ? 'detections' : 'top-k', ...(r.sources.some((s) => s.tracks !== undefined) ? ['track ids'] : []), 'saved'],
      r.sources.map((s) => [
        s.source,
        `${s.width}x${s.height}`,
        s.frames,
        r.task === 'detect' ? s.detections : (s.topk ?? []).map((t) => `${t.name} ${t.score.toFixed(2)}`).join(', ') || '-',
        ...(r.sources.some((x) => x.tracks !== undefined) ? [s.tracks ?? '-'] : []),
        s.saved ?? '-',
      ]),
    ),
  );
  const sp = r.speed;
  out.push(
    '',
    `${r.frames} ${r.frames === 1 ? 'image' : 'images/frames'} in ${r.seconds.toFixed(2)} s: ${r.fps.toFixed(1)} fps end to end`,
    `speed per frame: ${sp.preprocess.toFixed(1)} ms decode+preprocess, ${sp.inference.toFixed(1)} ms inference, ${sp.postprocess.toFixed(1)} ms postprocess+output (stages overlap)`,
    `results in ${r.runDir}${r.labels ? ` (labels: ${r.labels})` : ''}${r.json ? ` (json: ${r.json})` : ''}${r.crops ? ` (crops: ${r.crops})` : ''}`,
  );
  const mots = r.sources.filter((s) => s.mot).map((s) => s.mot);
  if (mots.length) out.push(`MOT files: ${mots.join(', ')}`);
  if (r.interrupted) out.push('interrupted: outputs hold every frame processed before Ctrl-C');
  return out.join('\n');
}

export function register(program: Command): void {
  const cmd = predictOptions(program.command('predict').description('run a model on images, folders, globs, lists, videos or streams; annotated outputs and result files'), 'runs/predict/exp')
    .option('--track', 'add persistent ids with the ByteTrack-style tracker (see `cvopt track`)')
    .option('--save-mot', 'with --track: write MOTChallenge rows per video under mot/')
    .option('--verbose', 'one line per image or frame on stderr')
    .addHelpText(
      'after',
      `
Examples:
  cvopt predict model.onnx --source bus.jpg --save
  cvopt predict model.onnx --source "images/*.jpg" --save-txt --save-conf --save-json --conf 0.4
  cvopt predict model.onnx --source traffic.mp4 --save --vid-stride 2 --classes 2,7
  cvopt predict artifact/ --source rtsp://camera.local/stream --save --max-frames 1000
  cvopt predict model.onnx --source traffic.mp4 --track --save --save-mot`,
    );
  action<[string]>(cmd, async (model, opts) => {
    const result = await runLocal(predictPayload(model, opts, opts.track === true), { json: opts.json === true, verbose: opts.verbose === true, ...(opts.signal ? { signal: opts.signal } : {}) });
    emit(opts, result, renderPredict);
  });
}
