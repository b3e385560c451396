import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { entrypointCommand, packageArtifact, type PackageResult } from '../src/index.js';
import { CLI, dataDir, FORBIDDEN, photo, predict, sameDetections, startPrintingUrl, yoloModel, type Detection } from './helpers.js';
import { containerBase, containerSkipReason, freePort, PODMAN_ENV, podman, podmanAll, podmanQuiet, waitReady } from './podman.js';

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

  it.skipIf(availableParallelism() < 2)("sizes ONNX Runtime's threads to the container's CPU quota, not the host's cores", async () => {
    // ONNX Runtime counts the host's cores; under `--cpus 1` the engine asks for one thread instead. The container
    // started without a quota keeps ONNX Runtime's own choice (0).
    const limited = `${tag}-cpus1`;
    const port = await freePort();
    podman('run', '-d', '--name', limited, '--cpus', '1', '-p', `127.0.0.1:${port}:8080`, image);
    try {
      const threads = async (u: string) => ((await (await fetch(`${u}/v1/model`)).json()) as { engine: { threads: number } }).engine.threads;
      await waitReady(`http://127.0.0.1:${port}`);
      await waitReady(url);
      expect(await threads(`http://127.0.0.1:${port}`)).toBe(1);
      expect(await threads(url)).toBe(0);
      const limitedAnswer = await predict(`http://127.0.0.1:${port}`, readFileSync(photo()));
      expect(limitedAnswer.status).toBe(200);
    } finally {
      podmanQuiet('rm', '-f', '-t', '0', limited);
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
    // Every request gets an answer. On a busy shared machine admission may refuse a few of the burst on arrival
    // (429, before SIGTERM); none may be cut off by the stop (no 503 SHUTTING_DOWN, no reset connection).
    const refused = results.filter((r) => r.status !== 200);
    expect(refused.map((r) => (r.body as { error: { code: string } }).error.code).filter((c) => c !== 'DEADLINE_EXCEEDED' && c !== 'QUEUE_FULL')).toEqual([]);
    expect(refused.length).toBeLessThan(results.length / 2);
    expect(podman('inspect', tag, '--format', '{{.State.ExitCode}}').trim()).toBe('0');
    expect(podmanAll('logs', tag)).toMatch(/drained; exiting/);
  });

  describe('podman-compose with the redis and postgres profiles', () => {
    const project = `cvopt-compose-${process.pid}`;
    let files: string[];
    let env: NodeJS.ProcessEnv;
    let urls: string[];
    const compose = (...args: string[]) =>
      execFileSync('podman-compose', ['-p', project, ...files.flatMap((f) => ['-f', f]), ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
    const container = (service: string) => `${project}_${service}_1`;

    beforeAll(async () => {
      const ports = [await freePort(), await freePort()];
      urls = ports.map((p) => `http://127.0.0.1:${p}`);
      const main = join(artifact.dir, 'docker-compose.yml');
      const shared = { CVOPT_RATE_LIMIT_PER_SECOND: '0.01', CVOPT_RATE_LIMIT_BURST: '3' };
      const service = parse(readFileSync(main, 'utf8')).services.cvopt;
      // A second replica of the same service (same image, same settings) and a tight shared budget for the test.
      const override = join(tmp, 'compose.replicas.yml');
      writeFileSync(override, stringify({
        services: {
          cvopt: { environment: shared },
          'cvopt-b': { ...service, build: undefined, ports: [`127.0.0.1:${ports[1]}:8080`], environment: { ...service.environment, ...shared } },
        },
      }, { version: '1.1' }));
      files = [main, override];
      env = {
        ...PODMAN_ENV,
        CVOPT_IMAGE: image,
        CVOPT_PUBLISH: `127.0.0.1:${ports[0]}`,
        CVOPT_REDIS_IMAGE: 'localhost/cvopt-redis',
        CVOPT_POSTGRES_IMAGE: 'localhost/cvopt-postgres',
        CVOPT_REDIS_URL: 'redis://redis:6379',
        CVOPT_REQUEST_LOG_URL: 'postgres://cvopt:cvopt@postgres:5432/cvopt',
      };
      // Older podman-compose (Debian's 1.0.3) has no --profile and starts every service, which is the same here.
      const profiles = /--profile/.test(execFileSync('podman-compose', ['--help'], { encoding: 'utf8' })) ? ['--profile', 'redis', '--profile', 'postgres'] : [];
      execFileSync('podman-compose', ['-p', project, ...files.flatMap((f) => ['-f', f]), ...profiles, 'up', '-d'], { env, stdio: 'ignore' });
      await Promise.all(urls.map((u) => waitReady(u, 120_000)));
    }, 300_000);

    afterAll(() => {
      try {
        compose('down', '-v');
      } catch {
        // fall through to removal by name
      }
      for (const s of ['cvopt', 'cvopt-b', 'redis', 'postgres']) podmanQuiet('rm', '-f', '-t', '0', container(s));
      podmanQuiet('volume', 'rm', '-f', `${project}_request-log`);
      podmanQuiet('network', 'rm', '-f', `${project}_default`);
    });

    it('two replicas share one rate-limit budget through Redis, and every request lands in the PostgreSQL log', async () => {
      const img = readFileSync(photo());
      const statuses: number[] = [];
      for (const u of [urls[0]!, urls[0]!, urls[1]!, urls[1]!]) statuses.push((await predict(u, img)).status);
      // Burst 3 across both replicas: the second replica refuses what the first used up.
      expect(statuses).toEqual([200, 200, 200, 429]);
      const rows = async () => podman('exec', container('postgres'), 'psql', '-U', 'cvopt', '-d', 'cvopt', '-tAc', "SELECT status || ' ' || route || ' ' || coalesce(detections, -1) FROM cvopt_request_log ORDER BY id").trim().split('\n');
      const until = Date.now() + 20_000;
      let got: string[] = [];
      while (Date.now() < until) {
        try {
          got = await rows();
        } catch {
          got = []; // table not created yet
        }
        if (got.length >= 4) break;
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(got.filter((r) => r.startsWith('200 /v1/predict ')).length).toBe(3);
      expect(got.filter((r) => r.startsWith('429 /v1/predict')).length).toBe(1);
      expect(got.every((r) => !r.startsWith('200') || Number(r.split(' ')[2]) > 0)).toBe(true);
    });

    it('keeps predicting when Redis and then PostgreSQL stop', async () => {
      const img = readFileSync(photo());
      podman('stop', '-t', '2', container('redis'));
      // The shared budget is gone: each replica now has its own bucket (burst 3), refilled from nothing used yet.
      expect((await predict(urls[1]!, img)).status).toBe(200);
      podman('stop', '-t', '2', container('postgres'));
      expect((await predict(urls[0]!, img)).status).toBe(200);
      expect((await predict(urls[1]!, img)).status).toBe(200);
      const logs = podmanAll('logs', container('cvopt-b'));
      expect(logs).toMatch(/redis unavailable/);
      expect(podman('inspect', container('cvopt'), '--format', '{{.State.Running}}').trim()).toBe('true');
    });
  });
});
