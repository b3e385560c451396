import { CvoptError } from '@cvopt/core';
import { attr, node } from './builder.js';
import type { ModelProto, NodeProto, TensorProto } from './model.js';
import { DT, makeTensor, tensorValues } from './tensor.js';
import { inferTypes } from './types.js';

/**
 * FP16 conversion: float weights and activations become float16, graph inputs and outputs stay float32 (Casts at
 * the boundaries), and numerically sensitive parts stay float32: the ops in keepOps, the inputs that the spec
 * types as float32 (Resize scales, Upsample scales) and every node of the subgraph that computes them.
 */

export interface Fp16Options {
  /** Op types kept in float32 (default Range; add e.g. Exp, Softmax, ReduceMean for more headroom). */
  keepOps?: string[];
  /** Node names kept in float32. */
  keepNodes?: string[];
}

export interface Fp16Result {
  model: ModelProto;
  convertedNodes: number;
  keptNodes: string[];
}

/** Inputs that must be float32 whatever the rest of the graph uses. */
const FP32_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };
const FP16_MAX = 65504;

function toHalfTensor(t: TensorProto, name: string): TensorProto {
  const v = tensorValues(t).map((x) => Math.max(-FP16_MAX, Math.min(FP16_MAX, x)));
  return makeTensor(name, DT.FLOAT16, t.dims, v);
}

export function convertFp16(source: ModelProto, opts: Fp16Options = {}): Fp16Result {
  const g = source.graph;
  if (g.node.some((n) => n.attribute.some((a) => a.g || a.graphs?.length))) {
    throw new CvoptError('MODEL_INVALID', 'FP16 conversion does not handle control flow (If/Loop/Scan subgraphs)', { hint: 'export the model without control flow, or run it in FP32' });
  }
  const types = inferTypes(source);
  const producer = new Map<string, number>();
  g.node.forEach((n, i) => n.output.forEach((o) => producer.set(o, i)));
  const keepOps = new Set(opts.keepOps ?? ['Range']);
  const keepNames = new Set(opts.keepNodes ?? []);
  const keep = new Set<number>();
  g.node.forEach((n, i) => {
    if (keepOps.has(n.opType) || (n.name && keepNames.has(n.name))) keep.add(i);
  });
  // Everything that computes a float32-only input stays float32 too (shape arithmetic feeding Resize scales).
  const stack: string[] = g.node.flatMap((n) => (FP32_INPUTS[n.opType] ?? []).map((i) => n.input[i] ?? '').filter(Boolean));
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop() as string;
    if (seen.has(t)) continue;
    seen.add(t);
    const p = producer.get(t);
    if (p === undefined) continue;
    keep.add(p);
    for (const i of (g.node[p] as NodeProto).input) if (i) stack.push(i);
  }
  const isFloat = (t: string) => types.get(t) === DT.FLOAT;
  const initByName = new Map(g.initializer.map((t) => [t.name ?? '', t]));
  const graphInputs = new Set(g.input.map((v) => v.name));
  const graphOutputs = new Set(g.output.map((v) => v.name));

  // Where each float tensor lives: 'fp32' (graph inputs, kept nodes) or 'fp16' (converted nodes).
  const home = new Map<string, 'fp16' | 'fp32'>();
  for (const i of graphInputs) home.set(i, 'fp32');
  const rename = new Map<string, string>();
  g.node.forEach((n, i) => {
    for (const o of n.output) {
      if (!isFloat(o)) continue;
      home.set(o, keep.has(i) ? 'fp32' : 'fp16');
      if (!keep.has(i) && graphOutputs.has(o)) rename.set(o, `${o}__fp16`);
    }
  });

  const nodes: NodeProto[] = [];
  const casts = new Map<string, string>();
  const halfInits = new Map<string, TensorProto>();
  const usedFloatInits = new Set<string>();
  const castTo = (t: string, want: 'fp16' | 'fp32'): string => {
    const key = `${t}->${want}`;
    const have = casts.get(key);
    if (have) return have;
    const name = `${t}__to_${want}`;
    nodes.push(node('Cast', [rename.get(t) ?? t], [name], { name: `${t}_Cast_${want}`, attrs: [attr.int('to', want === 'fp16' ? DT.FLOAT16 : DT.FLOAT)] }));
    casts.set(key, name);
    return name;
  };
  let converted = 0;
  const keptNodes: string[] = [];
  g.node.forEach((n0, idx) => {
    const n: NodeProto = { ...n0, input: [...n0.input], output: n0.output.map((o) => rename.get(o) ?? o), attribute: [...n0.attribute] };
    const kept = keep.has(idx);
    if (kept) keptNodes.push(n.name ?? `${n.opType}_${idx}`);
    else converted++;
    const fp32Slots = new Set(FP32_INPUTS[n.opType] ?? []);
    n.input = n.input.map((t, slot) => {
      if (!t || !isFloat(t)) return t;
      const want: 'fp16' | 'fp32' = kept || fp32Slots.has(slot) ? 'fp32' : 'fp16';
      const init = initByName.get(t);
      if (init && !graphInputs.has(t)) {
        if (want === 'fp32') {
          usedFloatInits.add(t);
          return t;
        }
        if (!halfInits.has(t)) halfInits.set(t, toHalfTensor(init, `${t}__fp16`));
        return `${t}__fp16`;
      }
      const h = home.get(t) ?? 'fp32';
      return h === want ? (rename.get(t) ?? t) : castTo(t, want);
    });
    if (!kept) {
      n.attribute = n.attribute.map((a) => {
        if (n.opType === 'Cast' && a.name === 'to' && a.i === DT.FLOAT) return { ...a, i: DT.FLOAT16 };
        if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape') && a.name === 'value' && a.t?.dataType === DT.FLOAT) return { ...a, t: toHalfTensor(a.t, a.t.name ?? '') };
        return a;
      });
    }
    nodes.push(n);
  });
  for (const o of g.output) {
    const internal = rename.get(o.name);
    if (internal) nodes.push(node('Cast', [internal], [o.name], { name: `${o.name}_Cast_fp32`, attrs: [attr.int('to', DT.FLOAT)] }));
  }
  const initializer = [...g.initializer.filter((t) => t.dataType !== DT.FLOAT || usedFloatInits.has(t.name ?? '') || graphInputs.has(t.name ?? '')), ...halfInits.values()];
  const model: ModelProto = {
    ...source,
    opsetImport: source.opsetImport.map((o) => ({ ...o })),
    graph: { ...g, node: nodes, initializer, valueInfo: [] },
    producerName: 'cvopt',
    metadataProps: [...source.metadataProps.filter((p) => p.key !== 'cvopt.fp16'), { key: 'cvopt.fp16', value: `float16 weights and activations, float32 I/O; kept float32: ${[...keepOps].join(', ') || 'none'} + shape subgraphs` }],
  };
  return { model, convertedNodes: converted, keptNodes };
}
