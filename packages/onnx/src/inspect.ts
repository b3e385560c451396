import { readOnnx, type ExternalDataFile, type LoadedOnnx } from './io.js';
import type { GraphProto, ModelProto, NodeProto, ValueInfo } from './model.js';
import { dataTypeName, tensorByteSize } from './tensor.js';

/** A dimension: its size, its symbolic name when dynamic, or null when neither is given. */
export type Dim = number | string | null;

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: Dim[] | null;
  /** True when any dimension is symbolic or unknown. */
  dynamic: boolean;
}

export interface OperatorCount {
  domain: string;
  opType: string;
  count: number;
}

export interface OnnxInspection {
  path: string;
  fileBytes: number;
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  nodes: number;
  operators: OperatorCount[];
  initializers: { count: number; bytes: number; byType: Record<string, { count: number; bytes: number }> };
  externalData: ExternalDataFile[];
  metadata: Record<string, string>;
  precision: 'fp32' | 'fp16' | 'int8';
}

export const DEFAULT_DOMAIN = 'ai.onnx';

/** '' and 'ai.onnx' name the same default domain. */
export function domainOf(node: NodeProto): string {
  return !node.domain || node.domain === DEFAULT_DOMAIN ? DEFAULT_DOMAIN : node.domain;
}

export function opsetVersion(model: ModelProto, domain: string): number | undefined {
  const d = domain === DEFAULT_DOMAIN ? '' : domain;
  return model.opsetImport.find((o) => (!o.domain || o.domain === DEFAULT_DOMAIN ? '' : o.domain) === d)?.version;
}

export function valueInfoOf(v: ValueInfo): TensorInfo {
  const tt = v.type?.tensorType;
  const shape = tt?.shape ? tt.shape.dim.map((d): Dim => (d.dimValue !== undefined ? d.dimValue : d.dimParam !== undefined && d.dimParam !== '' ? d.dimParam : null)) : null;
  return {
    name: v.name,
    dtype: dataTypeName(tt?.elemType ?? 0),
    shape,
    dynamic: shape === null || shape.some((d) => typeof d !== 'number' || d <= 0),
  };
}

/** Graph inputs that are real inputs: old IRs also list every initializer as an input. */
export function realInputs(g: GraphProto): ValueInfo[] {
  const inits = new Set(g.initializer.map((t) => t.name));
  return g.input.filter((i) => !inits.has(i.name));
}

/** Every node, subgraphs (If/Loop/Scan bodies) included. */
export function* allNodes(g: GraphProto): Generator<NodeProto> {
  for (const n of g.node) {
    yield n;
    for (const a of n.attribute) {
      if (a.g) yield* allNodes(a.g);
      for (const sub of a.graphs ?? []) yield* allNodes(sub);
    }
  }
}

const INT8_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']);

export function modelPrecision(model: ModelProto): 'fp32' | 'fp16' | 'int8' {
  for (const n of allNodes(model.graph)) if (INT8_OPS.has(n.opType) || n.opType.startsWith('QLinear')) return 'int8';
  let f16 = 0;
  let f32 = 0;
  for (const t of model.graph.initializer) {
    if (t.dataType === 10) f16 += tensorByteSize(t);
    else if (t.dataType === 1) f32 += tensorByteSize(t);
  }
  return f16 > f32 ? 'fp16' : 'fp32';
}

/** What an ONNX file contains, read without running it. */
export function inspectOnnx(pathOrLoaded: string | LoadedOnnx): OnnxInspection {
  const loaded = typeof pathOrLoaded === 'string' ? readOnnx(pathOrLoaded) : pathOrLoaded;
  const { model } = loaded;
  const g = model.graph;
  const ops = new Map<string, OperatorCount>();
  let nodes = 0;
  for (const n of allNodes(g)) {
    nodes++;
    const domain = domainOf(n);
    const key = `${domain}::${n.opType}`;
    const c = ops.get(key);
    if (c) c.count++;
    else ops.set(key, { domain, opType: n.opType, count: 1 });
  }
  const byType: Record<string, { count: number; bytes: number }> = {};
  let bytes = 0;
  for (const t of g.initializer) {
    const b = tensorByteSize(t);
    bytes += b;
    const k = dataTypeName(t.dataType);
    const e = (byType[k] ??= { count: 0, bytes: 0 });
    e.count++;
    e.bytes += b;
  }
  return {
    path: loaded.path,
    fileBytes: loaded.fileBytes,
    irVersion: model.irVersion ?? 0,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    opsets: model.opsetImport.map((o) => ({ domain: o.domain ? o.domain : DEFAULT_DOMAIN, version: o.version })),
    inputs: realInputs(g).map(valueInfoOf),
    outputs: g.output.map(valueInfoOf),
    nodes,
    operators: [...ops.values()].sort((a, b) => b.count - a.count || a.opType.localeCompare(b.opType)),
    initializers: { count: g.initializer.length, bytes, byType },
    externalData: loaded.externalData,
    metadata: Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value])),
    precision: modelPrecision(model),
  };
}
