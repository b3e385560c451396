import { z } from 'zod';
import { CvoptError } from '@cvopt/core';
import { tokenView, type Plugin } from '../context.js';
import { addRoute } from '../http/route.js';
import { TOKEN_SCOPES } from '../store/repository.js';

/** Personal API tokens: shown once, stored hashed, scoped, expiring, revocable. */
export const tokenRoutes: Plugin = (app, ctx) => {
  addRoute(app, ctx, {
    method: 'GET',
    url: '/tokens',
    action: 'self',
    summary: 'your API tokens (never their secrets)',
    handler: async ({ principal }) => ({ tokens: (await ctx.repo.listTokens(principal.user.id)).map(tokenView) }),
  });
  addRoute(app, ctx, {
    method: 'POST',
    url: '/tokens',
    action: 'self:write',
    summary: 'create an API token; the secret is in this answer only',
    body: z.object({
      name: z.string().min(1).max(80),
      scopes: z.array(z.enum(TOKEN_SCOPES)).min(1).default([...TOKEN_SCOPES]),
      expiresInDays: z.number().int().positive().default(30),
    }),
    handler: async ({ body, principal, reply }) => {
      const { bearer, token } = await ctx.identity.createApiToken(principal.user, body.name, body.scopes, body.expiresInDays);
      return reply.status(201).send({ token: bearer, ...tokenView(token) });
    },
  });
  addRoute(app, ctx, {
    method: 'DELETE',
    url: '/tokens/:tokenId',
    action: 'self:write',
    summary: 'revoke one of your tokens',
    params: z.object({ tokenId: z.string().min(1).max(64) }),
    handler: async ({ params, principal }) => {
      const t = await ctx.repo.tokenById(params.tokenId);
      if (!t || t.userId !== principal.user.id) throw new CvoptError('NOT_FOUND', `token ${params.tokenId} not found`, { where: { field: 'tokenId' } });
      await ctx.repo.revokeToken(t.id, ctx.now().toISOString());
      return { revoked: t.id };
    },
  });
};
