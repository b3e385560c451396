/**
 * The one error catalogue. Every failure a user can cause or meet has a stable code here, mapped once to an
 * HTTP status and once to a CLI exit code. A user sees the message, where it happened and how to fix it.
 */

export interface ErrorSpec {
  readonly http: number;
  readonly exit: number;
  readonly summary: string;
}

const spec = (http: number, exit: number, summary: string): ErrorSpec => ({ http, exit, summary });

/** Exit codes: 1 internal, 2 usage/config, 3 bad input data, 4 unavailable, 5 constraint/capacity, 6 external failure. */
export const ERROR_CATALOGUE = {
  INTERNAL: spec(500, 1, 'an internal error; please report it'),
  INVALID_ARGUMENT: spec(400, 2, 'a flag, field or parameter is invalid'),
  INVALID_CONFIG: spec(400, 2, 'a configuration file is invalid'),
  NOT_FOUND: spec(404, 3, 'a file or resource does not exist'),
  DATASET_INVALID: spec(422, 3, 'the dataset has problems'),
  LABEL_INVALID: spec(422, 3, 'a label file is malformed'),
  IMAGE_INVALID: spec(400, 3, 'an image is corrupt or unsupported'),
  IMAGE_TOO_LARGE: spec(413, 3, 'an image exceeds the dimension limit'),
  VIDEO_INVALID: spec(400, 3, 'a video is corrupt, truncated or unsupported'),
  VIDEO_TOO_LONG: spec(413, 3, 'a video exceeds the length limit'),
  MODEL_INVALID: spec(422, 3, 'a model file is corrupt or not understood'),
  MANIFEST_INVALID: spec(422, 3, 'model.json is missing or does not match the model'),
  TENSOR_SHAPE: spec(400, 3, 'a tensor has the wrong shape or type'),
  UNSAFE_PICKLE: spec(422, 3, 'a pickle references code that is not allowed to run'),
  TORCHSCRIPT_UNTRUSTED: spec(422, 3, 'a TorchScript model is a program; it is loaded only when declared trusted'),
  ARCHIVE_UNSAFE: spec(422, 3, 'an archive is hostile (path traversal, link or bomb)'),
  PAYLOAD_TOO_LARGE: spec(413, 3, 'the request or upload is too large'),
  UNSUPPORTED_MEDIA_TYPE: spec(415, 3, 'the content type is not accepted'),
  UNSUPPORTED_OPERATOR: spec(422, 5, 'the model uses operators the target engine cannot run'),
  ENGINE_UNAVAILABLE: spec(503, 4, 'an inference engine is not available on this machine'),
  ENGINE_FAILED: spec(500, 6, 'an inference engine failed while running'),
  DEPENDENCY_MISSING: spec(503, 4, 'a required program or library is missing'),
  WORKER_FAILED: spec(500, 6, 'the Python worker failed'),
  GPU_MEMORY_EXHAUSTED: spec(503, 5, 'a job needs more GPU memory than its budget or the card allows'),
  CONSTRAINT_UNMET: spec(422, 5, 'no candidate meets the constraints'),
  QUEUE_FULL: spec(429, 5, 'the queue is full; retry later'),
  DEADLINE_EXCEEDED: spec(429, 5, 'the request cannot finish within its deadline'),
  RATE_LIMITED: spec(429, 5, 'too many requests for this key'),
  UPLOAD_TOO_SLOW: spec(408, 5, 'the request body arrived too slowly or not within its deadline'),
  SHUTTING_DOWN: spec(503, 5, 'the service is draining and accepts no new work'),
  OVERLOADED: spec(503, 5, 'the service is above its memory cap and sheds new work'),
  NOT_READY: spec(503, 4, 'the model is not loaded yet'),
  CANCELLED: spec(499, 5, 'the operation was cancelled'),
  UNAUTHENTICATED: spec(401, 2, 'missing or unknown credentials'),
  FORBIDDEN: spec(403, 2, 'the role does not allow this action'),
  CONFLICT: spec(409, 5, 'the resource is in a state that does not allow this'),
  TRIALS_ALL_FAILED: spec(422, 5, 'every trial of the first generation failed'),
  CHECKSUM_MISMATCH: spec(422, 3, 'a file does not match the sha256 recorded for it'),
  PARITY_FAILED: spec(422, 5, 'the exported model disagrees with its source model beyond the tolerance'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Where a problem is: a file (and line), or a field path. */
export interface ErrorWhere {
  file?: string;
  line?: number;
  field?: string;
}

export interface CvoptErrorOptions {
  where?: ErrorWhere;
  hint?: string;
  details?: unknown;
  cause?: unknown;
  /** Seconds after which a retry may succeed (QUEUE_FULL, RATE_LIMITED). */
  retryAfterS?: number;
}

export class CvoptError extends Error {
  readonly code: ErrorCode;
  readonly where: ErrorWhere | undefined;
  readonly hint: string | undefined;
  readonly details: unknown;
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message: string, opts: CvoptErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CvoptError';
    this.code = code;
    this.where = opts.where;
    this.hint = opts.hint;
    this.details = opts.details;
    this.retryAfterS = opts.retryAfterS;
  }

  get httpStatus(): number {
    return ERROR_CATALOGUE[this.code].http;
  }

  get exitCode(): number {
    return ERROR_CATALOGUE[this.code].exit;
  }

  toJSON(): SerializedError {
    return serializeError(this);
  }
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  where?: ErrorWhere;
  hint?: string;
  details?: unknown;
  retryAfterS?: number;
}

/**
 * A CvoptError for load shedding (queue full, rate limited, past the deadline): the expected answer to a request
 * storm, thrown thousands of times a second under impolite load, so it skips the stack capture that a bug report
 * needs and a refusal does not (2–4 % of the HTTP thread in refusal storms, measured with bench/load-test --cpu-prof).
 */
export function shedLoad(code: ErrorCode, message: string, opts: CvoptErrorOptions = {}): CvoptError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new CvoptError(code, message, opts);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function isCvoptError(e: unknown): e is CvoptError {
  return e instanceof CvoptError;
}

/** Any thrown value as a CvoptError: ours pass through, anything else becomes INTERNAL with its message kept. */
export function toCvoptError(e: unknown): CvoptError {
  if (e instanceof CvoptError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new CvoptError('INTERNAL', message, { cause: e });
}

export function serializeError(e: CvoptError): SerializedError {
  const out: SerializedError = { code: e.code, message: e.message };
  if (e.where) out.where = e.where;
  if (e.hint) out.hint = e.hint;
  if (e.details !== undefined) out.details = e.details;
  if (e.retryAfterS !== undefined) out.retryAfterS = e.retryAfterS;
  return out;
}

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].http;
}

export function exitCodeOf(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].exit;
}

/** One line a person reads: "CODE: message (at file:line, field x). Fix: hint". */
export function formatError(e: CvoptError): string {
  const at: string[] = [];
  if (e.where?.file) at.push(e.where.line !== undefined ? `${e.where.file}:${e.where.line}` : e.where.file);
  if (e.where?.field) at.push(`field ${e.where.field}`);
  let s = `${e.code}: ${e.message}`;
  if (at.length) s += ` (at ${at.join(', ')})`;
  if (e.hint) s += `\n  fix: ${e.hint}`;
  return s;
}
