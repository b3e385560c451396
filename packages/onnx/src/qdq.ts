import { readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { CvoptError } from '@cvopt/core';
import { attr, node, valueInfo } from './builder.js';
import { opsetVersion, DEFAULT_DOMAIN } from './inspect.js';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from './model.js';
import { DT, makeTensor, tensorValues } from './tensor.js';
import { inferTypes } from './types.js';

/**
 * Static QDQ quantization: QuantizeLinear/DequantizeLinear pairs around every quantizable tensor, int8 weights
 * per output channel (symmetric), int32 biases, activations per tensor. ONNX Runtime fuses DQ→op→Q into its
 * integer kernels (QLinearConv, QLinearMul, ...); TensorRT reads the same pairs (with int8 activations).
 */

/** Ops whose float inputs and outputs get Q/DQ pairs, and which inputs are activations. */
const QUANT_INPUTS: Record<string, 'all' | number[]> = {
  Conv: [0],
  Gemm: [0],
  MatMul: [0],
  Add: 'all',
  Mul: 'all',
  Sigmoid: [0],
  Relu: [0],
  LeakyRelu: [0],
  Clip: [0],
  Concat: 'all',
  MaxPool: [0],
  AveragePool: [0],
  GlobalAveragePool: [0],
  Resize: [0],
  Reshape: [0],
  Transpose: [0],
  Slice: [0],
  Flatten: [0],
  Squeeze: [0],
  Unsqueeze: [0],
  Split: [0],
};

/** Weighted ops: which input is the weight and along which axis its output channels lie. */
const WEIGHT_AXIS: Record<string, (n: NodeProto) => number> = {
  Conv: () => 0,
  Gemm: (n) => (n.attribute.find((a) => a.name === 'transB')?.i ? 0 : 1),
  MatMul: () => 1,
};

export type ActivationType = 'uint8' | 'int8';

export interface Range {
  min: number;
  max: number;
}

export interface QdqOptions {
  /** uint8 asymmetric (ONNX Runtime CPU's fast path, u8s8) or int8 symmetric (TensorRT). */
  activations?: ActivationType;
  /** Keep these nodes (by name) in float. */
  excludeNodes?: string[];
  /** Keep every node of these op types in float. */
  excludeOps?: string[];
  /**
   * 7-bit weights: x86 without VNNI multiplies u8×s8 pairs with a saturating 16-bit add (VPMADDUBSW), so full
   * 8-bit weights can overflow; the halved range avoids it at a small accuracy cost.
   */
  reduceRange?: boolean;
}

/**
 * 7-bit weights by default on x86 CPUs without VNNI, where ONNX Runtime's u8s8 kernels saturate with full 8-bit
 * weights (measured here: 11 % output error fused vs 1.6 % unfused on a small conv net; equal with 7 bits).
 */
export function defaultReduceRange(): boolean {
  if (arch() !== 'x64' && arch() !== 'ia32') return false;
  try {
    return !/\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return true;
  }
}

export interface QdqResult {
  model: ModelProto;
  quantizedNodes: string[];
  quantizedTensors: number;
}

/** Tensors that calibration must observe for these options: float activations around quantizable nodes. */
export function quantizableTensors(model: ModelProto, opts: QdqOptions = {}): string[] {
  const g = model.graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const outputs = new Set(g.output.map((o) => o.name));
  const set = new Set<string>();
  for (const n of selectedNodes(g, opts)) {
    const which = QUANT_INPUTS[n.opType] ?? [];
    n.input.forEach((name, i) => {
      if (name && !inits.has(name) && (which === 'all' || which.includes(i))) set.add(name);
    });
    // Only the data output of shape-preserving ops; Split's several outputs are all data.
    for (const o of n.output) if (o && !outputs.has(o)) set.add(o);
  }
  // Graph outputs stay float: their consumers are users, and wide-range outputs (boxes next to scores) lose most.
  for (const o of outputs) set.delete(o);
  // Only tensors that lead to a weighted op: the tail after the last Conv/Gemm/MatMul (decode, concatenation of
  // boxes with scores) gains no speed from int8 and loses most precision, since one scale must cover all of it.
  const feeds = feedsWeightedOp(g);
  const types = inferTypes(model);
  // Softmax stays float on both sides: ORT's QLinearSoftmax was slower than float Softmax here (3.6 vs 2.6 ms on
  // YOLOv8's DFL), and 8-bit probabilities blur the box distribution DFL integrates.
  const softmax = new Set(g.node.filter((n) => n.opType === 'Softmax').flatMap((n) => [...n.input, ...n.output]));
  return [...set].filter((t) => feeds.has(t) && !softmax.has(t) && (types.get(t) ?? DT.FLOAT) === DT.FLOAT);
}

/** Tensors from which some Conv/Gemm/MatMul is reachable downstream (that op's own inputs included). */
function feedsWeightedOp(g: GraphProto): Set<string> {
  const out = new Set<string>();
  for (let i = g.node.length - 1; i >= 0; i--) {
    const n = g.node[i] as NodeProto;
    if (n.opType in WEIGHT_AXIS || n.output.some((o) => out.has(o))) for (const x of n.input) if (x) out.add(x);
  }
  return out;
}

function selectedNodes(g: GraphProto, opts: QdqOptions): NodeProto[] {
  const exNodes = new Set(opts.excludeNodes ?? []);
  const exOps = new Set(opts.excludeOps ?? []);
  return g.node.filter((n) => (!n.domain || n.domain === DEFAULT_DOMAIN) && n.opType in QUANT_INPUTS && !exOps.has(n.opType) && !(n.name && exNodes.has(n.name)));
}

export function activationParams(r: Range, type: ActivationType): { scale: number; zeroPoint: number } {
  // The range must hold 0 exactly so zero padding stays exact.
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  if (type === 'int8') {
    const a = Math.max(Math.abs(lo), Math.abs(hi));
    return { scale: a > 0 ? a / 127 : 1, zeroPoint: 0 };
  }
  const scale = hi - lo > 0 ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Opsets before 13 lack per-channel QuantizeLinear; these ops changed signature on the way to 13. */
const CHANGED_BY_13 = new Set(['Split', 'Squeeze', 'Unsqueeze', 'ReduceSum']);

function ensureOpset13(model: ModelProto): void {
  const v = opsetVersion(model, DEFAULT_DOMAIN) ?? 0;
  if (v >= 13) return;
  const blocking = model.graph.node.filter((n) => CHANGED_BY_13.has(n.opType) && (!n.domain || n.domain === DEFAULT_DOMAIN));
  if (blocking.length) {
    throw new CvoptError('MODEL_INVALID', `the model uses opset ${v}; per-channel QDQ needs opset 13, and ${[...new Set(blocking.map((n) => n.opType))].join(', ')} changed signature since opset ${v}`, {
      hint: 're-export the FP32 model with opset 13 or newer (cvopt export --opset 13)',
    });
  }
  for (const o of model.opsetImport) if (!o.domain || o.domain === DEFAULT_DOMAIN) o.version = 13;
  if ((model.irVersion ?? 0) < 7) model.irVersion = 7;
}

function cloneModel(m: ModelProto): ModelProto {
  // Tensors' raw bytes are shared (never mutated); node and graph structure is copied.
  return {
    ...m,
    opsetImport: m.opsetImport.map((o) => ({ ...o })),
    metadataProps: m.metadataProps.map((p) => ({ ...p })),
    graph: {
      ...m.graph,
      node: m.graph.node.map((n) => ({ ...n, input: [...n.input], output: [...n.output] })),
      initializer: [...m.graph.initializer],
      input: [...m.graph.input],
      output: [...m.graph.output],
      valueInfo: [...m.graph.valueInfo],
    },
  };
}

/** Insert Q/DQ pairs using calibrated ranges. Tensors without a range stay float. */
export function quantizeQdq(source: ModelProto, ranges: ReadonlyMap<string, Range>, opts: QdqOptions = {}): QdqResult {
  const model = cloneModel(source);
  ensureOpset13(model);
  const g = model.graph;
  const act = opts.activations ?? 'uint8';
  const zpType = act === 'uint8' ? DT.UINT8 : DT.INT8;
  const initByName = new Map(g.initializer.map((t) => [t.name ?? '', t]));
  const tensors = quantizableTensors(model, opts).filter((t) => ranges.has(t));
  const quantized = new Set(tensors);
  const scales = new Map<string, number>();
  const newInits: TensorProto[] = [];
  const pairFor = (name: string): NodeProto[] => {
    const r = ranges.get(name) as Range;
    const { scale, zeroPoint } = activationParams(r, act);
    scales.set(name, scale);
    newInits.push(makeTensor(`${name}_scale`, DT.FLOAT, [], [scale]), makeTensor(`${name}_zero_point`, zpType, [], [zeroPoint]));
    return [
      node('QuantizeLinear', [name, `${name}_scale`, `${name}_zero_point`], [`${name}_quantized`], { name: `${name}_QuantizeLinear` }),
      node('DequantizeLinear', [`${name}_quantized`, `${name}_scale`, `${name}_zero_point`], [`${name}_dequantized`], { name: `${name}_DequantizeLinear` }),
    ];
  };

  const out: NodeProto[] = [];
  for (const inp of g.input) if (quantized.has(inp.name)) out.push(...pairFor(inp.name));
  const selected = new Set(selectedNodes(g, opts));
  const quantizedNodes: string[] = [];
  const weightDq: NodeProto[] = [];
  const removedInits = new Set<string>();
  for (const n of g.node) {
    // Consumers read the dequantized copy.
    n.input = n.input.map((i) => (quantized.has(i) ? `${i}_dequantized` : i));
    const axisOf = WEIGHT_AXIS[n.opType];
    const x = n.input[0]?.replace(/_dequantized$/, '') ?? '';
    if (selected.has(n) && axisOf && quantized.has(x)) {
      const wName = n.input[1] ?? '';
      const w = initByName.get(wName);
      if (w && w.dataType === DT.FLOAT) {
        const axis = axisOf(n);
        const wq = quantizeWeight(w, axis, opts.reduceRange ?? defaultReduceRange());
        newInits.push(wq.q, wq.scale, wq.zp);
        removedInits.add(wName);
        weightDq.push(node('DequantizeLinear', [wq.q.name ?? '', wq.scale.name ?? '', wq.zp.name ?? ''], [`${wName}_dequantized_${n.name ?? out.length}`], { name: `${wName}_DequantizeLinear_${n.name ?? out.length}`, attrs: [attr.int('axis', axis)] }));
        n.input[1] = `${wName}_dequantized_${n.name ?? out.length}`;
        const bName = n.input[2];
        const b = bName ? initByName.get(bName) : undefined;
        if (bName && b && b.dataType === DT.FLOAT) {
          const bq = quantizeBias(b, scales.get(x) ?? 1, wq.channelScales);
          newInits.push(bq.q, bq.scale, bq.zp);
          removedInits.add(bName);
          weightDq.push(node('DequantizeLinear', [bq.q.name ?? '', bq.scale.name ?? '', bq.zp.name ?? ''], [`${bName}_dequantized_${n.name ?? out.length}`], { name: `${bName}_DequantizeLinear_${n.name ?? out.length}`, attrs: [attr.int('axis', 0)] }));
          n.input[2] = `${bName}_dequantized_${n.name ?? out.length}`;
        }
      }
    }
    if (selected.has(n)) quantizedNodes.push(n.name ?? n.opType);
    out.push(n);
    for (const o of n.output) if (quantized.has(o)) out.push(...pairFor(o));
  }
  // A weight still read in float by another node keeps its float initializer.
  const stillUsed = new Set(out.flatMap((n) => n.input));
  g.initializer = [...g.initializer.filter((t) => !removedInits.has(t.name ?? '') || stillUsed.has(t.name ?? '')), ...newInits];
  g.node = [...weightDq, ...out];
  g.valueInfo = g.valueInfo.filter((v) => !quantized.has(v.name));
  model.producerName = 'cvopt';
  model.metadataProps = [...model.metadataProps.filter((p) => p.key !== 'cvopt.quantization'), { key: 'cvopt.quantization', value: `qdq static, weights int8 per-channel${(opts.reduceRange ?? defaultReduceRange()) ? ' (7-bit)' : ''}, activations ${act}` }];
  return { model, quantizedNodes, quantizedTensors: tensors.length };
}

function quantizeWeight(w: TensorProto, axis: number, reduceRange: boolean): { q: TensorProto; scale: TensorProto; zp: TensorProto; channelScales: Float64Array } {
  const v = tensorValues(w);
  const dims = w.dims;
  const C = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const qmax = reduceRange ? 63 : 127;
  const absmax = new Float64Array(C);
  for (let i = 0; i < v.length; i++) {
    const c = Math.floor(i / inner) % C;
    const a = Math.abs(v[i] as number);
    if (a > (absmax[c] as number)) absmax[c] = a;
  }
  const scales = Float64Array.from(absmax, (a) => (a > 0 ? a / qmax : 1));
  const q = new Int8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = Math.floor(i / inner) % C;
    q[i] = Math.max(-qmax, Math.min(qmax, Math.round((v[i] as number) / (scales[c] as number))));
  }
  const name = w.name ?? 'w';
  // Scales go through float32 in the file; quantize against the stored value so DQ reproduces it exactly.
  const stored = Float64Array.from(new Float32Array(scales));
  return {
    q: makeTensor(`${name}_quantized`, DT.INT8, dims, q),
    scale: makeTensor(`${name}_scale`, DT.FLOAT, [C], stored),
    zp: makeTensor(`${name}_zero_point`, DT.INT8, [C], new Int8Array(C)),
    channelScales: stored,
  };
}

function quantizeBias(b: TensorProto, inputScale: number, weightScales: Float64Array): { q: TensorProto; scale: TensorProto; zp: TensorProto } {
  const v = tensorValues(b);
  const name = b.name ?? 'b';
  const s = Float64Array.from(new Float32Array(v.map((_, c) => inputScale * (weightScales[c] ?? 1))));
  const q = Int32Array.from(v, (x, c) => Math.max(-2147483647, Math.min(2147483647, Math.round(x / (s[c] as number)))));
  return {
    q: makeTensor(`${name}_quantized`, DT.INT32, [v.length], q),
    scale: makeTensor(`${name}_scale`, DT.FLOAT, [v.length], s),
    zp: makeTensor(`${name}_zero_point`, DT.INT32, [v.length], new Int32Array(v.length)),
  };
}

/** A copy of the model whose graph outputs also include these intermediate tensors (for calibration and errors). */
export function withExtraOutputs(source: ModelProto, names: readonly string[]): ModelProto {
  const model = cloneModel(source);
  const have = new Set(model.graph.output.map((o) => o.name));
  // Declared with their real element type: ORT rejects a float output bound to an int64 shape tensor.
  const types = inferTypes(source);
  for (const n of names) if (!have.has(n)) model.graph.output.push(valueInfo(n, types.get(n) ?? DT.FLOAT, null));
  return model;
}
