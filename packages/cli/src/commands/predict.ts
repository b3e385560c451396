import type { Command } from 'commander';
import { z } from 'zod';
import { DEFAULT_EVAL_PROTOCOL, ENGINE_IDS, type PredictPayload } from '@cvopt/core';
import { PLATFORM_HANDLERS, runLocal, type PredictResult } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { interruptSignal } from '../interrupt.js';
import { emit, table } from '../output.js';

/** Flags `predict` and `track` share, as an Ultralytics user knows them. */
export function predictOptions(cmd: Command, defaultOut: string): Command {
  return cmd
    .argument('<model>', 'an .onnx model (model.json beside it, or inferred), a checkpoint, a preset or an artifact folder')
    .requiredOption('--source <s>', 'an image, a folder, a glob ("imgs/*.jpg"), a .txt list, a video, or a stream URL (rtsp://, http://)')
    .option('--engine <id>', `engine id (${ENGINE_IDS.filter((e) => e !== 'pytorch').join(', ')}); default: the artifact's, else ort-cpu`)
    .option('--conf <x>', 'confidence threshold', '0.25')
    .option('--iou <x>', 'NMS IoU threshold (the evaluation protocol\'s)', String(DEFAULT_EVAL_PROTOCOL.iou))
    .option('--classes <ids>', 'keep only these class ids, comma-separated (e.g. 0,2)')
    .option('--max-det <n>', 'most detections per image', String(DEFAULT_EVAL_PROTOCOL.maxDetections))
    .option('--single-label', 'only the best class per candidate box (default: one box per class above --conf, as `cvopt eval`)')
    .option('--data <dir>', 'dataset to calibrate on when an INT8 engine\'s model must be built (cached with eval and bench)')
    .option('--imgsz <n>', 'network input size (models with a dynamic input size only)')
    .option('--batch <n>', 'images or frames per engine run (dynamic-batch models)', '1')
    .option('--topk <n>', 'classifiers: classes to report', '5')
    .option('--save', 'write annotated images and videos (H.264 MP4, same fps, no audio)')
    .option('--save-txt', 'write YOLO label rows per image/frame (class cx cy w h [conf] [id])')
    .option('--save-conf', 'with --save-txt: add the confidence column')
    .option('--save-json', 'write COCO-format results (predictions.json; track_id when tracking)')
    .option('--save-crop', 'write each detection as an image under crops/<class>/')
    .option('--show-labels [bool]', 'draw class names on boxes: true (default) or false (Ultralytics\' show_labels)')
    .option('--show-conf [bool]', 'draw confidences on boxes: true (default) or false (Ultralytics\' show_conf)')
    .option('--hide-labels', 'the same as --show-labels false')
    .option('--hide-conf', 'the same as --show-conf false')
    .option('--line-width <n>', 'box outline width in pixels (default: scales with the image)')
    .option('--vid-stride <n>', 'use every n-th video frame', '1')
    .option('--max-frames <n>', 'stop each video after n frames')
    .option('--out <dir>', 'run folder; exp → exp2, exp3… when it exists', defaultOut)
    .option('--exist-ok', 'write into --out even when it exists')
    .option('--queue-depth <n>', 'frames held between pipeline stages', '4')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: 1 when this model runs as fast on one thread — timed at start — leaving the other cores to decoding, else ONNX Runtime\'s own choice)');
}

/** The shared flags' zod shape (flags.ts): a bad value is INVALID_ARGUMENT naming the flag. */
const PREDICT_FLAGS = {
  source: flag.string(),
  engine: flag.engine().optional(),
  conf: flag.number({ min: 0, max: 1 }),
  iou: flag.number({ min: 0, max: 1 }),
  classes: z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean).map(Number) : v), z.array(z.number().int('must be integers').min(0, 'must be ≥ 0')).min(1, 'must list at least one class id')).optional(),
  maxDet: flag.int({ min: 1, max: 100_000 }),
  singleLabel: flag.switch().optional(),
  data: flag.string().optional(),
  imgsz: flag.int({ min: 32, max: 8192 }).optional(),
  batch: flag.int({ min: 1, max: 256 }),
  topk: flag.int({ min: 1, max: 100 }),
  lineWidth: flag.int({ min: 1, max: 64 }).optional(),
  vidStride: flag.int({ min: 1, max: 1000 }),
  maxFrames: flag.int({ min: 1 }).optional(),
  out: flag.string(),
  queueDepth: flag.int({ min: 1, max: 256 }),
  threads: flag.int({ min: 1 }).optional(),
  showLabels: flag.bool().optional(),
  showConf: flag.bool().optional(),
};

/** Parse the shared flags into a predict payload. */
export function predictPayload(model: string, opts: Record<string, unknown>, track: boolean): PredictPayload {
  const f = parseFlags(PREDICT_FLAGS, opts);
  return {
    model,
    source: f.source,
    ...(f.engine ? { engine: f.engine } : {}),
    conf: f.conf,
    iou: f.iou,
    maxDet: f.maxDet,
    multiLabel: f.singleLabel !== true,
    batch: f.batch,
    topk: f.topk,
    save: opts.save === true,
    saveTxt: opts.saveTxt === true,
    saveConf: opts.saveConf === true,
    saveJson: opts.saveJson === true,
    saveCrop: opts.saveCrop === true,
    saveMot: opts.saveMot === true,
    showLabels: (f.showLabels ?? true) && opts.hideLabels !== true,
    showConf: (f.showConf ?? true) && opts.hideConf !== true,
    vidStride: f.vidStride,
    out: f.out,
    existOk: opts.existOk === true,
    queueDepth: f.queueDepth,
    track,
    ...(f.classes ? { classes: f.classes } : {}),
    ...(f.data ? { data: f.data } : {}),
    ...(f.imgsz !== undefined ? { imgsz: f.imgsz } : {}),
    ...(f.lineWidth !== undefined ? { lineWidth: f.lineWidth } : {}),
    ...(f.maxFrames !== undefined ? { maxFrames: f.maxFrames } : {}),
    ...(f.threads !== undefined ? { intraOpNumThreads: f.threads } : {}),
  };
}

/**
 * Run a predict payload in this process through the predict job handler (runLocal). Ctrl-C (the CLI's one
 * interrupt signal) stops the pipeline reading: it finishes the frames in flight and closes every file, so the
 * outputs hold every frame processed; the command then prints its result and exits 130.
 */
export async function runPredictLocal(payload: PredictPayload, opts: { json?: boolean; verbose?: boolean; signal?: AbortSignal }): Promise<PredictResult> {
  let lastProgress = 0;
  try {
    return await runLocal(PLATFORM_HANDLERS.predict, payload, {
      signal: opts.signal ?? interruptSignal(),
      onLog: (_level, message) => {
        if (!opts.json && opts.verbose) process.stderr.write(`${message}\n`);
      },
      onProgress: (p) => {
        if (opts.json) return;
        const now = performance.now();
        if (now - lastProgress < (process.stderr.isTTY ? 500 : 5000)) return;
        lastProgress = now;
        process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}${p.stage} ${p.step} frames, ${p.message ?? ''}${process.stderr.isTTY ? '   ' : '\n'}`);
      },
    });
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
    `speed per frame: ${sp.preprocess.toFixed(1)} ms decode+preprocess, ${sp.inference.toFixed(1)} ms inference, ${sp.postprocess.toFixed(1)} ms postprocess+output (stages overlap); inference waited ${sp.waiting.toFixed(1)} ms a frame for decoded frames`,
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
    const result = await runPredictLocal(predictPayload(model, opts, opts.track === true), { json: opts.json === true, verbose: opts.verbose === true, ...(opts.signal ? { signal: opts.signal } : {}) });
    emit(opts, result, renderPredict);
  });
}
