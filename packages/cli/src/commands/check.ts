import type { Command } from 'commander';
import { z } from 'zod';
import { CvoptError } from '@cvopt/core';
import { assertTargets, DEFAULT_TARGETS, type CheckReport } from '@cvopt/onnx';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, table } from '../output.js';
import { remoteOptions, runJob } from '../remote/run-job.js';

/** Issues grouped by severity and op: a count and a few example nodes, instead of one line per node. */
function summarise(issues: CheckReport['targets'][number]['blockers']): (string | number | null)[][] {
  const groups = new Map<string, { severity: string; op: string; opset: number | null; message: string; nodes: string[] }>();
  for (const i of issues) {
    const op = i.opType ? `${i.domain}::${i.opType}` : i.kind;
    const key = `${i.severity}|${op}|${i.message.replace(/'[^']*'/g, '…')}`;
    const g = groups.get(key) ?? { severity: i.severity, op, opset: i.opset ?? null, message: i.message, nodes: [] };
    g.nodes.push(i.node ?? i.tensor ?? '');
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => [g.severity, g.op, g.nodes.length, g.opset, `${g.message}${g.nodes.length > 1 ? ` (e.g. ${g.nodes.slice(0, 3).join(', ')}${g.nodes.length > 3 ? ', …' : ''})` : ''}`]);
}

function render(r: CheckReport, verbose: boolean): string {
  const out: string[] = [`${r.model}: ${r.nodes} nodes`];
  for (const t of r.targets) {
    out.push('', `${t.label} (${t.target}): ${t.blocked ? `BLOCKED, ${t.blockers.length} problem${t.blockers.length === 1 ? '' : 's'}` : 'ok'}${t.warnings.length ? `, ${t.warnings.length} warning${t.warnings.length === 1 ? '' : 's'}` : ''}`);
    const issues = [...t.blockers, ...t.warnings];
    if (!issues.length) continue;
    if (verbose) out.push(table(['severity', 'node/tensor', 'op', 'opset', 'problem'], issues.map((i) => [i.severity, i.node ?? i.tensor ?? '', i.opType ? `${i.domain}::${i.opType}` : i.kind, i.opset ?? null, i.message])));
    else out.push(table(['severity', 'op', 'nodes', 'opset', 'problem'], summarise(issues)));
    // One line per distinct fix, naming the ops it applies to, rather than repeating it on every node.
    const fixes = new Map<string, Set<string>>();
    for (const i of issues) (fixes.get(i.fix) ?? fixes.set(i.fix, new Set()).get(i.fix))?.add(i.opType ?? i.kind);
    out.push('how to fix:', ...[...fixes].map(([fix, ops]) => `  - ${[...ops].join(', ')}: ${fix}`));
  }
  const blocked = r.targets.filter((t) => t.blocked).map((t) => t.target);
  out.push('', blocked.length ? `blocked on: ${blocked.join(', ')}` : 'runs on every checked target');
  if (!verbose && r.targets.some((t) => t.blockers.length + t.warnings.length > 0)) out.push('(--verbose lists every node)');
  return out.join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('check')
    .description('operator report per engine: every node a target cannot run, all at once (non-zero exit when blocked)')
    .argument('<model>', 'an ONNX file')
    .option('--targets <list>', `comma-separated targets (${DEFAULT_TARGETS.join(',')})`, DEFAULT_TARGETS.join(','))
    .option('--no-session', 'skip the real ONNX Runtime session check for ort-cpu')
    .option('--verbose', 'list every node a target cannot run (default: one line per operator with a count); with --remote also what was uploaded');
  remoteOptions(cmd).addHelpText(
      'after',
      `
Examples:
  cvopt check model.onnx                              # every default target, summarised per operator
  cvopt check model.onnx --targets tensorrt --verbose # every node TensorRT cannot run
  cvopt check model.onnx --json | jq .blocked
  cvopt check model.onnx --remote --project shapes   # the same report, from the server`,
    );
  action<[string]>(cmd, async (model, opts) => {
    const f = parseFlags({ targets: flag.list(), session: z.boolean().default(true), verbose: flag.switch().default(false) }, opts);
    const report = await runJob('check', { model, targets: assertTargets(f.targets), session: f.session }, opts);
    if (!report) return;
    emit(opts, report, (x) => render(x, f.verbose));
    if (report.blocked) {
      const blocked = report.targets.filter((t) => t.blocked);
      const err = new CvoptError('UNSUPPORTED_OPERATOR', `the model cannot run on ${blocked.map((t) => t.target).join(', ')} (${blocked.reduce((a, t) => a + t.blockers.length, 0)} blockers listed above)`);
      process.exitCode = err.exitCode;
      if (!opts.json) process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    }
  });
}
