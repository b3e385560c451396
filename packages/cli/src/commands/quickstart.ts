import type { Command } from 'commander';
import type { QuickstartPayload } from '@cvopt/core';
import { PLATFORM_HANDLERS, QUICKSTART_DEFAULTS, runLocal, type QuickstartResult } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, fmtNum, table } from '../output.js';

function render(r: QuickstartResult): string {
  const d = r.eval.detect;
  const winner = r.decision.candidates.find((c) => c.engine === r.decision.winner);
  return [
    `quickstart finished in ${r.seconds.toFixed(0)} s — everything is under ${r.out}`,
    '',
    table(
      ['step', 'result'],
      [
        ['dataset', `${r.dataset.train} train / ${r.dataset.val} val images, classes ${r.dataset.names.join(', ')} (${r.dataset.dataYaml})`],
        ['train', `${r.train.epochs} epochs in ${r.train.wallS.toFixed(0)} s, ${fmtNum(r.train.imagesPerSec)} img/s → ${r.train.best}`],
        ['export', `${r.export.onnx}; ONNX Runtime vs PyTorch max relative diff ${r.export.parity.maxRelDiff.toExponential(2)}`],
        ['eval (ONNX Runtime)', d ? `mAP50 ${d.map50.toFixed(4)}, mAP50-95 ${d.map5095.toFixed(4)} on ${r.eval.images} images` : '-'],
        ['bench', `${r.bench.markdown} (chart ${r.bench.chart})`],
        ['selected engine', `${r.decision.winner ?? 'none'}${winner?.p95Ms !== null && winner ? ` (p95 ${winner.p95Ms.toFixed(2)} ms)` : ''}`],
        ['package', r.artifact ? `${r.artifact.dir} (+ .tar.gz), ready in ${(r.artifact.readyMs / 1000).toFixed(1)} s` : 'skipped: no engine met the constraints'],
        ['prediction', r.artifact ? describePrediction(r.artifact.image, r.artifact.prediction) : '-'],
      ],
    ),
    '',
    r.decision.reason,
    '',
    ...(r.artifact
      ? [
          `next: cvopt serve ${r.artifact.dir}`,
          `      curl -s -H 'content-type: image/jpeg' --data-binary @${r.artifact.image} localhost:8080/v1/predict`,
          `      cd ${r.artifact.dir} && docker compose up -d --build   (or podman-compose up -d)`,
        ]
      : [`next: cvopt select ${r.bench.report} with looser constraints, then cvopt package --decision ${r.bench.decision}`]),
  ].join('\n');
}

function describePrediction(image: string, p: NonNullable<QuickstartResult['artifact']>['prediction']): string {
  const dets = p.detections ?? [];
  const top = [...dets].sort((a, b) => b.score - a.score).slice(0, 3).map((d) => `${d.className} ${d.score.toFixed(2)}`);
  return `${image.split('/').pop()}: ${dets.length} detections${top.length ? ` (${top.join(', ')})` : ''}`;
}

export function register(program: Command): void {
  const cmd = program
    .command('quickstart')
    .description('the main job end to end on a built-in synthetic dataset: synthesise, train, export, evaluate, benchmark, select')
    .option('--out <dir>', 'where everything goes', 'cvopt-quickstart')
    .option('--preset <name>', 'model preset', QUICKSTART_DEFAULTS.preset)
    .option('--images <n>', 'synthetic images (train + val)', String(QUICKSTART_DEFAULTS.images))
    .option('--imgsz <n>', 'image and network size', String(QUICKSTART_DEFAULTS.imgsz))
    .option('--epochs <n>', 'training epochs', String(QUICKSTART_DEFAULTS.epochs))
    .option('--seed <n>', 'seed for data and training', String(QUICKSTART_DEFAULTS.seed))
    .option('--video <file>', 'also measure video FPS on this file');
  action<[]>(cmd, async (opts) => {
    const f = parseFlags(
      {
        out: flag.string(),
        preset: flag.string(),
        images: flag.int({ min: 20 }),
        imgsz: flag.int({ min: 32 }),
        epochs: flag.int({ min: 1 }),
        seed: flag.int({ min: 0 }),
        video: flag.string().optional(),
      },
      opts,
    );
    const o: QuickstartPayload = { ...f, ...(f.video === undefined ? {} : { video: f.video }) };
    if (o.video === undefined) delete o.video;
    const quiet = opts.json === true;
    let lastLine = '';
    const r = await runLocal(PLATFORM_HANDLERS.quickstart, o, {
      onProgress: ({ stage, step: done, total, message = '' }) => {
        if (quiet) return;
        if (stage === 'step') {
          process.stderr.write(`\n[${done}/${total}] ${message}\n`);
          return;
        }
        const line = total > 0 ? `  ${message} ${done}/${total}` : `  ${message}`;
        // Plain lines (no carriage returns) so CI logs stay readable; only print when something changed.
        if (line !== lastLine && (total === 0 || done === total || done % Math.max(1, Math.round(total / 10)) === 0)) {
          process.stderr.write(`${line}\n`);
          lastLine = line;
        }
      },
    });
    emit(opts, r, render);
  });
}
