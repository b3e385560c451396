import { describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { flag, parseFlags } from './flags.js';

function failure(f: () => unknown): CvoptError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CvoptError);
    return e as CvoptError;
  }
  throw new Error('expected a failure');
}

describe('parseFlags', () => {
  const shape = { iters: flag.int({ min: 1 }), conf: flag.number({ min: 0, max: 1 }).optional(), engines: flag.engines(), batchSizes: flag.intList(), fp16: flag.switch().default(false) };

  it('coerces commander strings into typed values', () => {
    expect(parseFlags(shape, { iters: '5', conf: '0.25', engines: 'ort-cpu,ort-cpu-int8', batchSizes: '1,2', json: true })).toEqual({
      iters: 5,
      conf: 0.25,
      engines: ['ort-cpu', 'ort-cpu-int8'],
      batchSizes: [1, 2],
      fp16: false,
    });
    expect(parseFlags(shape, { iters: '1', engines: 'all', batchSizes: '4', fp16: true }).engines).toBeUndefined();
  });

  it('names the flag, the rule and the value given', () => {
    const e = failure(() => parseFlags(shape, { iters: '0', engines: 'all', batchSizes: '1' }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.where?.field).toBe('--iters');
    expect(e.message).toBe('--iters must be ≥ 1, got "0"');
    expect(failure(() => parseFlags(shape, { iters: 'x', engines: 'all', batchSizes: '1' })).message).toMatch(/--iters must be an integer/);
    expect(failure(() => parseFlags(shape, { iters: '2', conf: '1.5', engines: 'all', batchSizes: '1' })).where?.field).toBe('--conf');
    expect(failure(() => parseFlags(shape, { iters: '2', engines: 'all', batchSizes: '1,0' })).message).toMatch(/--batch-sizes: "0" must be ≥ 1/);
    expect(failure(() => parseFlags(shape, { iters: '2', engines: 'ort-cpu,warp', batchSizes: '1' })).message).toMatch(/--engines: "warp" must be all or a comma list of tensorrt-int8/);
  });

  it('reads an optional-value boolean as Ultralytics users write it, and names a bad one', () => {
    const b = { showLabels: flag.bool().optional() };
    for (const [given, want] of [[true, true], ['false', false], ['False', false], ['0', false], ['yes', true], [undefined, undefined]] as const) {
      expect(parseFlags(b, given === undefined ? {} : { showLabels: given }).showLabels).toBe(want);
    }
    const e = failure(() => parseFlags(b, { showLabels: 'maybe' }));
    expect(e.where?.field).toBe('--show-labels');
    expect(e.message).toMatch(/--show-labels must be true or false, got "maybe"/);
  });
});
