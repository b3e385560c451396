import type { Command } from 'commander';
import { probeMachine, type DoctorReport } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, table } from '../output.js';

function render(r: DoctorReport): string {
  const rows = r.items.map((i) => [i.name, i.status, i.need, i.version ?? (i.status === 'ok' ? (i.detail ?? '') : '')]);
  const notes = r.items
    .filter((i) => i.status !== 'ok')
    .flatMap((i) => [`- ${i.name} (${i.status}, ${i.need})${i.detail ? `: ${i.detail}` : ''}`, ...(i.hint ? [`    fix: ${i.hint}`] : [])]);
  const flags = Object.entries(r.cpu.flags)
    .map(([k, v]) => `${k} ${v ? 'yes' : 'no'}`)
    .join(', ');
  return [
    table(['item', 'status', 'need', 'version'], rows),
    '',
    `cpu: ${r.cpu.model}, ${r.cpu.logicalCores} logical cores (${r.cpu.availableParallelism} usable${r.cpu.cpuQuota !== null ? `, cgroup quota ${r.cpu.cpuQuota} CPUs` : ''}); ${flags}`,
    `memory: ${r.memory.totalMiB} MiB total, ${r.memory.freeMiB} MiB free`,
    ...(notes.length ? ['', 'not ok:', ...notes] : []),
    '',
    r.ok
      ? `ready for inference and benchmarks${r.trainingOk ? ', and for training' : '; training needs the items marked "training" fixed'}`
      : 'NOT READY: fix the items marked "required" above',
  ].join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('doctor')
    .description('what this machine can run: Node, ONNX Runtime and its providers, Python/PyTorch, ffmpeg, GPUs, TensorRT, PostgreSQL, Redis')
    .option('--database-url <url>', 'PostgreSQL to try (default CVOPT_DATABASE_URL or postgres://127.0.0.1:5432/postgres)')
    .option('--redis-url <url>', 'Redis to try (default CVOPT_REDIS_URL or redis://127.0.0.1:6379)')
    .option('--timeout-ms <ms>', 'connection timeout for PostgreSQL and Redis', '2000')
    .option('--quick', 'skip the GPU providers test sessions (file checks only)');
  action<[]>(cmd, async (opts) => {
    const report = await probeMachine({
      ...(typeof opts.databaseUrl === 'string' ? { databaseUrl: opts.databaseUrl } : {}),
      ...(typeof opts.redisUrl === 'string' ? { redisUrl: opts.redisUrl } : {}),
      timeoutMs: parseFlags({ timeoutMs: flag.int({ min: 1 }) }, opts).timeoutMs,
      fileChecksOnly: opts.quick === true,
    });
    emit(opts, report, render);
    // Missing optional pieces are information, not failure; only a missing required piece fails the command.
    if (!report.ok) process.exitCode = 4;
  });
}
