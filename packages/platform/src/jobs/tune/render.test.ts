import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hypYaml, progressSvg, trialsCsv } from './render.js';
import { readHypFile } from '../train.js';
import type { TrialRecord } from './types.js';

const rec = (id: number, generation: number, fitness: number | null, extra: Partial<TrialRecord> = {}): TrialRecord => ({
  type: 'trial',
  id,
  generation,
  key: `k${id}`,
  isDefault: id === 0,
  params: { optimizer: 'SGD', lr0: 0.01, imgsz: 64 },
  status: fitness === null ? 'failed' : 'ok',
  fitness,
  objectives: fitness === null ? [] : [-fitness],
  durationS: 1.5,
  finishedAt: '2026-01-01T00:00:00Z',
  ...extra,
});

describe('tune report files', () => {
  it('writes best_hyp.yaml that `cvopt train --hyp` reads back, without imgsz', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-hyp-'));
    try {
      const file = join(dir, 'best_hyp.yaml');
      writeFileSync(file, hypYaml({ optimizer: 'SGD', lr0: 0.00123, close_mosaic: 3, imgsz: 96 }, ['best of 6 trials', 'use with --imgsz 96']));
      expect(readHypFile(file).values).toEqual({ optimizer: 'SGD', lr0: 0.00123, close_mosaic: 3 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('quotes CSV cells that hold commas, quotes or newlines', () => {
    const failed = rec(1, 1, null, { error: { code: 'WORKER_FAILED', message: 'boom, "bad"\nline' } });
    const csv = trialsCsv([rec(0, 1, 0.5), failed], ['optimizer', 'lr0']);
    const [head, first] = csv.split('\n');
    expect(head).toBe('id,generation,status,default,fitness,map50,map5095,p95_ms,size_mb,latency_penalty,violation,duration_s,error,optimizer,lr0');
    expect(first).toBe('0,1,ok,1,0.5,,,,,,,1.5,,SGD,0.01');
    expect(csv).toContain('"WORKER_FAILED: boom, ""bad""\nline"');
  });

  it('draws every trial, failures as crosses, and a best-so-far line that never falls', () => {
    const svg = progressSvg([rec(0, 1, 0.2), rec(1, 1, null), rec(2, 2, 0.1), rec(3, 2, 0.4)], 2, 'a <title>');
    expect(svg.match(/<circle [^>]*><title>trial/g)).toHaveLength(3);
    expect(svg).toContain('<title>trial 1 failed</title>');
    expect(svg).toContain('a &lt;title&gt;');
    const ys = /<polyline points="([^"]+)"/.exec(svg)![1]!.split(' ').map((p) => Number(p.split(',')[1]));
    expect(ys).toHaveLength(2);
    expect(ys[1]!).toBeLessThan(ys[0]!); // SVG y grows downwards: the line rose from 0.2 to 0.4
  });
});
