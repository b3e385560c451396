import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDataDir } from '@cvopt/core';

/**
 * The exit-code contract, run against the real `cvopt` binary: 0 ok, 2 usage, the catalogue's codes otherwise
 * (3 bad input, 4 unavailable, 5 constraint/state), 130 on Ctrl-C; errors name what was wrong without echoing
 * bytes of the input.
 */

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'packages/cli/dist/main.js');
const data = testDataDir(root);
const jpeg = data ? join(data, 'coco128-val/images/val2017/000000000139.jpg') : undefined;

function run(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Start a command, send SIGINT once `ready` appears on stderr (or after `afterMs`), and collect the outcome. */
function interrupt(args: string[], ready: RegExp): Promise<{ code: number | null; err: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let sent = false;
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (!sent && ready.test(err)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('close', (code) => done({ code, err }));
  });
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cvopt-exit-'));
  run('dataset', 'synth', '--task', 'detect', '--out', join(work, 'shapes'), '--images', '16', '--imgsz', '64');
  mkdirSync(join(work, 'used'));
  writeFileSync(join(work, 'used/last.pt'), 'x');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('cvopt exit codes and messages (real CLI)', () => {
  const table: { name: string; args: () => string[]; code: number; says: RegExp; stream?: 'out' | 'err' }[] = [
    { name: 'unknown option', args: () => ['train', '--bogus'], code: 2, says: /unknown option '--bogus'/ },
    { name: 'unknown subcommand', args: () => ['dataset', 'nope'], code: 2, says: /unknown command 'nope'/ },
    { name: 'typo in a command', args: () => ['evall'], code: 2, says: /unknown command 'evall'[\s\S]*eval/ },
    { name: 'missing argument', args: () => ['select'], code: 2, says: /missing required argument 'report'/ },
    { name: 'missing argument, --json', args: () => ['--json', 'select'], code: 2, says: /"code": "INVALID_ARGUMENT"[\s\S]*missing required argument/, stream: 'out' },
    { name: 'not a number', args: () => ['train', '--model', 'yolov8p', '--data', join(work, 'shapes'), '--out', join(work, 'n'), '--epochs', 'many'], code: 2, says: /--epochs must be an integer/ },
    { name: 'missing required flag', args: () => ['tune', '--out', join(work, 't')], code: 2, says: /tune needs --model/ },
    { name: 'nonexistent dataset', args: () => ['dataset', 'check', join(work, 'nope')], code: 3, says: /NOT_FOUND: .*does not exist/ },
    { name: 'nonexistent model', args: () => ['eval', join(work, 'nope.onnx'), '--data', join(work, 'shapes')], code: 3, says: /NOT_FOUND/ },
    { name: 'a folder that is no dataset', args: () => ['dataset', 'check', join(work, 'shapes/labels')], code: 3, says: /FAILED: \d+ error/, stream: 'out' },
    { name: 'used run folder', args: () => ['train', '--model', 'yolov8p', '--data', join(work, 'shapes'), '--out', join(work, 'used')], code: 5, says: /CONFLICT: .*already holds a training run[\s\S]*--resume/ },
    { name: 'nothing to resume', args: () => ['tune', '--resume', '--out', join(work, 'nothing')], code: 3, says: /nothing to resume/ },
    { name: 'unknown shell', args: () => ['completion', 'tcsh'], code: 2, says: /bash, zsh, fish/ },
    { name: 'help', args: () => ['train', '--help'], code: 0, says: /Examples:[\s\S]*cvopt train --resume/, stream: 'out' },
  ];
  for (const t of table) {
    it(`${t.name} → exit ${t.code}`, () => {
      const r = run(...t.args());
      expect(r.code).toBe(t.code);
      expect(t.stream === 'out' ? r.out : r.err).toMatch(t.says);
      expect((r.out + r.err).includes('    at ')).toBe(false); // never a stack trace
    });
  }

  it.skipIf(!jpeg)('a JPEG where a dataset or a model belongs is named as a JPEG, with no bytes echoed', () => {
    for (const args of [['dataset', 'check', jpeg!], ['eval', jpeg!, '--data', join(work, 'shapes')], ['train', '--model', 'yolov8p', '--data', jpeg!, '--out', join(work, 'j')], ['check', jpeg!]]) {
      const r = run(...args);
      expect(r.code).toBe(3);
      expect(r.err).toMatch(/is a JPEG image, not (a data\.yaml|an ONNX model)/);
      expect(r.out.length + r.err.length).toBeLessThan(1500);
      expect(r.err).toMatch(/^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/); // eslint-disable-line no-control-regex
    }
  });

  it.skipIf(!data)('a benchmark that measured nothing exits 4 and says why', () => {
    const r = run('bench', join(data!, 'models/yolov8n_int8.onnx'), '--data', join(data!, 'coco128-val/data.yaml'), '--engines', 'ort-cuda', '--max-images', '2', '--out', join(work, 'b/report.json'));
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/ENGINE_UNAVAILABLE: no engine was measured: ort-cuda unavailable/);
  });

  it.skipIf(!data)('serve --engine refuses an engine of another precision than the model (select names ids the service runs)', () => {
    const r = run('serve', join(data!, 'models/yolov8n_int8.onnx'), '--engine', 'ort-cpu', '--port', '0');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--engine ort-cpu serves fp32 models but .* is int8/);
    const bad = run('serve', join(data!, 'models/yolov8n_int8.onnx'), '--engine', 'pytorch', '--port', '0');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not an engine the service runs/);
  });

  it('Ctrl-C exits 130 and training says how to resume', async () => {
    const r = await interrupt(['train', '--model', 'yolov8p', '--data', join(work, 'shapes'), '--epochs', '50', '--imgsz', '64', '--out', join(work, 'ctrlc')], /note: yolov8p starts/);
    expect(r.code).toBe(130);
    expect(r.err).toMatch(/continue it with: cvopt train --resume --out/);
  }, 60_000);

  it('Ctrl-C exits 130 within the grace period even where a step cannot be interrupted', async () => {
    const synth = await interrupt(['dataset', 'synth', '--task', 'detect', '--out', join(work, 'big'), '--images', '4000', '--imgsz', '256'], /synth/);
    expect(synth.code).toBe(130);
  }, 60_000);
});
