import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { CvoptError, ModelManifestSchema, intraOpThreadsFor, type EvalProtocol, type ModelManifest } from '@cvopt/core';
import { manifestPathFor, readManifest } from '@cvopt/engines';
import { calibrate, type CalibrateOptions, type CalibrationMethod, type Sample } from './calibrate.js';
import { calibrationSamples, datasetImages, evaluateOnnx, headline, spread, type AccuracyResult } from './evaluate.js';
import { convertFp16, type Fp16Options } from './fp16.js';
import { encodeOnnx, readOnnx, writeOnnx } from './io.js';
import { inferManifest } from './manifest.js';
import type { ModelProto, NodeProto } from './model.js';
import { defaultReduceRange, quantizableTensors, quantizeQdq, type QdqOptions, type Range } from './qdq.js';

export interface QuantizeOptions extends QdqOptions {
  /** A YOLO data.yaml (detection) or a folder-per-class dataset (classification). */
  data: string;
  manifest?: ModelManifest;
  method?: CalibrationMethod;
  percentile?: number;
  /** Calibration images (default 64), spread over the dataset. */
  calib?: number;
  /** Evaluation images for the accuracy guard (default all of the split). */
  evalImages?: number;
  /** Largest accepted accuracy drop as a fraction (0.01 = one point of mAP50 or top-1), the unit every report and `select --max-map-drop` use; sensitive layers go back to float until met. */
  maxDrop?: number;
  /** Convert to FP16 instead of calibrating INT8. */
  fp16?: boolean | Fp16Options;
  intraOpNumThreads?: number;
  /** How the guard's accuracy is measured (default: core's DEFAULT_EVAL_PROTOCOL, the same as eval and bench). */
  protocol?: Partial<EvalProtocol>;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface ClassDelta {
  classId: number;
  name: string;
  gts: number;
  fp32: number;
  quantized: number;
  delta: number;
}

export interface GuardRound {
  excluded: string[];
  accuracy: number;
  drop: number;
}

export interface QuantizeReport {
  model: string;
  out: string;
  precision: 'int8' | 'fp16';
  method?: CalibrationMethod;
  activations?: string;
  calibrationImages: number;
  evaluationImages: number;
  quantizedNodes: number;
  /** Nodes left in float by --exclude-* and by the guard. */
  excludedNodes: string[];
  metric: 'mAP50' | 'top1';
  /** The evaluation protocol of both accuracy figures (detection). */
  protocol?: EvalProtocol;
  fp32: AccuracyResult;
  quantized: AccuracyResult;
  /** Headline drop as a fraction (positive = worse; 0.01 = one point). */
  drop: number;
  perClass: ClassDelta[];
  guard: GuardRound[];
  withinBound?: boolean;
}

/** A quantized layer: a weighted node with the activation nodes that follow it (SiLU = Sigmoid + Mul), or one node. */
export function quantLayers(model: ModelProto, nodeNames: readonly string[]): string[][] {
  const names = new Set(nodeNames);
  const consumers = new Map<string, NodeProto[]>();
  for (const n of model.graph.node) for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const taken = new Set<string>();
  const layers: string[][] = [];
  for (const n of model.graph.node) {
    if (!n.name || !names.has(n.name) || taken.has(n.name) || !['Conv', 'Gemm', 'MatMul'].includes(n.opType)) continue;
    const group = [n.name];
    for (const c of consumers.get(n.output[0] ?? '') ?? []) {
      if (!c.name || !names.has(c.name) || !['Sigmoid', 'Mul', 'Relu', 'LeakyRelu', 'Clip'].includes(c.opType)) continue;
      group.push(c.name);
      if (c.opType === 'Sigmoid') for (const m of consumers.get(c.output[0] ?? '') ?? []) if (m.name && names.has(m.name) && m.opType === 'Mul') group.push(m.name);
    }
    for (const g of group) taken.add(g);
    layers.push([...new Set(group)]);
  }
  for (const n of nodeNames) if (!taken.has(n)) layers.push([n]);
  return layers;
}

async function outputsOf(model: ModelProto, samples: readonly Sample[], threads?: number): Promise<Float32Array[][]> {
  const so: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic', logSeverityLevel: 3 };
  const intra = intraOpThreadsFor(threads);
  if (intra) so.intraOpNumThreads = intra;
  const s = await ort.InferenceSession.create(encodeOnnx(model), so);
  try {
    const out: Float32Array[][] = [];
    for (const x of samples) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(x.feeds)) feeds[k] = new ort.Tensor('float32', v.data, v.dims as number[]);
      const r = await s.run(feeds);
      out.push(s.outputNames.map((n) => r[n]?.data).filter((d): d is Float32Array => d instanceof Float32Array));
    }
    return out;
  } finally {
    await s.release();
  }
}

/**
 * One-at-a-time sensitivity: quantize each layer alone and measure the relative L2 error of the graph outputs
 * against FP32 on a few calibration samples. Errors compound downstream, so a layer's effect on the output, not
 * the error at its own output, is what decides which layers to keep in float.
 */
export async function rankSensitivity(
  fp32: ModelProto,
  ranges: ReadonlyMap<string, Range>,
  qdq: QdqOptions,
  nodeNames: readonly string[],
  samples: readonly Sample[],
  threads?: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ nodes: string[]; error: number }[]> {
  const ref = await outputsOf(fp32, samples, threads);
  const layers = quantLayers(fp32, nodeNames);
  const all = new Set(nodeNames);
  const out: { nodes: string[]; error: number }[] = [];
  for (const layer of layers) {
    const keep = new Set(layer);
    const others = [...all].filter((n) => !keep.has(n));
    const q = quantizeQdq(fp32, ranges, { ...qdq, excludeNodes: [...(qdq.excludeNodes ?? []), ...others] });
    const got = await outputsOf(q.model, samples, threads);
    let num = 0;
    let den = 0;
    got.forEach((outs, i) =>
      outs.forEach((y, j) => {
        const x = ref[i]?.[j] as Float32Array;
        for (let k = 0; k < y.length; k++) {
          num += ((x[k] as number) - (y[k] as number)) ** 2;
          den += (x[k] as number) ** 2;
        }
      }),
    );
    out.push({ nodes: layer, error: Math.sqrt(num / Math.max(den, 1e-20)) });
    onProgress?.(out.length, layers.length);
  }
  return out.sort((a, b) => b.error - a.error || (a.nodes[0] ?? '').localeCompare(b.nodes[0] ?? ''));
}

function perClassDeltas(a: AccuracyResult, b: AccuracyResult): ClassDelta[] {
  if (!a.perClass || !b.perClass) return [];
  const bb = new Map(b.perClass.map((c) => [c.classId, c]));
  return a.perClass.map((c) => {
    const q = bb.get(c.classId)?.ap50 ?? 0;
    return { classId: c.classId, name: c.name, gts: c.gts, fp32: c.ap50, quantized: q, delta: q - c.ap50 };
  });
}

/** Names every node (stable, from its op type and position) so exclusions and rankings can refer to it. */
function nameNodes(m: ModelProto): void {
  const used = new Set(m.graph.node.map((n) => n.name).filter(Boolean));
  m.graph.node.forEach((n, i) => {
    if (n.name) return;
    let name = `${n.opType}_${i}`;
    while (used.has(name)) name += '_';
    used.add(name);
    n.name = name;
  });
}

/**
 * Quantize an FP32 ONNX model to static INT8 QDQ calibrated on real images (or convert it to FP16), evaluate both
 * on the dataset, and with maxDrop move the most sensitive layers back to float until the drop is within bound.
 * Writes the model and its model.json (precision, accuracy) next to it.
 */
export async function quantizeOnnx(modelPath: string, outPath: string, opts: QuantizeOptions): Promise<QuantizeReport> {
  const loaded = readOnnx(modelPath);
  const source = loaded.model;
  nameNodes(source);
  // The model.json written by `cvopt export` knows the class names and preprocessing; infer only without one.
  const manifest = opts.manifest ?? (manifestPathFor(modelPath).some((p) => existsSync(p)) ? readManifest(modelPath) : inferManifest(loaded));
  if (manifest.precision !== 'fp32') {
    throw new CvoptError('MODEL_INVALID', `${modelPath} is already ${manifest.precision}; quantize the FP32 model it came from`, { where: { file: modelPath }, hint: 'pass the original FP32 export' });
  }
  const progress = opts.onProgress ?? (() => {});
  // The output's folder is made now, not after minutes of calibration: a path that cannot be written fails first.
  try {
    mkdirSync(dirname(resolve(outPath)), { recursive: true });
  } catch (e) {
    throw new CvoptError('INVALID_ARGUMENT', `cannot create the folder for ${outPath}: ${(e as Error).message}`, { where: { file: outPath }, hint: 'pass --out in a writable folder', cause: e });
  }
  // Calibrate on the training split and evaluate on validation, as a user's pipeline would (coco128 has one set).
  const { images } = datasetImages(opts.data, manifest.task, 'evaluate');
  const { images: calibPool } = datasetImages(opts.data, manifest.task, 'calibrate');
  if (images.length === 0 || calibPool.length === 0) throw new CvoptError('DATASET_INVALID', `${opts.data} has no images to calibrate and evaluate on`, { where: { file: opts.data } });
  const evalSet = spread(images, opts.evalImages ?? images.length);
  const threads = opts.intraOpNumThreads;
  const evalOpts = { ...(threads ? { intraOpNumThreads: threads } : {}), ...(opts.protocol ? { protocol: opts.protocol } : {}), onProgress: (d: number, t: number) => progress('evaluate', d, t) };

  const tmp = mkdtempSync(join(tmpdir(), 'cvopt-quant-'));
  try {
    const fp32Path = join(tmp, 'fp32.onnx');
    writeOnnx(source, fp32Path);
    const fp32 = await evaluateOnnx(fp32Path, manifest, evalSet, evalOpts);
    const base = headline(fp32);
    const precision = opts.fp16 ? 'fp16' : 'int8';
    const outManifest = (acc: AccuracyResult): ModelManifest =>
      ModelManifestSchema.parse({
        ...manifest,
        precision,
        accuracy: { dataset: opts.data, ...(acc.map50 !== undefined ? { map50: acc.map50, map5095: acc.map5095 } : { top1: acc.top1, top5: acc.top5 }) },
        provenance: { ...manifest.provenance, source: modelPath },
      });

    if (opts.fp16) {
      const converted = convertFp16(source, typeof opts.fp16 === 'object' ? opts.fp16 : {});
      writeOnnx(converted.model, outPath);
      const acc = await evaluateOnnx(outPath, outManifest(fp32), evalSet, evalOpts);
      writeFileSync(outPath.replace(/\.onnx$/i, '') + '.json', `${JSON.stringify(outManifest(acc), null, 2)}\n`);
      return {
        model: modelPath,
        out: outPath,
        precision: 'fp16',
        calibrationImages: 0,
        evaluationImages: evalSet.length,
        quantizedNodes: converted.convertedNodes,
        excludedNodes: converted.keptNodes,
        metric: manifest.task === 'detect' ? 'mAP50' : 'top1',
        ...(fp32.protocol ? { protocol: fp32.protocol } : {}),
        fp32,
        quantized: acc,
        drop: base - headline(acc),
        perClass: perClassDeltas(fp32, acc),
        guard: [],
      };
    }

    const method = opts.method ?? 'minmax';
    const calibImages = spread(calibPool, opts.calib ?? 64);
    const samples = await calibrationSamples(calibImages, manifest);
    const qdqBase: QdqOptions = { activations: opts.activations ?? 'uint8', reduceRange: opts.reduceRange ?? defaultReduceRange(), excludeOps: opts.excludeOps ?? [], excludeNodes: opts.excludeNodes ?? [] };
    // Calibrate every candidate tensor once, so guard rounds that exclude nodes reuse the same ranges.
    const tensors = quantizableTensors(source, { ...qdqBase, excludeNodes: [], excludeOps: [] });
    const calibOpts: CalibrateOptions = { method, onProgress: (d, t, pass) => progress(`calibrate ${pass}`, d, t) };
    if (opts.percentile !== undefined) calibOpts.percentile = opts.percentile;
    if (threads) calibOpts.intraOpNumThreads = threads;
    const ranges = await calibrate(source, tensors, samples, calibOpts);

    let excluded = [...(opts.excludeNodes ?? [])];
    let q = quantizeQdq(source, ranges, { ...qdqBase, excludeNodes: excluded });
    writeOnnx(q.model, outPath);
    let acc = await evaluateOnnx(outPath, outManifest(fp32), evalSet, evalOpts);
    const guard: GuardRound[] = [{ excluded: [...excluded], accuracy: headline(acc), drop: base - headline(acc) }];
    const maxDrop = opts.maxDrop;
    if (maxDrop !== undefined && (guard[0] as GuardRound).drop > maxDrop) {
      const ranking = await rankSensitivity(source, ranges, qdqBase, q.quantizedNodes, samples.slice(0, 2), threads, (d, t) => progress('sensitivity', d, t));
      const tryK = async (k: number): Promise<boolean> => {
        excluded = [...new Set([...(opts.excludeNodes ?? []), ...ranking.slice(0, k).flatMap((r) => r.nodes)])];
        q = quantizeQdq(source, ranges, { ...qdqBase, excludeNodes: excluded });
        writeOnnx(q.model, outPath);
        acc = await evaluateOnnx(outPath, outManifest(fp32), evalSet, evalOpts);
        guard.push({ excluded, accuracy: headline(acc), drop: base - headline(acc) });
        progress('guard', guard.length - 1, 2 * Math.ceil(Math.log2(ranking.length + 1)));
        return base - headline(acc) <= maxDrop;
      };
      // Doubling finds a passing count in log2(n) evaluations; a bisection below it then keeps as few layers in
      // FP32 as the bound allows (each one costs speed).
      let lo = 0;
      let hi = 0;
      for (let k = 1; ; k = Math.min(ranking.length, k * 2)) {
        if (await tryK(k)) {
          hi = k;
          break;
        }
        lo = k;
        if (k === ranking.length) break;
      }
      if (hi > 0) {
        while (hi - lo > Math.max(1, Math.floor(hi / 8))) {
          const mid = Math.floor((lo + hi) / 2);
          if (await tryK(mid)) hi = mid;
          else lo = mid;
        }
        // The last evaluation may have been a failing midpoint: end on the passing count.
        if ((guard[guard.length - 1] as GuardRound).drop > maxDrop) await tryK(hi);
      }
    }
    const last = guard[guard.length - 1] as GuardRound;
    writeFileSync(outPath.replace(/\.onnx$/i, '') + '.json', `${JSON.stringify(outManifest(acc), null, 2)}\n`);
    const report: QuantizeReport = {
      model: modelPath,
      out: outPath,
      precision: 'int8',
      method,
      activations: qdqBase.activations ?? 'uint8',
      calibrationImages: samples.length,
      evaluationImages: evalSet.length,
      quantizedNodes: q.quantizedNodes.length,
      excludedNodes: excluded,
      metric: manifest.task === 'detect' ? 'mAP50' : 'top1',
      ...(fp32.protocol ? { protocol: fp32.protocol } : {}),
      fp32,
      quantized: acc,
      drop: last.drop,
      perClass: perClassDeltas(fp32, acc),
      guard,
    };
    if (maxDrop !== undefined) report.withinBound = last.drop <= maxDrop;
    return report;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
