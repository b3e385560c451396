import type { Command } from 'commander';
import { CvoptError, ENGINE_IDS, type EngineId } from '@cvopt/core';
import { renderTable } from '@cvopt/bench';
import { benchModel, type BenchModelOptions } from '@cvopt/platform';
import { action, numberFlag } from '../action.js';
import { emit, ProgressLine } from '../output.js';
import { remoteBench } from '../remote/commands.js';

function engineList(value: unknown): EngineId[] | undefined {
  const s = String(value ?? 'all').trim();
  if (s === 'all') return undefined;
  const ids = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const id of ids) {
    if (!(ENGINE_IDS as readonly string[]).includes(id)) {
      throw new CvoptError('INVALID_ARGUMENT', `--engines: unknown engine "${id}"; use all or a list of ${ENGINE_IDS.join(', ')}`, { where: { field: '--engines' } });
    }
  }
  if (ids.length === 0) throw new CvoptError('INVALID_ARGUMENT', '--engines is empty', { where: { field: '--engines' }, hint: 'all, or e.g. ort-cpu,ort-cpu-int8,pytorch' });
  return ids as EngineId[];
}

function intList(name: string, value: unknown): number[] {
  const parts = String(value).split(',').map((x) => x.trim());
  return parts.map((p) => numberFlag(name, p, { int: true, min: 1 }));
}

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
    .option('--calib <n>', 'calibration images for the INT8 model', '32')
    .option('--pytorch-device <cpu|cuda>', 'device of the pytorch engine', 'cpu')
    .option('--time-limit <s>', 'per-engine time limit; the engine is killed and reported failed past it', '900')
    .option('--rss-cap-mb <mb>', 'per-engine memory cap (process tree RSS)', '8192')
    .requiredOption('--out <file>', 'report.json to write (report.md and chart.svg beside it)')
    .option('--remote', 'run it as a job on the server of `cvopt login` (MODEL/--data name project resources, or MODEL is a job id)')
    .option('--project <name>', 'the server project (with --remote)')
    .option('--detach', 'with --remote: print the job id and return');
  action<[string]>(cmd, async (model, opts) => {
    if (opts.remote) return remoteBench(model, opts);
    const o: BenchModelOptions = {
      model,
      data: String(opts.data),
      out: String(opts.out),
      iters: numberFlag('iters', opts.iters, { int: true, min: 1 }),
      warmup: numberFlag('warmup', opts.warmup, { int: true, min: 0 }),
      minTimeMs: numberFlag('min-time-ms', opts.minTimeMs, { min: 0 }),
      maxFrames: numberFlag('max-frames', opts.maxFrames, { int: true, min: 1 }),
      batchSizes: intList('batch-sizes', opts.batchSizes),
      threads: numberFlag('threads', opts.threads, { int: true, min: 0 }),
      calib: numberFlag('calib', opts.calib, { int: true, min: 1 }),
      limits: { timeS: numberFlag('time-limit', opts.timeLimit, { min: 1 }), rssMb: numberFlag('rss-cap-mb', opts.rssCapMb, { min: 64 }) },
    };
    const device = String(opts.pytorchDevice);
    if (device !== 'cpu' && device !== 'cuda') throw new CvoptError('INVALID_ARGUMENT', `--pytorch-device must be cpu or cuda, got "${device}"`, { where: { field: '--pytorch-device' } });
    o.pytorchDevice = device;
    const engines = engineList(opts.engines);
    if (engines) o.engines = engines;
    if (opts.video !== undefined) o.video = String(opts.video);
    if (opts.maxImages !== undefined) o.maxImages = numberFlag('max-images', opts.maxImages, { int: true, min: 1 });
    const quiet = Boolean(opts.json);
    const bar = new ProgressLine('bench', quiet);
    const r = await benchModel(o, {
      onStage: (m) => {
        if (!quiet) process.stderr.write(`bench: ${m}\n`);
      },
      onEngine: (e) => bar.update(e.index, e.total, e.stage === 'start' ? `${e.engine}…` : `${e.engine} ${e.status ?? ''}`),
    });
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
