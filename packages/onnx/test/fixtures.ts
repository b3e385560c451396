import { Rng } from '@cvopt/core';
import { attr, DT, makeTensor, model, node, valueInfo, type ModelProto, type NodeProto, type TensorProto } from '../src/index.js';

/**
 * A small detector-shaped conv net, built with our own writer: Conv+SiLU blocks, a stride-2 conv, a skip Add,
 * Concat, MaxPool, and a 1x1 head. Weights are seeded so every run builds the same model.
 */
export function tinyConvNet(opts: { size?: number; channels?: number; seed?: number; batch?: number | string } = {}): ModelProto {
  const size = opts.size ?? 32;
  const c = opts.channels ?? 8;
  const rng = new Rng(opts.seed ?? 7);
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const conv = (name: string, x: string, cin: number, cout: number, k: number, stride: number, act: boolean): string => {
    const w = Array.from({ length: cout * cin * k * k }, () => rng.uniform(-1, 1) * Math.sqrt(2 / (cin * k * k)));
    const b = Array.from({ length: cout }, () => rng.uniform(-1, 1) * 0.1);
    inits.push(makeTensor(`${name}.w`, DT.FLOAT, [cout, cin, k, k], w), makeTensor(`${name}.b`, DT.FLOAT, [cout], b));
    const pad = Math.floor(k / 2);
    nodes.push(node('Conv', [x, `${name}.w`, `${name}.b`], [`${name}.y`], { name, attrs: [attr.ints('kernel_shape', [k, k]), attr.ints('strides', [stride, stride]), attr.ints('pads', [pad, pad, pad, pad])] }));
    if (!act) return `${name}.y`;
    nodes.push(node('Sigmoid', [`${name}.y`], [`${name}.s`], { name: `${name}.sig` }));
    nodes.push(node('Mul', [`${name}.y`, `${name}.s`], [`${name}.a`], { name: `${name}.silu` }));
    return `${name}.a`;
  };
  const a = conv('stem', 'images', 3, c, 3, 2, true);
  const b = conv('b1', a, c, c, 3, 1, true);
  nodes.push(node('Add', [a, b], ['skip'], { name: 'skip_add' }));
  const d = conv('b2', 'skip', c, c, 3, 1, true);
  nodes.push(node('Concat', ['skip', d], ['cat'], { name: 'cat', attrs: [attr.int('axis', 1)] }));
  nodes.push(node('MaxPool', ['cat'], ['pool'], { name: 'pool', attrs: [attr.ints('kernel_shape', [2, 2]), attr.ints('strides', [2, 2])] }));
  conv('head', 'pool', 2 * c, 6, 1, 1, false);
  const batch = opts.batch ?? 1;
  return model({
    nodes,
    initializers: inits,
    inputs: [valueInfo('images', DT.FLOAT, [batch, 3, size, size])],
    outputs: [valueInfo('head.y', DT.FLOAT, [batch, 6, size / 4, size / 4])],
  });
}

export function seededInput(n: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.float());
}
