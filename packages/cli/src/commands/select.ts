import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CvoptError, ConstraintsSchema, ENGINE_IDS, parseWith, type Constraints, type Decision, type EngineId } from '@cvopt/core';
import { selectEngine, writeDecision } from '@cvopt/bench';
import { readBenchmarkReport } from '@cvopt/platform';
import { action, numberFlag } from '../action.js';
import { emit, fmtNum, table } from '../output.js';

const FLAGS: [flag: string, key: keyof Constraints, range: { min?: number; max?: number }][] = [
  ['min-map50', 'minMap50', { min: 0, max: 1 }],
  ['min-map5095', 'minMap5095', { min: 0, max: 1 }],
  ['min-top1', 'minTop1', { min: 0, max: 1 }],
  ['max-map-drop', 'maxMapDrop', { min: 0 }],
  ['max-p95-ms', 'maxP95Ms', { min: Number.MIN_VALUE }],
  ['max-rss-mb', 'maxRssMb', { min: Number.MIN_VALUE }],
  ['max-gpu-mem-mb', 'maxGpuMemMb', { min: Number.MIN_VALUE }],
];

const camel = (flag: string) => flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function render(d: Decision): string {
  const rows = d.candidates.map((c) => [
    c.engine + (d.winner === c.engine ? ' ★' : ''),
    c.status,
    c.valid ? 'yes' : 'no',
    c.p95Ms,
    c.margins.map((m) => `${m.constraint} ${m.margin === null ? 'n/a' : (m.margin >= 0 ? '+' : '') + fmtNum(m.margin)}`).join(', ') || '-',
    c.rejectedBy.join('; ') || '-',
  ]);
  return [
    table(['engine', 'status', 'valid', 'p95 ms', 'margins (+ = room to spare)', 'rejected by'], rows),
    '',
    `winner: ${d.winner ?? 'none'}`,
    `reason: ${d.reason}`,
    `rule: ${d.rule}`,
  ].join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('select')
    .description('pick the fastest engine in a benchmark report that meets the constraints; writes decision.json')
    .argument('<report>', 'report.json written by `cvopt bench`')
    .option('--min-map50 <x>', 'lowest accepted mAP50 (0..1)')
    .option('--min-map5095 <x>', 'lowest accepted mAP50-95 (0..1)')
    .option('--min-top1 <x>', 'lowest accepted top-1 (0..1)')
    .option('--max-map-drop <x>', 'largest accepted accuracy drop from the FP32 baseline (0.01 = 1 point)')
    .option('--max-p95-ms <ms>', 'largest accepted p95 single-image latency')
    .option('--max-rss-mb <mb>', 'largest accepted peak RSS')
    .option('--max-gpu-mem-mb <mb>', 'largest accepted GPU memory')
    .option('--engines <list>', `only these engines (comma list of ${ENGINE_IDS.join(', ')})`)
    .option('--out <file>', 'where to write the decision (default: decision.json beside the report)');
  action<[string]>(cmd, async (reportPath, opts) => {
    const report = readBenchmarkReport(reportPath);
    const raw: Record<string, unknown> = {};
    for (const [flag, key, range] of FLAGS) {
      const v = opts[camel(flag)];
      if (v !== undefined) raw[key] = numberFlag(flag, v, range);
    }
    if (opts.engines !== undefined) {
      const ids = String(opts.engines).split(',').map((s) => s.trim()).filter(Boolean);
      const bad = ids.find((id) => !(ENGINE_IDS as readonly string[]).includes(id));
      if (bad || ids.length === 0) {
        throw new CvoptError('INVALID_ARGUMENT', `--engines: ${bad ? `unknown engine "${bad}"` : 'empty list'}; engines: ${ENGINE_IDS.join(', ')}`, { where: { field: '--engines' } });
      }
      raw.allowedEngines = ids as EngineId[];
    }
    const constraints = parseWith(ConstraintsSchema, raw, { what: 'constraints', code: 'INVALID_ARGUMENT' });
    const out = typeof opts.out === 'string' ? resolve(opts.out) : join(dirname(resolve(reportPath)), 'decision.json');
    // The winner's model is copied beside the decision; a selection without a winner never replaces decision.json.
    const { decision, file } = writeDecision(report, resolve(reportPath), selectEngine(report, constraints), out);
    // With --json a failed selection prints only the error document (one JSON document per run).
    if (decision.winner || !opts.json) emit(opts, { ...decision, file }, (d) => `${render(d)}${d.model ? `\nmodel: ${d.model.file} (sha256 ${d.model.sha256.slice(0, 12)}…)` : ''}\nwrote ${file}`);
    if (!decision.winner) {
      throw new CvoptError('CONSTRAINT_UNMET', `no engine in ${reportPath} meets the constraints: ${decision.reason}`, { hint: 'relax a constraint (the margins above show by how much each engine misses); the previous decision.json, if any, is untouched', details: { decision: file } });
    }
  });
}
