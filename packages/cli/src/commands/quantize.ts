import type { Command } from 'commander';
import { CvoptError, describeProtocol, type QuantizePayload } from '@cvopt/core';
import { CALIBRATION_METHODS, type QuantizeReport } from '@cvopt/onnx';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, ProgressLine, table } from '../output.js';
import { remoteOptions, runJob } from '../remote/run-job.js';

// Accuracy as a fraction everywhere (0.5823, a drop of 0.0098), as in eval, bench, select and every report.
const pts = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(4));

function render(r: QuantizeReport): string {
  const get = (a: QuantizeReport['fp32']) => (r.metric === 'mAP50' ? a.map50 : a.top1);
  const lines = [
    `${r.out}: ${r.precision}${r.method ? ` (${r.method} calibration on ${r.calibrationImages} images, activations ${r.activations})` : ''}, ${r.quantizedNodes} nodes converted, ${r.excludedNodes.length} kept in FP32`,
    '',
    table(
      ['metric', 'fp32', r.precision, 'change'],
      [
        [r.metric, pts(get(r.fp32)), pts(get(r.quantized)), (-r.drop).toFixed(4)],
        ...(r.metric === 'mAP50' ? [['mAP50-95', pts(r.fp32.map5095), pts(r.quantized.map5095), ((r.quantized.map5095 ?? 0) - (r.fp32.map5095 ?? 0)).toFixed(4)]] : []),
      ],
    ),
  ];
  const worst = [...r.perClass].filter((c) => c.gts > 0).sort((a, b) => a.delta - b.delta).slice(0, 10);
  if (worst.length) {
    lines.push('', 'per class AP50 (largest drops first):', table(['class', 'gts', 'fp32', r.precision, 'change'], worst.map((c) => [c.name, c.gts, pts(c.fp32), pts(c.quantized), c.delta.toFixed(4)])));
  }
  if (r.guard.length > 1) lines.push('', `accuracy guard: ${r.guard.map((g) => `${g.excluded.length} in FP32 → drop ${g.drop.toFixed(4)}`).join(', ')}`);
  if (r.protocol) lines.push('', `evaluation protocol: ${describeProtocol(r.protocol)}`);
  lines.push('', `${r.metric} change on ${r.evaluationImages} images: ${(-r.drop).toFixed(4)}${r.withinBound === undefined ? '' : r.withinBound ? ' (within --max-drop)' : ' (NOT within --max-drop)'}`);
  return lines.join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('quantize')
    .description('static INT8 (QDQ) quantization calibrated on real images, or FP16 conversion, with the accuracy change')
    .argument('<model>', 'an FP32 ONNX file')
    .requiredOption('--data <path>', 'dataset: data.yaml (detection) or folder-per-class (classification)')
    .requiredOption('--out <file>', 'output ONNX file (model.json is written beside it)')
    .option('--method <m>', `calibration: ${CALIBRATION_METHODS.join('|')}`, 'percentile')
    .option('--calib <n>', 'calibration images', '64')
    .option('--eval <n>', 'evaluation images (default: the whole validation split)')
    .option('--percentile <p>', 'percentile method: share of |x| kept, in percent', '99.99')
    .option('--activations <t>', 'uint8 (ONNX Runtime CPU fast path) or int8 (TensorRT)', 'uint8')
    .option('--exclude-nodes <names>', 'comma-separated node names to keep in float')
    .option('--exclude-ops <ops>', 'comma-separated op types to keep in float')
    .option('--max-drop <x>', 'largest accepted accuracy drop as a fraction (0.01 = one point of mAP50, as select --max-map-drop); sensitive layers return to FP32 until met')
    .option('--fp16', 'convert to FP16 instead of INT8')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (0 = default)', '0');
  remoteOptions(cmd);
  action<[string]>(cmd, async (model, opts) => {
    const f = parseFlags(
      {
        data: flag.string(),
        out: flag.string(),
        method: flag.oneOf(['minmax', 'percentile', 'entropy']),
        calib: flag.int({ min: 1 }),
        eval: flag.int({ min: 1 }).optional(),
        percentile: flag.number({ min: 50, max: 100 }),
        activations: flag.oneOf(['uint8', 'int8']),
        excludeNodes: flag.list().default([]),
        excludeOps: flag.list().default([]),
        maxDrop: flag.number({ min: 0, max: 1 }).optional(),
        fp16: flag.switch().default(false),
        threads: flag.int({ min: 0 }),
      },
      opts,
    );
    const progress = new Map<string, ProgressLine>();
    const payload: QuantizePayload = {
      model,
      out: f.out,
      data: f.data,
      method: f.method,
      calib: f.calib,
      percentile: f.percentile,
      activations: f.activations,
      excludeNodes: f.excludeNodes,
      excludeOps: f.excludeOps,
      fp16: f.fp16,
      ...(f.eval !== undefined ? { evalImages: f.eval } : {}),
      ...(f.maxDrop !== undefined ? { maxDrop: f.maxDrop } : {}),
      ...(f.threads ? { intraOpNumThreads: f.threads } : {}),
    };
    const report = await runJob('quantize', payload, opts, {
      onProgress: ({ stage, step, total }) => {
        let p = progress.get(stage);
        if (!p) progress.set(stage, (p = new ProgressLine(stage, opts.json === true)));
        p.update(step, total);
      },
    });
    if (!report) return;
    emit(opts, report, render);
    if (report.withinBound === false) {
      const err = new CvoptError('CONSTRAINT_UNMET', `the accuracy drop ${report.drop.toFixed(4)} stays above --max-drop ${String(opts.maxDrop)} even with ${report.excludedNodes.length} nodes in FP32`);
      process.exitCode = err.exitCode;
      if (!opts.json) process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    }
  });
}
