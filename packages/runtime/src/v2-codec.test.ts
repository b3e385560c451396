import { describe, expect, it } from 'vitest';
import { floatToHalf } from '@cvopt/engines';
import { decodeV2Request, encodeV2Response, jsonDepth, toFloat32 } from './v2-codec.js';

const enc = (o: unknown) => new Uint8Array(Buffer.from(JSON.stringify(o)));

describe('Open Inference Protocol tensor codec', () => {
  it('decodes FP16, UINT8 and INT64 from JSON and from binary to the same values', () => {
    const values = [0, 1, 2, 250];
    const bins: Record<string, Buffer> = {
      FP16: Buffer.from(Uint16Array.from(values.map(floatToHalf)).buffer),
      UINT8: Buffer.from(Uint8Array.from(values)),
      INT64: Buffer.from(BigInt64Array.from(values.map(BigInt)).buffer),
    };
    for (const [datatype, bin] of Object.entries(bins)) {
      const json = decodeV2Request(enc({ inputs: [{ name: 'x', datatype, shape: [2, 2], data: [[0, 1], [2, 250]] }] }), undefined, { maxDepth: 8 });
      const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype, shape: [2, 2], parameters: { binary_data_size: bin.length } }] }));
      const binary = decodeV2Request(new Uint8Array(Buffer.concat([head, bin])), head.length, { maxDepth: 8 });
      expect(Array.from(toFloat32(json.request.inputs[0]!)), datatype).toEqual(values);
      expect(Array.from(toFloat32(binary.request.inputs[0]!)), datatype).toEqual(values);
    }
  });

  it('encodes FP16, UINT8 and INT64 outputs as JSON numbers or raw little-endian bytes', () => {
    const outs = [
      { name: 'h', datatype: 'FP16' as const, shape: [2], data: Uint16Array.from([floatToHalf(0.5), floatToHalf(-2)]) },
      { name: 'u', datatype: 'UINT8' as const, shape: [2], data: Uint8Array.from([7, 255]) },
      { name: 'i', datatype: 'INT64' as const, shape: [2], data: BigInt64Array.from([-3n, 9n]) },
    ];
    const json = JSON.parse(encodeV2Response({ model_name: 'm', model_version: '1' }, outs, () => false).body.toString());
    expect(json.outputs.map((o: { data: number[] }) => o.data)).toEqual([[0.5, -2], [7, 255], [-3, 9]]);
    const bin = encodeV2Response({ model_name: 'm', model_version: '1' }, outs, () => true);
    const head = JSON.parse(bin.body.subarray(0, bin.headerLength).toString());
    expect(head.outputs.map((o: { parameters: { binary_data_size: number } }) => o.parameters.binary_data_size)).toEqual([4, 2, 16]);
    expect(bin.body.length - bin.headerLength!).toBe(22);
    expect(bin.body.readBigInt64LE(bin.headerLength! + 6)).toBe(-3n);
  });

  it('refuses non-finite values, deep nesting and trailing bytes', () => {
    const dec = (o: unknown) => () => decodeV2Request(enc(o), undefined, { maxDepth: 8 });
    expect(dec({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1e39] }] })).toThrow(/beyond the range/);
    expect(dec({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [[[[[[[[[[1]]]]]]]]]] }] })).toThrow(/deeper than 8/);
    expect(jsonDepth(new Uint8Array(Buffer.from('{"a":"[[[["}')), 100)).toBe(1);
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'UINT8', shape: [1], parameters: { binary_data_size: 1 } }] }));
    expect(() => decodeV2Request(new Uint8Array(Buffer.concat([head, Buffer.from([1, 2])])), head.length, { maxDepth: 8 })).toThrow(/after the last binary input/);
    const nan = Buffer.from(Float32Array.from([Number.NaN]).buffer);
    const h2 = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }] }));
    expect(() => decodeV2Request(new Uint8Array(Buffer.concat([h2, nan])), h2.length, { maxDepth: 8 })).toThrow(/non-finite/);
  });
});
