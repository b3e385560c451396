import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { probeMachine } from '../src/index.js';

describe('probeMachine', () => {
  it('reports every item with a status, marks the required ones ok here, and explains the rest', async () => {
    // Ports nothing listens on: the probes must come back unavailable, quickly, with a fix.
    const r = await probeMachine({ databaseUrl: 'postgres://cvopt@127.0.0.1:1/none', redisUrl: 'redis://127.0.0.1:1', timeoutMs: 1500, fileChecksOnly: true });
    const byName = new Map(r.items.map((i) => [i.name, i]));
    for (const name of ['node', 'onnxruntime-node', 'sharp (libvips)', 'onnxruntime cpu provider']) {
      expect(byName.get(name)).toMatchObject({ status: 'ok', need: 'required' });
    }
    expect(r.ok).toBe(true);
    expect(byName.get('node')?.version).toBe(process.versions.node);
    for (const name of ['onnxruntime cuda provider', 'onnxruntime tensorrt provider', 'onnxruntime webgpu provider', 'python', 'pytorch', 'ffmpeg', 'ffprobe', 'tensorrt']) {
      expect(byName.has(name), name).toBe(true);
    }
    for (const item of r.items) {
      expect(['ok', 'missing', 'unavailable']).toContain(item.status);
      if (item.status !== 'ok') expect(item.detail ?? item.hint, item.name).toBeTruthy();
    }
    for (const name of ['postgresql', 'redis']) {
      const i = byName.get(name)!;
      expect(i.status).toBe('unavailable');
      expect(i.detail).toContain('127.0.0.1:1');
      expect(i.hint).toMatch(/works without it/);
    }
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    expect(r.cpu.flags.avx2).toBe(/\bavx2\b/.test(cpuinfo));
    expect(r.cpu.logicalCores).toBeGreaterThan(0);
    expect(r.memory.totalMiB).toBeGreaterThan(r.memory.freeMiB);
  }, 120_000); // importing torch to read its version takes seconds, and much longer on a busy machine

  it('hides a password in the connection detail', async () => {
    const r = await probeMachine({ databaseUrl: 'postgres://cvopt:s3cret@127.0.0.1:1/none', redisUrl: 'redis://:hunter2@127.0.0.1:1', timeoutMs: 1000, fileChecksOnly: true });
    const text = JSON.stringify(r);
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('hunter2');
  });
});
