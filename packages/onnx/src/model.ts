import { ProtoReader, ProtoWriter, readFields, WIRE_I32, WIRE_LEN, WIRE_VARINT, type DecodeContext } from './protobuf.js';

/**
 * The ONNX message types cvopt reads and writes, with the field numbers of onnx/onnx.proto (proto2). Fields we do
 * not model (training info, functions, sparse initializers, ...) are kept as raw bytes in `unknown`, so a model
 * read and written again keeps them.
 */

export interface StringStringEntry {
  key: string;
  value: string;
}

export interface OpsetId {
  /** Absent and '' both mean the default domain; presence is kept so files round-trip exactly. */
  domain?: string;
  version: number;
}

export interface TensorShapeDim {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
  unknown?: Uint8Array[];
}

export interface TypeProto {
  tensorType?: { elemType?: number; shape?: { dim: TensorShapeDim[]; unknown?: Uint8Array[] }; unknown?: Uint8Array[] };
  denotation?: string;
  unknown?: Uint8Array[];
}

export interface ValueInfo {
  name: string;
  type?: TypeProto;
  docString?: string;
  unknown?: Uint8Array[];
}

export interface TensorProto {
  name?: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  uint64Data?: number[];
  stringData?: Uint8Array[];
  externalData?: StringStringEntry[];
  /** 1 = EXTERNAL: the bytes live in the file named by externalData.location. */
  dataLocation?: number;
  docString?: string;
  unknown?: Uint8Array[];
}

export const ATTR = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

export interface AttributeProto {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  refAttrName?: string;
  docString?: string;
  unknown?: Uint8Array[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute: AttributeProto[];
  docString?: string;
  unknown?: Uint8Array[];
}

export interface GraphProto {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  docString?: string;
  input: ValueInfo[];
  output: ValueInfo[];
  valueInfo: ValueInfo[];
  unknown?: Uint8Array[];
}

export interface ModelProto {
  irVersion?: number;
  opsetImport: OpsetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProto;
  metadataProps: StringStringEntry[];
  unknown?: Uint8Array[];
}

// ---- decoding -------------------------------------------------------------------------------------------------

function decodeEntry(r: ProtoReader): StringStringEntry {
  const e: StringStringEntry = { key: '', value: '' };
  readFields(r, [], (f, w) => {
    if (f === 1 && w === WIRE_LEN) e.key = r.string();
    else if (f === 2 && w === WIRE_LEN) e.value = r.string();
    else return false;
    return true;
  });
  return e;
}

function decodeOpset(r: ProtoReader): OpsetId {
  const o: OpsetId = { version: 0 };
  readFields(r, [], (f, w) => {
    if (f === 1 && w === WIRE_LEN) o.domain = r.string();
    else if (f === 2 && w === WIRE_VARINT) o.version = r.varint();
    else return false;
    return true;
  });
  return o;
}

function decodeDim(r: ProtoReader): TensorShapeDim {
  const d: TensorShapeDim = {};
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    if (f === 1 && w === WIRE_VARINT) d.dimValue = r.varint();
    else if (f === 2 && w === WIRE_LEN) d.dimParam = r.string();
    else if (f === 3 && w === WIRE_LEN) d.denotation = r.string();
    else return false;
    return true;
  });
  if (unknown.length) d.unknown = unknown;
  return d;
}

function decodeType(r: ProtoReader): TypeProto {
  const t: TypeProto = {};
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    if (f === 1 && w === WIRE_LEN) {
      const tr = r.sub('tensor_type');
      const tt: NonNullable<TypeProto['tensorType']> = {};
      const tu: Uint8Array[] = [];
      readFields(tr, tu, (f2, w2) => {
        if (f2 === 1 && w2 === WIRE_VARINT) tt.elemType = tr.varint();
        else if (f2 === 2 && w2 === WIRE_LEN) {
          const sr = tr.sub('shape');
          const shape: { dim: TensorShapeDim[]; unknown?: Uint8Array[] } = { dim: [] };
          const su: Uint8Array[] = [];
          readFields(sr, su, (f3, w3) => {
            if (f3 !== 1 || w3 !== WIRE_LEN) return false;
            shape.dim.push(decodeDim(sr.sub(`dim[${shape.dim.length}]`)));
            return true;
          });
          if (su.length) shape.unknown = su;
          tt.shape = shape;
        } else return false;
        return true;
      });
      if (tu.length) tt.unknown = tu;
      t.tensorType = tt;
    } else if (f === 6 && w === WIRE_LEN) t.denotation = r.string();
    else return false;
    return true;
  });
  if (unknown.length) t.unknown = unknown;
  return t;
}

function decodeValueInfo(r: ProtoReader): ValueInfo {
  const v: ValueInfo = { name: '' };
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    if (f === 1 && w === WIRE_LEN) v.name = r.string();
    else if (f === 2 && w === WIRE_LEN) v.type = decodeType(r.sub('type'));
    else if (f === 3 && w === WIRE_LEN) v.docString = r.string();
    else return false;
    return true;
  });
  if (unknown.length) v.unknown = unknown;
  return v;
}

export function decodeTensor(r: ProtoReader): TensorProto {
  const t: TensorProto = { dims: [], dataType: 0 };
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    switch (f) {
      case 1:
        r.packedVarints(w, t.dims);
        return true;
      case 2:
        if (w !== WIRE_VARINT) return false;
        t.dataType = r.varint();
        return true;
      case 4:
        r.packedFloats(w, (t.floatData ??= []));
        return true;
      case 5:
        r.packedVarints(w, (t.int32Data ??= []));
        return true;
      case 6:
        if (w !== WIRE_LEN) return false;
        (t.stringData ??= []).push(r.bytes());
        return true;
      case 7:
        r.packedVarints(w, (t.int64Data ??= []));
        return true;
      case 8:
        if (w !== WIRE_LEN) return false;
        t.name = r.string();
        return true;
      case 9:
        if (w !== WIRE_LEN) return false;
        t.rawData = r.bytes();
        return true;
      case 10:
        r.packedDoubles(w, (t.doubleData ??= []));
        return true;
      case 11:
        r.packedVarints(w, (t.uint64Data ??= []));
        return true;
      case 12:
        if (w !== WIRE_LEN) return false;
        t.docString = r.string();
        return true;
      case 13:
        if (w !== WIRE_LEN) return false;
        (t.externalData ??= []).push(decodeEntry(r.sub('external_data')));
        return true;
      case 14:
        if (w !== WIRE_VARINT) return false;
        t.dataLocation = r.varint();
        return true;
      default:
        return false;
    }
  });
  if (unknown.length) t.unknown = unknown;
  return t;
}

function decodeAttribute(r: ProtoReader): AttributeProto {
  const a: AttributeProto = { name: '' };
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    switch (f) {
      case 1:
        if (w !== WIRE_LEN) return false;
        a.name = r.string();
        r.ctx.path[r.ctx.path.length - 1] += `(${a.name})`;
        return true;
      case 2:
        if (w !== WIRE_I32) return false;
        a.f = r.fixed32Float();
        return true;
      case 3:
        if (w !== WIRE_VARINT) return false;
        a.i = r.varint();
        return true;
      case 4:
        if (w !== WIRE_LEN) return false;
        a.s = r.bytes();
        return true;
      case 5:
        if (w !== WIRE_LEN) return false;
        a.t = decodeTensor(r.sub('t'));
        return true;
      case 6:
        if (w !== WIRE_LEN) return false;
        a.g = decodeGraph(r.sub('g'));
        return true;
      case 7:
        r.packedFloats(w, (a.floats ??= []));
        return true;
      case 8:
        r.packedVarints(w, (a.ints ??= []));
        return true;
      case 9:
        if (w !== WIRE_LEN) return false;
        (a.strings ??= []).push(r.bytes());
        return true;
      case 10:
        if (w !== WIRE_LEN) return false;
        (a.tensors ??= []).push(decodeTensor(r.sub('tensors')));
        return true;
      case 11:
        if (w !== WIRE_LEN) return false;
        (a.graphs ??= []).push(decodeGraph(r.sub('graphs')));
        return true;
      case 13:
        if (w !== WIRE_LEN) return false;
        a.docString = r.string();
        return true;
      case 20:
        if (w !== WIRE_VARINT) return false;
        a.type = r.varint();
        return true;
      case 21:
        if (w !== WIRE_LEN) return false;
        a.refAttrName = r.string();
        return true;
      default:
        return false;
    }
  });
  if (unknown.length) a.unknown = unknown;
  return a;
}

function decodeNode(r: ProtoReader): NodeProto {
  const n: NodeProto = { input: [], output: [], opType: '', attribute: [] };
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    if (w !== WIRE_LEN) return false;
    switch (f) {
      case 1:
        n.input.push(r.string());
        return true;
      case 2:
        n.output.push(r.string());
        return true;
      case 3:
        n.name = r.string();
        return true;
      case 4:
        n.opType = r.string();
        return true;
      case 5:
        n.attribute.push(decodeAttribute(r.sub(`attribute[${n.attribute.length}]`)));
        return true;
      case 6:
        n.docString = r.string();
        return true;
      case 7:
        n.domain = r.string();
        return true;
      default:
        return false;
    }
  });
  if (unknown.length) n.unknown = unknown;
  return n;
}

export function decodeGraph(r: ProtoReader): GraphProto {
  const g: GraphProto = { node: [], initializer: [], input: [], output: [], valueInfo: [] };
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    if (w !== WIRE_LEN) return false;
    switch (f) {
      case 1:
        g.node.push(decodeNode(r.sub(`node[${g.node.length}]`)));
        return true;
      case 2:
        g.name = r.string();
        return true;
      case 5:
        g.initializer.push(decodeTensor(r.sub(`initializer[${g.initializer.length}]`)));
        return true;
      case 10:
        g.docString = r.string();
        return true;
      case 11:
        g.input.push(decodeValueInfo(r.sub(`input[${g.input.length}]`)));
        return true;
      case 12:
        g.output.push(decodeValueInfo(r.sub(`output[${g.output.length}]`)));
        return true;
      case 13:
        g.valueInfo.push(decodeValueInfo(r.sub(`value_info[${g.valueInfo.length}]`)));
        return true;
      default:
        return false;
    }
  });
  if (unknown.length) g.unknown = unknown;
  return g;
}

/** Decode a ModelProto. A corrupt or truncated buffer throws MODEL_INVALID naming the byte offset and field. */
export function decodeModel(buf: Uint8Array, file?: string): ModelProto {
  const ctx: DecodeContext = { path: ['ModelProto'] };
  if (file) ctx.file = file;
  const r = new ProtoReader(buf, 0, buf.length, ctx);
  const m: Partial<ModelProto> & { opsetImport: OpsetId[]; metadataProps: StringStringEntry[] } = { opsetImport: [], metadataProps: [] };
  const unknown: Uint8Array[] = [];
  readFields(r, unknown, (f, w) => {
    switch (f) {
      case 1:
        if (w !== WIRE_VARINT) return false;
        m.irVersion = r.varint();
        return true;
      case 2:
        if (w !== WIRE_LEN) return false;
        m.producerName = r.string();
        return true;
      case 3:
        if (w !== WIRE_LEN) return false;
        m.producerVersion = r.string();
        return true;
      case 4:
        if (w !== WIRE_LEN) return false;
        m.domain = r.string();
        return true;
      case 5:
        if (w !== WIRE_VARINT) return false;
        m.modelVersion = r.varint();
        return true;
      case 6:
        if (w !== WIRE_LEN) return false;
        m.docString = r.string();
        return true;
      case 7:
        if (w !== WIRE_LEN) return false;
        m.graph = decodeGraph(r.sub('graph'));
        return true;
      case 8:
        if (w !== WIRE_LEN) return false;
        m.opsetImport.push(decodeOpset(r.sub('opset_import')));
        return true;
      case 14:
        if (w !== WIRE_LEN) return false;
        m.metadataProps.push(decodeEntry(r.sub('metadata_props')));
        return true;
      default:
        return false;
    }
  });
  if (unknown.length) m.unknown = unknown;
  if (!m.graph) r.fail('the model has no graph (field 7); this is not an ONNX model', 0);
  if (m.irVersion === undefined) r.fail('the model has no ir_version (field 1); this is not an ONNX model', 0);
  return m as ModelProto;
}

// ---- encoding -------------------------------------------------------------------------------------------------

function encodeEntry(w: ProtoWriter, e: StringStringEntry): void {
  w.string(1, e.key);
  w.string(2, e.value);
}

function encodeType(w: ProtoWriter, t: TypeProto): void {
  const tt = t.tensorType;
  if (tt) {
    w.message(1, (tw) => {
      tw.int(1, tt.elemType);
      const shape = tt.shape;
      if (shape)
        tw.message(2, (sw) => {
          for (const d of shape.dim)
            sw.message(1, (dw) => {
              dw.int(1, d.dimValue);
              dw.string(2, d.dimParam);
              dw.string(3, d.denotation);
              dw.unknown(d.unknown);
            });
          sw.unknown(shape.unknown);
        });
      tw.unknown(tt.unknown);
    });
  }
  w.string(6, t.denotation);
  w.unknown(t.unknown);
}

function encodeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  if (v.type) {
    const t = v.type;
    w.message(2, (tw) => encodeType(tw, t));
  }
  w.string(3, v.docString);
  w.unknown(v.unknown);
}

export function encodeTensor(w: ProtoWriter, t: TensorProto): void {
  w.packedVarints(1, t.dims);
  w.int(2, t.dataType);
  w.packedFloats(4, t.floatData);
  w.packedVarints(5, t.int32Data);
  for (const s of t.stringData ?? []) w.bytes(6, s);
  w.packedVarints(7, t.int64Data);
  w.string(8, t.name);
  w.bytes(9, t.rawData);
  w.packedDoubles(10, t.doubleData);
  w.packedVarints(11, t.uint64Data);
  w.string(12, t.docString);
  for (const e of t.externalData ?? []) w.message(13, (ew) => encodeEntry(ew, e));
  w.int(14, t.dataLocation);
  w.unknown(t.unknown);
}

function encodeAttribute(w: ProtoWriter, a: AttributeProto): void {
  w.string(1, a.name);
  w.float(2, a.f);
  w.int(3, a.i);
  w.bytes(4, a.s);
  if (a.t) {
    const t = a.t;
    w.message(5, (tw) => encodeTensor(tw, t));
  }
  if (a.g) {
    const g = a.g;
    w.message(6, (gw) => encodeGraph(gw, g));
  }
  w.packedFloats(7, a.floats);
  w.packedVarints(8, a.ints);
  for (const s of a.strings ?? []) w.bytes(9, s);
  for (const t of a.tensors ?? []) w.message(10, (tw) => encodeTensor(tw, t));
  for (const g of a.graphs ?? []) w.message(11, (gw) => encodeGraph(gw, g));
  w.string(13, a.docString);
  w.int(20, a.type);
  w.string(21, a.refAttrName);
  w.unknown(a.unknown);
}

function encodeNode(w: ProtoWriter, n: NodeProto): void {
  for (const s of n.input) w.string(1, s);
  for (const s of n.output) w.string(2, s);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attribute) w.message(5, (aw) => encodeAttribute(aw, a));
  w.string(6, n.docString);
  w.string(7, n.domain);
  w.unknown(n.unknown);
}

export function encodeGraph(w: ProtoWriter, g: GraphProto): void {
  for (const n of g.node) w.message(1, (nw) => encodeNode(nw, n));
  w.string(2, g.name);
  for (const t of g.initializer) w.message(5, (tw) => encodeTensor(tw, t));
  w.string(10, g.docString);
  for (const v of g.input) w.message(11, (vw) => encodeValueInfo(vw, v));
  for (const v of g.output) w.message(12, (vw) => encodeValueInfo(vw, v));
  for (const v of g.valueInfo) w.message(13, (vw) => encodeValueInfo(vw, v));
  w.unknown(g.unknown);
}

export function encodeModel(m: ModelProto): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  w.string(4, m.domain);
  w.int(5, m.modelVersion);
  w.string(6, m.docString);
  w.message(7, (gw) => encodeGraph(gw, m.graph));
  for (const o of m.opsetImport)
    w.message(8, (ow) => {
      ow.string(1, o.domain);
      ow.int(2, o.version);
    });
  for (const e of m.metadataProps) w.message(14, (ew) => encodeEntry(ew, e));
  w.unknown(m.unknown);
  return w.finish();
}
