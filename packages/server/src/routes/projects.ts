import { z } from 'zod';
import { CvoptError } from '@cvopt/core';
import type { Plugin } from '../context.js';
import { addRoute } from '../http/route.js';
import { newId } from '../auth/tokens.js';
import { PROJECT_ROLES } from '../permissions.js';
import { deleteProject } from '../project-files.js';
import type { Project } from '../store/repository.js';

const ProjectParams = z.object({ projectId: z.string().min(1).max(64) });
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const projectView = (p: Project, role?: string) => ({ id: p.id, name: p.name, description: p.description, createdBy: p.createdBy, createdAt: p.createdAt, deployment: p.deployment ?? null, ...(role ? { role } : {}) });

/** Projects, their members and roles, and their audit log. */
export const projectRoutes: Plugin = (app, ctx) => {
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects',
    action: 'self',
    summary: 'projects you hold a role in, with your role',
    handler: async ({ principal }) => {
      return { projects: (await ctx.repo.listProjects(principal.user.id)).map((p) => projectView(p, p.role)) };
    },
  });
  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects',
    action: 'self:write',
    summary: 'create a project; you become its admin',
    body: z.object({
      name: z.string().regex(NAME, 'lower-case letters, digits, ".", "_", "-"; up to 63 characters'),
      description: z.string().max(2000).default(''),
    }),
    handler: async ({ body, principal, reply }) => {
      const p = await ctx.repo.createProject({ id: newId('prj'), name: body.name, description: body.description, createdBy: principal.user.id, createdAt: ctx.now().toISOString() });
      return reply.status(201).send({ project: projectView(p, 'admin') });
    },
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId',
    action: 'project:read',
    summary: 'one project',
    params: ProjectParams,
    handler: async ({ principal }) => ({ project: projectView(principal.project!, principal.role) }),
  });
  addRoute(app, ctx, {
    method: 'DELETE',
    url: '/projects/:projectId',
    action: 'project:manage',
    summary: 'delete a project: its queued and running jobs are cancelled; its rows, then its datasets, models, job outputs and deployment files are removed',
    params: ProjectParams,
    handler: async ({ principal }) => {
      const done = await deleteProject(ctx, principal.project!);
      return { deleted: principal.project!.id, ...done };
    },
  });

  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/members',
    action: 'project:read',
    summary: 'members and their roles',
    params: ProjectParams,
    handler: async ({ principal }) => ({
      members: (await ctx.repo.listMembers(principal.project!.id)).map((m) => ({ username: m.username, role: m.role, grantedBy: m.grantedBy, grantedAt: m.grantedAt })),
    }),
  });
  addRoute(app, ctx, {
    method: 'PUT',
    url: '/projects/:projectId/members/:username',
    action: 'project:members',
    summary: 'grant a role (admin, engineer, viewer) to a user',
    params: ProjectParams.extend({ username: z.string().min(1).max(40) }),
    body: z.object({ role: z.enum(PROJECT_ROLES) }),
    handler: async ({ params, body, principal }) => {
      const user = await ctx.repo.userByName(params.username);
      if (!user) throw new CvoptError('NOT_FOUND', `user ${params.username} not found`, { where: { field: 'username' }, hint: 'a server admin creates accounts: cvopt user create' });
      const project = principal.project!;
      if (user.id === principal.user.id && body.role !== 'admin') await lastAdminGuard(project.id);
      await ctx.repo.setMember({ projectId: project.id, userId: user.id, role: body.role, grantedBy: principal.user.id, grantedAt: ctx.now().toISOString() });
      return { project: project.name, username: user.username, role: body.role };
    },
  });
  addRoute(app, ctx, {
    method: 'DELETE',
    url: '/projects/:projectId/members/:username',
    action: 'project:members',
    summary: "remove a user's role",
    params: ProjectParams.extend({ username: z.string().min(1).max(40) }),
    handler: async ({ params, principal }) => {
      const project = principal.project!;
      const user = await ctx.repo.userByName(params.username);
      const m = user && (await ctx.repo.member(project.id, user.id));
      if (!user || !m) throw new CvoptError('NOT_FOUND', `${params.username} is not a member of ${project.name}`, { where: { field: 'username' } });
      if (m.role === 'admin') await lastAdminGuard(project.id);
      await ctx.repo.removeMember(project.id, user.id);
      return { removed: user.username };
    },
  });

  async function lastAdminGuard(projectId: string): Promise<void> {
    const admins = (await ctx.repo.listMembers(projectId)).filter((m) => m.role === 'admin');
    if (admins.length <= 1) throw new CvoptError('CONFLICT', 'a project keeps at least one admin', { hint: 'grant admin to someone else first' });
  }

  const AuditQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100), before: z.coerce.number().int().positive().optional() });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/audit',
    action: 'project:audit',
    summary: "the project's audit log, newest first: who did what, when, and the outcome",
    params: ProjectParams,
    query: AuditQuery,
    handler: async ({ principal, query }) => ({
      entries: await ctx.repo.listAudit({ projectId: principal.project!.id, limit: query.limit, ...(query.before ? { beforeId: query.before } : {}) }),
    }),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/audit',
    action: 'server:audit',
    summary: 'the whole audit log (server admins)',
    query: AuditQuery,
    handler: async ({ query }) => ({ entries: await ctx.repo.listAudit({ limit: query.limit, ...(query.before ? { beforeId: query.before } : {}) }) }),
  });
};
