import type { Command } from 'commander';
import { z } from 'zod';
import { CvoptError, DEFAULT_EVAL_PROTOCOL, describeProtocol, ORT_ENGINE_IDS, type EvalPayload } from '@cvopt/core';
import { evaluateCocoFiles, PLATFORM_HANDLERS, readNamesFile, runLocal, type EvalResult, type ManifestFix } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, fmtNum, ProgressLine, table } from '../output.js';

function renderModel(r: EvalResult): string {
  const out: string[] = [
    `${r.model} on ${r.engine.id} (${r.engine.precision}), ${r.images} images of ${r.data} (${r.split} split)`,
    `model run: ${r.engineModel}`,
    `manifest: ${r.manifestSource}`,
    ...(r.protocol ? [`protocol: ${describeProtocol(r.protocol)}`] : []),
    ...r.notes.map((n) => `  note: ${n}`),
    '',
  ];
  if (r.detect) {
    const d = r.detect;
    out.push(
      table(
        ['metric', 'value'],
        [
          ['mAP50', d.map50],
          ['mAP75', d.map75],
          ['mAP50-95', d.map5095],
          [`precision @ conf ${fmtNum(d.confidence)}`, d.precision],
          [`recall @ conf ${fmtNum(d.confidence)}`, d.recall],
        ],
      ),
      '',
      table(
        ['class', 'name', 'gt boxes', 'AP50', 'AP50-95'],
        // Classes with no ground truth in these images have no AP; listing them would only add rows of -1.
        d.perClass.filter((c) => c.gts > 0).map((c) => [c.classId, c.name, c.gts, c.ap50, c.ap5095]),
      ),
    );
  }
  if (r.classify) out.push(table(['metric', 'value'], [['top-1', r.classify.top1], ['top-5', r.classify.top5], ['images', r.classify.n]]));
  out.push('', `${r.images} images in ${r.seconds.toFixed(1)} s: ${r.imagesPerSecond.toFixed(2)} images/s end to end (decode, preprocess, inference, postprocess)`);
  if (r.savedGt) out.push(`wrote the ground truth of ${r.savedGt.images} images (${r.savedGt.annotations} boxes) to ${r.savedGt.path}`);
  if (r.savedJson) out.push(`wrote ${r.savedJson.detections} detections to ${r.savedJson.path} (category_id: ${r.savedJson.categoryIds === 'coco91' ? 'COCO 91-id numbering' : 'class index'})`);
  return out.join('\n');
}

export const EvalFlags = {
  data: flag.string().optional(),
  engine: flag.engine().default('ort-cpu'),
  conf: flag.number({ min: 0, max: 1 }).default(DEFAULT_EVAL_PROTOCOL.conf),
  iou: flag.number({ min: 0, max: 1 }).default(DEFAULT_EVAL_PROTOCOL.iou),
  maxDet: flag.int({ min: 1 }).default(DEFAULT_EVAL_PROTOCOL.maxDetections),
  singleLabel: flag.switch().default(false),
  maxImages: flag.int({ min: 1 }).optional(),
  saveJson: flag.string().optional(),
  saveGt: flag.string().optional(),
  channelOrder: z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), flag.oneOf(['RGB', 'BGR'])).optional(),
  scale: flag.number({ gt: 0 }).optional(),
  names: flag.string().optional(),
  threads: flag.int({ min: 1 }).optional(),
  calib: flag.int({ min: 1 }).optional(),
  cocoGt: flag.string().optional(),
  cocoDt: flag.string().optional(),
};

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('accuracy of a model on a dataset (mAP50, mAP50-95 or top-1/top-5), or the 12 COCO stats of a results file')
    .argument('[model]', 'an ONNX file (model.json beside it, else inferred), a .pt/.pkl checkpoint or a preset')
    .option('--data <path>', 'a detection data.yaml (val split) or a folder-per-class classification set')
    .option('--engine <id>', `any ONNX Runtime engine (${ORT_ENGINE_IDS.join(', ')}); INT8/FP16 ids run that conversion of the model`, 'ort-cpu')
    .option('--conf <x>', 'protocol: confidence floor for detections', String(DEFAULT_EVAL_PROTOCOL.conf))
    .option('--iou <x>', 'protocol: NMS IoU threshold', String(DEFAULT_EVAL_PROTOCOL.iou))
    .option('--max-det <n>', 'protocol: most detections per image', String(DEFAULT_EVAL_PROTOCOL.maxDetections))
    .option('--single-label', 'protocol: one candidate per anchor (its best class) instead of every class above --conf')
    .option('--max-images <n>', 'evaluate only the first N images')
    .option('--save-json <file>', 'write COCO-format detections (category_id in COCO 91-id numbering when the classes are COCO-80, else the class index)')
    .option('--save-gt <file>', 'write the evaluated images\' labels as a COCO ground-truth file (same ids as --save-json), to score with --coco-gt/--coco-dt or pycocotools')
    .option('--channel-order <RGB|BGR>', 'override the channel order')
    .option('--scale <x>', 'override the pixel scale (1/255 = 0.00392156862745098 for 0..1 inputs, 1 for 0..255)')
    .option('--names <file>', 'class names: one per line, or a YAML file with names')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: its own choice)')
    .option('--calib <n>', 'INT8 engines: calibration images of the (cached) quantization', '32')
    .option('--coco-gt <file>', 'COCO ground-truth JSON (with --coco-dt: evaluate a results file, no model)')
    .option('--coco-dt <file>', 'COCO results JSON');
  action<[string | undefined]>(cmd, async (model, opts) => {
    const f = parseFlags(EvalFlags, opts);
    if (f.cocoGt !== undefined || f.cocoDt !== undefined) {
      if (f.cocoGt === undefined || f.cocoDt === undefined) {
        throw new CvoptError('INVALID_ARGUMENT', '--coco-gt and --coco-dt go together', { where: { field: f.cocoGt ? '--coco-dt' : '--coco-gt' }, hint: 'cvopt eval --coco-gt GT.json --coco-dt DT.json' });
      }
      const summary = await evaluateCocoFiles(f.cocoGt, f.cocoDt);
      const doc = { gt: f.cocoGt, dt: f.cocoDt, stats: Object.fromEntries(summary.names.map((n, i) => [n, summary.stats[i]])), perCategory: summary.perCategory };
      emit(opts, doc, () => table(['statistic', 'value'], summary.names.map((n, i) => [n, Number((summary.stats[i] ?? -1).toFixed(4))])));
      return;
    }
    if (!model) throw new CvoptError('INVALID_ARGUMENT', 'eval needs a MODEL (or --coco-gt and --coco-dt)', { hint: 'cvopt eval model.onnx --data data.yaml' });
    if (f.data === undefined) throw new CvoptError('INVALID_ARGUMENT', 'eval MODEL needs --data', { where: { field: '--data' }, hint: 'cvopt eval model.onnx --data path/to/data.yaml' });
    const overrides: ManifestFix = {};
    if (f.channelOrder) overrides.channelOrder = f.channelOrder;
    if (f.scale !== undefined) overrides.scale = f.scale;
    if (f.names !== undefined) overrides.classNames = readNamesFile(f.names);
    const payload: EvalPayload = {
      model,
      data: f.data,
      engine: f.engine,
      protocol: { conf: f.conf, iou: f.iou, maxDetections: f.maxDet, multiLabel: !f.singleLabel },
      ...(f.maxImages !== undefined ? { maxImages: f.maxImages } : {}),
      ...(f.saveJson !== undefined ? { saveJson: f.saveJson } : {}),
      ...(f.saveGt !== undefined ? { saveGt: f.saveGt } : {}),
      ...(f.threads !== undefined ? { intraOpNumThreads: f.threads } : {}),
      ...(f.calib !== undefined ? { calib: f.calib } : {}),
      overrides,
    };
    const progress = new ProgressLine('eval', opts.json === true);
    const result = await runLocal(PLATFORM_HANDLERS.eval, payload, {
      onProgress: (p) => progress.update(p.step, p.total, p.stage === 'evaluate' ? '' : p.stage),
      onLog: (_level, message) => {
        if (!opts.json) process.stderr.write(`eval: ${message}\n`);
      },
    });
    progress.done();
    emit(opts, result, renderModel);
  });
}
