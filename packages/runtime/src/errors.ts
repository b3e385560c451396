import { CvoptError, serializeError, toCvoptError } from '@cvopt/core';

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
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CvoptError('INVALID_ARGUMENT', err.message ?? 'the request body is empty or malformed', { where: { field: 'body' } });
    default:
      if (err.statusCode === 400 && err instanceof SyntaxError) {
        return new CvoptError('INVALID_ARGUMENT', `the JSON body is malformed: ${err.message}`, { where: { field: 'body' }, hint: 'send valid JSON' });
      }
      return toCvoptError(e);
  }
}

/** The one error body: `{error: {code, message, hint, ...}}`. */
export function errorBody(e: CvoptError): { error: ReturnType<typeof serializeError> } {
  return { error: serializeError(e) };
}
