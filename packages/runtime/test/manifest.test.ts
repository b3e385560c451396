import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CvoptError } from '@cvopt/core';
import { fixtureModels, jpeg, post, startApp, type Json } from './helpers.js';

/** A copy of the static tiny detector whose model.json is changed by `edit`. */
function withManifest(edit: (m: Json) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-manifest-'));
  cpSync(fixtureModels().detStatic, dir, { recursive: true });
  const file = join(dir, 'model.json');
  const m = JSON.parse(readFileSync(file, 'utf8')) as Json;
  edit(m);
  writeFileSync(file, JSON.stringify(m));
  return dir;
}

async function loadError(dir: string): Promise<CvoptError> {
  const e = await startApp(dir).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (x: unknown) => x as CvoptError,
  );
  expect(e, 'the service started with a contradicting model.json').toBeDefined();
  return e!;
}

/** Issue 13 item 7: a model.json that contradicts the model never reports ready; a bad reload rolls back. */
describe('model.json against the model', () => {
  it('refuses a wrong class count, size, output format and a huge size before ready', async () => {
    const cases: [string, (m: Json) => void, RegExp][] = [
      ['class count', (m) => (m.classNames = ['a', 'b', 'c', 'd', 'e']), /for 5 classes/],
      ['size', (m) => (m.preprocess.size = [96, 96]), /preprocess.size \[96, 96\]/],
      ['output format', (m) => (m.output.format = 'logits'), /not a detector format|classifier/],
      ['huge size', (m) => (m.preprocess.size = [100_000, 100_000]), /preprocess.size/],
    ];
    for (const [what, edit, message] of cases) {
      const e = await loadError(withManifest(edit));
      expect(e.code, what).toBe('MANIFEST_INVALID');
      expect(e.message, what).toMatch(message);
    }
  });

  it('rolls a reload with a contradicting model.json back: the old model keeps serving and /readyz stays 200', async () => {
    const dir = withManifest(() => undefined);
    const s = await startApp(dir);
    try {
      const img = await jpeg();
      const file = join(dir, 'model.json');
      const good = readFileSync(file, 'utf8');
      const bad = JSON.parse(good) as Json;
      bad.classNames = ['only-one'];
      writeFileSync(file, JSON.stringify(bad));
      const r = await fetch(`${s.url}/v1/admin/reload`, { method: 'POST' });
      expect(r.status).toBe(422);
      expect(((await r.json()) as Json).error.code).toBe('MANIFEST_INVALID');
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
      const p = await post(`${s.url}/v1/predict`, img, { 'content-type': 'image/jpeg' });
      expect(p.status).toBe(200);
      expect(s.host.current.generation).toBe(1);
      writeFileSync(file, good);
      expect((await fetch(`${s.url}/v1/admin/reload`, { method: 'POST' })).status).toBe(200);
      expect(s.host.current.generation).toBe(2);
    } finally {
      await s.close();
    }
  });
});
