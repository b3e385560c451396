import type { Command } from 'commander';
import { CvoptError, ENGINE_IDS, type BenchPayload } from '@cvopt/core';
import { renderTable } from '@cvopt/bench';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, ProgressLine } from '../output.js';
import { remoteOptions, runJob } from '../remote/run-job.js';

const BenchFlags = {
  data: flag.string(),
  out: flag.string(),
  video: flag.string().optional(),
  engines: flag.engines(),
  iters: flag.int({ min: 1 }),
  warmup: flag.int({ min: 0 }),
  minTimeMs: flag.number({ min: 0 }),
  maxImages: flag.int({ min: 1 }).optional(),
  maxFrames: flag.int({ min: 1 }),
  batchSizes: flag.intList(),
  threads: flag.int({ min: 0 }),
  spinning: flag.switch().default(false),
  calib: flag.int({ min: 1 }),
  pytorchDevice: flag.oneOf(['cpu', 'cuda']),
  timeLimit: flag.number({ min: 1 }),
  rssCapMb: flag.number({ min: 64 }),
};

export function register(program: Command): void {
  const cmd = program
    .command('bench')
    .description('benchmark a model on every engine this machine has (each in its own process) and write report.json, report.md and chart.svg')
    .argument('<model>', 'an ONNX file (model.json beside it, or inferred) or a cvopt/PyTorch checkpoint (.pt)')
    .requiredOption('--data <path>', 'dataset for accuracy and INT8 calibration (data.yaml or folder-per-class)')
    .option('--video <file>', 'a video for end-to-end FPS (decode → preprocess → infer → NMS)')
    .option('--engines <list>', `all, or a comma list of ${ENGINE_IDS.join(', ')}`, 'all')
    .option('--iters <n>', 'timed single-image runs per engine', '50')
    .option('--warmup <n>', 'untimed runs first', '5')
    .option('--min-time-ms <ms>', 'keep timing single images at least this long', '0')
    .option('--max-images <n>', 'score accuracy on the first N images of the val split (default all)')
    .option('--max-frames <n>', 'decode at most N frames of --video', '60')
    .option('--batch-sizes <list>', 'throughput batch sizes for dynamic-batch models', '1,2,4,8')
    .option('--threads <n>', 'ONNX Runtime intra-op / PyTorch threads (0: their default)', '0')
    .option('--spinning', "time ONNX Runtime with its spinning threads (its own default) instead of as cvopt serve runs it (no spinning)")
    .option('--calib <n>', 'calibration images for the INT8 model', '32')
    .option('--pytorch-device <cpu|cuda>', 'device of the pytorch engine', 'cpu')
    .option('--time-limit <s>', 'per-engine time limit; the engine is killed and reported failed past it', '900')
    .option('--rss-cap-mb <mb>', 'per-engine memory cap (process tree RSS)', '8192')
    .requiredOption('--out <file>', 'report.json to write (report.md and chart.svg beside it)');
  remoteOptions(cmd);
  action<[string]>(cmd, async (model, opts) => {
    const f = parseFlags(BenchFlags, opts);
    const payload: BenchPayload = {
      model,
      data: f.data,
      out: f.out,
      iters: f.iters,
      warmup: f.warmup,
      minTimeMs: f.minTimeMs,
      maxFrames: f.maxFrames,
      batchSizes: f.batchSizes,
      threads: f.threads,
      ...(f.spinning ? { spinning: true } : {}),
      calib: f.calib,
      pytorchDevice: f.pytorchDevice,
      limits: { timeS: f.timeLimit, rssMb: f.rssCapMb },
      ...(f.engines ? { engines: f.engines } : {}),
      ...(f.video !== undefined ? { video: f.video } : {}),
      ...(f.maxImages !== undefined ? { maxImages: f.maxImages } : {}),
    };
    const quiet = Boolean(opts.json);
    const bar = new ProgressLine('bench', quiet);
    const r = await runJob('bench', payload, opts, {
      onLog: (_level, m) => {
        if (!quiet) process.stderr.write(`bench: ${m}\n`);
      },
      onProgress: (p) => bar.update(p.step, p.total, p.stage),
    });
    if (!r) return;
    bar.done();
    emit(opts, { report: r.report, decision: r.decision, files: r.files }, () =>
      [
        renderTable(r.report, r.decision),
        '',
        `fastest valid engine (no constraints): ${r.decision.winner ?? 'none'} — ${r.decision.reason}`,
        `wrote ${r.files.report}, ${r.files.markdown}, ${r.files.chart}`,
        `next: cvopt select ${r.files.report} --max-map-drop 0.01 --max-p95-ms 50`,
      ].join('\n'),
    );
    // A benchmark that measured no engine is a failure, whatever it wrote: say why and exit non-zero.
    if (!r.report.engines.some((e) => e.status === 'ok')) {
      const failed = r.report.engines.filter((e) => e.status === 'failed');
      const err = new CvoptError(failed.length ? 'ENGINE_FAILED' : 'ENGINE_UNAVAILABLE', `no engine was measured: ${r.report.engines.map((e) => `${e.engine} ${e.status}`).join(', ')}`, {
        hint: failed.length ? `read the errors in ${r.files.report}` : 'run `cvopt doctor` to see what this machine can run, or pick other --engines',
      });
      if (!opts.json) process.stderr.write(`error: ${err.code}: ${err.message}\n  fix: ${err.hint}\n`);
      process.exitCode = err.exitCode;
    }
  });
}
