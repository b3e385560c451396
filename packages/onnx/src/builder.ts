import { ATTR, type AttributeProto, type ModelProto, type NodeProto, type OpsetId, type TensorProto, type ValueInfo } from './model.js';
import { toUtf8 } from './protobuf.js';

/** Small constructors for ONNX messages: transforms use them to add nodes, tests to build models. */

export function valueInfo(name: string, elemType: number, shape: (number | string)[] | null): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        ...(shape ? { shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}),
      },
    },
  };
}

export const attr = {
  int: (name: string, i: number): AttributeProto => ({ name, type: ATTR.INT, i }),
  float: (name: string, f: number): AttributeProto => ({ name, type: ATTR.FLOAT, f }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: ATTR.INTS, ints }),
  floats: (name: string, floats: number[]): AttributeProto => ({ name, type: ATTR.FLOATS, floats }),
  string: (name: string, s: string): AttributeProto => ({ name, type: ATTR.STRING, s: toUtf8(s) }),
  tensor: (name: string, t: TensorProto): AttributeProto => ({ name, type: ATTR.TENSOR, t }),
};

export function node(opType: string, input: string[], output: string[], opts: { name?: string; domain?: string; attrs?: AttributeProto[] } = {}): NodeProto {
  return {
    opType,
    input,
    output,
    attribute: opts.attrs ?? [],
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    ...(opts.domain ? { domain: opts.domain } : {}),
  };
}

export interface ModelSpec {
  nodes: NodeProto[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: TensorProto[];
  opset?: number;
  extraOpsets?: OpsetId[];
  irVersion?: number;
  metadata?: Record<string, string>;
  name?: string;
}

export function model(spec: ModelSpec): ModelProto {
  return {
    irVersion: spec.irVersion ?? 8,
    producerName: 'cvopt',
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }, ...(spec.extraOpsets ?? [])],
    graph: {
      name: spec.name ?? 'graph',
      node: spec.nodes,
      initializer: spec.initializers ?? [],
      input: spec.inputs,
      output: spec.outputs,
      valueInfo: [],
    },
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
}

export function getAttr(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute.find((a) => a.name === name);
}
