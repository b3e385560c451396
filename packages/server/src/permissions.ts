import type { TokenScope } from './store/repository.js';

/**
 * The one permission table. Every route declares one of these actions; the route registry refuses a route
 * without one, so the server cannot start with an unguarded endpoint.
 *
 * - `public`: no credentials (health, OpenAPI, login, first-admin setup).
 * - `self`: any signed-in user, about themself (whoami, their tokens, their projects, creating a project).
 * - `server:*`: server admins only (users, server-side dataset paths, the global audit log); `server:metrics`
 *   also with the scrape token, for Prometheus.
 * - `project:*` …: a role in the project in the URL. Someone with no role there gets 404, never 403, so ids of
 *   other projects give nothing away. A server admin acts as admin in every project.
 */
export const PROJECT_ROLES = ['admin', 'engineer', 'viewer'] as const;
export type ProjectRole = (typeof PROJECT_ROLES)[number];

interface ActionSpec {
  /** Who may: project roles for project actions; 'public' | 'user' | 'server-admin' for the others. */
  readonly who: 'public' | 'user' | 'server-admin' | readonly ProjectRole[];
  /** The API-token scope the action needs (sessions carry every scope). */
  readonly scope: TokenScope | 'none';
  /** Server admin as well as a project role (registering a server-side path reads the server's disk). */
  readonly serverAdminToo?: boolean;
  /**
   * Also allowed with the scrape token (`CVOPT_METRICS_TOKEN`, sent as `Authorization: Bearer <token>`), so a
   * Prometheus server reads metrics without holding an admin's credentials.
   */
  readonly scrapeToken?: boolean;
}

const ALL: readonly ProjectRole[] = ['admin', 'engineer', 'viewer'];
const STAFF: readonly ProjectRole[] = ['admin', 'engineer'];
const ADMIN: readonly ProjectRole[] = ['admin'];

export const ACTIONS = {
  public: { who: 'public', scope: 'none' },
  self: { who: 'user', scope: 'read' },
  'self:write': { who: 'user', scope: 'write' },
  'server:users': { who: 'server-admin', scope: 'write' },
  'server:audit': { who: 'server-admin', scope: 'read' },
  'server:metrics': { who: 'server-admin', scope: 'read', scrapeToken: true },
  'project:read': { who: STAFF, scope: 'read' },
  'project:manage': { who: ADMIN, scope: 'write' },
  'project:members': { who: ADMIN, scope: 'write' },
  'project:audit': { who: ADMIN, scope: 'read' },
  'dataset:read': { who: STAFF, scope: 'read' },
  'dataset:write': { who: ADMIN, scope: 'write' },
  'dataset:register-path': { who: ADMIN, scope: 'write', serverAdminToo: true },
  'model:read': { who: STAFF, scope: 'read' },
  'model:write': { who: ADMIN, scope: 'write' },
  'job:read': { who: STAFF, scope: 'read' },
  'job:submit': { who: ADMIN, scope: 'write' },
  'job:cancel': { who: ADMIN, scope: 'write' },
  'artifact:read': { who: STAFF, scope: 'read' },
  predict: { who: ALL, scope: 'predict' },
} as const satisfies Record<string, ActionSpec>;

export type Action = keyof typeof ACTIONS;

export function actionSpec(a: Action): ActionSpec {
  return ACTIONS[a];
}

export function isAction(a: unknown): a is Action {
  return typeof a === 'string' && Object.hasOwn(ACTIONS, a);
}

export function isProjectAction(a: Action): boolean {
  return Array.isArray(ACTIONS[a].who);
}

/** May a holder of `role` in the project perform `action`? */
export function roleAllows(role: ProjectRole, action: Action): boolean {
  const who = ACTIONS[action].who;
  return Array.isArray(who) && who.includes(role);
}

/** Does a token with these scopes cover `action`? */
export function scopeAllows(scopes: readonly TokenScope[], action: Action): boolean {
  const need = ACTIONS[action].scope;
  return need === 'none' || scopes.includes(need);
}
