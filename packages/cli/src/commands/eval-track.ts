import type { Command } from 'commander';
import { PLATFORM_HANDLERS, runLocal, type EvalTrackResult } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, table } from '../output.js';

function render(m: EvalTrackResult): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  return [
    `${m.predFile} against ${m.gtFile}: ${m.frames} frames, ${m.gtIds} ground-truth ids, ${m.hypIds} predicted ids`,
    '',
    table(
      ['MOTA', 'MOTP', 'IDF1', 'IDP', 'IDR', 'IDSW', 'Frag', 'FP', 'FN', 'MT', 'ML'],
      [[pct(m.mota), pct(m.motp), pct(m.idf1), pct(m.idp), pct(m.idr), m.idsw, m.frag, m.fp, m.fn, m.mostlyTracked, m.mostlyLost]],
    ),
    '',
    'CLEAR-MOT per Bernardin & Stiefelhagen 2008 (MOTP as mean IoU of matches); IDF1/IDP/IDR per Ristani et al. 2016.',
  ].join('\n');
}

/** `cvopt eval-track --gt gt.txt --pred pred.txt`: CLEAR-MOT and identity metrics of MOTChallenge files. */
export function register(program: Command): void {
  const cmd = program
    .command('eval-track')
    .description('score tracker output against ground truth (MOTChallenge files): MOTA, MOTP, IDF1, IDP, IDR, ID switches, fragmentations')
    .requiredOption('--gt <file>', 'ground truth: frame,id,left,top,width,height,consider,class,visibility')
    .requiredOption('--pred <file>', 'tracker output: frame,id,left,top,width,height[,score,...]')
    .option('--iou <x>', 'least IoU for a match', '0.5')
    .option('--min-visibility <x>', 'drop ground-truth boxes less visible than this', '0')
    .addHelpText(
      'after',
      `
Examples:
  cvopt dataset synth --task track --out seq && cvopt track det.onnx --source seq/video.mp4 --save-mot
  cvopt eval-track --gt seq/gt/gt.txt --pred runs/track/exp/mot/video.txt
  cvopt eval-track --gt gt.txt --pred pred.txt --min-visibility 0.25 --json | jq '{mota, idf1, idsw}'`,
    );
  action<[]>(cmd, async (opts) => {
    const f = parseFlags({ gt: flag.string(), pred: flag.string(), iou: flag.number({ min: 0, max: 1 }), minVisibility: flag.number({ min: 0, max: 1 }) }, opts);
    const m = await runLocal(PLATFORM_HANDLERS['eval-track'], f, { signal: opts.signal ?? new AbortController().signal });
    emit(opts, m, render);
  });
}
