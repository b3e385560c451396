/**
 * A hand-encoded ONNX model, `y = x + x` over float32 [1, 4], used to prove an execution provider really starts.
 * Encoding it here keeps the probe free of files and of Python. Field numbers follow onnx.proto (ModelProto,
 * GraphProto, NodeProto, ValueInfoProto, TypeProto.Tensor, TensorShapeProto).
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

const key = (field: number, wire: number): number[] => varint((field << 3) | wire);
const vint = (field: number, n: number): number[] => [...key(field, 0), ...varint(n)];
const bytes = (field: number, b: number[]): number[] => [...key(field, 2), ...varint(b.length), ...b];
const str = (field: number, s: string): number[] => bytes(field, [...Buffer.from(s, 'utf8')]);

function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, vint(1, d)));
  const tensorType = [...vint(1, 1 /* FLOAT */), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

export function tinyAddModel(): Uint8Array {
  const node = [...str(1, 'x'), ...str(1, 'x'), ...str(2, 'y'), ...str(3, 'add'), ...str(4, 'Add')];
  const graph = [...bytes(1, node), ...str(2, 'probe'), ...bytes(11, valueInfo('x', [1, 4])), ...bytes(12, valueInfo('y', [1, 4]))];
  const opset = [...str(1, ''), ...vint(2, 13)];
  const model = [...vint(1, 8 /* IR version */), ...str(2, 'cvopt'), ...bytes(7, graph), ...bytes(8, opset)];
  return Uint8Array.from(model);
}
