import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { readOnnx, writeOnnx } from '../src/index.js';
import { tinyConvNet } from './fixtures.js';

// Issue 13 item 10: external data is read only from regular files inside the model's real folder.
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-onnx-ext-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const dir = join(tmp, 'models', 'm');
mkdirSync(join(dir, 'sub'), { recursive: true });
const secret = join(tmp, 'secret.bin');
writeFileSync(secret, Buffer.alloc(4096, 7));
symlinkSync(secret, join(dir, 'link.bin'));
symlinkSync(tmp, join(dir, 'sub', 'up'));
symlinkSync('/dev/zero', join(dir, 'zero.bin'));
execFileSync('mkfifo', [join(dir, 'pipe.bin')]);

function modelAt(location: string, offset = '0', length?: string): string {
  const m = tinyConvNet();
  const w = m.graph.initializer[0];
  if (!w?.rawData) throw new Error('fixture has raw data');
  const n = w.rawData.length;
  delete w.rawData;
  w.dataLocation = 1;
  w.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: offset },
    { key: 'length', value: length ?? String(n) },
  ];
  const p = join(dir, 'model.onnx');
  writeOnnx(m, p);
  return p;
}

function refusal(p: string): CvoptError {
  try {
    readOnnx(p);
  } catch (e) {
    if (e instanceof CvoptError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('readOnnx external data confinement', () => {
  it.each(['../../secret.bin', 'sub/../../../secret.bin', 'link.bin', 'sub/up/secret.bin', secret, ''])('refuses location %j', (location) => {
    const e = refusal(modelAt(location));
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toContain("inside the model's folder");
    expect(e.where?.field).toMatch(/external_data\.location$/);
  });

  it('refuses a symlink to /dev/zero, a FIFO and a folder without blocking or growing', () => {
    for (const location of ['pipe.bin', 'sub']) expect(refusal(modelAt(location)).message).toContain('not a regular file');
    // /dev/zero is outside the folder once its link is resolved
    expect(refusal(modelAt('zero.bin')).message).toContain("inside the model's folder");
  });

  it('refuses offsets and lengths that are not byte counts', () => {
    writeFileSync(join(dir, 'ok.bin'), Buffer.alloc(4096));
    for (const [offset, length] of [['-8', '8'], ['x', '8'], ['0', '1e400']] as const) {
      expect(refusal(modelAt('ok.bin', offset, length)).message).toContain('not byte counts');
    }
  });

  it('still reads a real file inside the folder, and a model reached through a symlinked folder', () => {
    writeFileSync(join(dir, 'ok.bin'), Buffer.alloc(4096, 1));
    const p = modelAt('ok.bin', '0', '64');
    expect(readOnnx(p).externalData).toEqual([{ location: 'ok.bin', tensors: 1, bytes: 64 }]);
    symlinkSync(dir, join(tmp, 'alias'));
    expect(readOnnx(join(tmp, 'alias', 'model.onnx')).externalData[0]?.bytes).toBe(64);
  });
});

describe('readOnnx on a forged nesting', () => {
  it('refuses subgraphs nested 20 000 deep with MODEL_INVALID instead of overflowing the stack', () => {
    const varint = (n: number): number[] => {
      const o: number[] = [];
      for (; n > 127; n >>>= 7) o.push((n & 127) | 128);
      o.push(n);
      return o;
    };
    // built inside out in one buffer: graph{node{attribute{name 'g', type GRAPH, g: <previous graph>}}}
    const parts: number[][] = [];
    let inner = 0;
    for (let d = 0; d < 20_000; d++) {
      const attrLen = 3 + 3 + 1 + varint(inner).length + inner;
      const nodeLen = 1 + varint(attrLen).length + attrLen;
      parts.push([...varint((1 << 3) | 2), ...varint(nodeLen), ...varint((5 << 3) | 2), ...varint(attrLen), 0x0a, 1, 0x67, 0xa0, 0x01, 5, ...varint((6 << 3) | 2), ...varint(inner)]);
      inner = 1 + varint(nodeLen).length + nodeLen;
    }
    const bytes = Uint8Array.from([8, 8, ...varint((7 << 3) | 2), ...varint(inner), ...parts.reverse().flat()]);
    const p = join(tmp, 'deep.onnx');
    writeFileSync(p, bytes);
    const e = refusal(p);
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toContain('nested deeper than');
  });
});
