import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { PRESET_NAME, trainModel, type TrainModelInput, type TrainResult } from '@cvopt/platform';
import { action, numberFlag } from '../action.js';
import { emit, ProgressLine, table } from '../output.js';
import { onInterrupt } from '../interrupt.js';
import { remoteTrain } from '../remote/commands.js';

interface EpochRow {
  epoch: number;
  values: Record<string, number | null>;
}

function render(r: TrainResult, epochs: EpochRow[]): string {
  const keys = [...new Set(epochs.flatMap((e) => Object.keys(e.values)))];
  const out: string[] = [];
  if (epochs.length) {
    out.push(table(['epoch', ...keys], epochs.map((e) => [e.epoch + 1, ...keys.map((k) => e.values[k] ?? null)])), '');
  }
  out.push(
    table(
      ['result', 'value'],
      [
        ['task', r.task],
        ['model', r.preset],
        ['classes', r.names.length],
        ['imgsz', r.imgsz],
        ['epochs', r.epochs],
        ['best epoch', r.bestEpoch + 1],
        ...Object.entries(r.metrics).map(([k, v]): [string, number] => [k, v]),
        ['images/s (train)', r.imagesPerSec],
        ['wall s', r.wallS],
        ['best.pt', r.best],
        ['last.pt', r.last],
      ],
    ),
  );
  return out.join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a YOLOv8-architecture detector or classifier on a YOLO dataset (PyTorch worker)')
    .option('--model <preset|file>', '(required) yolov8n…x, yolov8n-cls…x-cls (random initial weights), a .pt/.pkl checkpoint (cvopt, Ultralytics or a state dict), or a YOLOv8 .onnx (BatchNorm stays frozen)')
    .option('--data <path>', '(required) a detection data.yaml (or its folder), or a folder-per-class classification set')
    .option('--out <dir>', '(required) run directory: last.pt, best.pt, results.csv, results.svg, progress.json')
    .option('--weights <file>', 'start from these weights (.pt, .pkl or YOLOv8 .onnx) instead of random initialisation')
    .option('--epochs <n>', 'epochs', '50')
    .option('--imgsz <n>', 'square training size, a multiple of 32', '640')
    .option('--batch <n>', 'images per batch', '16')
    .option('--device <cpu|cuda>', 'where to train', 'cpu')
    .option('--hyp <file>', 'hyperparameters, YAML or JSON (name: value); unknown names are refused')
    .option('--seed <n>', 'random seed', '0')
    .option('--workers <n>', 'data-loading processes (default: the worker picks)')
    .option('--vram-mb <n>', 'GPU memory this run may take, MiB (cuda); beyond it the run stops with GPU_MEMORY_EXHAUSTED')
    .option('--patience <n>', 'stop after N epochs without a better validation fitness (0 = never)', '100')
    .option('--exist-ok', 'train into an --out folder that already holds files (its checkpoints are replaced)')
    .option('--trust-torchscript', 'load a TorchScript --model (a program: it can write files); without it TorchScript is refused')
    .option('--resume', 'continue <out>/last.pt from its next epoch with its saved arguments')
    .option('--remote', 'run it as a job on the server of `cvopt login` (--model/--data name project resources)')
    .option('--project <name>', 'the server project (with --remote)')
    .option('--detach', 'with --remote: print the job id and return')
    .addHelpText(
      'after',
      `
Examples:
  cvopt dataset synth --task detect --out shapes --images 300
  cvopt train --model yolov8n --data shapes/data.yaml --epochs 30 --imgsz 320 --out runs/exp1
  cvopt train --model yolov8n --weights yolov8n.pt --data data.yaml --epochs 10 --out runs/ft   # fine-tune
  cvopt train --resume --out runs/exp1                                                        # after Ctrl-C
  cvopt train --model yolov8n-cls --data flowers/ --imgsz 224 --hyp hyp.yaml --out runs/cls
  cvopt train --remote --project shapes --model base --data shapes --epochs 30 --imgsz 320    # on the server`,
    );
  action<[]>(cmd, async (opts) => {
    if (opts.remote) return remoteTrain(opts);
    if (typeof opts.out !== 'string') throw new CvoptError('INVALID_ARGUMENT', 'train needs --out DIR', { where: { field: '--out' }, hint: 'cvopt train --model yolov8n --data data.yaml --out runs/exp' });
    const resume = opts.resume === true;
    if (!resume && (typeof opts.model !== 'string' || typeof opts.data !== 'string')) {
      throw new CvoptError('INVALID_ARGUMENT', `train needs ${typeof opts.model !== 'string' ? '--model' : '--data'} (or --resume)`, {
        where: { field: typeof opts.model !== 'string' ? '--model' : '--data' },
        hint: 'cvopt train --model yolov8n --data data.yaml --out runs/exp',
      });
    }
    const device = String(opts.device);
    if (device !== 'cpu' && device !== 'cuda') throw new CvoptError('INVALID_ARGUMENT', `--device must be cpu or cuda, got "${device}"`, { where: { field: '--device' } });
    const input: TrainModelInput & { hypFile?: string } = {
      out: opts.out,
      epochs: numberFlag('epochs', opts.epochs, { int: true, min: 1 }),
      imgsz: numberFlag('imgsz', opts.imgsz, { int: true, min: 32 }),
      batch: numberFlag('batch', opts.batch, { int: true, min: 1 }),
      seed: numberFlag('seed', opts.seed, { int: true, min: 0 }),
      device,
      resume,
      trustTorchscript: opts.trustTorchscript === true,
    };
    if (typeof opts.model === 'string') input.model = opts.model;
    if (typeof opts.data === 'string') input.data = opts.data;
    if (typeof opts.hyp === 'string') input.hypFile = opts.hyp;
    if (opts.workers !== undefined) input.workers = numberFlag('workers', opts.workers, { int: true, min: 0 });
    if (opts.vramMb !== undefined) input.vramMb = numberFlag('vram-mb', opts.vramMb, { int: true, min: 1 });
    input.patience = numberFlag('patience', opts.patience, { int: true, min: 0 });
    if (typeof opts.weights === 'string') input.weights = opts.weights;
    if (opts.existOk === true) input.existOk = true;
    const say = (line: string) => {
      if (opts.json !== true) process.stderr.write(`${line}\n`);
    };
    if (!resume && typeof opts.model === 'string' && PRESET_NAME.test(opts.model) && input.weights === undefined) {
      say(`note: ${opts.model} starts from random weights (cvopt downloads nothing); to fine-tune, pass --weights FILE (.pt, .pkl or YOLOv8 .onnx)`);
    }

    const bar = new ProgressLine('train', opts.json === true);
    const epochs = new Map<number, EpochRow>();
    const removeHook = onInterrupt(() => say(`\nthe run stops at its last finished epoch; continue it with: cvopt train --resume --out ${opts.out}`));
    try {
      const r = await trainModel(input, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        onLog: (line) => {
          if (line.startsWith('warning:') || line.startsWith('early stop')) say(line);
        },
        onProgress: (m) => {
          if (m.stage === 'train') bar.update(m.step, m.total, m.message ?? '');
          else if (m.stage === 'epoch' && opts.json !== true) process.stderr.write(`\nepoch ${m.step}/${m.total}: ${m.message ?? ''}\n`);
        },
        onMetric: (m) => {
          if (m.epoch === undefined) return;
          const row = epochs.get(m.epoch) ?? { epoch: m.epoch, values: {} };
          Object.assign(row.values, m.values);
          epochs.set(m.epoch, row);
        },
      });
      bar.done(`${r.epochsRun ?? r.epochs} epochs`);
      const rows = [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
      emit(opts, { ...r, history: rows }, (x) => render(x, rows));
    } finally {
      removeHook();
    }
  });
}
