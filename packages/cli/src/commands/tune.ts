import type { Command } from 'commander';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CvoptError, ORT_ENGINE_IDS, STRATEGY_IDS, type JobLogLevel, type JobProgress, type TunePayload } from '@cvopt/core';
import { readSmallFile } from '../tui/workspace.js';
import type { TuneResult } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, fmtNum, ProgressLine, table } from '../output.js';
import { remoteOptions, runJob } from '../remote/run-job.js';


/** `cvopt tune`: genetic hyperparameter search with deployment-aware fitness. */
export function register(program: Command): void {
  const cmd = program
    .command('tune')
    .description('tune training hyperparameters with a genetic algorithm; fitness = 0.7·mAP50 + 0.3·mAP50-95 − latency penalty')
    .option('--model <model>', '(required) preset (yolov8p, yolov8n, …) or a .pt/.pkl file')
    .option('--data <data>', '(required) YOLO dataset: data.yaml or its directory')
    .requiredOption('--out <dir>', '(required) run directory (trials, best_hyp.yaml, progress.svg, best/)')
    .option('--strategy <name>', `(required) ${STRATEGY_IDS.join('|')}`)
    .option('--generations <n>', 'generations, the first included', '5')
    .option('--population <n>', 'trials per generation', '8')
    .option('--epochs <n>', 'training epochs per trial', '10')
    .option('--imgsz <n>', 'input size of the default trial; smaller multiples of 32 down to half are searched', '640')
    .option('--batch <n>', 'training batch size', '16')
    .option('--device <d>', 'cpu or cuda', 'cpu')
    .option('--engine <id>', `latency target engine: any ONNX Runtime id (${ORT_ENGINE_IDS.join(', ')}); an INT8 id measures each trial's INT8 QDQ conversion`, 'ort-cpu')
    .option('--target-latency-ms <x>', 'p95 latency target; slower trials pay w·(p95/target − 1)')
    .option('--latency-weight <w>', 'w of the latency penalty', '1')
    .option('--max-latency-ms <x>', 'constrained: hard p95 limit (default: --target-latency-ms)')
    .option('--max-size-mb <x>', 'constrained: hard limit on the ONNX size')
    .option('--min-map50 <x>', 'constrained: minimum validation mAP50')
    .option('--size-objective', 'nsga2: add the ONNX size as a third objective')
    .option('--latency-runs <n>', 'timed inference runs per trial for p95', '30')
    .option('--space <file>', 'YAML overriding the search space')
    .option('--seed <n>', 'seed of the search and of every training', '0')
    .option('--max-parallel <n>', 'concurrent trials (at most 2 on a GPU)', '1')
    .option('--trial-cache <dir>', 'directory shared between runs: trials already trained with the same settings are reused')
    .option('--resume', 'continue the run in --out with the settings in its run.json: finished trials are replayed, not retrained');
  remoteOptions(cmd).addHelpText(
      'after',
      `
Examples:
  cvopt tune --model yolov8n --data data.yaml --strategy elitist --epochs 10 --imgsz 320 --out runs/tune1
  cvopt tune --model yolov8n --data data.yaml --strategy nsga2 --target-latency-ms 20 --out runs/pareto
  cvopt tune --model yolov8n --data data.yaml --strategy constrained --max-latency-ms 15 --min-map50 0.5 --out runs/c
  cvopt tune --resume --out runs/tune1       # after Ctrl-C or a crash: the run's own settings are read back
  cvopt tune --remote --model yolov8n --data data.yaml --strategy elitist --out runs/tune1   # on the server
  cvopt train --model yolov8n --data data.yaml --hyp runs/tune1/best_hyp.yaml --out runs/final`,
    );
  action<[]>(cmd, async (opts) => {
    if (opts.resume === true) fillFromRunRecord(cmd, opts);
    for (const name of ['model', 'data', 'strategy'] as const) {
      if (typeof opts[name] !== 'string') {
        throw new CvoptError('INVALID_ARGUMENT', `tune needs --${name} (or --resume with an --out that holds a run)`, { where: { field: `--${name}` }, hint: 'cvopt tune --model yolov8n --data data.yaml --strategy elitist --out runs/tune1' });
      }
    }
    const f = parseFlags(
      {
        model: flag.string(),
        data: flag.string(),
        out: flag.string(),
        strategy: flag.oneOf(STRATEGY_IDS),
        generations: flag.int({ min: 1 }),
        population: flag.int({ min: 2 }),
        epochs: flag.int({ min: 1 }),
        imgsz: flag.int({ min: 32 }),
        batch: flag.int({ min: 1 }),
        device: flag.oneOf(['cpu', 'cuda']),
        engine: flag.engine(),
        targetLatencyMs: flag.number({ gt: 0 }).optional(),
        latencyWeight: flag.number({ min: 0 }),
        maxLatencyMs: flag.number({ gt: 0 }).optional(),
        maxSizeMb: flag.number({ gt: 0 }).optional(),
        minMap50: flag.number({ min: 0, max: 1 }).optional(),
        sizeObjective: flag.switch().default(false),
        latencyRuns: flag.int({ min: 1 }),
        space: flag.string().optional(),
        seed: flag.int({ min: 0 }),
        maxParallel: flag.int({ min: 1 }),
        trialCache: flag.string().optional(),
        resume: flag.switch().default(false),
      },
      opts,
    );
    const constraints: NonNullable<TunePayload['constraints']> = {};
    if (f.maxLatencyMs !== undefined) constraints.maxLatencyMs = f.maxLatencyMs;
    if (f.maxSizeMb !== undefined) constraints.maxSizeMb = f.maxSizeMb;
    if (f.minMap50 !== undefined) constraints.minMap50 = f.minMap50;
    const quiet = Boolean(opts.json);
    // The handler reports trial training as progress and each finished trial / generation as an info log line.
    const bar = new ProgressLine('tune', quiet);
    const onProgress = (p: JobProgress) => {
      if (p.stage !== 'generation') bar.update(p.step, p.total, p.stage);
    };
    const onLog = (level: JobLogLevel, message: string) => {
      if (!quiet && level !== 'debug') process.stderr.write(`${message}\n`);
    };
    const payload: TunePayload = {
      model: f.model,
      data: f.data,
      out: f.out,
      strategy: f.strategy,
      generations: f.generations,
      population: f.population,
      epochs: f.epochs,
      imgsz: f.imgsz,
      batch: f.batch,
      device: f.device,
      engine: f.engine,
      latencyWeight: f.latencyWeight,
      latencyRuns: f.latencyRuns,
      seed: f.seed,
      maxParallel: f.maxParallel,
      constraints,
      sizeObjective: f.sizeObjective,
      resume: f.resume,
      ...(f.targetLatencyMs !== undefined ? { targetLatencyMs: f.targetLatencyMs } : {}),
      ...(f.space !== undefined ? { spaceFile: f.space } : {}),
      ...(f.trialCache !== undefined ? { cacheDir: f.trialCache } : {}),
    };
    const result = await runJob('tune', payload, opts, { onProgress, onLog });
    if (!result) return;
    emit(opts, summaryJson(result), () => renderSummary(result));
  });
}

/** Flags from a run's run.json where the command line left them at their defaults, so `--resume --out DIR` suffices. */
function fillFromRunRecord(cmd: Command, opts: Record<string, unknown>): void {
  const out = String(opts.out);
  const text = readSmallFile(join(out, 'run.json'));
  if (text === undefined) {
    throw new CvoptError('NOT_FOUND', `nothing to resume: ${join(out, 'run.json')} does not exist`, { where: { file: out, field: '--out' }, hint: 'pass the --out of an earlier `cvopt tune` run' });
  }
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CvoptError('INVALID_CONFIG', `${join(out, 'run.json')} is not valid JSON`, { where: { file: join(out, 'run.json') }, hint: 'the run record is damaged; start a new run in another --out' });
  }
  const fitness = (rec.fitness ?? {}) as Record<string, unknown>;
  const constraints = (rec.constraints ?? {}) as Record<string, unknown>;
  const fromRecord: Record<string, unknown> = {
    model: rec.model,
    data: rec.data,
    strategy: rec.strategy,
    generations: rec.generations,
    population: rec.population,
    epochs: rec.epochs,
    imgsz: rec.imgsz,
    batch: rec.batch,
    device: rec.device,
    seed: rec.seed,
    engine: rec.engine,
    latencyRuns: rec.latencyRuns,
    sizeObjective: rec.sizeObjective === true ? true : undefined,
    latencyWeight: fitness.latencyWeight,
    targetLatencyMs: fitness.targetLatencyMs,
    maxLatencyMs: rec.strategy === 'constrained' && constraints.maxLatencyMs === fitness.targetLatencyMs ? undefined : constraints.maxLatencyMs,
    maxSizeMb: constraints.maxSizeMb,
    minMap50: constraints.minMap50,
  };
  for (const [key, value] of Object.entries(fromRecord)) {
    if (value === undefined || value === null) continue;
    const source = cmd.getOptionValueSource(key);
    if (source === undefined || source === 'default') opts[key] = typeof value === 'number' ? String(value) : value;
  }
  // The search space was read from a file when the run started; hand the same values back through a file.
  if (rec.space !== null && rec.space !== undefined && opts.space === undefined) {
    const file = join(mkdtempSync(join(tmpdir(), 'cvopt-space-')), 'space.json');
    writeFileSync(file, JSON.stringify(rec.space));
    opts.space = file;
  }
}

function summaryJson(r: TuneResult) {
  return {
    runDir: r.runDir,
    strategy: r.strategy,
    durationS: r.durationS,
    trained: r.trained,
    replayed: r.replayed,
    best: r.best,
    default: r.default ?? null,
    ...(r.pareto ? { pareto: { front: r.pareto.front.map((t) => t.id), knee: r.pareto.knee?.id ?? null } } : {}),
    files: r.files,
  };
}

function renderSummary(r: TuneResult): string {
  const rows = r.trials
    .slice()
    .sort((a, b) => (b.fitness ?? -Infinity) - (a.fitness ?? -Infinity) || a.id - b.id)
    .map((t) => [
      t.id === r.best.id ? `${t.id} *` : String(t.id),
      t.generation,
      t.status + (t.isDefault ? ' (default)' : ''),
      t.fitness,
      t.metrics?.map50,
      t.metrics?.map5095,
      t.p95Ms,
      t.terms?.latencyPenalty,
    ]);
  const lines = [
    table(['trial', 'gen', 'status', 'fitness', 'mAP50', 'mAP50-95', 'p95 ms', 'penalty'], rows),
    '',
    `best: trial ${r.best.id}, fitness ${fmtNum(r.best.fitness ?? NaN)}` +
      (r.default && r.default.fitness !== null ? ` (default trial ${r.default.id}: ${fmtNum(r.default.fitness)})` : ''),
  ];
  if (r.pareto) lines.push(`pareto front: trials ${r.pareto.front.map((t) => t.id).join(', ')}; knee: trial ${r.pareto.knee?.id ?? '-'}`);
  lines.push(`${r.trials.length} trials (${r.trained} trained now, ${r.replayed} replayed) in ${fmtNum(r.durationS)} s`);
  lines.push(`outputs in ${r.runDir}: best_hyp.yaml, trials.csv, trials.json, progress.svg${r.pareto ? ', pareto.json' : ''}, best/`);
  return lines.join('\n');
}
