import type { FastifyInstance } from 'fastify';
import { CvoptError } from '@cvopt/core';
import { remainingMs, type RouteContext } from '../http/context.js';
import type { LoadedModel, ModelHost } from '../model.js';
import * as S from '../schemas.js';

/** The Open Inference Protocol (KServe v2) REST endpoints, for standard clients. */
export function kserveRoutes(app: FastifyInstance, { host, readiness }: RouteContext): void {
  app.get('/v2/health/live', { schema: S.v2live, config: { v2: true } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: S.v2ready, config: { v2: true } }, async (_req, reply) => {
    const ready = readiness.takesWork;
    return reply.code(ready ? 200 : 503).send({ ready });
  });
  app.get('/v2/models/:name', { schema: S.v2metadata, config: { permission: 'model', v2: true } }, async (req) => {
    const m = modelNamed(host, (req.params as { name: string }).name);
    return v2Metadata(m);
  });
  app.get('/v2/models/:name/ready', { schema: S.v2modelReady, config: { permission: 'predict', v2: true } }, async (req, reply) => {
    const name = (req.params as { name: string }).name;
    modelNamed(host, name);
    const ready = readiness.takesWork;
    return reply.code(ready ? 200 : 503).send({ name, ready });
  });
  app.post('/v2/models/:name/infer', { schema: S.v2infer, config: { permission: 'predict', admits: true, v2: true } }, async (req) => {
    const m = modelNamed(host, (req.params as { name: string }).name);
    const body = req.body as S.V2InferRequest;
    const input = body.inputs[0]!;
    const [n, ...sample] = input.shape;
    const per = m.sampleDims.reduce((a, b) => a * b, 1);
    if (input.datatype !== 'FP32' || sample.join(',') !== m.sampleDims.join(',') || !n || n < 1) {
      throw new CvoptError('TENSOR_SHAPE', `input "${input.name}" must be FP32 [N, ${m.sampleDims.join(', ')}], got ${input.datatype} [${input.shape.join(', ')}]`, {
        where: { field: 'inputs.0.shape' },
        hint: 'send the preprocessed NCHW tensor described by GET /v2/models/{name}',
      });
    }
    const flat = Float32Array.from(input.data.flat(Infinity as 1) as number[]);
    if (flat.length !== n * per) {
      throw new CvoptError('TENSOR_SHAPE', `input "${input.name}" holds ${flat.length} values; shape [${input.shape.join(', ')}] needs ${n * per}`, { where: { field: 'inputs.0.data' } });
    }
    const signal = req.abort!.signal;
    const deadlineMs = remainingMs(req);
    const outs = await Promise.all(
      Array.from({ length: n }, (_, i) => host.run(flat.subarray(i * per, (i + 1) * per), { deadlineMs, signal, ticket: req.ticket! }, m)),
    );
    const [, ...outRest] = outs[0]!.dims;
    const data: number[] = [];
    for (const o of outs) for (const v of o.data) data.push(v);
    return {
      model_name: m.manifest.name,
      model_version: String(m.generation),
      ...(body.id !== undefined ? { id: body.id } : {}),
      outputs: [{ name: m.manifest.output.name, datatype: 'FP32', shape: [n, ...outRest], data }],
    };
  });
}

function modelNamed(host: ModelHost, name: string): LoadedModel {
  const m = host.current;
  if (name !== m.manifest.name) {
    throw new CvoptError('NOT_FOUND', `no model named "${name}" here`, { hint: `this service serves "${m.manifest.name}"` });
  }
  return m;
}

const v2Dim = (d: number | string) => (typeof d === 'number' ? d : -1);

function v2Metadata(m: LoadedModel) {
  return {
    name: m.manifest.name,
    versions: [String(m.generation)],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: m.info.inputName, datatype: 'FP32', shape: m.info.inputDims.map(v2Dim) }],
    outputs: [{ name: m.manifest.output.name, datatype: 'FP32', shape: m.manifest.output.shape.map(v2Dim) }],
  };
}
