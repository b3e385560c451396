import { expect } from 'vitest';
import { CvoptError } from '@cvopt/core';

/** The CvoptError `p` rejects with (the test fails when it resolves, or rejects with anything else). */
export async function failure(p: Promise<unknown>): Promise<CvoptError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(CvoptError);
  return e as CvoptError;
}
