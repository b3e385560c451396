import { CvoptError } from '@cvopt/core';
import { floatToHalf, halfToFloat } from '@cvopt/engines';

/**
 * Tensors of the Open Inference Protocol (KServe v2) as JSON and with the binary tensor data extension: the request
 * body is a JSON header of `Inference-Header-Content-Length` bytes followed by the raw little-endian tensors of
 * every input that declares `parameters.binary_data_size`, in input order. Decoding runs in the offload worker
 * (a 15 MB JSON body would hold the HTTP thread for a second); it checks everything a client can get wrong.
 */

export const V2_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64'] as const;
export type V2Datatype = (typeof V2_DATATYPES)[number];

export type V2Data = Float32Array | Float64Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | BigInt64Array | BigUint64Array;

export interface V2Tensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  parameters?: Record<string, unknown>;
  /** FP16 as its raw bits (Uint16Array); every other type in its natural typed array. */
  data: V2Data;
}

export interface V2Request {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: V2Tensor[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

const BYTES: Record<V2Datatype, number> = { BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8 };

export const bytesPer = (t: V2Datatype): number => BYTES[t];

function bad(message: string, field: string, code: 'INVALID_ARGUMENT' | 'TENSOR_SHAPE' = 'INVALID_ARGUMENT'): CvoptError {
  return new CvoptError(code, message, { where: { field }, hint: 'see the Open Inference Protocol REST specification and GET /v2/models/{name} for the expected tensors' });
}

/** Typed array of `n` elements of `t` (aligned copy of `bytes` when given). */
function typed(t: V2Datatype, n: number, bytes?: Uint8Array): V2Data {
  const b = bytes ? new Uint8Array(bytes).buffer : new ArrayBuffer(n * BYTES[t]);
  switch (t) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(b);
    case 'INT8':
      return new Int8Array(b);
    case 'UINT16':
    case 'FP16':
      return new Uint16Array(b);
    case 'INT16':
      return new Int16Array(b);
    case 'UINT32':
      return new Uint32Array(b);
    case 'INT32':
      return new Int32Array(b);
    case 'FP32':
      return new Float32Array(b);
    case 'FP64':
      return new Float64Array(b);
    case 'INT64':
      return new BigInt64Array(b);
    case 'UINT64':
      return new BigUint64Array(b);
  }
}

/** Largest nesting of [ and { in a JSON text, stopping early past `limit` (strings skipped). */
export function jsonDepth(text: Uint8Array, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

function parseJson(bytes: Uint8Array, maxDepth: number, what: string): unknown {
  if (jsonDepth(bytes, maxDepth) > maxDepth) throw bad(`${what} nests deeper than ${maxDepth} levels`, 'body');
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw bad(`${what} is not valid JSON: ${(e as Error).message.slice(0, 200)}`, 'body');
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Flatten nested JSON data in row-major order into `out`, checking every element's type. */
function fill(t: V2Datatype, data: unknown, out: V2Data, field: string): void {
  let k = 0;
  const n = out.length;
  const put = (v: unknown) => {
    if (k >= n) throw bad(`${field} holds more elements than its shape`, field, 'TENSOR_SHAPE');
    if (t === 'BOOL') {
      if (typeof v !== 'boolean') throw bad(`${field} must hold booleans`, field);
      (out as Uint8Array)[k++] = v ? 1 : 0;
      return;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${field} must hold finite numbers, found ${typeof v === 'number' ? String(v) : typeof v}`, field);
    if (t === 'FP16') (out as Uint16Array)[k++] = floatToHalf(v);
    else if (t === 'INT64' || t === 'UINT64') {
      if (!Number.isInteger(v)) throw bad(`${field} must hold integers for ${t}`, field);
      (out as BigInt64Array)[k++] = BigInt(v);
    } else if (t === 'FP32' || t === 'FP64') {
      (out as Float32Array)[k] = v;
      if (!Number.isFinite((out as Float32Array)[k])) throw bad(`${field} holds ${v}, beyond the range of ${t}`, field);
      k++;
    }
    else {
      if (!Number.isInteger(v)) throw bad(`${field} must hold integers for ${t}`, field);
      (out as Int32Array)[k++] = v;
    }
  };
  const walk = (x: unknown) => {
    if (Array.isArray(x)) for (const y of x) walk(y);
    else put(x);
  };
  walk(data);
  if (k !== n) throw bad(`${field} holds ${k} elements; its shape needs ${n}`, field, 'TENSOR_SHAPE');
}

export interface DecodeLimits {
  maxDepth: number;
}

/**
 * Decode an inference request: `bytes` is the whole body; `headerLength` the Inference-Header-Content-Length (the
 * whole body is JSON when absent).
 */
export function decodeV2Request(bytes: Uint8Array, headerLength: number | undefined, limits: DecodeLimits): { request: V2Request; transfer: ArrayBuffer[] } {
  const headLen = headerLength ?? bytes.length;
  if (!Number.isInteger(headLen) || headLen < 0 || headLen > bytes.length) {
    throw bad(`Inference-Header-Content-Length ${headerLength} does not fit the ${bytes.length}-byte body`, 'inference-header-content-length');
  }
  const head = parseJson(bytes.subarray(0, headLen), limits.maxDepth, 'the inference request');
  if (!isObject(head)) throw bad('the inference request must be a JSON object', 'body');
  if (head.id !== undefined && typeof head.id !== 'string') throw bad('"id" must be a string', 'id');
  if (head.parameters !== undefined && !isObject(head.parameters)) throw bad('"parameters" must be an object', 'parameters');
  if (!Array.isArray(head.inputs) || head.inputs.length === 0) throw bad('"inputs" must be a non-empty array', 'inputs');
  let offset = headLen;
  const transfer: ArrayBuffer[] = [];
  const inputs: V2Tensor[] = head.inputs.map((raw: unknown, i: number): V2Tensor => {
    const field = `inputs.${i}`;
    if (!isObject(raw)) throw bad(`${field} must be an object`, field);
    const { name, datatype, shape, parameters, data } = raw;
    if (typeof name !== 'string' || name.length === 0) throw bad(`${field}.name must be a non-empty string`, `${field}.name`);
    if (typeof datatype !== 'string' || !(V2_DATATYPES as readonly string[]).includes(datatype)) {
      throw bad(`${field}.datatype "${String(datatype)}" is not one of ${V2_DATATYPES.join(', ')}`, `${field}.datatype`);
    }
    const t = datatype as V2Datatype;
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= 1 << 30)) {
      throw bad(`${field}.shape must be an array of at most 8 non-negative integers`, `${field}.shape`, 'TENSOR_SHAPE');
    }
    if (parameters !== undefined && !isObject(parameters)) throw bad(`${field}.parameters must be an object`, `${field}.parameters`);
    const n = (shape as number[]).reduce((a, b) => a * b, 1);
    let out: V2Data;
    const binarySize = parameters?.binary_data_size;
    if (binarySize !== undefined) {
      if (!Number.isInteger(binarySize) || (binarySize as number) < 0) throw bad(`${field}.parameters.binary_data_size must be a byte count`, `${field}.parameters.binary_data_size`);
      const size = binarySize as number;
      if (size !== n * BYTES[t]) throw bad(`${field} declares ${size} binary bytes; ${t} [${shape.join(', ')}] needs ${n * BYTES[t]}`, `${field}.parameters.binary_data_size`, 'TENSOR_SHAPE');
      if (offset + size > bytes.length) throw bad(`${field}'s binary data runs past the end of the body`, `${field}.parameters.binary_data_size`);
      out = typed(t, n, bytes.subarray(offset, offset + size));
      offset += size;
      if (t === 'FP32' || t === 'FP64') {
        for (let k = 0; k < out.length; k++) if (!Number.isFinite((out as Float32Array)[k])) throw bad(`${field} holds a non-finite value at element ${k}`, `${field}.data`);
      } else if (t === 'FP16') {
        for (let k = 0; k < out.length; k++) if (((out as Uint16Array)[k]! & 0x7c00) === 0x7c00) throw bad(`${field} holds a non-finite value at element ${k}`, `${field}.data`);
      }
    } else {
      if (!Array.isArray(data)) throw bad(`${field}.data must be an array (or send it binary with parameters.binary_data_size)`, `${field}.data`);
      if (n > bytes.length) throw bad(`${field}.shape [${shape.join(', ')}] needs ${n} elements; the body cannot hold them`, `${field}.shape`, 'TENSOR_SHAPE');
      out = typed(t, n);
      fill(t, data, out, `${field}.data`);
    }
    transfer.push(out.buffer as ArrayBuffer);
    return { name, datatype: t, shape: shape as number[], ...(parameters ? { parameters: parameters as Record<string, unknown> } : {}), data: out };
  });
  if (offset !== bytes.length) throw bad(`the body has ${bytes.length - offset} bytes after the last binary input`, 'body');
  let outputs: V2Request['outputs'];
  if (head.outputs !== undefined) {
    if (!Array.isArray(head.outputs)) throw bad('"outputs" must be an array', 'outputs');
    outputs = head.outputs.map((o: unknown, i: number) => {
      if (!isObject(o) || typeof o.name !== 'string') throw bad(`outputs.${i}.name must be a string`, `outputs.${i}.name`);
      if (o.parameters !== undefined && !isObject(o.parameters)) throw bad(`outputs.${i}.parameters must be an object`, `outputs.${i}.parameters`);
      return { name: o.name, ...(o.parameters ? { parameters: o.parameters as Record<string, unknown> } : {}) };
    });
  }
  const request: V2Request = {
    inputs,
    ...(typeof head.id === 'string' ? { id: head.id } : {}),
    ...(head.parameters ? { parameters: head.parameters as Record<string, unknown> } : {}),
    ...(outputs ? { outputs } : {}),
  };
  return { request, transfer };
}

/** An input's values as float32 (the model's input type), converting FP16 bits and integer types. */
export function toFloat32(t: V2Tensor): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  const out = new Float32Array(d.length);
  if (t.datatype === 'FP16') for (let i = 0; i < d.length; i++) out[i] = halfToFloat((d as Uint16Array)[i]!);
  else for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}

export interface V2OutputTensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  data: V2Data;
}

/** What an inference response says besides its outputs. */
export interface V2ResponseHead {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: Record<string, unknown>;
}

/**
 * The response body: JSON, or with the binary extension the JSON header (outputs asked for binary carry
 * parameters.binary_data_size and no data) followed by their raw bytes. `binary(name)` says which outputs go binary.
 */
export function encodeV2Response(
  head: V2ResponseHead,
  outputs: V2OutputTensor[],
  binary: (name: string) => boolean,
): { body: Buffer; headerLength?: number } {
  const chunks: Buffer[] = [];
  const json = outputs.map((o) => {
    const base = { name: o.name, datatype: o.datatype, shape: o.shape };
    if (binary(o.name)) {
      const b = Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength);
      chunks.push(b);
      return { ...base, parameters: { binary_data_size: b.length } };
    }
    const values: (number | boolean)[] = [];
    if (o.datatype === 'FP16') for (const v of o.data as Uint16Array) values.push(halfToFloat(v));
    else if (o.datatype === 'BOOL') for (const v of o.data as Uint8Array) values.push(v !== 0);
    else {
      const d = o.data as ArrayLike<number | bigint>;
      for (let i = 0; i < d.length; i++) values.push(Number(d[i]));
    }
    return { ...base, data: values };
  });
  const headText = Buffer.from(JSON.stringify({ ...head, outputs: json }));
  if (chunks.length === 0) return { body: headText };
  return { body: Buffer.concat([headText, ...chunks]), headerLength: headText.length };
}
