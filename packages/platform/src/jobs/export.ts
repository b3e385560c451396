import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import {
  CvoptError,
  ExportPayloadSchema,
  type ExportPayload,
  ModelManifestSchema,
  parseWith,
  type MetricMessage,
  type ModelManifest,
  type Parity,
  type ProgressMessage,
} from '@cvopt/core';
import { createOrtEngine } from '@cvopt/engines';
import { DetectionAgreement, postprocessDetections, type LetterboxMeta } from '@cvopt/vision';
import { runWorker } from '@cvopt/trainer-client';

/** FP32 export should agree to ~1e-5 relative; above this the export is refused. */
export const DEFAULT_PARITY_TOLERANCE = 1e-3;
/** At most this many images from --samples feed the parity check. */
export const MAX_PARITY_SAMPLES = 4;
const IMAGE_EXTS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp']);
const EPS = 1e-12;
/** yolov8n, yolov8s-cls, …: names the worker builds; anything else is a file. */
export const PRESET_NAME = /^yolov8[a-z](-cls)?$/;

export const ExportModelSchema = ExportPayloadSchema;
export type ExportModelInput = ExportPayload;

export interface ExportHooks {
  onProgress?: (m: ProgressMessage) => void;
  onMetric?: (m: MetricMessage) => void;
  onLog?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ExportResult {
  onnx: string;
  manifest: string;
  task: 'detect' | 'classify';
  nc: number;
  opset: number;
  imgsz: number;
  dynamic: boolean;
  sourceFormat: string;
  onnxSha256: string;
  parity: Parity;
}

interface ParitySample {
  input: string;
  inputShape: number[];
  output: string;
  outputShape: number[];
  image: string | null;
  meta: LetterboxMeta;
}

function readF32(path: string, expected: number): Float32Array {
  const buf = readFileSync(path);
  if (buf.byteLength !== expected * 4) {
    throw new CvoptError('TENSOR_SHAPE', `${path} holds ${buf.byteLength / 4} floats, expected ${expected}`, { where: { file: path } });
  }
  // copy into an aligned buffer: Buffer slices may start at any byte offset
  const out = new Float32Array(expected);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

function listSamples(samples: string | string[] | undefined): string[] {
  if (samples === undefined) return [];
  const list = typeof samples === 'string' ? [samples] : samples;
  const files: string[] = [];
  for (const s of list) {
    const p = resolve(s);
    if (!existsSync(p)) throw new CvoptError('NOT_FOUND', `--samples ${s} does not exist`, { where: { field: 'samples' }, hint: 'pass a directory of JPEG/PNG images' });
    if (statSync(p).isDirectory()) {
      const inDir = readdirSync(p)
        .filter((f) => IMAGE_EXTS.has(extname(f).toLowerCase()))
        .sort()
        .map((f) => join(p, f));
      if (inDir.length === 0) {
        throw new CvoptError('INVALID_ARGUMENT', `--samples ${s} holds no images (${[...IMAGE_EXTS].join(', ')})`, { where: { field: 'samples' } });
      }
      files.push(...inDir);
    } else files.push(p);
  }
  return files.slice(0, MAX_PARITY_SAMPLES);
}

function argmaxRows(a: Float32Array, rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (a[r * cols + c]! > a[r * cols + best]!) best = c;
    out.push(best);
  }
  return out;
}

/**
 * Run ONNX Runtime on the inputs the worker saved and compare with the PyTorch outputs saved beside them:
 * element-wise (max abs, max relative to the reference's magnitude, cosine) and, for detectors, the detections
 * after NMS; for classifiers, top-1 agreement.
 */
export async function checkParity(onnxPath: string, manifest: ModelManifest, parityDir: string, opts: { tolerance: number; confThreshold: number }): Promise<Parity> {
  const file = join(parityDir, 'parity.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { samples: ParitySample[] };
  const engine = await createOrtEngine(onnxPath, manifest);
  let maxAbs = 0;
  let maxRef = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  const agreement = new DetectionAgreement();
  let top1Same = 0;
  let top1Total = 0;
  try {
    for (const s of doc.samples) {
      const input = readF32(join(parityDir, s.input), s.inputShape.reduce((a, b) => a * b, 1));
      const ref = readF32(join(parityDir, s.output), s.outputShape.reduce((a, b) => a * b, 1));
      const got = await engine.run(input, s.inputShape);
      if (got.data.length !== ref.length) {
        throw new CvoptError('TENSOR_SHAPE', `ONNX output [${got.dims.join(', ')}] differs from PyTorch's [${s.outputShape.join(', ')}]`, { where: { file: onnxPath } });
      }
      for (let i = 0; i < ref.length; i++) {
        const a = ref[i]!;
        const b = got.data[i]!;
        maxAbs = Math.max(maxAbs, Math.abs(a - b));
        maxRef = Math.max(maxRef, Math.abs(a));
        dot += a * b;
        na += a * a;
        nb += b * b;
      }
      if (manifest.task === 'detect') {
        const post = { confThreshold: opts.confThreshold };
        const r = postprocessDetections(ref, s.outputShape, manifest, s.meta, post);
        const g = postprocessDetections(got.data, got.dims, manifest, s.meta, post);
        agreement.add(r, g);
      } else {
        const rows = s.outputShape[0] ?? 1;
        const cols = s.outputShape[1] ?? 1;
        const ra = argmaxRows(ref, rows, cols);
        const ga = argmaxRows(got.data, rows, cols);
        top1Total += rows;
        top1Same += ra.filter((v, i) => v === ga[i]).length;
      }
    }
  } finally {
    await engine.close();
  }
  const parity: Parity = {
    samples: doc.samples.length,
    maxAbsDiff: maxAbs,
    maxRelDiff: maxAbs / (maxRef + EPS),
    cosine: na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : na === nb ? 1 : 0,
    tolerance: opts.tolerance,
  };
  if (manifest.task === 'detect') {
    // No detections on either side is full agreement; some on one side but no match is none.
    const none = agreement.reference === 0 && agreement.got === 0 ? 1 : 0;
    parity.detections = {
      reference: agreement.reference,
      onnx: agreement.got,
      matched: agreement.matched,
      meanIou: agreement.meanIou(none),
      classAgreement: agreement.classAgreement(none),
    };
  } else parity.top1Agreement = top1Total > 0 ? top1Same / top1Total : 1;
  return parity;
}

/** PARITY_FAILED when ONNX Runtime strays from PyTorch beyond the tolerance (NaN counts as beyond). */
export function assertParity(parity: Parity, result: { onnx: string }): void {
  if (parity.maxRelDiff <= parity.tolerance) return;
  throw new CvoptError(
    'PARITY_FAILED',
    `ONNX Runtime disagrees with PyTorch on ${result.onnx}: max relative difference ${parity.maxRelDiff.toExponential(2)} > tolerance ${parity.tolerance}`,
    {
      where: { file: result.onnx },
      hint: 'an operator exports with different semantics; try another --opset, or raise --tolerance if the difference is acceptable',
      details: result,
    },
  );
}

/**
 * `cvopt export`: the worker writes model.onnx, model.json and PyTorch reference outputs; ONNX Runtime then runs
 * the same inputs and the figures go into the result and model.json's provenance.parity. Above the tolerance the
 * export fails with PARITY_FAILED, leaving the files for inspection.
 */
export async function exportModel(input: ExportModelInput, hooks: ExportHooks = {}): Promise<ExportResult> {
  const p = parseWith(ExportModelSchema, input, { what: 'export options', code: 'INVALID_ARGUMENT' });
  // The worker runs in trainer/: a file path must be absolute; a preset name stays a name.
  const checkpoint = PRESET_NAME.test(p.checkpoint) && !existsSync(p.checkpoint) ? p.checkpoint : resolve(p.checkpoint);
  const out = resolve(p.out);
  if (extname(out) !== '.onnx') {
    throw new CvoptError('INVALID_ARGUMENT', `--out must end in .onnx, got ${p.out}`, { where: { field: 'out' }, hint: 'e.g. --out runs/exp/model.onnx' });
  }
  const samples = listSamples(p.samples);
  const args: Record<string, unknown> = { checkpoint, out, dynamic: p.dynamic, samples, trust_torchscript: p.trustTorchscript };
  if (p.imgsz !== undefined) args.imgsz = p.imgsz;
  if (p.opset !== undefined) args.opset = p.opset;
  const workerOpts: Parameters<typeof runWorker>[2] = {};
  if (hooks.onProgress) workerOpts.onProgress = hooks.onProgress;
  if (hooks.onMetric) workerOpts.onMetric = hooks.onMetric;
  if (hooks.onLog) workerOpts.onLog = hooks.onLog;
  if (hooks.signal) workerOpts.signal = hooks.signal;
  const r = (await runWorker('export', args, workerOpts)) as Omit<ExportResult, 'parity'> & { parityDir: string };

  hooks.onProgress?.({ type: 'progress', stage: 'parity', step: 0, total: 1, message: 'ONNX Runtime vs PyTorch' });
  const manifestPath = r.manifest;
  const raw: unknown = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const manifest = parseWith(ModelManifestSchema, raw, { what: 'model.json', file: manifestPath, code: 'MANIFEST_INVALID' });
  const parity = await checkParity(r.onnx, manifest, r.parityDir, { tolerance: p.tolerance, confThreshold: p.confThreshold });
  // keep the worker's JSON as written, adding only the figures
  const doc = raw as { provenance?: Record<string, unknown> };
  doc.provenance = { ...(doc.provenance ?? {}), parity };
  writeFileSync(manifestPath, `${JSON.stringify(doc, null, 2)}\n`);
  hooks.onProgress?.({ type: 'progress', stage: 'parity', step: 1, total: 1 });

  const result: ExportResult = {
    onnx: r.onnx,
    manifest: manifestPath,
    task: r.task,
    nc: r.nc,
    opset: r.opset,
    imgsz: r.imgsz,
    dynamic: r.dynamic,
    sourceFormat: r.sourceFormat,
    onnxSha256: r.onnxSha256,
    parity,
  };
  assertParity(parity, result);
  return result;
}
