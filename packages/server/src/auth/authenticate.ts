import { CvoptError } from '@cvopt/core';
import { actionSpec, isProjectAction, roleAllows, scopeAllows, type Action, type ProjectRole } from '../permissions.js';
import type { Project, Repository, Token, User } from '../store/repository.js';
import { parseBearer, secretMatches } from './tokens.js';

/** Who is calling, and with what role in the project of the URL (when the route is about one). */
export interface Principal {
  user: User;
  token: Token;
  project?: Project;
  role?: ProjectRole;
}

const unauthenticated = (msg: string) =>
  new CvoptError('UNAUTHENTICATED', msg, { hint: 'sign in with `cvopt login URL` (or POST /api/v1/auth/login) and send Authorization: Bearer <token>' });

/** The user behind an Authorization header, or UNAUTHENTICATED naming what was wrong. */
export async function authenticate(repo: Repository, header: string | undefined, now: Date): Promise<{ user: User; token: Token }> {
  if (!header) throw unauthenticated('no credentials: this route needs a session or API token');
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  const parsed = m ? parseBearer(m[1]!) : undefined;
  if (!parsed) throw unauthenticated('the Authorization header is not "Bearer cvopt_…"');
  const found = await repo.tokenWithUser(parsed.id);
  // The same answer for an unknown id and a wrong secret; the comparison is constant-time.
  if (!found || !secretMatches(parsed.secret, found.token.secretHash)) throw unauthenticated('unknown token');
  const { token, user } = found;
  if (token.revokedAt) throw unauthenticated(`token ${token.id} was revoked`);
  if (Date.parse(token.expiresAt) <= now.getTime()) throw unauthenticated(`token ${token.id} expired at ${token.expiresAt}`);
  if (user.disabled) throw unauthenticated('the account is disabled');
  return { user, token };
}

/**
 * Decide whether `who` may perform `action` (on `projectId` for project actions). A project the caller holds
 * no role in answers NOT_FOUND, exactly as a project that does not exist.
 */
export async function authorize(repo: Repository, who: { user: User; token: Token }, action: Action, projectId: string | undefined): Promise<Principal> {
  const spec = actionSpec(action);
  if (!scopeAllows(who.token.scopes, action)) {
    throw new CvoptError('FORBIDDEN', `this token's scopes (${who.token.scopes.join(', ')}) do not include "${spec.scope}", which ${action} needs`, {
      hint: 'create a token with that scope: cvopt token create --scopes …',
    });
  }
  if (spec.who === 'user') return { ...who };
  if (spec.who === 'server-admin') {
    if (!who.user.isAdmin) throw new CvoptError('FORBIDDEN', `${action} needs a server admin`, { hint: 'ask a server admin' });
    return { ...who };
  }
  if (!isProjectAction(action) || projectId === undefined) throw new CvoptError('INTERNAL', `route for ${action} has no :projectId`);
  const notFound = new CvoptError('NOT_FOUND', `project ${projectId} not found`, { where: { field: 'projectId' }, hint: 'list yours with GET /api/v1/projects' });
  const access = await repo.projectAccess(projectId, who.user.id);
  if (!access || (!access.role && !who.user.isAdmin)) throw notFound;
  const { project } = access;
  const role: ProjectRole = access.role ?? 'admin';
  if (!roleAllows(role, action) && !(who.user.isAdmin && roleAllows('admin', action))) {
    throw new CvoptError('FORBIDDEN', `role "${role}" in project ${project.name} does not allow ${action}`, { hint: 'ask a project admin for a role that does' });
  }
  if (spec.serverAdminToo && !who.user.isAdmin) throw new CvoptError('FORBIDDEN', `${action} needs a server admin as well as project admin`);
  return { ...who, project, role };
}
