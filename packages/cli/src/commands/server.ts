import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createLogger, CvoptError } from '@cvopt/core';
import { startServer } from '@cvopt/server';
import { openBackend, runWorker } from '@cvopt/jobs';
import { defaultHandlerRegistry } from '../job-handlers.js';
import { action, numberFlag } from '../action.js';
import { emit } from '../output.js';
import { examples } from '../remote/resolve.js';

/** `cvopt server`: the team control plane (users, projects, RBAC, datasets, models, jobs) over HTTP. */
export function register(program: Command): void {
  const cmd = program
    .command('server')
    .description('run the team control plane: users, projects and roles, datasets, models and jobs under /api/v1 (SQLite in --data-dir, or PostgreSQL via CVOPT_DATABASE_URL)')
    .option('--port <port>', 'TCP port', '8700')
    .option('--host <host>', 'address to bind (0.0.0.0 to serve a team)', '127.0.0.1')
    .option('--data-dir <dir>', 'the SQLite database, uploads and job outputs (default: CVOPT_DATA_DIR or ./.cvopt)')
    .option('--no-worker', 'run no embedded worker: jobs wait for `cvopt worker` processes on the same database')
    .option('--config <file>', 'limits as JSON (upload sizes, archive caps, login throttling, token lifetimes …; see GET /api/v1/limits and packages/server/README.md); flags win');
  examples(
    cmd,
    'CVOPT_ADMIN_PASSWORD=change-me-please cvopt server --data-dir /srv/cvopt --host 0.0.0.0',
    'CVOPT_DATABASE_URL=postgres://cvopt@db/cvopt cvopt server --port 8700',
    'cvopt server --config limits.json     # {"datasetUploadMaxBytes": 4294967296, "loginPerMinute": 60}',
  );
  action<[]>(cmd, async (opts) => {
    const dataDir = typeof opts.dataDir === 'string' ? opts.dataDir : (process.env.CVOPT_DATA_DIR ?? '.cvopt');
    const file = typeof opts.config === 'string' ? readConfig(opts.config) : {};
    const s = await startServer({
      config: { ...file, dataDir, port: numberFlag('port', opts.port, { int: true, min: 0, max: 65535 }), host: String(opts.host) },
      log: createLogger('cvopt-server'),
    });
    // The embedded worker serves every queue from the same database, so a one-machine team needs no second
    // process; `cvopt worker` processes (other machines, GPUs) can join or replace it (--no-worker).
    let stopWorker = async () => {};
    let workerLine = 'no embedded worker (--no-worker): jobs wait for `cvopt worker` processes';
    if (opts.worker !== false) {
      const backend = await openBackend({ database: { dataDir: s.ctx.config.dataDir } });
      const worker = runWorker({ backend, handlers: await defaultHandlerRegistry() });
      stopWorker = async () => {
        await worker.close();
        await backend.close();
      };
      workerLine = `embedded worker ${worker.id} serves the training, inference and packaging queues`;
    }
    emit(opts, { url: s.url, store: s.ctx.repo.dialect, dataDir: s.ctx.config.dataDir, worker: workerLine, ...(s.setupToken ? { setupToken: s.setupToken } : {}), ...(s.admin ? { admin: s.admin } : {}) }, (r) =>
      [
        `cvopt server at ${r.url}/api/v1 (store: ${r.store}, data: ${r.dataDir})`,
        r.worker,
        ...(r.admin ? [`created server admin "${r.admin}" from CVOPT_ADMIN_PASSWORD`] : []),
        ...(r.setupToken
          ? [
              'no users yet: create the first admin with this one-time setup token (shown once):',
              `  ${r.setupToken}`,
              `  curl -X POST ${r.url}/api/v1/setup -H 'content-type: application/json' -d '{"token":"${r.setupToken}","username":"admin","password":"…"}'`,
            ]
          : []),
        'SIGTERM or Ctrl-C stops it',
      ].join('\n'),
    );
    const stop = () => void stopWorker().then(() => s.close()).then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

function readConfig(file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new CvoptError('INVALID_CONFIG', `${file}: ${(e as Error).message}`, { where: { file }, hint: 'a JSON object of server settings, e.g. {"loginPerMinute": 60}' });
  }
}
