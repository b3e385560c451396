import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { entrypointCommand, MANIFEST_FILE } from '@cvopt/packager';
import { onnxManifest, readNamesFile } from '@cvopt/platform';
import { startServer } from '@cvopt/runtime';
import { CvoptError, ENGINE_IDS, ENGINES, isEngineId } from '@cvopt/core';
import { readManifest } from '@cvopt/engines';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit } from '../output.js';

/** `cvopt serve ARTIFACT_DIR|MODEL.onnx`: the packaged inference service, without Docker. */
export function register(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve a model over HTTP: an artifact directory (model.onnx + model.json [+ cvopt.runtime.json|yaml]) or an .onnx file with model.json beside it')
    .argument('<target>', 'artifact directory or MODEL.onnx')
    .option('--port <port>', 'TCP port (default 8080, or the config file / CVOPT_PORT)')
    .option('--host <host>', 'address to bind (default 127.0.0.1; 0.0.0.0 in containers)')
    .option('--config <file>', 'runtime config file (JSON or YAML); default: cvopt.runtime.{json,yaml} in the artifact directory')
    .option('--names <file>', 'class names for an .onnx without model.json (one per line, or a data.yaml)')
    .option('--engine <id>', 'engine id to serve an .onnx on (ort-cpu, ort-cpu-int8, ort-cuda, …; the id select names); its precision must be the model\'s');
  action<[string]>(cmd, async (given, opts) => {
    let target = given;
    const overrides: { port?: number; host?: string } = {};
    const { port } = parseFlags({ port: flag.int({ min: 0, max: 65535 }).optional() }, opts);
    if (port !== undefined) overrides.port = port;
    if (typeof opts.host === 'string') overrides.host = opts.host;
    if (existsSync(join(resolve(target), MANIFEST_FILE))) {
      await serveArtifact(resolve(target), overrides, typeof opts.config === 'string' ? opts.config : undefined);
      return;
    }
    if (target.endsWith('.onnx') && existsSync(target)) target = withInferredManifest(target, typeof opts.names === 'string' ? opts.names : undefined);
    if (opts.engine !== undefined) {
      const engine = String(opts.engine);
      if (!isEngineId(engine) || !ENGINES[engine].servable) {
        throw new CvoptError('INVALID_ARGUMENT', `--engine "${engine}" is not an engine the service runs`, { where: { field: '--engine' }, hint: `one of ${ENGINE_IDS.filter((e) => ENGINES[e].servable).join(', ')}` });
      }
      const precision = readManifest(target).precision;
      if (ENGINES[engine].precision !== precision) {
        throw new CvoptError('INVALID_ARGUMENT', `--engine ${engine} serves ${ENGINES[engine].precision} models but ${target} is ${precision}`, {
          where: { field: '--engine' },
          hint: 'serve the model that engine runs (cvopt quantize, or cvopt select + cvopt package, which ship it), or pick the engine of this precision',
        });
      }
      (overrides as Record<string, unknown>).engine = engine;
    }
    const server = await startServer({
      target,
      ...(typeof opts.config === 'string' ? { configFile: opts.config } : {}),
      overrides,
      handleSignals: true,
    });
    const m = server.host.current;
    emit(opts, { url: server.url, model: m.manifest.name, engine: m.info.id }, (r) => `serving ${r.model} on ${r.engine} at ${r.url}  (SIGTERM or Ctrl-C drains and stops)`);
  });
}

/**
 * A packaged artifact runs exactly as in its container: the bundled runtime, the same Node flags, the artifact's
 * config; only the address differs (127.0.0.1 unless --host). Signals pass through, so SIGTERM drains the same way.
 */
async function serveArtifact(dir: string, overrides: { port?: number; host?: string }, configFile: string | undefined): Promise<void> {
  const { command, args } = entrypointCommand(dir);
  const env = { ...process.env, CVOPT_HOST: overrides.host ?? process.env.CVOPT_HOST ?? '127.0.0.1', ...(overrides.port !== undefined ? { CVOPT_PORT: String(overrides.port) } : {}) };
  const child = spawn(command, [...args, ...(configFile ? ['--config', configFile] : [])], { stdio: 'inherit', env });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGINT', forward('SIGINT'));
  const code = await new Promise<number>((res) => child.once('exit', (c, sig) => res(c ?? (sig ? 128 : 1))));
  process.exitCode = code;
}

/**
 * An .onnx without model.json is served the way `cvopt eval` reads it: the manifest is inferred from the file
 * (names from --names when the model carries none) into a temporary folder beside a link to the model, so the
 * user's folder is never written. `cvopt manifest MODEL.onnx --write` keeps it.
 */
function withInferredManifest(model: string, namesFile: string | undefined): string {
  const overrides = namesFile ? { classNames: readNamesFile(namesFile) } : {};
  const { manifest, source, notes } = onnxManifest(model, overrides);
  if (source !== 'inferred from the ONNX file') return model;
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-serve-'));
  symlinkSync(resolve(model), join(dir, 'model.onnx'));
  writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest, null, 2));
  process.stderr.write(`model.json inferred from ${model}${notes.length ? ` (${notes.join('; ')})` : ''}; keep it with: cvopt manifest ${model} --write\n`);
  return join(dir, 'model.onnx');
}
