import { describe, expect, it } from 'vitest';
import { DT, decodeModel, encodeModel, getAttr, model, node, valueInfo, makeTensor } from '@cvopt/onnx';
import { epContextModel } from './ep-context.js';

describe('epContextModel', () => {
  it('is one EPContext node pointing at the engine file, with the source graph inputs and outputs', () => {
    const src = model({
      nodes: [node('Conv', ['images', 'w'], ['y']), node('Sigmoid', ['y'], ['output0'])],
      inputs: [valueInfo('images', DT.FLOAT, ['batch', 3, 64, 64]), valueInfo('w', DT.FLOAT, [4, 3, 1, 1])],
      outputs: [valueInfo('output0', DT.FLOAT, ['batch', 4, 64, 64])],
      initializers: [makeTensor('w', DT.FLOAT, [4, 3, 1, 1], new Float32Array(12))],
      opset: 17,
      metadata: { names: "{0: 'a'}" },
    });
    const ctx = decodeModel(encodeModel(epContextModel(src, 'abc.fp16.engine')));
    expect(ctx.graph.node).toHaveLength(1);
    const n = ctx.graph.node[0]!;
    expect(n.opType).toBe('EPContext');
    expect(n.domain).toBe('com.microsoft');
    // the initializer listed as a graph input is not a real input of the engine
    expect(n.input).toEqual(['images']);
    expect(n.output).toEqual(['output0']);
    const text = (name: string) => new TextDecoder().decode(getAttr(n, name)?.s);
    expect(getAttr(n, 'embed_mode')?.i).toBe(0);
    expect(getAttr(n, 'main_context')?.i).toBe(1);
    expect(text('ep_cache_context')).toBe('abc.fp16.engine');
    expect(text('source')).toBe('TensorrtExecutionProvider');
    expect(ctx.graph.input.map((v) => v.name)).toEqual(['images']);
    expect(ctx.graph.input[0]?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam ?? d.dimValue)).toEqual(['batch', 3, 64, 64]);
    expect(ctx.graph.output[0]?.name).toBe('output0');
    expect(ctx.graph.initializer).toHaveLength(0);
    expect(ctx.opsetImport).toEqual(expect.arrayContaining([expect.objectContaining({ domain: 'com.microsoft', version: 1 })]));
    expect(ctx.metadataProps).toEqual([{ key: 'names', value: "{0: 'a'}" }]);
  });
});
