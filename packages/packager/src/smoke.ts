import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { CvoptError } from '@cvopt/core';
import { entrypointCommand } from './manifest.js';

export interface SmokeResult {
  url: string;
  /** Start to /readyz 200 (ms). */
  readyMs: number;
  status: number;
  body: { detections?: { className: string; score: number; box: number[] }[]; top?: { className: string; score: number }[] } & Record<string, unknown>;
}

const TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.bmp': 'image/bmp' };

/**
 * Start an artifact exactly as its container does (on a free local port), send one image to /v1/predict, and stop
 * it with SIGTERM. Proves the packaged service answers before anyone builds an image.
 */
export async function smokeTestArtifact(dir: string, image: string, timeoutMs = 120_000): Promise<SmokeResult> {
  const { command, args } = entrypointCommand(dir);
  const started = performance.now();
  const child = spawn(command, args, { env: { ...process.env, CVOPT_HOST: '127.0.0.1', CVOPT_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  try {
    const url = await new Promise<string>((res, rej) => {
      let out = '';
      const timer = setTimeout(() => rej(new CvoptError('NOT_READY', `the artifact ${dir} did not start within ${timeoutMs} ms`, { hint: stderr.trim().split('\n').pop() ?? '' })), timeoutMs);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /(http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        rej(new CvoptError('ENGINE_FAILED', `the artifact ${dir} exited with code ${code} before serving: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      });
    });
    const ready = await fetch(`${url}/readyz`);
    const readyMs = performance.now() - started;
    if (ready.status !== 200) throw new CvoptError('NOT_READY', `${url}/readyz answered ${ready.status}`);
    const r = await fetch(`${url}/v1/predict`, { method: 'POST', body: readFileSync(image), headers: { 'content-type': TYPES[extname(image).toLowerCase()] ?? 'application/octet-stream' } });
    return { url, readyMs, status: r.status, body: (await r.json()) as SmokeResult['body'] };
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
}
