import type { RouteOptions } from 'fastify';

/**
 * The OpenAPI 3.1 document, built from the route schemas themselves (collected by an onRoute hook), so the
 * document cannot drift from what the server validates.
 */
export interface RouteDoc {
  method: string;
  url: string;
  schema: Record<string, unknown> | undefined;
  permission: string;
}

const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, hint: { type: 'string' }, retryAfterS: { type: 'number' } },
    },
  },
};

export function routeDoc(r: RouteOptions): RouteDoc[] {
  const methods = Array.isArray(r.method) ? r.method : [r.method];
  const cfg = (r.config ?? {}) as { permission?: string };
  return methods
    .filter((m) => m !== 'HEAD')
    .map((m) => ({ method: m.toLowerCase(), url: r.url, schema: r.schema as Record<string, unknown> | undefined, permission: cfg.permission ?? 'public' }));
}

export function buildOpenApi(routes: RouteDoc[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.url === '*' || r.url.startsWith('/openapi')) continue;
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const s = r.schema ?? {};
    const op: Record<string, unknown> = {};
    if (s.summary) op.summary = s.summary;
    if (s.description) op.description = s.description;
    if (s.tags) op.tags = s.tags;
    const params: unknown[] = [];
    for (const [where, key] of [
      ['path', 'params'],
      ['query', 'querystring'],
      ['header', 'headers'],
    ] as const) {
      const obj = s[key] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
      for (const [name, schema] of Object.entries(obj?.properties ?? {})) {
        params.push({ name, in: where, required: where === 'path' || (obj?.required ?? []).includes(name), schema });
      }
    }
    if (params.length) op.parameters = params;
    const consumes = (s as { consumes?: string[] }).consumes;
    if (s.body || consumes) {
      const content: Record<string, unknown> = {};
      for (const type of consumes ?? ['application/json']) {
        content[type] = { schema: type === 'application/json' && s.body ? s.body : { type: 'string', format: 'binary' } };
      }
      op.requestBody = { required: true, content };
    }
    const responses: Record<string, unknown> = {};
    const produces = (s as { produces?: string }).produces ?? 'application/json';
    for (const [code, schema] of Object.entries((s.response as Record<string, unknown>) ?? {})) {
      responses[code] = { description: code === '200' ? 'success' : 'see the schema', content: { [produces]: { schema } } };
    }
    if (!responses['200']) responses['200'] = { description: 'success' };
    responses.default = { description: 'a catalogue error', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    op.responses = responses;
    if (r.permission !== 'public') {
      op.security = [{ bearer: [] }, { apiKey: [] }];
      op['x-cvopt-permission'] = r.permission;
    }
    (paths[path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
      schemas: { Error: ERROR_SCHEMA },
    },
  };
}
