import { appendFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DecisionSchema, type BenchmarkReport, type Decision } from '@cvopt/core';
import { hashTree, packageArtifact, sha256File, verifyArtifact, IMAGE_ROOT, SERVICE_PORT, type PackageResult } from '../src/index.js';
import { cli, dataDir, FORBIDDEN, REPO, yoloModel } from './helpers.js';

if (!dataDir) console.warn('skipping the packager artifact tests: shared test data not found (set CVOPT_TEST_DATA)');


describe.skipIf(!dataDir)('cvopt package: the artifact', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'cvopt-artifact-'));
  let r: PackageResult;
  beforeAll(async () => {
    r = await packageArtifact({ model: yoloModel(join(tmp, 'model')), engine: 'ort-cpu-int8', out: join(tmp, 'dist', 'svc') });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('lists every file with its sha256, and --verify names a tampered file', () => {
    expect(Object.keys(r.manifest.files)).toEqual(Object.keys(hashTree(r.dir)));
    expect(existsSync(r.tarball)).toBe(true);
    expect(verifyArtifact(r.dir).ok).toBe(true);
    const ok = cli('package', '--verify', r.dir);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/all \d+ files match MANIFEST.json/);

    const victim = join(r.dir, 'app/vendor/vision/dist/index.js');
    const before = readFileSync(victim);
    appendFileSync(victim, '\n// edited\n');
    writeFileSync(join(r.dir, 'extra.txt'), 'not from the packager');
    const bad = cli('package', '--verify', r.dir);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('CHECKSUM_MISMATCH');
    expect(bad.out).toContain('app/vendor/vision/dist/index.js');
    expect(bad.out).toContain('extra.txt');
    writeFileSync(victim, before);
    rmSync(join(r.dir, 'extra.txt'));
    expect(verifyArtifact(r.dir).ok).toBe(true);
  });

  it('holds only the runtime, its native dependencies for linux-x64, and no host paths or secrets', () => {
    const files = Object.keys(r.manifest.files);
    expect(files.filter((f) => FORBIDDEN.test(f))).toEqual([]);
    expect(r.manifest.runtime.workspaces).toEqual(['@cvopt/core', '@cvopt/engines', '@cvopt/runtime', '@cvopt/vision']);
    const ort = files.filter((f) => f.includes('onnxruntime-node/bin/'));
    expect(ort.length).toBeGreaterThan(0);
    expect(ort.every((f) => f.includes('/linux/x64/'))).toBe(true);
    expect(files).toContain('app/package-lock.json');
    const lock = JSON.parse(readFileSync(join(r.dir, 'app/package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string; link?: boolean }> };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '' || entry.link || path.startsWith('vendor/')) continue;
      expect(existsSync(join(r.dir, 'app', path)), path).toBe(true);
      expect(entry.integrity, path).toMatch(/^sha512-/);
    }
    // No file may carry this checkout's paths (the model.json's were host paths) or key material.
    for (const f of files) {
      if (lstatSync(join(r.dir, f)).isSymbolicLink() || /\.(node|so\.\d+|onnx)$/.test(f)) continue;
      const text = readFileSync(join(r.dir, f), 'latin1');
      expect(text.includes(REPO), f).toBe(false);
      expect(text.includes(dataDir!), f).toBe(false);
      expect(/BEGIN [A-Z ]*PRIVATE KEY/.test(text), f).toBe(false);
    }
    const config = JSON.parse(readFileSync(join(r.dir, 'cvopt.runtime.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ host: '0.0.0.0', port: SERVICE_PORT, queueMax: expect.any(Number), gracePeriodMs: expect.any(Number), auth: { keys: [] } });
  });

  it('writes Kubernetes manifests that reference the image, port, probes and resources', () => {
    const dep = parse(readFileSync(join(r.dir, 'k8s/deployment.yaml'), 'utf8'));
    const c = dep.spec.template.spec.containers[0];
    expect(dep.kind).toBe('Deployment');
    expect(c.image).toBe(`cvopt/${r.manifest.name}:${c.image.split(':')[1]}`);
    expect(c.ports[0].containerPort).toBe(SERVICE_PORT);
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.resources.limits).toEqual({ cpu: '2', memory: '2048Mi' });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(dep.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    const svc = parse(readFileSync(join(r.dir, 'k8s/service.yaml'), 'utf8'));
    expect(svc.spec.ports[0].targetPort).toBe('http');
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    const hpa = parse(readFileSync(join(r.dir, 'k8s/hpa.yaml'), 'utf8'));
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: dep.metadata.name });
    const pdb = parse(readFileSync(join(r.dir, 'k8s/pdb.yaml'), 'utf8'));
    expect(pdb.spec.selector.matchLabels).toEqual(dep.spec.selector.matchLabels);
    const compose = parse(readFileSync(join(r.dir, 'docker-compose.yml'), 'utf8'));
    expect(compose.services.cvopt.deploy.resources.limits).toEqual({ cpus: '2', memory: '2048M' });
    expect(compose.services.cvopt.healthcheck.test).toEqual(['CMD', 'node', 'app/healthcheck.mjs']);
    expect(compose.services.redis.profiles).toEqual(['redis']);
    expect(compose.services.postgres.profiles).toEqual(['postgres']);
    const gpu = parse(readFileSync(join(r.dir, 'docker-compose.gpu.yml'), 'utf8'));
    expect(gpu.services.cvopt.deploy.resources.reservations.devices[0]).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
    const dockerfile = readFileSync(join(r.dir, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ARG BASE_IMAGE=node:20\.\d+\.\d+-bookworm-slim$/m);
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    expect(dockerfile).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*healthcheck\.mjs/m);
    expect(dockerfile).toContain(IMAGE_ROOT);
  });
});

describe.skipIf(!dataDir)('select → decision.json → package', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'cvopt-decision-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('records the winner\'s exact model beside the decision, packages it, and a failed select keeps the good decision', async () => {
    const model = yoloModel(join(tmp, 'cache', '.cvopt-bench', 'int8'));
    const manifest = JSON.parse(readFileSync(join(tmp, 'cache', '.cvopt-bench', 'int8', 'model.json'), 'utf8'));
    const sha = verifyShaOf(model);
    const figures = (p95: number) => ({
      latencyMs: { n: 50, min: p95 - 2, p50: p95 - 1, p90: p95, p95, p99: p95, mean: p95 - 1, std: 0.5, max: p95 + 1 },
      throughput: [],
      resources: { cpuPercent: 100, peakRssMb: 300 },
      accuracy: { map50: 0.5 },
      flags: [],
    });
    const report: BenchmarkReport = {
      schemaVersion: 1,
      createdAt: '2026-01-01T00:00:00.000Z',
      model: { path: '/elsewhere/yolov8n.onnx', sha256: 'a'.repeat(64), task: 'detect', name: 'yolov8n.onnx' },
      settings: {},
      environment: { os: 'linux', cpu: { model: 'x', cores: 2, flags: [] }, memoryMb: 1000, gpus: [], versions: {} },
      engines: [
        { engine: 'ort-cpu', status: 'ok', figures: figures(40) },
        { engine: 'ort-cpu-int8', status: 'ok', modelFile: { path: model, sha256: sha, manifest, settings: { calibrationImages: 32 } }, figures: figures(20) },
      ],
    };
    const reportFile = join(tmp, 'report.json');
    writeFileSync(reportFile, JSON.stringify(report));
    const sel = cli('select', reportFile);
    expect(sel.code).toBe(0);
    const decisionFile = join(tmp, 'decision.json');
    const d: Decision = DecisionSchema.parse(JSON.parse(readFileSync(decisionFile, 'utf8')));
    expect(d.winner).toBe('ort-cpu-int8');
    expect(d.model).toMatchObject({ file: 'selected/ort-cpu-int8/model.onnx', sha256: sha, engine: 'ort-cpu-int8', precision: 'int8', settings: { calibrationImages: 32 } });
    expect(d.model!.file.includes('.cvopt-bench')).toBe(false);

    const good = readFileSync(decisionFile, 'utf8');
    const failed = cli('select', reportFile, '--max-p95-ms', '1');
    expect(failed.err).toContain('CONSTRAINT_UNMET');
    expect(readFileSync(decisionFile, 'utf8')).toBe(good);
    expect(existsSync(join(tmp, 'decision.rejected.json'))).toBe(true);

    const out = join(tmp, 'dist', 'svc');
    const p = cli('package', '--decision', decisionFile, '--out', out);
    expect(p.code, p.err).toBe(0);
    const m = verifyArtifact(out).manifest;
    expect(m.engine).toBe('ort-cpu-int8');
    expect(m.model.sha256).toBe(sha);
    expect(m.provenance.decision).toMatchObject({ name: 'decision.json', winner: 'ort-cpu-int8' });
    expect(m.provenance.benchmarkReport?.name).toBe('report.json');
    expect(m.provenance.sourceModel).toEqual({ name: 'yolov8n.onnx', sha256: 'a'.repeat(64) });
    expect(m.provenance.trainingRun).toBe('exp1');

    // A model changed after selection is refused by name, not shipped.
    appendFileSync(join(tmp, 'selected/ort-cpu-int8/model.onnx'), 'x');
    const tampered = cli('package', '--decision', decisionFile, '--out', join(tmp, 'dist', 'other'));
    expect(tampered.err).toContain('CHECKSUM_MISMATCH');
    expect(tampered.err).toContain('selected/ort-cpu-int8/model.onnx');
  });
});

function verifyShaOf(file: string): string {
  return sha256File(file);
}
