import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CvoptError } from '@cvopt/core';
import { remainingMs, type RouteContext } from '../http/context.js';
import type { LoadedModel } from '../model.js';
import type { Ticket } from '../scheduler.js';
import * as S from '../schemas.js';
import { encodeV2Response, toFloat32, type V2Request } from '../v2-codec.js';

export const SERVER_NAME = 'cvopt';
/** Text an output number takes in a JSON response, for the offload threshold (a float32 printed as a double). */
const JSON_BYTES_PER_NUMBER = 16;
export const SERVER_VERSION = '0.1.0';
/** Open Inference Protocol extensions this server implements. */
export const V2_EXTENSIONS = ['binary_tensor_data', 'model_repository'];

/**
 * The Open Inference Protocol (KServe v2) REST API as stock clients speak it: server and model health and metadata,
 * versioned and unversioned model paths, JSON and binary-tensor inference, the repository index, and errors as
 * `{"error": "<message>"}` (the catalogue code in the X-Cvopt-Error-Code header). The image API stays the
 * product's main API; this is for standard clients that send preprocessed tensors.
 */
export function kserveRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { host, readiness } = ctx;
  const v2 = { v2: true } as const;

  app.get('/v2', { schema: S.v2server, config: v2 }, async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: V2_EXTENSIONS }));
  app.get('/v2/health/live', { schema: S.v2live, config: v2 }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: S.v2ready, config: v2 }, async (_req, reply) => {
    const ready = readiness.takesWork;
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const metadata = async (req: FastifyRequest) => v2Metadata(modelOf(ctx, req));
  const modelReady = async (req: FastifyRequest, reply: FastifyReply) => {
    const m = modelOf(ctx, req);
    const ready = readiness.takesWork;
    return reply.code(ready ? 200 : 503).send({ name: m.manifest.name, ready });
  };
  const infer = (req: FastifyRequest, reply: FastifyReply) => inferRoute(ctx, req, reply);
  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(base, { schema: S.v2metadata, config: { permission: 'model', ...v2 } }, metadata);
    app.get(`${base}/ready`, { schema: S.v2modelReady, config: { permission: 'predict', ...v2 } }, modelReady);
    app.post(`${base}/infer`, { schema: S.v2infer, config: { permission: 'predict', admits: true, ...v2 } }, infer);
  }
  app.post('/v2/repository/index', { schema: S.v2repository, config: { permission: 'model', ...v2 } }, async () => {
    const m = host.ready ? host.current : undefined;
    return m ? [{ name: m.manifest.name, version: String(m.generation), state: readiness.takesWork ? 'READY' : 'UNAVAILABLE', reason: '' }] : [];
  });
}

function modelOf({ host }: RouteContext, req: FastifyRequest): LoadedModel {
  const { name, version } = req.params as { name: string; version?: string };
  const m = host.current;
  if (name !== m.manifest.name) throw new CvoptError('NOT_FOUND', `no model named "${name}" here; this service serves "${m.manifest.name}"`);
  if (version !== undefined && version !== String(m.generation)) {
    throw new CvoptError('NOT_FOUND', `model "${name}" has no version "${version}"; the version served is "${m.generation}"`);
  }
  return m;
}

function v2Metadata(m: LoadedModel) {
  const dim = (d: number | string) => (typeof d === 'number' ? d : -1);
  return {
    name: m.manifest.name,
    versions: [String(m.generation)],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: m.info.inputName, datatype: 'FP32', shape: m.info.inputDims.map(dim) }],
    outputs: [{ name: m.manifest.output.name, datatype: 'FP32', shape: m.manifest.output.shape.map(dim) }],
  };
}

const shapeError = (message: string, field: string) =>
  new CvoptError('TENSOR_SHAPE', message, { where: { field }, hint: 'send the preprocessed NCHW tensor described by GET /v2/models/{name}' });

/** The one input and the batch size, checked against the model: name, datatype and shape. */
function checkInputs(m: LoadedModel, r: V2Request, maxSamples: number): { data: Float32Array; n: number } {
  if (r.inputs.length !== 1) throw shapeError(`the model takes 1 input ("${m.info.inputName}"), the request has ${r.inputs.length}`, 'inputs');
  const input = r.inputs[0]!;
  if (input.name !== m.info.inputName) throw shapeError(`unknown input "${input.name}"; the model's input is "${m.info.inputName}"`, 'inputs.0.name');
  if (input.datatype !== 'FP32') throw shapeError(`input "${input.name}" must be FP32, got ${input.datatype}`, 'inputs.0.datatype');
  const [n, ...sample] = input.shape;
  if (input.shape.length !== 1 + m.sampleDims.length || sample.join(',') !== m.sampleDims.join(',') || !n) {
    throw shapeError(`input "${input.name}" must be FP32 [N, ${m.sampleDims.join(', ')}], got [${input.shape.join(', ')}]`, 'inputs.0.shape');
  }
  if (n > maxSamples) {
    throw new CvoptError('PAYLOAD_TOO_LARGE', `one request may carry at most ${maxSamples} samples, this one has ${n}`, { where: { field: 'inputs.0.shape' }, hint: 'split the batch over several requests' });
  }
  for (const [i, o] of (r.outputs ?? []).entries()) {
    if (o.name !== m.manifest.output.name) throw shapeError(`unknown output "${o.name}"; the model's output is "${m.manifest.output.name}"`, `outputs.${i}.name`);
  }
  return { data: toFloat32(input), n };
}

async function inferRoute(ctx: RouteContext, req: FastifyRequest, reply: FastifyReply) {
  const { host, config, offload } = ctx;
  const m = modelOf(ctx, req);
  const raw = req.headers['inference-header-content-length'];
  const headerLength = raw === undefined ? undefined : Number(raw);
  if (headerLength !== undefined && !Number.isInteger(headerLength)) {
    throw new CvoptError('INVALID_ARGUMENT', `Inference-Header-Content-Length must be a byte count, got "${String(raw)}"`, { where: { field: 'inference-header-content-length' } });
  }
  const body = req.body as Buffer | undefined;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new CvoptError('INVALID_ARGUMENT', 'the inference request has no body', { where: { field: 'body' } });
  const request = await offload.v2(body, headerLength, { maxDepth: config.kserve.maxJsonDepth });
  const { data, n } = checkInputs(m, request, config.kserve.maxSamples);
  // Each sample takes its own place in the queue: one ticket from the gate, N - 1 more here (refused like any
  // other request when the queue cannot hold them), all released with the answer.
  const extra: Ticket[] = [];
  reply.raw.once('close', () => extra.forEach((t) => t.release()));
  for (let i = 1; i < n; i++) extra.push(m.scheduler.admit(remainingMs(req)));
  const per = m.sampleDims.reduce((a, b) => a * b, 1);
  const signal = req.abort!.signal;
  const deadlineMs = remainingMs(req);
  const outs = await Promise.all(Array.from({ length: n }, (_, i) => host.run(data.subarray(i * per, (i + 1) * per), { deadlineMs, signal, ticket: extra[i - 1] ?? req.ticket! }, m)));
  const [, ...outRest] = outs[0]!.dims;
  const size = outs[0]!.data.length;
  const joined = new Float32Array(size * n);
  outs.forEach((o, i) => {
    joined.set(o.data, i * size);
    m.engine.recycleOutput(o.data);
  });
  const outName = m.manifest.output.name;
  const wantsBinary = (name: string) => {
    const asked = request.outputs?.find((o) => o.name === name)?.parameters?.binary_data;
    return asked !== undefined ? asked === true : request.parameters?.binary_data_output === true;
  };
  const { binary_data_output: _b, ...passThrough } = request.parameters ?? {};
  const head = {
    model_name: m.manifest.name,
    model_version: String(m.generation),
    ...(request.id !== undefined ? { id: request.id } : {}),
    ...(Object.keys(passThrough).length ? { parameters: passThrough } : {}),
  };
  const outputs = [{ name: outName, datatype: 'FP32' as const, shape: [n, ...outRest], data: joined }];
  // Binary outputs are one copy; as JSON an FP32 number takes about 16 bytes of text (a float32 printed as a
  // double), written off the HTTP thread when that text is large.
  const asJson = outputs.filter((o) => !wantsBinary(o.name)).reduce((a, o) => a + o.data.length * JSON_BYTES_PER_NUMBER, 0);
  const out =
    asJson >= config.offloadMinBytes
      ? await offload.v2Response(head, outputs, outputs.map((o) => o.name).filter(wantsBinary))
      : encodeV2Response(head, outputs, wantsBinary);
  if (out.headerLength !== undefined) {
    void reply.header('inference-header-content-length', String(out.headerLength));
    return reply.type('application/octet-stream').send(out.body);
  }
  return reply.type('application/json').send(out.body);
}
