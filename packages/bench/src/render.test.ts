import { describe, expect, it } from 'vitest';
import type { BenchmarkReport } from '@cvopt/core';
import { renderChart, renderMarkdown, renderTable } from './render.js';
import { selectEngine } from './select.js';

const report: BenchmarkReport = {
  schemaVersion: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  model: { path: 'm.onnx', sha256: 'abcdef0123456789', task: 'detect', name: 'yolo<n>' },
  settings: {},
  environment: { os: 'linux', cpu: { model: 'Test CPU', cores: 2, flags: [] }, memoryMb: 24576, gpus: [], versions: { onnxruntime: '1.30.0' } },
  engines: [
    {
      engine: 'ort-cpu',
      status: 'ok',
      figures: {
        latencyMs: { n: 10, min: 9, p50: 10, p90: 11, p95: 12, p99: 13, mean: 10, std: 1, max: 14 },
        throughput: [{ batch: 1, imagesPerSec: 90 }],
        video: { file: 'v.mp4', frames: 10, sequentialFps: 50, pipelinedFps: 70 },
        resources: { cpuPercent: 190, peakRssMb: 300 },
        accuracy: { map50: 0.5, map5095: 0.3, delta: { map50: 0 } },
        flags: [],
      },
    },
    { engine: 'tensorrt-int8', status: 'unavailable', reason: 'no NVIDIA GPU | driver' },
  ],
};

describe('renderers', () => {
  const decision = selectEngine(report, { maxP95Ms: 50, minMap50: 0.4 });
  it('table shows every engine with status and the winner star', () => {
    const t = renderTable(report, decision);
    expect(t).toContain('ort-cpu ★');
    expect(t).toMatch(/tensorrt-int8\s+unavailable/);
    expect(t).toContain('50.0/70.0');
  });
  it('markdown escapes pipes and includes the selection with margins', () => {
    const md = renderMarkdown(report, decision);
    expect(md).toContain('**Winner: ort-cpu**');
    expect(md).toContain('no NVIDIA GPU \\| driver');
    expect(md).toContain('maxP95Ms +38');
  });
  it('chart is well-formed SVG with constraint lines and the winner marked, text escaped', () => {
    const svg = renderChart(report, decision);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('max p95 50 ms');
    expect(svg).toContain('min mAP50 0.4');
    expect(svg).toContain('ort-cpu (selected)');
    expect(svg).toContain('yolo&lt;n&gt;');
    expect(svg).not.toContain('NaN');
  });
});

describe('chart axes', () => {
  it('has round ticks, accuracy from 0 and latency from 0', () => {
    const svg = renderChart(report, selectEngine(report, {}));
    const xs = [...svg.matchAll(/y="\d+(?:\.\d+)?" text-anchor="middle">([0-9.]+)<\/text>/g)].map((m) => Number(m[1]));
    const ys = [...svg.matchAll(/text-anchor="end">([0-9.]+)<\/text>/g)].map((m) => Number(m[1]));
    for (const ticks of [xs, ys]) {
      expect(ticks[0]).toBe(0);
      const step = ticks[1]! - ticks[0]!;
      expect(ticks.every((t, i) => Math.abs(t - i * step) < 1e-9)).toBe(true);
      const mantissa = step / 10 ** Math.floor(Math.log10(step));
      expect([1, 2, 5]).toContain(Math.round(mantissa * 1e6) / 1e6);
    }
  });
});
