import type { Command } from 'commander';
import { CvoptError, QUEUE_NAMES, QueueNameSchema, type JobHandlerRegistry, type QueueName } from '@cvopt/core';
import { openBackend, runWorker, type GpuConfig } from '@cvopt/jobs';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { defaultHandlerRegistry, loadHandlerModule } from '../job-handlers.js';
import { emit } from '../output.js';

function parseQueues(v: unknown): QueueName[] {
  const names = String(v ?? QUEUE_NAMES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const out: QueueName[] = [];
  for (const n of names) {
    const q = QueueNameSchema.safeParse(n);
    if (!q.success) throw new CvoptError('INVALID_ARGUMENT', `unknown queue "${n}"`, { where: { field: '--queues' }, hint: `use a comma-separated list of ${QUEUE_NAMES.join(', ')}` });
    if (!out.includes(q.data)) out.push(q.data);
  }
  if (!out.length) throw new CvoptError('INVALID_ARGUMENT', '--queues names no queue', { where: { field: '--queues' } });
  return out;
}

/** `4` (every queue) or `training=1,inference=4`. */
function parseConcurrency(v: unknown): number | Partial<Record<QueueName, number>> | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  if (!s.includes('=')) return parseFlags({ concurrency: flag.int({ min: 1 }) }, { concurrency: s }).concurrency;
  const out: Partial<Record<QueueName, number>> = {};
  for (const part of s.split(',')) {
    const [name, n] = part.split('=').map((x) => x.trim());
    const q = QueueNameSchema.safeParse(name);
    if (!q.success) throw new CvoptError('INVALID_ARGUMENT', `--concurrency names an unknown queue "${name}"`, { where: { field: '--concurrency' }, hint: 'e.g. --concurrency training=1,inference=4' });
    out[q.data] = parseFlags({ concurrency: flag.int({ min: 1 }) }, { concurrency: n }).concurrency;
  }
  return out;
}

/** `cvopt worker`: run jobs from the queues until SIGTERM or Ctrl-C, then drain. */
export function register(program: Command): void {
  const cmd = program
    .command('worker')
    .description('run queued jobs (training, inference, packaging) from the job database (CVOPT_DATABASE_URL or the SQLite file in CVOPT_DATA_DIR) or Redis (CVOPT_REDIS_URL)')
    .option('--queues <list>', `comma-separated queues to serve (default ${QUEUE_NAMES.join(',')})`)
    .option('--concurrency <n|q=n,…>', 'jobs at once: one number for every queue, or per queue (default training=1,inference=2,packaging=2)')
    .option('--handlers <module>', 'an ES module exporting `handlers` (kind → JobHandler) to serve instead of the built-in ones')
    .option('--data-dir <dir>', 'folder of the SQLite job database when CVOPT_DATABASE_URL is unset (default CVOPT_DATA_DIR or ./.cvopt)')
    .option('--gpu-slots <n>', 'GPU jobs at once per device on this machine (default 2)')
    .option('--vram-budget-mb <n>', 'VRAM budget per device, MiB (default: nvidia-smi total minus the reserve; required to run GPU jobs without nvidia-smi)')
    .option('--vram-reserve-mb <n>', 'VRAM kept free per device, MiB (default 1024)')
    .option('--lease-ms <n>', 'job lease; a dead worker is detected after about this long (default 10000)')
    .option('--drain-ms <n>', 'on SIGTERM, how long running jobs may finish before they go back to their queue (default 30000)');
  action<[]>(cmd, async (opts) => {
    const queues = parseQueues(opts.queues);
    const concurrency = parseConcurrency(opts.concurrency);
    const f = parseFlags(
      {
        gpuSlots: flag.int({ min: 1 }).optional(),
        vramBudgetMb: flag.int({ min: 1 }).optional(),
        vramReserveMb: flag.int({ min: 0 }).optional(),
        leaseMs: flag.int({ min: 1000 }).optional(),
        drainMs: flag.int({ min: 0 }).optional(),
      },
      opts,
    );
    const gpu: GpuConfig = {};
    if (f.gpuSlots !== undefined) gpu.maxSlots = f.gpuSlots;
    if (f.vramBudgetMb !== undefined) gpu.budgetMb = f.vramBudgetMb;
    if (f.vramReserveMb !== undefined) gpu.reserveMb = f.vramReserveMb;
    const { leaseMs, drainMs } = f;
    const handlers: JobHandlerRegistry = typeof opts.handlers === 'string' ? await loadHandlerModule(opts.handlers) : await defaultHandlerRegistry();
    const served = [...handlers.values()].filter((h) => queues.includes(h.queue));
    if (!served.length) {
      throw new CvoptError('DEPENDENCY_MISSING', `no job handler serves the ${queues.join(', ')} queue(s) in this build`, {
        where: { field: '--queues' },
        hint: 'pass --handlers MODULE, or serve queues that this build has handlers for',
      });
    }
    const backend = await openBackend(typeof opts.dataDir === 'string' ? { database: { dataDir: opts.dataDir } } : {});
    const worker = runWorker({
      backend,
      handlers,
      queues,
      gpu,
      ...(concurrency === undefined ? {} : { concurrency }),
      ...(leaseMs === undefined ? {} : { leaseMs, heartbeatMs: Math.min(1000, Math.floor(leaseMs / 3)) }),
      ...(drainMs === undefined ? {} : { drainMs }),
    });
    const state = await worker.state();
    emit(
      opts,
      { id: worker.id, database: backend.db.location, queue: backend.queue.backend, queues: state.queues, kinds: served.map((h) => h.kind).sort(), gpu: state.gpu ?? null },
      (r) =>
        [
          `worker ${r.id} on ${r.database} (${r.queue} queue)`,
          `  queues: ${Object.entries(r.queues).map(([q, s]) => `${q}×${s.concurrency}`).join(', ')}; kinds: ${r.kinds.join(', ')}`,
          `  GPU: ${r.gpu ? r.gpu.devices.map((d) => `device ${d.device} budget ${d.budgetMb} MiB, ${d.slots.max} slots`).join('; ') : 'none'}`,
          '  (SIGTERM drains and stops; Ctrl-C too, within 5 s)',
        ].join('\n'),
    );
    // SIGTERM drains for --drain-ms; Ctrl-C (the CLI's interrupt signal) drains within its 5 s grace and exits 130.
    const signal = opts.signal as AbortSignal | undefined;
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGTERM', stop);
        signal?.removeEventListener('abort', stop);
        resolve();
      };
      process.on('SIGTERM', stop);
      signal?.addEventListener('abort', stop, { once: true });
    });
    await worker.close();
    await backend.close();
  });
}
