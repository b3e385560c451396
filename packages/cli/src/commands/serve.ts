import type { Command } from 'commander';
import { startServer } from '@cvopt/runtime';
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
    .option('--config <file>', 'runtime config file (JSON or YAML); default: cvopt.runtime.{json,yaml} in the artifact directory');
  action<[string]>(cmd, async (target, opts) => {
    const overrides: { port?: number; host?: string } = {};
    const { port } = parseFlags({ port: flag.int({ min: 0, max: 65535 }).optional() }, opts);
    if (port !== undefined) overrides.port = port;
    if (typeof opts.host === 'string') overrides.host = opts.host;
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
