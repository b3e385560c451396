import { readFileSync, writeFileSync } from 'node:fs';
import { CvoptError } from '@cvopt/core';
import { measureOrt, measurePytorch } from './measure.js';
import type { ChildJob, ChildResult } from './types.js';

/**
 * One engine's measurement, alone in its own process: `node child.js JOB.json`. The result goes to the job's
 * resultFile; a crash, a kill or an abort leaves none, and the parent reports the exit instead.
 */
async function main(): Promise<void> {
  const jobFile = process.argv[2];
  if (!jobFile) throw new CvoptError('INVALID_ARGUMENT', 'usage: child.js JOB.json');
  const job = JSON.parse(readFileSync(jobFile, 'utf8')) as ChildJob;
  let result: ChildResult;
  try {
    const t = job.target;
    const figures = t.runtime === 'pytorch' ? await measurePytorch(t, job.settings) : await measureOrt(t, job.settings);
    result = { ok: true, figures, model: t.describe };
  } catch (e) {
    result = e instanceof CvoptError ? { ok: false, code: e.code, message: e.message } : { ok: false, code: 'ENGINE_FAILED', message: e instanceof Error ? e.message : String(e) };
  }
  writeFileSync(job.resultFile, JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
