import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entrypointCommand, packageArtifact, type PackageResult } from '../src/index.js';
import { CLI, dataDir, FORBIDDEN, photo, predict, sameDetections, startPrintingUrl, yoloModel, type Detection } from './helpers.js';
import { containerBase, containerSkipReason, freePort, podman, podmanAll, podmanQuiet, waitReady } from './podman.js';

const skip = !dataDir ? 'shared test data not found (set CVOPT_TEST_DATA)' : containerSkipReason();
if (skip) console.warn(`skipping the container tests: ${skip}`);

/** One image build per run, shared by the tests below; every container, image and network is removed by name. */
describe.skipIf(skip)('the packaged service in a real container (podman)', () => {
  const tag = `cvopt-test-${process.pid}`;
  const image = `localhost/${tag}:latest`;
  const tmp = mkdtempSync(join(tmpdir(), 'cvopt-container-'));
  let artifact: PackageResult;
  let url: string;

  beforeAll(async () => {
    const base = containerBase();
    artifact = await packageArtifact({
      model: yoloModel(join(tmp, 'model')),
      engine: 'ort-cpu-int8',
      out: join(tmp, 'svc'),
      // A deadline long enough that admission takes the whole burst of the drain test on two shared cores.
      config: { sloMs: 30_000 },
    });
    podman('build', '-q', '--layers=false', '--format', 'docker', '--build-arg', `BASE_IMAGE=${base}`, '-t', image, artifact.dir);
    const port = await freePort();
    podman('run', '-d', '--name', tag, '-p', `127.0.0.1:${port}:8080`, image);
    url = `http://127.0.0.1:${port}`;
  }, 600_000);

  afterAll(() => {
    podmanQuiet('rm', '-f', '-t', '0', tag);
    podmanQuiet('rmi', '-f', image);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('turns ready, passes its HEALTHCHECK and runs as a non-root user', async () => {
    await waitReady(url);
    podman('healthcheck', 'run', tag); // throws unless healthy
    const status = podman('exec', tag, 'cat', '/proc/1/status');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('1000');
    expect(podman('image', 'inspect', image, '--format', '{{.Config.User}} {{.Config.StopSignal}}').trim()).toBe('1000:1000 SIGTERM');
  });

  it('answers a real JPEG with the same detections as `cvopt serve` of the same artifact', async () => {
    await waitReady(url);
    const img = readFileSync(photo());
    const inContainer = await predict(url, img);
    expect(inContainer.status).toBe(200);
    const port = await freePort();
    const host = await startPrintingUrl(process.execPath, [CLI, 'serve', artifact.dir, '--port', String(port)]);
    try {
      await waitReady(host.url);
      const onHost = await predict(host.url, img);
      const a = inContainer.body.detections as Detection[];
      const b = onHost.body.detections as Detection[];
      expect(a.length).toBeGreaterThan(0);
      expect(sameDetections(a, b)).toBe(true);
      // `cvopt serve ARTIFACT` runs the bundled entry point, not the repository's runtime.
      expect(entrypointCommand(artifact.dir).args.at(-2)).toBe(join(artifact.dir, 'app/vendor/runtime/dist/main.js'));
    } finally {
      host.child.kill('SIGTERM');
    }
  });

  it('holds no dataset, trainer, optimizer or benchmark code', () => {
    const files = podman('run', '--rm', '--entrypoint', 'find', image, '/srv/cvopt', '-type', 'f', '-printf', '%P\\n').trim().split('\n');
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((f) => FORBIDDEN.test(f))).toEqual([]);
    const listed = new Set(Object.keys(artifact.manifest.files));
    expect(files.filter((f) => !listed.has(f) && f !== 'MANIFEST.json')).toEqual([]);
    // Outside the distribution's own files (/usr/share holds Debian's gdb helpers in Python): no code or data of ours.
    const stray = podman('run', '--rm', '--user', '0', '--entrypoint', 'find', image, '/', '-xdev', '-path', '/usr/share', '-prune', '-o', '-type', 'f',
      '(', '-name', '*.py', '-o', '-name', '*.pt', '-o', '-name', 'data.yaml', '-o', '-name', '*.jpg', '-o', '-path', '*cvopt_trainer*', '-o', '-path', '*optimizer*', ')', '-print');
    expect(stray.trim()).toBe('');
  });

  it('drains on `podman stop`: every request accepted before SIGTERM is answered, exit code 0', async () => {
    await waitReady(url);
    const img = readFileSync(photo());
    const inFlight = Array.from({ length: 12 }, () => predict(url, img));
    await new Promise((r) => setTimeout(r, 150));
    podman('stop', '-t', '60', tag);
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    expect(podman('inspect', tag, '--format', '{{.State.ExitCode}}').trim()).toBe('0');
    expect(podmanAll('logs', tag)).toMatch(/drained; exiting/);
  });
});
