/**
 * JSON schemas of every route: Fastify validates requests with them and /openapi.json is built from them.
 * `consumes` lists the accepted content types for the document (the handlers enforce them with 415).
 */

const deadlineQuery = {
  type: 'object',
  properties: { deadline_ms: { type: 'number', exclusiveMinimum: 0, description: 'lower the deadline for this request (ms)' } },
} as const;

const deadlineHeaders = {
  type: 'object',
  properties: { 'x-deadline-ms': { type: 'number', exclusiveMinimum: 0, description: 'lower the deadline for this request (ms)' } },
} as const;

const detection = {
  type: 'object',
  required: ['box', 'score', 'classId', 'className'],
  properties: {
    box: { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4, description: '[x1, y1, x2, y2] in original image pixels' },
    score: { type: 'number' },
    classId: { type: 'integer' },
    className: { type: 'string' },
  },
} as const;

const classScore = {
  type: 'object',
  required: ['classId', 'className', 'score'],
  properties: { classId: { type: 'integer' }, className: { type: 'string' }, score: { type: 'number' } },
} as const;

export const prediction = {
  type: 'object',
  required: ['model', 'task', 'image'],
  properties: {
    model: { type: 'string' },
    task: { type: 'string', enum: ['detect', 'classify'] },
    image: { type: 'object', properties: { width: { type: 'integer' }, height: { type: 'integer' } } },
    detections: { type: 'array', items: detection },
    top: { type: 'array', items: classScore },
    timeMs: { type: 'number', description: 'server time for this request' },
  },
} as const;

export const predict = {
  summary: 'Detect objects in (or classify) one image',
  tags: ['predict'],
  consumes: ['image/jpeg', 'image/png', 'image/webp', 'image/bmp', 'multipart/form-data', 'application/json'],
  querystring: deadlineQuery,
  headers: deadlineHeaders,
  response: { 200: prediction },
} as const;

export const predictVideo = {
  summary: 'Run the model on every frame of a video; answers NDJSON, one line per frame, then {"done": true}',
  tags: ['predict'],
  consumes: ['video/mp4', 'video/webm', 'video/quicktime', 'video/x-msvideo', 'video/x-matroska', 'application/octet-stream'],
  produces: 'application/x-ndjson',
  querystring: {
    type: 'object',
    properties: {
      ...deadlineQuery.properties,
      track: { type: 'boolean', description: 'follow objects across frames (ByteTrack-style): each detection gets a persistent trackId; only tracked detections are listed' },
    },
  },
  headers: deadlineHeaders,
} as const;

export const healthz = {
  summary: 'Liveness: the process answers',
  tags: ['ops'],
  response: { 200: { type: 'object', properties: { status: { type: 'string' } } } },
} as const;

export const readyz = {
  summary: 'Readiness: 200 once the model is loaded and warmed, 503 while loading or draining',
  tags: ['ops'],
  response: {
    200: { type: 'object', properties: { ready: { type: 'boolean' }, state: { type: 'string' } } },
    503: { type: 'object', properties: { ready: { type: 'boolean' }, state: { type: 'string' } } },
  },
} as const;

const anyObject = { type: 'object', additionalProperties: true } as const;

export const metrics = { summary: 'Prometheus metrics (text exposition format)', tags: ['ops'], produces: 'text/plain', response: { 200: { type: 'string' } } } as const;
export const openapi = { summary: 'This OpenAPI document', tags: ['ops'], response: { 200: anyObject } } as const;

export const model = {
  summary: 'The model manifest, the engine and the scheduling limits',
  tags: ['model'],
  response: {
    200: {
      type: 'object',
      required: ['manifest', 'engine', 'scheduling'],
      properties: {
        manifest: anyObject,
        engine: anyObject,
        generation: { type: 'integer' },
        loadedAt: { type: 'string' },
        warmupMs: { type: 'number' },
        scheduling: anyObject,
      },
    },
  },
} as const;

export const config = { summary: 'The effective runtime configuration (keys redacted; admin only)', tags: ['admin'], response: { 200: anyObject } } as const;

export const reload = {
  summary: 'Load and warm the model files again, then swap them in atomically (admin only)',
  tags: ['admin'],
  response: {
    200: {
      type: 'object',
      properties: { model: { type: 'string' }, generation: { type: 'integer' }, loadedAt: { type: 'string' }, warmupMs: { type: 'number' } },
    },
  },
} as const;

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string' }, version: { type: 'string' } } } as const;
const tensorMeta = {
  type: 'object',
  properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } } },
} as const;

export const v2live = {
  summary: 'Open Inference Protocol: server live',
  tags: ['v2'],
  response: { 200: { type: 'object', properties: { live: { type: 'boolean' } } } },
} as const;
export const v2ready = {
  summary: 'Open Inference Protocol: server ready',
  tags: ['v2'],
  response: { 200: { type: 'object', properties: { ready: { type: 'boolean' } } }, 503: { type: 'object', properties: { ready: { type: 'boolean' } } } },
} as const;
export const v2metadata = {
  summary: 'Open Inference Protocol: model metadata',
  tags: ['v2'],
  params: nameParams,
  response: {
    200: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        versions: { type: 'array', items: { type: 'string' } },
        platform: { type: 'string' },
        inputs: { type: 'array', items: tensorMeta },
        outputs: { type: 'array', items: tensorMeta },
      },
    },
  },
} as const;
export const v2modelReady = {
  summary: 'Open Inference Protocol: model ready',
  tags: ['v2'],
  params: nameParams,
  response: {
    200: { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } } },
    503: { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } } },
  },
} as const;

export const v2infer = {
  summary: 'Open Inference Protocol: run the model on preprocessed FP32 tensors [N, C, H, W] (JSON, or the binary tensor data extension)',
  description:
    'JSON body per the Open Inference Protocol, or a JSON header of Inference-Header-Content-Length bytes followed by the raw little-endian tensors of the inputs that declare parameters.binary_data_size. Outputs asked for with parameters.binary_data (or request parameters.binary_data_output) come back binary the same way. Errors: {"error": "<message>"}.',
  tags: ['v2'],
  params: nameParams,
  querystring: deadlineQuery,
  headers: deadlineHeaders,
  consumes: ['application/json', 'application/octet-stream'],
  response: {
    200: {
      type: 'object',
      properties: {
        model_name: { type: 'string' },
        model_version: { type: 'string' },
        id: { type: 'string' },
        outputs: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } }, data: { type: 'array', items: { type: 'number' } } },
          },
        },
      },
    },
  },
} as const;

export const v2server = {
  summary: 'Open Inference Protocol: server metadata (name, version, extensions)',
  tags: ['v2'],
  response: { 200: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } } } },
} as const;

export const v2repository = {
  summary: 'Open Inference Protocol model repository extension: the index of models',
  tags: ['v2'],
  response: {
    200: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, state: { type: 'string' }, reason: { type: 'string' } } },
    },
  },
} as const;
