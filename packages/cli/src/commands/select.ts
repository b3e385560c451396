import type { Command } from 'commander';
import { CvoptError, ENGINE_IDS, type Constraints, type Decision } from '@cvopt/core';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, fmtNum, table } from '../output.js';
import { remoteOptions, runJob } from '../remote/run-job.js';

const SelectFlags = {
  minMap50: flag.number({ min: 0, max: 1 }).optional(),
  minMap5095: flag.number({ min: 0, max: 1 }).optional(),
  minTop1: flag.number({ min: 0, max: 1 }).optional(),
  maxMapDrop: flag.number({ min: 0 }).optional(),
  maxP95Ms: flag.number({ gt: 0 }).optional(),
  maxRssMb: flag.number({ gt: 0 }).optional(),
  maxGpuMemMb: flag.number({ gt: 0 }).optional(),
  engines: flag.engines(),
  out: flag.string().optional(),
};

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
    .argument('<report>', 'report.json written by `cvopt bench` (with --remote: by `cvopt bench --remote`, or the bench job id)')
    .option('--min-map50 <x>', 'lowest accepted mAP50 (0..1)')
    .option('--min-map5095 <x>', 'lowest accepted mAP50-95 (0..1)')
    .option('--min-top1 <x>', 'lowest accepted top-1 (0..1)')
    .option('--max-map-drop <x>', 'largest accepted accuracy drop from the FP32 baseline (0.01 = 1 point)')
    .option('--max-p95-ms <ms>', 'largest accepted p95 single-image latency')
    .option('--max-rss-mb <mb>', 'largest accepted peak RSS')
    .option('--max-gpu-mem-mb <mb>', 'largest accepted GPU memory')
    .option('--engines <list>', `only these engines (comma list of ${ENGINE_IDS.join(', ')})`)
    .option('--out <file>', 'where to write the decision (default: decision.json beside the report)');
  remoteOptions(cmd);
  action<[string]>(cmd, async (reportPath, opts) => {
    const { engines, out: outFlag, ...limits } = parseFlags(SelectFlags, opts);
    const constraints: Constraints = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
    if (engines) constraints.allowedEngines = engines;
    // The handler copies the winner's model beside the decision; without a winner it writes decision.rejected.json.
    const decision = await runJob('select', { report: reportPath, constraints, ...(outFlag ? { out: outFlag } : {}) }, opts);
    if (!decision) return;
    const file = decision.file;
    // With --json a failed selection prints only the error document (one JSON document per run).
    if (decision.winner || !opts.json) emit(opts, decision, (d) => `${render(d)}${d.model ? `\nmodel: ${d.model.file} (sha256 ${d.model.sha256.slice(0, 12)}…)` : ''}\nwrote ${file}`);
    if (!decision.winner) {
      throw new CvoptError('CONSTRAINT_UNMET', `no engine in ${reportPath} meets the constraints: ${decision.reason}`, { hint: 'relax a constraint (the margins above show by how much each engine misses); the previous decision.json, if any, is untouched', details: { decision: file } });
    }
  });
}
