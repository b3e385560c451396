import { CvoptError } from '@cvopt/core';

/**
 * The protobuf wire format, just enough for ONNX: varints, fixed 32/64-bit values and length-delimited fields.
 * No protobuf library is installed, and ONNX only needs these four wire types.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

const TWO_32 = 4294967296;
/** 2^63 as a double: values at or beyond it are the INT64_MAX/MIN sentinels (e.g. Slice ends). */
const INT64_LIMIT = 2 ** 63;

export interface DecodeContext {
  file?: string;
  /** The message path being decoded, for error messages ("ModelProto.graph.node[3]"). */
  path: string[];
}

/**
 * Deepest message nesting decoded. A subgraph costs four levels (graph → node → attribute → graph), so this allows
 * about 60 nested If/Loop bodies; real models use a handful.
 */
export const MAX_MESSAGE_DEPTH = 256;

/** A cursor over one message's bytes. Errors carry the absolute byte offset and the field path. */
export class ProtoReader {
  pos: number;
  /** The field number being read, so an error can name it. */
  field = 0;

  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly ctx: DecodeContext,
  ) {
    this.pos = start;
  }

  fail(message: string, at = this.pos): never {
    const field = this.ctx.path.join('.') + (this.field ? `, field ${this.field}` : '');
    throw new CvoptError('MODEL_INVALID', `not a valid ONNX file: ${message} at byte ${at} (in ${field})`, {
      where: { ...(this.ctx.file ? { file: this.ctx.file } : {}), field },
      details: { offset: at, field },
      hint: 'the file is corrupt or truncated; export or download it again',
    });
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a JS number: exact to 2^53, INT64_MAX/MIN sentinels land on ±2^63, negatives in two's complement. */
  varint(): number {
    let lo = 0;
    let hi = 0;
    let shift = 0;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('varint runs past the end of its message', start);
      const b = this.buf[this.pos++] as number;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      shift += 7;
      if ((b & 0x80) === 0) {
        lo >>>= 0;
        if (hi & 0x80000000) {
          const nlo = ~lo >>> 0;
          const nhi = ~hi >>> 0;
          return -(nhi * TWO_32 + nlo + 1);
        }
        return (hi >>> 0) * TWO_32 + lo;
      }
    }
    return this.fail('varint longer than 10 bytes', start);
  }

  fixed32Float(): number {
    if (this.pos + 4 > this.end) this.fail('fixed32 runs past the end of its message');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  fixed64Double(): number {
    if (this.pos + 8 > this.end) this.fail('fixed64 runs past the end of its message');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }

  /** A length-delimited field's [start, end) inside the buffer. */
  lenRange(): [number, number] {
    const at = this.pos;
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) this.fail(`length ${n} runs past the end of its message (${this.end - this.pos} bytes left)`, at);
    const s = this.pos;
    this.pos += n;
    return [s, s + n];
  }

  bytes(): Uint8Array {
    const [s, e] = this.lenRange();
    return this.buf.subarray(s, e);
  }

  string(): string {
    return DECODER.decode(this.bytes());
  }

  /** A nested message's reader; the path grows by `name` while it is decoded. */
  sub(name: string): ProtoReader {
    // Decoding recurses per level: a forged file nesting subgraphs 20 000 deep would overflow the stack.
    if (this.ctx.path.length >= MAX_MESSAGE_DEPTH) this.fail(`messages nested deeper than ${MAX_MESSAGE_DEPTH} levels`);
    const [s, e] = this.lenRange();
    return new ProtoReader(this.buf, s, e, { file: this.ctx.file, path: [...this.ctx.path, name] });
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        if (this.pos + 8 > this.end) this.fail('fixed64 runs past the end of its message');
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.lenRange();
        return;
      case WIRE_I32:
        if (this.pos + 4 > this.end) this.fail('fixed32 runs past the end of its message');
        this.pos += 4;
        return;
      default:
        this.fail(`unknown wire type ${wire}`);
    }
  }

  /** Repeated int64/int32 fields: packed (wire LEN) or one value per tag. */
  packedVarints(wire: number, out: number[]): void {
    if (wire === WIRE_VARINT) {
      out.push(this.varint());
      return;
    }
    const [s, e] = this.lenRange();
    const packed = new ProtoReader(this.buf, s, e, this.ctx);
    while (!packed.done()) out.push(packed.varint());
  }

  packedFloats(wire: number, out: number[]): void {
    if (wire === WIRE_I32) {
      out.push(this.fixed32Float());
      return;
    }
    const b = this.bytes();
    if (b.length % 4) this.fail('packed float field length is not a multiple of 4');
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    for (let i = 0; i < b.length; i += 4) out.push(dv.getFloat32(i, true));
  }

  packedDoubles(wire: number, out: number[]): void {
    if (wire === WIRE_I64) {
      out.push(this.fixed64Double());
      return;
    }
    const b = this.bytes();
    if (b.length % 8) this.fail('packed double field length is not a multiple of 8');
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    for (let i = 0; i < b.length; i += 8) out.push(dv.getFloat64(i, true));
  }
}

/**
 * Iterate a message's fields. The handler returns false for a field it does not know; those are kept verbatim
 * (tag included) in `unknown` so re-encoding loses nothing.
 */
export function readFields(r: ProtoReader, unknown: Uint8Array[], handle: (field: number, wire: number) => boolean): void {
  while (!r.done()) {
    const start = r.pos;
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) r.fail('field number 0', start);
    r.field = field;
    if (!handle(field, wire)) {
      r.skip(wire);
      unknown.push(r.buf.subarray(start, r.pos));
    }
  }
}

const DECODER = new TextDecoder('utf-8');
const ENCODER = new TextEncoder();

/** An append-only byte buffer with protobuf field helpers. Nested messages are written to their own writer first. */
export class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  rawBytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  varint(n: number): void {
    this.ensure(10);
    if (n >= 0 && n < TWO_32) {
      let v = n >>> 0;
      while (v > 0x7f) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.len++] = v;
      return;
    }
    // 64-bit values, negatives as ten-byte two's complement, as protobuf does for int64/int32.
    let big = n >= INT64_LIMIT ? 0x7fffffffffffffffn : n <= -INT64_LIMIT ? -0x8000000000000000n : BigInt(Math.trunc(n));
    if (big < 0n) big += 1n << 64n;
    while (big > 0x7fn) {
      this.buf[this.len++] = Number(big & 0x7fn) | 0x80;
      big >>= 7n;
    }
    this.buf[this.len++] = Number(big);
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, n: number | undefined): void {
    if (n === undefined) return;
    this.tag(field, WIRE_VARINT);
    this.varint(n);
  }

  float(field: number, f: number | undefined): void {
    if (f === undefined) return;
    this.tag(field, WIRE_I32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, f, true);
    this.len += 4;
  }

  bytes(field: number, b: Uint8Array | undefined): void {
    if (b === undefined) return;
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.rawBytes(b);
  }

  string(field: number, s: string | undefined): void {
    if (s === undefined) return;
    this.bytes(field, ENCODER.encode(s));
  }

  message(field: number, write: (w: ProtoWriter) => void): void {
    const w = new ProtoWriter();
    write(w);
    this.bytes(field, w.finish());
  }

  packedVarints(field: number, values: readonly number[] | undefined): void {
    if (!values || values.length === 0) return;
    const w = new ProtoWriter();
    for (const v of values) w.varint(v);
    this.bytes(field, w.finish());
  }

  packedFloats(field: number, values: readonly number[] | Float32Array | undefined): void {
    if (!values || values.length === 0) return;
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i] as number, true);
    this.bytes(field, b);
  }

  packedDoubles(field: number, values: readonly number[] | undefined): void {
    if (!values || values.length === 0) return;
    const b = new Uint8Array(values.length * 8);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat64(i * 8, values[i] as number, true);
    this.bytes(field, b);
  }

  unknown(fields: readonly Uint8Array[] | undefined): void {
    if (fields) for (const f of fields) this.rawBytes(f);
  }
}

export function utf8(b: Uint8Array): string {
  return DECODER.decode(b);
}

export function toUtf8(s: string): Uint8Array {
  return ENCODER.encode(s);
}
