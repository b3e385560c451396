import { CvoptError, serializeError, toCvoptError, type ErrorCode } from '@cvopt/core';

/** Fastify's own failures, translated into the catalogue so every error body has one shape. */
export function httpErrorToCvopt(e: unknown): CvoptError {
  if (e instanceof CvoptError) return e;
  const err = e as { code?: string; message?: string; validation?: { instancePath?: string; message?: string }[]; validationContext?: string; statusCode?: number };
  switch (err.code) {
    case 'FST_ERR_VALIDATION': {
      const v = err.validation?.[0];
      const field = `${err.validationContext ?? 'body'}${v?.instancePath ? v.instancePath.replace(/\//g, '.') : ''}`;
      return new CvoptError('INVALID_ARGUMENT', `${field} ${v?.message ?? 'is invalid'}`, { where: { field }, hint: 'see /openapi.json for the request schema' });
    }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CvoptError('UNSUPPORTED_MEDIA_TYPE', err.message ?? 'unsupported content type', {
        where: { field: 'content-type' },
        hint: 'send image/jpeg, image/png, image/webp, image/bmp, multipart/form-data or application/json (video/* to /v1/predict/video)',
      });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CvoptError('PAYLOAD_TOO_LARGE', 'the request body exceeds the configured body limit', { hint: 'send a smaller file, or raise bodyLimitBytes in the runtime config' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new CvoptError('INVALID_ARGUMENT', 'the JSON body is malformed', { where: { field: 'body' }, hint: 'send valid JSON (and no "__proto__" or "constructor" keys)' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CvoptError('INVALID_ARGUMENT', err.message ?? 'the request body is empty or malformed', { where: { field: 'body' } });
    default:
      if (err.statusCode === 400 && err instanceof SyntaxError) {
        return new CvoptError('INVALID_ARGUMENT', `the JSON body is malformed: ${err.message}`, { where: { field: 'body' }, hint: 'send valid JSON' });
      }
      // Anything else Fastify or Node refuses with a 4xx is the client's mistake: keep its status, in the catalogue's shape.
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return clientError(err.statusCode, err.message);
      return toCvoptError(e);
  }
}

const BY_STATUS: Record<number, ErrorCode> = { 404: 'NOT_FOUND', 408: 'UPLOAD_TOO_SLOW', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 429: 'RATE_LIMITED' };

function clientError(status: number, message: string | undefined): CvoptError {
  return new CvoptError(BY_STATUS[status] ?? 'INVALID_ARGUMENT', message ?? 'the request is malformed', { hint: 'see /openapi.json for the request format' });
}

/** Errors that only say the client went away (aborted upload, reset socket): not the service's failure. */
export function isClientGone(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'FST_ERR_CTP_BODY_ABORTED' || code === 'CANCELLED' || (e as Error)?.message === 'aborted';
}

/** The one error body: `{error: {code, message, hint, ...}}`. */
export function errorBody(e: CvoptError): { error: ReturnType<typeof serializeError> } {
  return { error: serializeError(e) };
}
