import type { Command } from 'commander';
import type { ExportPayload } from '@cvopt/core';
import { DEFAULT_PARITY_TOLERANCE, type ExportResult } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, ProgressLine, table } from '../output.js';
import { remoteOptions, runJob } from '../remote/run-job.js';

function render(r: ExportResult): string {
  const p = r.parity;
  const rows: (string | number)[][] = [
    ['samples compared', p.samples],
    ['max abs diff', p.maxAbsDiff.toExponential(2)],
    ['max relative diff', `${p.maxRelDiff.toExponential(2)} (tolerance ${p.tolerance})`],
    ['cosine similarity', p.cosine.toFixed(8)],
  ];
  if (p.detections) {
    const d = p.detections;
    rows.push(['detections torch / onnx', `${d.reference} / ${d.onnx}`], ['matched', d.matched], ['mean IoU', d.meanIou.toFixed(6)], ['class agreement', d.classAgreement]);
  }
  if (p.top1Agreement !== undefined) rows.push(['top-1 agreement', p.top1Agreement]);
  return [
    `wrote ${r.onnx} (${r.task}, ${r.nc} classes, ${r.imgsz}×${r.imgsz}, opset ${r.opset}${r.dynamic ? ', dynamic batch' : ''}) and ${r.manifest}`,
    '',
    'ONNX Runtime vs PyTorch:',
    table(['check', 'value'], rows),
  ].join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('export')
    .description('convert a PyTorch model to ONNX, write model.json beside it, and check ONNX Runtime against PyTorch')
    .argument('<model>', 'a .pt/.pkl checkpoint (cvopt, Ultralytics or a state dict), a TorchScript file, or a preset')
    .requiredOption('--out <file>', 'the ONNX file to write (model.json goes beside it)')
    .option('--imgsz <n>', 'square input size, a multiple of 32 (default: the checkpoint\'s, else 640)')
    .option('--dynamic', 'dynamic batch dimension')
    .option('--opset <n>', 'ONNX opset (default: the highest this PyTorch supports)')
    .option('--samples <dir>', 'real images for the parity check (default: seeded random inputs)')
    .option('--trust-torchscript', 'load a TorchScript file (a program: it can write files); without it TorchScript is refused')
    .option('--tolerance <x>', 'largest accepted max relative difference', String(DEFAULT_PARITY_TOLERANCE));
  remoteOptions(cmd);
  action<[string]>(cmd, async (model, opts) => {
    const f = parseFlags(
      {
        out: flag.string(),
        dynamic: flag.switch().default(false),
        tolerance: flag.number({ gt: 0 }),
        imgsz: flag.int({ min: 32 }).optional(),
        opset: flag.int({ min: 7 }).optional(),
        samples: flag.string().optional(),
        trustTorchscript: flag.switch().default(false),
      },
      opts,
    );
    const input: ExportPayload = { checkpoint: model, ...Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)), out: f.out };
    const bar = new ProgressLine('export', opts.json === true);
    const r = await runJob('export', input, opts, { onProgress: (m) => bar.update(m.step, m.total, `${m.stage}: ${m.message ?? ''}`) });
    if (!r) return;
    bar.done();
    emit(opts, r, render);
  });
}
