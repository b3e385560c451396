import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CvoptError } from '@cvopt/core';
import { SERVED_SPINNING } from '@cvopt/engines';
import { authEnabled, effectiveIntraOpThreads, loadRuntimeConfig, parseRuntimeConfig } from './config.js';
import { RateLimiter } from './rate-limit.js';
import { parseMultipart, filePart } from './multipart.js';
import { KeyStore, roleAllows } from './auth.js';
import { Counter, Histogram } from './metrics.js';

function errorOf(fn: () => unknown): CvoptError {
  try {
    fn();
  } catch (e) {
    return e as CvoptError;
  }
  throw new Error('expected an error');
}

describe('runtime config', () => {
  it('has a documented default for every limit', () => {
    const c = parseRuntimeConfig({});
    expect(c).toMatchObject({ port: 8080, queueMax: 128, refusalPauseMs: 1000, concurrency: 1, gpuSlots: 2, batchMax: 8, sloMs: 2000, gracePeriodMs: 10_000 });
    expect(c).toMatchObject({ engineNice: 10, intraOpSpinning: false, admissionTarget: 0.85 });
    // the engines are served as cvopt bench and tune's latency time them
    expect(c.intraOpSpinning).toBe(SERVED_SPINNING);
    // and with ONNX Runtime's own choice of threads, as cvopt bench and predict open them; several instances share the cores
    expect(effectiveIntraOpThreads(c)).toBe(0);
    expect(effectiveIntraOpThreads(parseRuntimeConfig({ concurrency: 2 }))).toBe(Math.max(1, Math.floor(cpus().length / 2)));
    expect(effectiveIntraOpThreads(parseRuntimeConfig({ intraOpThreads: 3 }))).toBe(3);
    expect(c.video).toEqual({ maxBytes: 200 * 1024 * 1024, maxSeconds: 120, maxFrames: 3600, maxConcurrent: 2, stallTimeoutMs: 30_000 });
    expect(c.upload).toEqual({ timeoutMs: 10_000, minBytesPerSecond: 32 * 1024, graceMs: 2000, headersTimeoutMs: 10_000 });
    expect(c.perClient).toEqual({ maxUploads: 16, maxConnections: 2048, maxAdmitted: 0 });
    expect(c.kserve).toEqual({ maxSamples: 64, maxJsonDepth: 32 });
    expect(authEnabled(c)).toBe(false);
  });

  it('reads YAML from the artifact directory, then CVOPT_* variables override it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-cfg-'));
    writeFileSync(join(dir, 'cvopt.runtime.yaml'), 'queueMax: 5\nvideo:\n  maxFrames: 10\nauth:\n  keys:\n    - {name: ci, key: aaaaaaaaaaaaaaaa, role: viewer}\n');
    const c = loadRuntimeConfig({ artifactDir: dir, env: { CVOPT_QUEUE_MAX: '7', CVOPT_VIDEO_MAX_SECONDS: '3.5' } });
    expect(c.queueMax).toBe(7);
    expect(c.video.maxFrames).toBe(10);
    expect(c.video.maxSeconds).toBe(3.5);
    expect(authEnabled(c)).toBe(true);
  });

  it('names the field and the file of an invalid value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cvopt-cfg-'));
    const file = join(dir, 'cvopt.runtime.json');
    writeFileSync(file, JSON.stringify({ gpuSlots: 3 }));
    const e = errorOf(() => loadRuntimeConfig({ file, env: {} }));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.where).toEqual({ file, field: 'gpuSlots' });
    expect(errorOf(() => parseRuntimeConfig({ queueMx: 3 })).message).toMatch(/queueMx/);
    expect(errorOf(() => loadRuntimeConfig({ env: { CVOPT_PORT: 'eighty' } })).where?.field).toBe('CVOPT_PORT');
    expect(errorOf(() => parseRuntimeConfig({ auth: { enabled: true } })).where?.field).toBe('auth.keys');
    expect(errorOf(() => parseRuntimeConfig({ engineNice: 20 })).where?.field).toBe('engineNice');
    expect(errorOf(() => parseRuntimeConfig({ admissionTarget: 0 })).where?.field).toBe('admissionTarget');
    expect(loadRuntimeConfig({ env: { CVOPT_ENGINE_NICE: '0', CVOPT_INTRA_OP_SPINNING: 'true', CVOPT_ADMISSION_TARGET: '0.9' } })).toMatchObject({ engineNice: 0, intraOpSpinning: true, admissionTarget: 0.9 });
    writeFileSync(file, '{"queueMax": 3,,}');
    expect(errorOf(() => loadRuntimeConfig({ file, env: {} })).code).toBe('INVALID_CONFIG');
  });
});

describe('rate limiter', () => {
  it('allows a burst, then refuses with a Retry-After until tokens refill', () => {
    let t = 0;
    const rl = new RateLimiter(2, 3, () => t);
    for (let i = 0; i < 3; i++) rl.take('k');
    const e = errorOf(() => rl.take('k'));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.retryAfterS).toBe(1);
    rl.take('other'); // per key
    t = 600;
    rl.take('k');
  });
});

describe('multipart reader', () => {
  it('finds the file part and rejects a body without one', () => {
    const b = 'XyZ';
    const body = Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--${b}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x01\x02\r\n\x03\r\n--${b}--\r\n`, 'latin1');
    const part = filePart(parseMultipart(body, `multipart/form-data; boundary=${b}`));
    expect(part.contentType).toBe('image/png');
    expect([...part.data]).toEqual([1, 2, 13, 10, 3]);
    expect(errorOf(() => parseMultipart(Buffer.from('junk'), 'multipart/form-data; boundary=q')).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => parseMultipart(body, 'multipart/form-data')).where?.field).toBe('content-type');
  });
});

describe('keys and roles', () => {
  it('maps roles to permissions and authenticates keys', () => {
    expect(roleAllows('viewer', 'predict')).toBe(true);
    expect(roleAllows('viewer', 'model')).toBe(false);
    expect(roleAllows('engineer', 'metrics')).toBe(true);
    expect(roleAllows('engineer', 'admin')).toBe(false);
    expect(roleAllows('admin', 'admin')).toBe(true);
    const ks = new KeyStore([{ name: 'ann', key: 'k'.repeat(16), role: 'admin' }]);
    expect(ks.authenticate('k'.repeat(16))).toEqual({ name: 'ann', role: 'admin' });
    expect(errorOf(() => ks.authenticate('nope')).code).toBe('UNAUTHENTICATED');
    expect(errorOf(() => ks.authenticate(undefined)).code).toBe('UNAUTHENTICATED');
  });
});

describe('metrics text', () => {
  it('writes Prometheus counters and cumulative histograms', () => {
    const c = new Counter('x_total', 'help');
    c.inc({ route: '/a"b' });
    c.inc({ route: '/a"b' });
    expect(c.render()).toContain('x_total{route="/a\\"b"} 2');
    const h = new Histogram('h', 'help', [1, 2]);
    h.observe(0.5);
    h.observe(1.5);
    h.observe(5);
    const text = h.render();
    expect(text).toContain('h_bucket{le="1"} 1');
    expect(text).toContain('h_bucket{le="2"} 2');
    expect(text).toContain('h_bucket{le="+Inf"} 3');
    expect(text).toContain('h_count 3');
  });
});
