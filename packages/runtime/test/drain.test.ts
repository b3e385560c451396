import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixtureModels, jpeg } from './helpers.js';

const MAIN = new URL('../dist/main.js', import.meta.url).pathname;

describe('SIGTERM on a child-process server', () => {
  it('finishes every accepted request, refuses later ones and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-drain-'));
    cpSync(fixtureModels().detStatic, dir, { recursive: true });
    writeFileSync(join(dir, 'cvopt.runtime.json'), JSON.stringify({ port: 0, queueMax: 200, sloMs: 60_000, gracePeriodMs: 30_000, intraOpThreads: 1 }));
    const child = spawn(process.execPath, [MAIN, dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CVOPT_LOG_LEVEL: 'warn' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => resolve(d.toString().trim()));
      child.on('exit', () => reject(new Error(`server exited early: ${stderr}`)));
    });

    // Large images keep the accepted requests busy decoding and queued while the signal arrives.
    const big = await jpeg(1600, 1200);
    const first = Array.from({ length: 16 }, () =>
      fetch(`${url}/v1/predict`, { method: 'POST', body: big, headers: { 'content-type': 'image/jpeg' } }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } }),
        (e: Error) => ({ status: -1, body: { error: { code: e.message } } }),
      ),
    );
    for (let i = 0; i < 200; i++) {
      const m = await (await fetch(`${url}/metrics`)).text();
      if (Number(/cvopt_admitted_requests (\d+)/.exec(m)?.[1]) >= 8) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGTERM');
    // Once readiness reports the drain (or the port is gone), new work must be refused.
    for (let i = 0; i < 400; i++) {
      const ready = await fetch(`${url}/readyz`).then((r) => r.status, () => 0);
      if (ready !== 200) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const late = await fetch(`${url}/v1/predict`, { method: 'POST', body: await jpeg(), headers: { 'content-type': 'image/jpeg' } }).then(
      async (r) => ({ status: r.status, code: ((await r.json()) as { error?: { code: string } }).error?.code }),
      () => ({ status: 0, code: 'connection refused' }),
    );
    const results = await Promise.all(first);
    const code = await exited;

    const ok = results.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThanOrEqual(8); // every request admitted before the signal completed
    for (const r of results) {
      // Nothing dropped: each answer is a success or a polite refusal of a request that arrived after the signal.
      if (r.status !== 200) expect(r.body.error?.code).toBe('SHUTTING_DOWN');
    }
    expect(late.status === 0 || (late.status === 503 && late.code === 'SHUTTING_DOWN')).toBe(true);
    expect(code).toBe(0);
    // Sixteen 1600×1200 decodes on one thread while the end-to-end training tests share the two cores.
  }, 180_000);
});
