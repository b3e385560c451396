import { z } from 'zod';
import { userView, type Plugin } from '../context.js';
import { addRoute } from '../http/route.js';

const Credentials = z.object({ username: z.string().min(1).max(40), password: z.string().min(1).max(1024) });

/** First-admin setup, password login (→ session token), logout, whoami, password change. */
export const authRoutes: Plugin = (app, ctx) => {
  addRoute(app, ctx, {
    method: 'POST',
    url: '/setup',
    action: 'public',
    summary: 'create the first server admin with the one-time setup token the server printed at its first start',
    body: Credentials.extend({ token: z.string().min(1).max(200) }),
    handler: async ({ body, reply }) => {
      const user = await ctx.identity.setup(body.token, body.username, body.password);
      return reply.status(201).send({ user: userView(user) });
    },
  });
  addRoute(app, ctx, {
    method: 'POST',
    url: '/auth/login',
    action: 'public',
    summary: 'password login; answers a session token once (rate-limited per address, accounts lock after repeated failures)',
    body: Credentials,
    response: z.object({ token: z.string(), expiresAt: z.string(), user: z.object({ id: z.string(), username: z.string(), isAdmin: z.boolean() }) }),
    handler: async ({ body, req }) => {
      try {
        // The caller gets one answer for every refusal; the server log and the audit log get the reason.
        const { bearer, token, user } = await ctx.identity.login(body.username, body.password, req.ip, (reason) => {
          req.cvoptAuditDetail = reason;
          req.log.info({ username: body.username, reason }, 'login refused');
        });
        ctx.metrics.logins.inc({ outcome: 'ok' });
        return { token: bearer, expiresAt: token.expiresAt, user: userView(user) };
      } catch (e) {
        ctx.metrics.logins.inc({ outcome: 'refused' });
        throw e;
      }
    },
  });
  addRoute(app, ctx, {
    method: 'POST',
    url: '/auth/logout',
    action: 'self',
    summary: 'revoke the token this request is made with',
    handler: async ({ principal }) => {
      await ctx.repo.revokeToken(principal.token.id, ctx.now().toISOString());
      return { revoked: principal.token.id };
    },
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/auth/me',
    action: 'self',
    summary: 'who this token belongs to, and its scopes',
    handler: async ({ principal }) => ({ user: userView(principal.user), token: { id: principal.token.id, kind: principal.token.kind, scopes: principal.token.scopes, expiresAt: principal.token.expiresAt } }),
  });
  addRoute(app, ctx, {
    method: 'PUT',
    url: '/auth/password',
    action: 'self:write',
    summary: 'change your password (needs the current one); revokes all your tokens',
    body: z.object({ current: z.string().min(1).max(1024), password: z.string().min(1).max(1024) }),
    handler: async ({ body, principal, req }) => {
      await ctx.identity.login(principal.user.username, body.current, req.ip, (reason) => (req.cvoptAuditDetail = reason));
      await ctx.identity.setPassword(principal.user, body.password);
      return { changed: true };
    },
  });
};
