import { z } from 'zod';
import { ACTIONS } from '../permissions.js';
import type { RouteTable } from './route.js';

const jsonSchema = (s: z.ZodType): unknown => {
  try {
    return z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
  } catch {
    return {};
  }
};

/** OpenAPI 3.1 from the route table: each operation lists its action, roles and token scope. */
export function openApiDocument(table: RouteTable): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of table.routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}').replace(/\*$/, '{path}');
    const op: Record<string, unknown> = {
      summary: r.summary,
      'x-cvopt-action': r.action,
      'x-cvopt-allowed': ACTIONS[r.action].who,
      'x-cvopt-scope': ACTIONS[r.action].scope,
      ...(r.action === 'public' ? { security: [] } : {}),
      parameters: [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      responses: { '200': { description: 'success', ...(r.def.response ? { content: { 'application/json': { schema: jsonSchema(r.def.response) } } } : {}) }, default: { description: 'a catalogue error: { error: { code, message, where?, hint? }, requestId }' } },
    };
    if (r.def.query) {
      const q = jsonSchema(r.def.query) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) (op.parameters as unknown[]).push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
    }
    if (r.def.body) op.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(r.def.body) } } };
    if (r.def.rawBody) op.requestBody = { required: true, content: Object.fromEntries(r.def.rawBody.contentTypes.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'cvopt control plane', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'session or API token: cvopt_<id>_<secret>' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
