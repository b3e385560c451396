import { relative } from 'node:path';
import type { Command } from 'commander';
import { CvoptError, exitCodeOf } from '@cvopt/core';
import { checkDataset, synthClassification, synthDetection, synthTrack, type CheckReport, type DatasetTask, type Problem } from '@cvopt/datasets';
import { action, numberFlag } from '../action.js';
import { emit, ProgressLine, table } from '../output.js';

/** `cvopt dataset synth|check`: synthetic datasets, and a validator that lists every problem with file:line. */
export function register(program: Command): void {
  const dataset = program.command('dataset').description('create and validate datasets');

  const synth = dataset
    .command('synth')
    .description('write a deterministic synthetic dataset of coloured shapes (class = shape)')
    .requiredOption('--task <task>', 'detect (Ultralytics layout with data.yaml), classify (folder per class) or track (a video of moving shapes with MOT ground truth)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--images <n>', 'detect: total images; classify: images per class (default 300 / 60)')
    .option('--seed <n>', 'random seed: the same seed gives byte-identical files', '0')
    .option('--imgsz <n>', 'square image side in pixels (default 256 / 64)')
    .option('--classes <n>', 'number of shape classes, 1..8 (2..8 for classify)', '3')
    .option('--val-fraction <x>', 'share of images in val (default 0.2 / 0.25)')
    .option('--frames <n>', 'track: frames in the video', '150')
    .option('--objects <n>', 'track: moving objects', '8')
    .option('--occluders <n>', 'track: static bars objects pass behind', '2')
    .option('--size <WxH>', 'track: frame size', '320x240')
    .option('--dataset-every <n>', 'track: also write every n-th frame as a YOLO detection dataset (for training a detector)');
  action<[]>(synth, async (opts) => {
    if (opts.task === 'track') {
      const size = /^(\d+)x(\d+)$/.exec(String(opts.size));
      if (!size) throw new CvoptError('INVALID_ARGUMENT', `--size must be WIDTHxHEIGHT, got "${String(opts.size)}"`, { where: { field: '--size' } });
      const progress = new ProgressLine('synth', Boolean(opts.json));
      const r = await synthTrack({
        out: String(opts.out),
        seed: numberFlag('seed', opts.seed, { int: true, min: 0 }),
        classes: numberFlag('classes', opts.classes, { int: true, min: 1, max: 8 }),
        frames: numberFlag('frames', opts.frames, { int: true, min: 1 }),
        objects: numberFlag('objects', opts.objects, { int: true, min: 1, max: 1000 }),
        occluders: numberFlag('occluders', opts.occluders, { int: true, min: 0, max: 16 }),
        width: Number(size[1]),
        height: Number(size[2]),
        ...(opts.datasetEvery !== undefined ? { datasetEvery: numberFlag('dataset-every', opts.datasetEvery, { int: true, min: 1 }) } : {}),
        onProgress: (d, t) => progress.update(d, t),
      });
      progress.done();
      emit(opts, { task: 'track', ...r }, (x) =>
        [`wrote ${x.frames} frames with ${x.objects} objects to ${x.video}`, `ground truth: ${x.gt} (${x.rows} rows, ${x.occludedRows} under half visible)`, ...(x.dataYaml ? [`frame dataset: ${x.dataYaml}`] : [])].join('\n'),
      );
      return;
    }
    const task = taskFlag(opts.task);
    const common = {
      out: String(opts.out),
      seed: numberFlag('seed', opts.seed, { int: true, min: 0 }),
      classes: numberFlag('classes', opts.classes, { int: true, min: 1, max: 8 }),
      ...(opts.imgsz !== undefined ? { imgsz: numberFlag('imgsz', opts.imgsz, { int: true, min: 16 }) } : {}),
      ...(opts.valFraction !== undefined ? { valFraction: numberFlag('val-fraction', opts.valFraction, { min: 0, max: 1 }) } : {}),
    };
    const images = opts.images !== undefined ? numberFlag('images', opts.images, { int: true, min: 2 }) : undefined;
    const progress = new ProgressLine('synth', Boolean(opts.json));
    const onProgress = (done: number, total: number) => progress.update(done, total);
    if (task === 'detect') {
      const r = await synthDetection({ ...common, ...(images !== undefined ? { images } : {}), onProgress });
      progress.done();
      emit(opts, { task, ...r }, (x) =>
        [`wrote ${x.train} train + ${x.val} val images (${x.boxes} boxes, ${x.background} background) to ${x.root}`, `classes: ${x.names.join(', ')}`, `data: ${x.dataYaml}`].join('\n'),
      );
    } else {
      const r = await synthClassification({ ...common, ...(images !== undefined ? { imagesPerClass: images } : {}), onProgress });
      progress.done();
      emit(opts, { task, ...r }, (x) => [`wrote ${x.train} train + ${x.val} val images to ${x.root}`, `classes: ${x.names.join(', ')}`].join('\n'));
    }
  });

  const check = dataset
    .command('check')
    .description('validate a dataset: every problem with file:line, class histogram, box sizes')
    .argument('<data>', 'data.yaml (or its directory) for detection; a folder-per-class directory for classification')
    .option('--task <task>', 'detect or classify (default: the layout decides; a task the layout contradicts is refused)')
    .option('--for <purpose>', 'train (default: train and val splits needed, as cvopt train reads them) or eval (any split with images)', 'train')
    .addHelpText(
      'after',
      `
Examples:
  cvopt dataset check data/coco128/data.yaml
  cvopt dataset check flowers/ --task classify
  cvopt dataset check coco128-val/data.yaml --for eval    # an evaluation-only set (no train split)
  cvopt dataset check data.yaml --json | jq '.problems[] | select(.severity == "error")'`,
    );
  action<[string]>(check, async (data, opts) => {
    const purpose = String(opts.for);
    if (purpose !== 'train' && purpose !== 'eval') throw new CvoptError('INVALID_ARGUMENT', `--for must be train or eval, got "${purpose}"`, { where: { field: '--for' } });
    const report = await checkDataset(data, { purpose, ...(opts.task !== undefined ? { task: taskFlag(opts.task) } : {}) });
    emit(opts, report, renderReport);
    if (!report.ok) process.exitCode = exitCodeOf('DATASET_INVALID');
  });
}

function taskFlag(value: unknown): DatasetTask {
  if (value === 'detect' || value === 'classify') return value;
  throw new CvoptError('INVALID_ARGUMENT', `--task must be detect or classify (synth: or track), got "${String(value)}"`, { where: { field: '--task' } });
}

function renderReport(r: CheckReport): string {
  const s = r.stats;
  const out: string[] = [];
  const splits = Object.entries(s.splits)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  out.push(`${r.root} (${r.task}): ${s.images} images (${splits || 'no splits'})`);
  if (r.task === 'detect') out.push(`${s.labelled} labelled, ${s.background} background, ${s.labelsWithoutImages} labels without images`);
  const errors = r.problems.filter((p) => p.severity === 'error');
  const warnings = r.problems.filter((p) => p.severity === 'warning');
  for (const [title, list] of [
    ['errors', errors],
    ['warnings', warnings],
  ] as const) {
    if (list.length === 0) continue;
    out.push('', `${plural(list.length, title.slice(0, -1))}:`);
    for (const p of list) out.push(`  ${where(p)}: ${p.message} (fix: ${p.hint})`);
  }
  if (s.classHistogram.length > 0) {
    out.push('', table(['id', 'class', r.task === 'detect' ? 'boxes' : 'images'], s.classHistogram.map((c, i) => [i, c.name, c.count])));
  }
  if (r.task === 'detect' && s.boxes.count > 0) {
    const b = s.boxes;
    const unit = b.units === 'pixels' ? 'px' : 'of image';
    out.push(
      '',
      table(
        ['boxes', `min side (${unit})`, `median area (${unit}${b.units === 'pixels' ? '²' : ''})`, 'small', 'medium', 'large'],
        [[b.count, b.minSide, b.medianArea, b.small, b.medium, b.large]],
      ),
    );
  }
  out.push('', r.ok ? `OK${warnings.length ? ` (${plural(warnings.length, 'warning')})` : ''}` : `FAILED: ${plural(errors.length, 'error')}, ${plural(warnings.length, 'warning')}`);
  return out.join('\n');
}

function where(p: Problem): string {
  const rel = relative(process.cwd(), p.file);
  const file = rel.startsWith('../../') ? p.file : rel;
  return p.line !== undefined ? `${file}:${p.line}` : file;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
