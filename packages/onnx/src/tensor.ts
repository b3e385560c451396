import { CvoptError } from '@cvopt/core';
// The one IEEE 754 half codec lives with the engines (ONNX Runtime feeds and outputs); weights use it too.
import { floatToHalf, halfToFloat } from '@cvopt/engines';
import type { TensorProto } from './model.js';

/** TensorProto.DataType values (onnx.proto). */
export const DT = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
} as const;

const NAMES: Record<number, string> = {
  0: 'undefined',
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
};

const SIZES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1 };

export function dataTypeName(dt: number): string {
  return NAMES[dt] ?? `type${dt}`;
}

/** Bytes per element; 4-bit types count as half a byte. */
export function elementSize(dt: number): number {
  if (dt === 21 || dt === 22 || dt === 23) return 0.5;
  return SIZES[dt] ?? 0;
}

export function elementCount(t: TensorProto): number {
  return t.dims.reduce((a, b) => a * b, 1);
}

/** The stored payload size in bytes (external data counted from its declared length when present). */
export function tensorByteSize(t: TensorProto): number {
  if (t.rawData) return t.rawData.length;
  const len = t.externalData?.find((e) => e.key === 'length');
  if (len) return Number(len.value);
  return Math.ceil(elementCount(t) * elementSize(t.dataType));
}

function viewOf(raw: Uint8Array): DataView {
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** A numeric tensor's values as float64 numbers (int64 beyond 2^53 loses precision; fine for weights and shapes). */
export function tensorValues(t: TensorProto): Float64Array {
  const n = elementCount(t);
  const out = new Float64Array(n);
  const raw = t.rawData;
  if (t.dataLocation === 1 && !raw) {
    throw new CvoptError('MODEL_INVALID', `tensor "${t.name ?? ''}" keeps its data in an external file that was not loaded`, {
      hint: 'read the model with readOnnx(path) so external data files beside it are loaded',
    });
  }
  if (raw) {
    const dv = viewOf(raw);
    const size = elementSize(t.dataType);
    if (raw.length < n * size) {
      throw new CvoptError('MODEL_INVALID', `tensor "${t.name ?? ''}" has ${raw.length} bytes of data, ${n * size} expected for dims [${t.dims.join(',')}]`);
    }
    for (let i = 0; i < n; i++) {
      switch (t.dataType) {
        case DT.FLOAT:
          out[i] = dv.getFloat32(i * 4, true);
          break;
        case DT.DOUBLE:
          out[i] = dv.getFloat64(i * 8, true);
          break;
        case DT.FLOAT16:
          out[i] = halfToFloat(dv.getUint16(i * 2, true));
          break;
        case DT.BFLOAT16:
          U32[0] = dv.getUint16(i * 2, true) << 16;
          out[i] = F32[0] as number;
          break;
        case DT.INT8:
          out[i] = dv.getInt8(i);
          break;
        case DT.UINT8:
        case DT.BOOL:
          out[i] = dv.getUint8(i);
          break;
        case DT.INT16:
          out[i] = dv.getInt16(i * 2, true);
          break;
        case DT.UINT16:
          out[i] = dv.getUint16(i * 2, true);
          break;
        case DT.INT32:
          out[i] = dv.getInt32(i * 4, true);
          break;
        case DT.UINT32:
          out[i] = dv.getUint32(i * 4, true);
          break;
        case DT.INT64:
          out[i] = Number(dv.getBigInt64(i * 8, true));
          break;
        case DT.UINT64:
          out[i] = Number(dv.getBigUint64(i * 8, true));
          break;
        default:
          throw new CvoptError('MODEL_INVALID', `tensor "${t.name ?? ''}" has data type ${dataTypeName(t.dataType)}, which cvopt cannot read as numbers`);
      }
    }
    return out;
  }
  const src =
    t.dataType === DT.FLOAT || t.dataType === DT.COMPLEX64
      ? t.floatData
      : t.dataType === DT.INT64
        ? t.int64Data
        : t.dataType === DT.DOUBLE
          ? t.doubleData
          : t.dataType === DT.UINT64 || t.dataType === DT.UINT32
            ? t.uint64Data
            : t.int32Data;
  if (t.dataType === DT.FLOAT16 || t.dataType === DT.BFLOAT16) {
    // int32_data holds the 16-bit patterns for the half types.
    for (let i = 0; i < n; i++) {
      const bits = (t.int32Data?.[i] ?? 0) & 0xffff;
      if (t.dataType === DT.FLOAT16) out[i] = halfToFloat(bits);
      else {
        U32[0] = bits << 16;
        out[i] = F32[0] as number;
      }
    }
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = src?.[i] ?? 0;
  return out;
}

/** Build an initializer from values. */
export function makeTensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new CvoptError('INTERNAL', `tensor ${name}: ${values.length} values for dims [${dims.join(',')}]`);
  const size = elementSize(dataType);
  const raw = new Uint8Array(n * size);
  const dv = viewOf(raw);
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    switch (dataType) {
      case DT.FLOAT:
        dv.setFloat32(i * 4, v, true);
        break;
      case DT.DOUBLE:
        dv.setFloat64(i * 8, v, true);
        break;
      case DT.FLOAT16:
        dv.setUint16(i * 2, floatToHalf(v), true);
        break;
      case DT.INT8:
        dv.setInt8(i, v);
        break;
      case DT.UINT8:
      case DT.BOOL:
        dv.setUint8(i, v);
        break;
      case DT.INT32:
        dv.setInt32(i * 4, v, true);
        break;
      case DT.INT64:
        dv.setBigInt64(i * 8, BigInt(Math.trunc(v)), true);
        break;
      default:
        throw new CvoptError('INTERNAL', `makeTensor: data type ${dataTypeName(dataType)} not supported`);
    }
  }
  return { name, dims: [...dims], dataType, rawData: raw };
}
