import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { CALIBRATION_METHODS, quantizeOnnx, type CalibrationMethod, type QuantizeReport } from '@cvopt/onnx';
import { action, numberFlag } from '../action.js';
import { emit, ProgressLine, table } from '../output.js';

const list = (v: unknown): string[] =>
  v === undefined
    ? []
    : String(v)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

const pts = (v: number | undefined): string => (v === undefined ? '-' : (v * 100).toFixed(2));

function render(r: QuantizeReport): string {
  const get = (a: QuantizeReport['fp32']) => (r.metric === 'mAP50' ? a.map50 : a.top1);
  const lines = [
    `${r.out}: ${r.precision}${r.method ? ` (${r.method} calibration on ${r.calibrationImages} images, activations ${r.activations})` : ''}, ${r.quantizedNodes} nodes converted, ${r.excludedNodes.length} kept in FP32`,
    '',
    table(
      ['metric', 'fp32', r.precision, 'change'],
      [
        [r.metric, pts(get(r.fp32)), pts(get(r.quantized)), (-r.drop).toFixed(2)],
        ...(r.metric === 'mAP50' ? [['mAP50-95', pts(r.fp32.map5095), pts(r.quantized.map5095), (((r.quantized.map5095 ?? 0) - (r.fp32.map5095 ?? 0)) * 100).toFixed(2)]] : []),
      ],
    ),
  ];
  const worst = [...r.perClass].filter((c) => c.gts > 0).sort((a, b) => a.delta - b.delta).slice(0, 10);
  if (worst.length) {
    lines.push('', 'per class AP50 (largest drops first):', table(['class', 'gts', 'fp32', r.precision, 'change'], worst.map((c) => [c.name, c.gts, pts(c.fp32), pts(c.quantized), (c.delta * 100).toFixed(2)])));
  }
  if (r.guard.length > 1) lines.push('', `accuracy guard: ${r.guard.map((g) => `${g.excluded.length} in FP32 → drop ${g.drop.toFixed(2)}`).join(', ')}`);
  lines.push('', `${r.metric} change on ${r.evaluationImages} images: ${(-r.drop).toFixed(2)} points${r.withinBound === undefined ? '' : r.withinBound ? ' (within --max-drop)' : ' (NOT within --max-drop)'}`);
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
    .option('--max-drop <points>', 'largest accepted accuracy drop in points; sensitive layers return to FP32 until met')
    .option('--fp16', 'convert to FP16 instead of INT8')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (0 = default)', '0');
  action<[string]>(cmd, async (model, opts) => {
    const method = String(opts.method) as CalibrationMethod;
    if (!CALIBRATION_METHODS.includes(method)) {
      throw new CvoptError('INVALID_ARGUMENT', `--method must be one of ${CALIBRATION_METHODS.join(', ')}, got "${method}"`, { where: { field: '--method' } });
    }
    const activations = String(opts.activations);
    if (activations !== 'uint8' && activations !== 'int8') throw new CvoptError('INVALID_ARGUMENT', `--activations must be uint8 or int8, got "${activations}"`, { where: { field: '--activations' } });
    const threads = numberFlag('threads', opts.threads, { int: true, min: 0 });
    const progress = new Map<string, ProgressLine>();
    const report = await quantizeOnnx(model, String(opts.out), {
      data: String(opts.data),
      method,
      calib: numberFlag('calib', opts.calib, { int: true, min: 1 }),
      percentile: numberFlag('percentile', opts.percentile, { min: 50, max: 100 }),
      activations,
      excludeNodes: list(opts.excludeNodes),
      excludeOps: list(opts.excludeOps),
      fp16: opts.fp16 === true,
      ...(opts.eval !== undefined ? { evalImages: numberFlag('eval', opts.eval, { int: true, min: 1 }) } : {}),
      ...(opts.maxDrop !== undefined ? { maxDrop: numberFlag('max-drop', opts.maxDrop, { min: 0 }) } : {}),
      ...(threads ? { intraOpNumThreads: threads } : {}),
      onProgress: (stage, done, total) => {
        let p = progress.get(stage);
        if (!p) progress.set(stage, (p = new ProgressLine(stage, opts.json === true)));
        p.update(done, total);
      },
    });
    emit(opts, report, render);
    if (report.withinBound === false) {
      const err = new CvoptError('CONSTRAINT_UNMET', `the accuracy drop ${report.drop.toFixed(2)} stays above --max-drop ${String(opts.maxDrop)} even with ${report.excludedNodes.length} nodes in FP32`);
      process.exitCode = err.exitCode;
      if (!opts.json) process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    }
  });
}
