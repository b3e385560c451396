import { z } from 'zod';
import { CvoptError } from '@cvopt/core';
import { userView, type Plugin } from '../context.js';
import { addRoute } from '../http/route.js';

/** Server admins manage accounts. */
export const userRoutes: Plugin = (app, ctx) => {
  addRoute(app, ctx, {
    method: 'GET',
    url: '/users',
    action: 'server:users',
    summary: 'every account',
    handler: async () => ({ users: (await ctx.repo.listUsers()).map(userView) }),
  });
  addRoute(app, ctx, {
    method: 'POST',
    url: '/users',
    action: 'server:users',
    summary: 'create an account',
    body: z.object({ username: z.string().min(1).max(40), password: z.string().min(1).max(1024), isAdmin: z.boolean().default(false) }),
    handler: async ({ body, reply }) => reply.status(201).send({ user: userView(await ctx.identity.createUser(body.username, body.password, body.isAdmin)) }),
  });
  addRoute(app, ctx, {
    method: 'PATCH',
    url: '/users/:username',
    action: 'server:users',
    summary: 'disable or enable an account, unlock it, make it a server admin, or reset its password',
    params: z.object({ username: z.string().min(1).max(40) }),
    body: z.object({ disabled: z.boolean().optional(), isAdmin: z.boolean().optional(), unlock: z.literal(true).optional(), password: z.string().max(1024).optional() }),
    handler: async ({ params, body, principal }) => {
      const user = await ctx.repo.userByName(params.username);
      if (!user) throw new CvoptError('NOT_FOUND', `user ${params.username} not found`, { where: { field: 'username' } });
      if (user.id === principal.user.id && (body.disabled || body.isAdmin === false)) {
        throw new CvoptError('CONFLICT', 'a server admin cannot disable or demote themself', { hint: 'ask another server admin' });
      }
      if (body.password !== undefined) await ctx.identity.setPassword(user, body.password);
      const patched = await ctx.repo.updateUser(user.id, {
        ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
        ...(body.isAdmin !== undefined ? { isAdmin: body.isAdmin } : {}),
        ...(body.unlock ? { failedLogins: 0, lockedUntil: undefined } : {}),
      });
      if (body.disabled) await ctx.repo.revokeUserTokens(user.id, ctx.now().toISOString());
      return { user: userView(patched!) };
    },
  });
};
