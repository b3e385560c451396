import { relative } from 'node:path';
import type { Command } from 'commander';
import { CvoptError, exitCodeOf } from '@cvopt/core';
import { checkDataset, synthClassification, synthDetection, synthTrack, type CheckReport, type DatasetTask, type Problem } from '@cvopt/datasets';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
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
    const { task: synthTask } = parseFlags({ task: SYNTH_TASK }, opts);
    if (synthTask === 'track') {
      const t = parseFlags(
        {
          out: flag.string(),
          seed: flag.int({ min: 0 }),
          classes: flag.int({ min: 1, max: 8 }),
          frames: flag.int({ min: 1 }),
          objects: flag.int({ min: 1, max: 1000 }),
          occluders: flag.int({ min: 0, max: 16 }),
          size: flag.string(),
          datasetEvery: flag.int({ min: 1 }).optional(),
        },
        opts,
      );
      const size = /^(\d+)x(\d+)$/.exec(t.size);
      if (!size) throw new CvoptError('INVALID_ARGUMENT', `--size must be WIDTHxHEIGHT, got "${t.size}"`, { where: { field: '--size' } });
      const progress = new ProgressLine('synth', Boolean(opts.json));
      const r = await synthTrack({
        out: t.out,
        seed: t.seed,
        classes: t.classes,
        frames: t.frames,
        objects: t.objects,
        occluders: t.occluders,
        width: Number(size[1]),
        height: Number(size[2]),
        ...(t.datasetEvery !== undefined ? { datasetEvery: t.datasetEvery } : {}),
        onProgress: (d, n) => progress.update(d, n),
      });
      progress.done();
      emit(opts, { task: 'track', ...r }, (x) =>
        [`wrote ${x.frames} frames with ${x.objects} objects to ${x.video}`, `ground truth: ${x.gt} (${x.rows} rows, ${x.occludedRows} under half visible)`, ...(x.dataYaml ? [`frame dataset: ${x.dataYaml}`] : [])].join('\n'),
      );
      return;
    }
    const f = parseFlags(
      {
        task: TASK,
        out: flag.string(),
        seed: flag.int({ min: 0 }),
        classes: flag.int({ min: 1, max: 8 }),
        imgsz: flag.int({ min: 16 }).optional(),
        valFraction: flag.number({ min: 0, max: 1 }).optional(),
        images: flag.int({ min: 2 }).optional(),
      },
      opts,
    );
    const { task, images } = f;
    const common = {
      out: f.out,
      seed: f.seed,
      classes: f.classes,
      ...(f.imgsz !== undefined ? { imgsz: f.imgsz } : {}),
      ...(f.valFraction !== undefined ? { valFraction: f.valFraction } : {}),
    };
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
    const { task, for: purpose } = parseFlags({ task: TASK.optional(), for: flag.oneOf(['train', 'eval']) }, opts);
    const report = await checkDataset(data, { purpose, ...(task !== undefined ? { task } : {}) });
    emit(opts, report, renderReport);
    if (!report.ok) process.exitCode = exitCodeOf('DATASET_INVALID');
  });
}

const TASK = flag.oneOf(['detect', 'classify'] as const satisfies readonly DatasetTask[]);
/** synth also makes tracking videos; check only knows the dataset layouts. */
const SYNTH_TASK = flag.oneOf(['detect', 'classify', 'track'] as const);

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
