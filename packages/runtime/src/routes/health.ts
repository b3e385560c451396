import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../http/context.js';
import * as S from '../schemas.js';

/** Liveness and readiness probes (public): both read the one readiness state machine. */
export function healthRoutes(app: FastifyInstance, { readiness }: RouteContext): void {
  app.get('/healthz', { schema: S.healthz }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: S.readyz }, async (_req, reply) => {
    const ready = readiness.takesWork;
    return reply.code(ready ? 200 : 503).send({ ready, state: readiness.state, ...(readiness.state === 'failed' && readiness.reason ? { reason: 'engine failure' } : {}) });
  });
}
