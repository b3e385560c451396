import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { readManifest } from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-manifest-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function refusal(fn: () => unknown): CvoptError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CvoptError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('readManifest on hostile files', () => {
  it('refuses a model.json that is a FIFO or /dev/zero at once, as MANIFEST_INVALID', () => {
    for (const [dir, make] of [
      ['fifo', (p: string) => execFileSync('mkfifo', [p])],
      ['zero', (p: string) => symlinkSync('/dev/zero', p)],
    ] as const) {
      const d = join(tmp, dir);
      execFileSync('mkdir', [d]);
      writeFileSync(join(d, 'model.onnx'), '');
      make(join(d, 'model.json'));
      const e = refusal(() => readManifest(join(d, 'model.onnx')));
      expect(e.code).toBe('MANIFEST_INVALID');
      expect(e.message).toContain('not a regular file');
    }
  });
});
