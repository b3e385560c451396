import type { Command } from 'commander';
import { CvoptError, type TrainPayload } from '@cvopt/core';
import { PRESET_NAME, type TrainResult } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, ProgressLine, table } from '../output.js';
import { onInterrupt } from '../interrupt.js';
import { remoteOptions, runJob } from '../remote/run-job.js';

function render(r: TrainResult, epochs: TrainResult['history']): string {
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
    .option('--resume', 'continue <out>/last.pt from its next epoch with its saved arguments');
  remoteOptions(cmd).addHelpText(
      'after',
      `
Examples:
  cvopt dataset synth --task detect --out shapes --images 300
  cvopt train --model yolov8n --data shapes/data.yaml --epochs 30 --imgsz 320 --out runs/exp1
  cvopt train --model yolov8n --weights yolov8n.pt --data data.yaml --epochs 10 --out runs/ft   # fine-tune
  cvopt train --resume --out runs/exp1                                                        # after Ctrl-C
  cvopt train --model yolov8n-cls --data flowers/ --imgsz 224 --hyp hyp.yaml --out runs/cls
  cvopt train --remote --model yolov8n --data shapes/data.yaml --epochs 30 --imgsz 320 --out runs/exp1   # on the server`,
    );
  action<[]>(cmd, async (opts) => {
    const f = parseFlags(
      {
        out: flag.string(),
        model: flag.string().optional(),
        data: flag.string().optional(),
        weights: flag.string().optional(),
        epochs: flag.int({ min: 1 }),
        imgsz: flag.int({ min: 32 }),
        batch: flag.int({ min: 1 }),
        seed: flag.int({ min: 0 }),
        device: flag.oneOf(['cpu', 'cuda']),
        hyp: flag.string().optional(),
        workers: flag.int({ min: 0 }).optional(),
        vramMb: flag.int({ min: 1 }).optional(),
        patience: flag.int({ min: 0 }),
        existOk: flag.switch().default(false),
        trustTorchscript: flag.switch().default(false),
        resume: flag.switch().default(false),
      },
      opts,
    );
    if (!f.resume && (f.model === undefined || f.data === undefined)) {
      throw new CvoptError('INVALID_ARGUMENT', `train needs ${f.model === undefined ? '--model' : '--data'} (or --resume)`, {
        where: { field: f.model === undefined ? '--model' : '--data' },
        hint: 'cvopt train --model yolov8n --data data.yaml --out runs/exp',
      });
    }
    const { hyp, ...rest } = f;
    const input: TrainPayload = Object.fromEntries(Object.entries({ ...rest, hypFile: hyp }).filter(([, v]) => v !== undefined)) as unknown as TrainPayload;
    const say = (line: string) => {
      if (opts.json !== true) process.stderr.write(`${line}\n`);
    };
    if (!f.resume && f.model !== undefined && PRESET_NAME.test(f.model) && f.weights === undefined) {
      say(`note: ${f.model} starts from random weights (cvopt downloads nothing); to fine-tune, pass --weights FILE (.pt, .pkl or YOLOv8 .onnx)`);
    }

    const bar = new ProgressLine('train', opts.json === true);
    const removeHook = opts.remote ? () => {} : onInterrupt(() => say(`\nthe run stops at its last finished epoch; continue it with: cvopt train --resume --out ${f.out}`));
    try {
      const r = await runJob('train', input, opts, {
        onLog: (_level, line) => {
          if (line.startsWith('warning:') || line.startsWith('early stop')) say(line);
        },
        onProgress: (m) => {
          if (m.stage === 'train') bar.update(m.step, m.total, m.message ?? '');
          else if (m.stage === 'epoch' && opts.json !== true) process.stderr.write(`\nepoch ${m.step}/${m.total}: ${m.message ?? ''}\n`);
        },
      });
      if (!r) return;
      bar.done(`${r.epochsRun ?? r.epochs} epochs`);
      // Each epoch's figures come with the result (the progress stream of a remote job is coalesced).
      emit(opts, r, (x) => render(x, x.history));
    } finally {
      removeHook();
    }
  });
}
