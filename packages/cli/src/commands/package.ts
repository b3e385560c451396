import type { Command } from 'commander';
import { CvoptError, ENGINE_IDS, isEngineId } from '@cvopt/core';
import { verifyArtifact } from '@cvopt/packager';
import { action, numberFlag } from '../action.js';
import { emit, table } from '../output.js';
import { remoteOptions, runJob } from '../remote/run-job.js';

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** `cvopt package`: the selected engine's model + the runtime service as a deployable folder and .tar.gz. */
export function register(program: Command): void {
  const cmd = program
    .command('package')
    .description('write a deployable artifact (model, runtime bundle, config, Dockerfiles, compose, Kubernetes, MANIFEST.json) and its .tar.gz; --verify DIR checks one')
    .argument('[model]', 'MODEL.onnx (model.json beside it) or a folder with model.onnx; or use --decision')
    .option('--decision <file>', 'decision.json written by `cvopt select` (packages its winner); with --remote: of `cvopt select --remote`, or the select job id')
    .option('--engine <id>', `engine to serve a MODEL on (${ENGINE_IDS.join(', ')})`)
    .option('--out <dir>', 'artifact folder to write (replaced whole); DIR.tar.gz is written beside it', 'dist/cvopt-service')
    .option('--name <name>', 'service name for the image and Kubernetes objects (default: the model name)')
    .option('--cpus <n>', 'CPU limit in compose and Kubernetes', '2')
    .option('--memory-mb <n>', 'memory limit in compose and Kubernetes', '2048')
    .option('--verify <dir>', 'recompute every checksum of an artifact; name each file that changed');
  remoteOptions(cmd);
  action<[string | undefined]>(cmd, async (model, opts) => {
    if (typeof opts.verify === 'string') {
      const r = verifyArtifact(opts.verify);
      if (!r.ok) {
        emit(opts, r, (v) => table(['file', 'problem', 'detail'], v.problems.map((p) => [p.file, p.problem, p.detail])));
        const first = r.problems[0]!;
        throw new CvoptError('CHECKSUM_MISMATCH', `${r.problems.length} file(s) of ${opts.verify} do not match MANIFEST.json, first: ${first.file} (${first.detail})`, {
          where: { file: first.file },
          hint: 'rebuild the artifact with `cvopt package`, or restore the file',
        });
      }
      emit(opts, { ok: true, files: r.files, engine: r.manifest.engine, model: r.manifest.model }, (v) => `${opts.verify}: all ${v.files} files match MANIFEST.json (${v.engine}, model sha256 ${v.model.sha256.slice(0, 12)}…)`);
      return;
    }
    if (opts.engine !== undefined && !isEngineId(opts.engine)) {
      throw new CvoptError('INVALID_ARGUMENT', `--engine: unknown engine "${String(opts.engine)}"; engines: ${ENGINE_IDS.join(', ')}`, { where: { field: '--engine' } });
    }
    // The same handler the job system runs (cvopt worker, the server): local and remote packaging cannot drift.
    const r = await runJob('package', {
      ...(typeof opts.decision === 'string' ? { decision: opts.decision } : {}),
      ...(model ? { model } : {}),
      ...(isEngineId(opts.engine) ? { engine: opts.engine } : {}),
      ...(typeof opts.name === 'string' ? { name: opts.name } : {}),
      out: String(opts.out),
      limits: { cpus: numberFlag('cpus', opts.cpus, { min: 0.1 }), memoryMb: numberFlag('memory-mb', opts.memoryMb, { int: true, min: 128 }) },
    }, opts);
    if (!r) return;
    emit(opts, { dir: r.dir, tarball: r.tarball, bytes: r.bytes, engine: r.manifest.engine, name: r.manifest.name, files: Object.keys(r.manifest.files).length }, (v) =>
      [
        `packaged ${v.name} (${v.engine}): ${v.dir} (${v.files} files, ${mb(v.bytes.dir)}) and ${v.tarball} (${mb(v.bytes.tarball)})`,
        `next: cvopt serve ${v.dir}`,
        `      cd ${v.dir} && docker compose up -d --build   (or podman-compose up -d)`,
      ].join('\n'),
    );
  });
}
