#!/usr/bin/env node
import { CvoptError, formatError, toCvoptError } from '@cvopt/core';
import { startServer } from './server.js';

/**
 * The entry point that ships in the artifact: `node dist/main.js ARTIFACT_DIR [--config FILE]`.
 * Prints the URL on stdout once ready; logs go to stderr; SIGTERM drains and exits 0.
 */
async function main(argv: string[]): Promise<void> {
  const args = [...argv];
  let configFile: string | undefined;
  const i = args.indexOf('--config');
  if (i >= 0) {
    configFile = args[i + 1];
    args.splice(i, 2);
  }
  const target = args[0];
  if (!target || args.length > 1 || (i >= 0 && !configFile)) {
    throw new CvoptError('INVALID_ARGUMENT', 'usage: main.js ARTIFACT_DIR|MODEL.onnx [--config FILE]', { hint: 'pass the artifact directory the packager wrote' });
  }
  const server = await startServer({ target, ...(configFile ? { configFile } : {}), handleSignals: true });
  process.stdout.write(`${server.url}\n`);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const err = toCvoptError(e);
  process.stderr.write(`error: ${formatError(err)}\n`);
  process.exit(err.exitCode);
});
