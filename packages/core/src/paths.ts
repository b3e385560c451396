import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Where the shared real test data lives: CVOPT_TEST_DATA, else ../shared/data from the working directory when
 * present. Returns undefined when it is not on this machine, so tests can skip with one clear line.
 */
export function testDataDir(cwd: string = process.cwd()): string | undefined {
  const fromEnv = process.env.CVOPT_TEST_DATA;
  if (fromEnv) return existsSync(fromEnv) ? resolve(fromEnv) : undefined;
  for (const candidate of [resolve(cwd, '../shared/data'), resolve(cwd, '../../shared/data'), resolve(cwd, '../../../shared/data')]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}
