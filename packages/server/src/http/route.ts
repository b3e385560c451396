import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { z } from 'zod';
import { CvoptError } from '@cvopt/core';
import { authenticate, authorize, type Principal } from '../auth/authenticate.js';
import { actionSpec, isAction, type Action } from '../permissions.js';
import { bearerEquals } from '../auth/tokens.js';
import type { Repository } from '../store/repository.js';

/**
 * Routes are declared, not hand-wired: method, url, the action it needs (see permissions.ts), zod schemas for
 * params, query and body, and the handler. `guardRoutes` makes Fastify refuse at registration any route that
 * did not come through here with a known action, so an unguarded endpoint fails the server's start.
 */
export interface RouteDef<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  action: Action;
  summary: string;
  params?: P;
  query?: Q;
  body?: B;
  /** The body is read by the handler as a stream (uploads); `body` is then not used. */
  rawBody?: { contentTypes: string[]; maxBytes: number };
  /** What a successful answer looks like (documentation). */
  response?: z.ZodType;
  /** Answers text/event-stream. */
  sse?: boolean;
  handler: (ctx: RouteContext<z.infer<P>, z.infer<Q>, z.infer<B>>) => Promise<unknown>;
}

export interface RouteContext<P, Q, B> {
  req: FastifyRequest;
  reply: FastifyReply;
  params: P;
  query: Q;
  body: B;
  /** Present on every route but `public` ones. */
  principal: Principal;
}

export interface RegisteredRoute {
  method: string;
  url: string;
  action: Action;
  summary: string;
  def: RouteDef;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    action?: Action;
    cvoptRoute?: boolean;
  }
  interface FastifyRequest {
    cvoptPrincipal?: Principal;
    /** What the audit entry of this request says beyond its route and status (a refused login's reason). */
    cvoptAuditDetail?: string;
  }
}

/** Every route registered through `addRoute`, in order: the OpenAPI document and the RBAC test read it. */
export class RouteTable {
  readonly routes: RegisteredRoute[] = [];
}

export function guardRoutes(app: FastifyInstance): void {
  app.addHook('onRoute', (opts) => {
    const action = opts.config?.action;
    if (!opts.config?.cvoptRoute || !isAction(action)) {
      throw new CvoptError('INTERNAL', `route ${String(opts.method)} ${opts.url} declares no permission; register it with addRoute() and an action from permissions.ts`);
    }
  });
}

export interface RouteDeps {
  /** The scrape token (CVOPT_METRICS_TOKEN), for actions that accept it. */
  config: { metricsToken?: string | undefined };
  repo: Repository;
  table: RouteTable;
  now: () => Date;
}

export function addRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(app: FastifyInstance, deps: RouteDeps, def: RouteDef<P, Q, B>): void {
  const url = `${app.prefix}${def.url}`.replace(/\/$/, '') || '/';
  deps.table.routes.push({ method: def.method, url, action: def.action, summary: def.summary, def: def as unknown as RouteDef });
  app.route({
    method: def.method as HTTPMethods,
    url: def.url,
    config: { action: def.action, cvoptRoute: true },
    ...(def.rawBody ? { bodyLimit: def.rawBody.maxBytes } : {}),
    // Credentials and role are checked before a single body byte is read.
    onRequest: async (req) => {
      if (def.action === 'public') return;
      if (actionSpec(def.action).scrapeToken && bearerEquals(req.headers.authorization, deps.config.metricsToken)) return;
      const who = await authenticate(deps.repo, req.headers.authorization, deps.now());
      req.cvoptPrincipal = who as Principal;
      const projectId = (req.params as Record<string, string | undefined>).projectId;
      req.cvoptPrincipal = await authorize(deps.repo, who, def.action, projectId);
    },
    handler: async (req, reply) => {
      const params = def.params ? def.params.parse(req.params) : req.params;
      const query = def.query ? def.query.parse(req.query) : req.query;
      const body = def.rawBody ? undefined : def.body ? def.body.parse(req.body ?? {}) : undefined;
      const out = await def.handler({ req, reply, params, query, body, principal: req.cvoptPrincipal as Principal } as RouteContext<z.infer<P>, z.infer<Q>, z.infer<B>>);
      if (reply.sent || def.sse) return reply;
      return out;
    },
  });
}
