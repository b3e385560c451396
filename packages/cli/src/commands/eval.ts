import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { EVAL_ENGINES, evaluateCocoFiles, evaluateModel, readNamesFile, type EvalOptions, type EvalResult } from '@cvopt/platform';
import { action, numberFlag } from '../action.js';
import { emit, fmtNum, ProgressLine, table } from '../output.js';

function renderModel(r: EvalResult): string {
  const out: string[] = [
    `${r.model} on ${r.engine.id} (${r.engine.precision}), ${r.images} images of ${r.data}`,
    `manifest: ${r.manifestSource}`,
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
  if (r.savedJson) out.push(`wrote ${r.savedJson.detections} detections to ${r.savedJson.path} (category_id: ${r.savedJson.categoryIds === 'coco91' ? 'COCO 91-id numbering' : 'class index'})`);
  return out.join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('accuracy of a model on a dataset (mAP50, mAP50-95 or top-1/top-5), or the 12 COCO stats of a results file')
    .argument('[model]', 'an ONNX file (model.json beside it is used when present, else inferred from the file)')
    .option('--data <path>', 'a detection data.yaml (val split) or a folder-per-class classification set')
    .option('--engine <id>', `engine to run on (${Object.keys(EVAL_ENGINES).join(', ')})`, 'ort-cpu')
    .option('--conf <x>', 'confidence floor for detections', '0.001')
    .option('--iou <x>', 'NMS IoU threshold', '0.7')
    .option('--max-images <n>', 'evaluate only the first N images')
    .option('--save-json <file>', 'write COCO-format detections (category_id in COCO 91-id numbering when the classes are COCO-80, else the class index)')
    .option('--channel-order <RGB|BGR>', 'override the channel order')
    .option('--scale <x>', 'override the pixel scale (1/255 = 0.00392156862745098 for 0..1 inputs, 1 for 0..255)')
    .option('--names <file>', 'class names: one per line, or a YAML file with names')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: its own choice)')
    .option('--coco-gt <file>', 'COCO ground-truth JSON (with --coco-dt: evaluate a results file, no model)')
    .option('--coco-dt <file>', 'COCO results JSON');
  action<[string | undefined]>(cmd, async (model, opts) => {
    if (opts.cocoGt !== undefined || opts.cocoDt !== undefined) {
      if (typeof opts.cocoGt !== 'string' || typeof opts.cocoDt !== 'string') {
        throw new CvoptError('INVALID_ARGUMENT', '--coco-gt and --coco-dt go together', { where: { field: opts.cocoGt ? '--coco-dt' : '--coco-gt' }, hint: 'cvopt eval --coco-gt GT.json --coco-dt DT.json' });
      }
      const summary = await evaluateCocoFiles(opts.cocoGt, opts.cocoDt);
      const doc = { gt: opts.cocoGt, dt: opts.cocoDt, stats: Object.fromEntries(summary.names.map((n, i) => [n, summary.stats[i]])), perCategory: summary.perCategory };
      emit(opts, doc, () => table(['statistic', 'value'], summary.names.map((n, i) => [n, Number((summary.stats[i] ?? -1).toFixed(4))])));
      return;
    }
    if (!model) throw new CvoptError('INVALID_ARGUMENT', 'eval needs a MODEL (or --coco-gt and --coco-dt)', { hint: 'cvopt eval model.onnx --data data.yaml' });
    if (typeof opts.data !== 'string') throw new CvoptError('INVALID_ARGUMENT', 'eval MODEL needs --data', { where: { field: '--data' }, hint: 'cvopt eval model.onnx --data path/to/data.yaml' });
    const engine = String(opts.engine);
    if (!(engine in EVAL_ENGINES)) {
      throw new CvoptError('INVALID_ARGUMENT', `--engine must be one of ${Object.keys(EVAL_ENGINES).join(', ')}, got "${engine}"`, { where: { field: '--engine' } });
    }
    const channelOrder = opts.channelOrder === undefined ? undefined : String(opts.channelOrder).toUpperCase();
    if (channelOrder !== undefined && channelOrder !== 'RGB' && channelOrder !== 'BGR') {
      throw new CvoptError('INVALID_ARGUMENT', `--channel-order must be RGB or BGR, got "${String(opts.channelOrder)}"`, { where: { field: '--channel-order' } });
    }
    const overrides: NonNullable<EvalOptions['overrides']> = {};
    if (channelOrder) overrides.channelOrder = channelOrder;
    if (opts.scale !== undefined) overrides.scale = numberFlag('scale', opts.scale, { min: Number.MIN_VALUE });
    if (typeof opts.names === 'string') overrides.classNames = readNamesFile(opts.names);
    const progress = new ProgressLine('eval', opts.json === true);
    const result = await evaluateModel({
      model,
      data: opts.data,
      engine: engine as EvalOptions['engine'] & string,
      conf: numberFlag('conf', opts.conf, { min: 0, max: 1 }),
      iou: numberFlag('iou', opts.iou, { min: 0, max: 1 }),
      ...(opts.maxImages !== undefined ? { maxImages: numberFlag('max-images', opts.maxImages, { int: true, min: 1 }) } : {}),
      ...(typeof opts.saveJson === 'string' ? { saveJson: opts.saveJson } : {}),
      ...(opts.threads !== undefined ? { intraOpNumThreads: numberFlag('threads', opts.threads, { int: true, min: 1 }) } : {}),
      overrides,
      onProgress: (done, total) => progress.update(done, total),
    });
    progress.done();
    emit(opts, result, renderModel);
  });
}
