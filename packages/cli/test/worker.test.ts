// `cvopt worker` as a user runs it: a real process on the embedded SQLite backend, serving handlers from a module,
// draining on SIGTERM; and its flag errors.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createJobService, openBackend } from '@cvopt/jobs';
import { runCli } from './run-cli.js';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const handlersFile = fileURLToPath(new URL('./fixtures/echo-handlers.mjs', import.meta.url));

describe('cvopt worker', () => {
  it('serves the packaging queue from a handler module and stops cleanly on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cvopt-worker-cli-'));
    const proc = spawn(process.execPath, [main, 'worker', '--queues', 'packaging', '--concurrency', 'packaging=2', '--handlers', handlersFile, '--data-dir', dataDir], {
      env: { ...process.env, CVOPT_DATABASE_URL: '', CVOPT_REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += String(d)));
    proc.stderr.on('data', (d) => (err += String(d)));
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('SIGTERM drains') && Date.now() < deadline && proc.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      expect(out, err).toContain('packaging×2');
      expect(out).toContain('kinds: echo');

      const backend = await openBackend({ database: { dataDir }, queue: 'embedded' });
      const service = createJobService(backend, { kinds: new Map([['echo', { queue: 'packaging' as const, payload: z.object({ text: z.string() }) }]]) });
      const job = await service.submit('echo', { text: 'héllo' });
      let rec = await service.get(job.id);
      while (rec?.state !== 'succeeded' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        rec = await service.get(job.id);
      }
      expect(rec).toMatchObject({ state: 'succeeded', result: { text: 'héllo', bytes: 6 } });
      await backend.close();
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('rejects unknown queues and malformed concurrency with the flag named', async () => {
    const a = await runCli('worker', '--queues', 'training,gpu');
    expect(a.code).toBe(2);
    expect(a.err).toContain('unknown queue "gpu"');
    const b = await runCli('worker', '--concurrency', 'training=0', '--handlers', handlersFile);
    expect(b.code).toBe(2);
    expect(b.err).toContain('--concurrency');
    const c = await runCli('worker', '--queues', 'training', '--handlers', handlersFile);
    expect(c.code).toBe(4);
    expect(c.err).toContain('no job handler serves the training queue');
  });
});
