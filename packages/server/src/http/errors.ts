import type { FastifyError, FastifyInstance } from 'fastify';
import { ZodError } from 'zod';
import { CvoptError, serializeError, toCvoptError } from '@cvopt/core';

/**
 * The one place where errors become HTTP answers: a CvoptError keeps its catalogue status; Fastify's own
 * errors (body too large, bad JSON, wrong content type) and zod's are translated to catalogue codes; anything
 * else is INTERNAL, logged with its stack and answered without it.
 */
export function asCvoptError(e: unknown): CvoptError {
  if (e instanceof CvoptError) return e;
  if (e instanceof ZodError) {
    const issue = e.issues[0]!;
    const field = issue.path.map(String).join('.');
    return new CvoptError('INVALID_ARGUMENT', `${field || 'request'}: ${issue.message}`, {
      where: { field },
      details: e.issues.slice(0, 20).map((i) => ({ field: i.path.map(String).join('.'), message: i.message })),
    });
  }
  const fe = e as Partial<FastifyError>;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CvoptError('PAYLOAD_TOO_LARGE', 'the request body is larger than allowed', { hint: 'send less; limits are listed at GET /api/v1/limits' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CvoptError('UNSUPPORTED_MEDIA_TYPE', fe.message ?? 'unsupported content type', { hint: 'send application/json, or application/octet-stream for uploads' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new CvoptError('INVALID_ARGUMENT', `the JSON body is invalid: ${fe.message ?? ''}`, { hint: 'send a well-formed JSON object' });
    default:
      if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
        return new CvoptError('INVALID_ARGUMENT', fe.message ?? 'bad request');
      }
      return toCvoptError(e);
  }
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const e = asCvoptError(err);
    if (e.code === 'INTERNAL') req.log.error({ err }, 'internal error');
    else req.log.info({ code: e.code, msg: e.message }, 'request refused');
    if (e.retryAfterS !== undefined) void reply.header('retry-after', String(Math.ceil(e.retryAfterS)));
    // The rest of an oversized upload is never read: close the connection after the answer.
    if (e.code === 'PAYLOAD_TOO_LARGE') void reply.header('connection', 'close');
    const body = serializeError(e);
    if (e.code === 'INTERNAL') body.message = 'an internal error occurred; the request id is in the server log';
    return reply.status(e.httpStatus).send({ error: body, requestId: req.id });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: serializeError(new CvoptError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { hint: 'see GET /api/v1/openapi.json' })), requestId: req.id }),
  );
}
