import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPython, trainerDir } from '@cvopt/trainer-client';
import { runCli as run } from '../../test/run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cli-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const py = findPython();

// Issue 13 item 1: a TorchScript .pt is a program (this one writes a file when loaded or run). The real CLI must
// refuse it unless --trust-torchscript, say why, and leave nothing written.
describe.skipIf(!py.torch)('cvopt export / train with a hostile TorchScript file', () => {
  const evil = join(tmp, 'innocent.pt');
  const target = join(tmp, 'written-by-the-model');
  execFileSync(py.executable, [join(trainerDir(), 'tests', 'hostile.py'), 'torchscript', evil, target], { cwd: trainerDir() });

  it('export refuses it with TORCHSCRIPT_UNTRUSTED and writes nothing', async () => {
    const out = join(tmp, 'model.onnx');
    const r = await run('--json', 'export', evil, '--out', out, '--imgsz', '64');
    expect(r.code).toBe(3);
    const e = JSON.parse(r.out).error;
    expect(e).toMatchObject({ code: 'TORCHSCRIPT_UNTRUSTED', where: { file: evil } });
    expect(e.message).toContain('never runs it');
    expect(e.hint).toContain('--trust-torchscript');
    expect(existsSync(target)).toBe(false);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('train refuses it the same way', async () => {
    const data = join(tmp, 'data');
    expect((await run('--json', 'dataset', 'synth', '--task', 'classify', '--out', data, '--images', '4')).code).toBe(0);
    const r = await run('--json', 'train', '--model', evil, '--data', data, '--out', join(tmp, 'run'), '--epochs', '1', '--imgsz', '32');
    expect(JSON.parse(r.out).error).toMatchObject({ code: 'TORCHSCRIPT_UNTRUSTED', where: { file: evil } });
    expect(existsSync(target)).toBe(false);
  }, 60_000);
});
