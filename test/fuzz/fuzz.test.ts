import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CvoptError, testDataDir } from '@cvopt/core';
import { checkDataset } from '@cvopt/datasets';
import { DT, inferManifest, inspectOnnx, model, node, readOnnx, valueInfo, writeOnnx } from '@cvopt/onnx';
import { findPython, trainerDir } from '@cvopt/trainer-client';
import { decodeImage, readVideoFrames } from '@cvopt/vision';
import { mutants, type Mutant } from './mutate.js';

/**
 * Issue 13, "must show": seeded truncations and mutations of real JPEG, PNG, BMP, MP4, ONNX, .pt and YAML files
 * through the library entry points. Every case must end in a result or a typed refusal (CvoptError here, a
 * WorkerError code in the worker): zero crashes, zero hangs. Each format prints its outcome counts.
 */
const dataDir = testDataDir();
if (!dataDir) console.warn('skipping the fuzz run: shared test data not found (set CVOPT_TEST_DATA)');
const tmp = mkdtempSync(join(tmpdir(), 'cvopt-fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
/** Past this a case counts as hung (generous: two shared cores, ffmpeg spawns). Not a performance figure. */
const CASE_TIMEOUT_MS = 15_000;
const SEED = 13;

interface Tally {
  cases: number;
  ok: number;
  refused: Map<string, number>;
  failures: string[];
}

const tally = (): Tally => ({ cases: 0, ok: 0, refused: new Map(), failures: [] });

const HANG = Symbol('hang');

/**
 * Run one case: a result or a CvoptError is fine; anything else, or no answer in time, is a failure. `fn` may
 * return a string: a refusal reported as data (a dataset's problem code) rather than thrown.
 */
async function runCase(t: Tally, label: string, fn: () => Promise<string | void> | string | void): Promise<void> {
  t.cases++;
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<typeof HANG>((resolve) => (timer = setTimeout(() => resolve(HANG), CASE_TIMEOUT_MS)));
  try {
    const r = await Promise.race([Promise.resolve().then(fn), hang]);
    if (r === HANG) t.failures.push(`${label}: no answer in ${CASE_TIMEOUT_MS} ms`);
    else if (typeof r === 'string') t.refused.set(r, (t.refused.get(r) ?? 0) + 1);
    else t.ok++;
  } catch (e) {
    if (e instanceof CvoptError) t.refused.set(e.code, (t.refused.get(e.code) ?? 0) + 1);
    else t.failures.push(`${label}: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`.slice(0, 300));
  } finally {
    clearTimeout(timer);
  }
}

function report(what: string, t: Tally): void {
  const refused = [...t.refused].map(([c, n]) => `${c} ${n}`).join(', ');
  console.log(`fuzz ${what}: ${t.cases} cases, ${t.ok} accepted, refused: ${refused || 'none'}, failures: ${t.failures.length}`);
  expect(t.failures).toEqual([]);
  // the mutants must actually reach the parsers' refusals, or the run proves nothing
  const refusals = [...t.refused.values()].reduce((a, b) => a + b, 0);
  expect(refusals).toBeGreaterThan(t.cases / 10);
  // and some must survive (a flipped pixel is still an image), or the inputs were never valid to begin with
  expect(t.ok).toBeGreaterThan(0);
}

/** A 24-bit bottom-up BMP of an RGB image, written by hand (the decoder under test is ours). */
function encodeBmp(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const row = Math.ceil((width * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + row * height);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  buf.writeUInt32LE(row * height, 34);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const s = ((height - 1 - y) * width + x) * 3;
      const d = 54 + y * row + x * 3;
      buf[d] = rgb[s + 2] as number;
      buf[d + 1] = rgb[s + 1] as number;
      buf[d + 2] = rgb[s] as number;
    }
  return buf;
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  }));
}

describe.skipIf(!dataDir)('fuzz: mutated real files through the library entry points', () => {
  const data = dataDir ?? '';
  const photo = join(data, 'coco128-val', 'images', 'val2017', '000000000139.jpg');
  const small: Record<string, Uint8Array> = {};

  beforeAll(async () => {
    // small re-encodings of a real photo: mutants then reach the decoders' inner loops, not only their headers
    const base = sharp(readFileSync(photo)).resize(64, 48);
    small.jpeg = await base.clone().jpeg({ quality: 80 }).toBuffer();
    small.png = await base.clone().png().toBuffer();
    const raw = await base.clone().removeAlpha().raw().toBuffer();
    small.bmp = encodeBmp(raw, 64, 48);
  });

  it('images: JPEG, PNG and BMP decode or refuse with IMAGE_INVALID', async () => {
    const t = tally();
    const cases: [string, Mutant][] = [
      ...mutants(readFileSync(photo), 150, SEED).map((m): [string, Mutant] => ['photo.jpg', m]),
      ...mutants(small.jpeg as Uint8Array, 350, SEED + 1).map((m): [string, Mutant] => ['small.jpg', m]),
      ...mutants(small.png as Uint8Array, 400, SEED + 2).map((m): [string, Mutant] => ['small.png', m]),
      ...mutants(small.bmp as Uint8Array, 400, SEED + 3, { headBytes: 64 }).map((m): [string, Mutant] => ['small.bmp', m]),
    ];
    await forEachLimit(cases, 4, async ([name, m]) => runCase(t, `${name} ${m.how}`, () => decodeImage(Buffer.from(m.bytes))));
    report('images', t);
  });

  it('video: MP4 probe and first frames, or VIDEO_INVALID', async () => {
    const t = tally();
    const clip = join(tmp, 'clip.mp4');
    // the first 8 frames of a real video, copied without re-encoding: mutants then often hit the moov atom
    execFileSync('ffmpeg', ['-v', 'error', '-i', join(data, 'video', 'bottle-detection.mp4'), '-frames:v', '8', '-c', 'copy', '-movflags', '+faststart', clip]);
    const dir = join(tmp, 'video');
    mkdirSync(dir);
    // few cases: each spawns ffprobe and ffmpeg
    const cases = mutants(readFileSync(clip), 16, SEED + 4, { headBytes: 4096 });
    await forEachLimit(cases, 2, async (m, i) => {
      const file = join(dir, `${i}.mp4`);
      writeFileSync(file, m.bytes);
      await runCase(t, `clip.mp4 ${m.how}`, async () => {
        // readVideoFrames probes first (probeVideo), then decodes
        for await (const f of readVideoFrames(file, { maxFrames: 2 })) if (f.index > 1) break;
      });
      rmSync(file);
    });
    report('video', t);
  }, 120_000);

  it('ONNX: readOnnx, inspectOnnx and inferManifest read or refuse with MODEL_INVALID', async () => {
    const t = tally();
    const tiny = model({
      inputs: [valueInfo('images', DT.FLOAT, [1, 3, 8, 8])],
      outputs: [valueInfo('y', DT.FLOAT, [1, 3, 8, 8])],
      nodes: [node('Add', ['images', 'w'], ['y'])],
      initializers: [{ name: 'w', dataType: DT.FLOAT, dims: [1], floatData: [0.5] }],
    });
    tiny.metadataProps.push({ key: 'names', value: "{0: 'a', 1: 'b'}" });
    const tinyPath = join(tmp, 'tiny.onnx');
    writeOnnx(tiny, tinyPath);
    const dir = join(tmp, 'onnx');
    mkdirSync(dir);
    const cases: [string, Mutant][] = [
      ...mutants(readFileSync(join(data, 'models', 'mobilenetv2-12-int8.onnx')), 120, SEED + 5).map((m): [string, Mutant] => ['mobilenet', m]),
      ...mutants(readFileSync(tinyPath), 380, SEED + 6, { headBytes: 256 }).map((m): [string, Mutant] => ['tiny', m]),
    ];
    for (const [i, [name, m]] of cases.entries()) {
      const file = join(dir, `${i}.onnx`);
      writeFileSync(file, m.bytes);
      await runCase(t, `${name} ${m.how}`, () => {
        const loaded = readOnnx(file);
        inspectOnnx(loaded);
        // the real classifier's manifest is inferable; the tiny graph has no task to infer
        if (name === 'mobilenet') inferManifest(loaded);
      });
      rmSync(file);
    }
    report('onnx', t);
  });

  it('datasets: mutated data.yaml and label files give problems, never a crash', async () => {
    const t = tally();
    const root = join(tmp, 'ds');
    for (const d of ['images/val', 'labels/val']) mkdirSync(join(root, d), { recursive: true });
    const png = await sharp(readFileSync(photo)).resize(32, 24).png().toBuffer();
    for (const n of ['a', 'b']) writeFileSync(join(root, 'images', 'val', `${n}.png`), png);
    const yaml = Buffer.from(`path: .\ntrain: images/val\nval: images/val\nnames:\n  0: person\n  1: bicycle\n  2: car\n`);
    // a real COCO label file, with a polygon row added so the segment path is mutated too
    // real COCO rows (classes beyond the three names renumbered into range), and a polygon row so the segment
    // path is mutated too
    const coco = readFileSync(join(data, 'coco128-val', 'labels', 'val2017', '000000000139.txt'), 'utf8');
    const rows = coco.trim().split('\n').map((r) => r.replace(/^\d+/, (c) => String(Number(c) % 3)));
    const label = Buffer.from(`${rows.join('\n')}\n2 0.1 0.1 0.5 0.1 0.5 0.6 0.1 0.6\n`);
    const yamlCases = mutants(yaml, 250, SEED + 7, { headBytes: 128 });
    const labelCases = mutants(label, 250, SEED + 8, { headBytes: 256 });
    for (let i = 0; i < yamlCases.length + labelCases.length; i++) {
      const isYaml = i % 2 === 0;
      const m = (isYaml ? yamlCases[i >> 1] : labelCases[i >> 1]) as Mutant;
      writeFileSync(join(root, 'data.yaml'), isYaml ? m.bytes : yaml);
      writeFileSync(join(root, 'labels', 'val', 'a.txt'), isYaml ? label : m.bytes);
      await runCase(t, `${isYaml ? 'data.yaml' : 'a.txt'} ${m.how}`, async () => {
        const r = await checkDataset(root, { task: 'detect' });
        const error = r.problems.find((p) => p.severity === 'error');
        // a report that is not ok must say why, with a file for the problem
        if (!r.ok && !error?.file) throw new Error('not ok without an error problem');
        return error?.code;
      });
    }
    report('datasets', t);
  });

  const py = findPython();
  it.skipIf(!py.torch)('.pt and pickles: the worker loader in one batch loads or refuses with a code', async () => {
    const driver = join(import.meta.dirname, 'safe_load_batch.py');
    const seedDir = join(tmp, 'pt-seed');
    const caseDir = join(tmp, 'pt-cases');
    mkdirSync(seedDir);
    mkdirSync(caseDir);
    execFileSync(py.executable, [driver, trainerDir(), 'seed', seedDir]);
    const plan: [string, number][] = [['state-zip.pt', 170], ['state-legacy.pt', 170], ['plain.pkl', 160], ['model-checkpoint.pt', 60]];
    plan.forEach(([base, n], k) => {
      mutants(readFileSync(join(seedDir, base)), n, SEED + 10 + k, { headBytes: 512 }).forEach((m, i) => {
        writeFileSync(join(caseDir, `${base.replace(/\..*$/, '')}-${String(i).padStart(4, '0')}`), m.bytes);
      });
    });
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(py.executable, [driver, trainerDir(), 'run', caseDir, String(CASE_TIMEOUT_MS / 1000)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`fuzz driver exited ${code}`))));
    });
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { name?: string; outcome?: string; maxRssKiB?: number });
    const t = tally();
    for (const l of lines) {
      if (l.outcome === undefined) continue;
      t.cases++;
      if (l.outcome === 'ok') t.ok++;
      else if (l.outcome.startsWith('refused:')) t.refused.set(l.outcome.slice(8), (t.refused.get(l.outcome.slice(8)) ?? 0) + 1);
      else t.failures.push(`${l.name}: ${l.outcome}`);
    }
    const rss = lines.at(-1)?.maxRssKiB ?? 0;
    console.log(`fuzz .pt: peak RSS of the loader process ${Math.round(rss / 1024)} MiB`);
    expect(t.cases).toBe(560);
    // torch itself is ~200 MiB; a forged size that got through would show here (a memo index once took 2.9 GiB)
    expect(rss).toBeLessThan(1024 * 1024);
    report('.pt', t);
  }, 120_000);
});
