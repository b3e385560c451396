import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testDataDir } from '../packages/core/src/paths.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Some tests run built JavaScript in child processes or worker threads (the benchmark children, the engine
 * worker, the service's SIGTERM drain), so the packages are built first — incrementally, a few seconds when
 * nothing changed — instead of those tests being skipped when dist/ is stale or missing.
 */
export default function setup(): () => void {
  // Models the tests prepare (exports, INT8, FP16) go to a cache of this run, never the user's ~/.cache/cvopt.
  const ownCache = process.env.CVOPT_CACHE_DIR ? undefined : mkdtempSync(join(tmpdir(), 'cvopt-test-cache-'));
  if (ownCache) process.env.CVOPT_CACHE_DIR = ownCache;
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-b'], { cwd: root, stdio: 'inherit' });
  // The shared test data is optional by design (../shared/data/README.md); without it, say so once.
  if (!testDataDir(root)) {
    console.warn('shared test data not found (CVOPT_TEST_DATA or ../shared/data): the suites marked "needs the shared test data" are skipped');
  }
  return () => {
    if (ownCache) rmSync(ownCache, { recursive: true, force: true });
  };
}
