import { CvoptError } from '@cvopt/core';
import type { ProjectRole } from '../permissions.js';
import type { SqlDriver, Row } from '@cvopt/jobs';
import { migrateServer } from './migrations.js';
import type { AuditEntry, DatasetRecord, Deployment, Member, ModelRecord, NewAuditEntry, Project, Repository, Token, TokenScope, User } from './repository.js';

const str = (v: unknown): string => String(v);
const opt = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));
const bool = (v: unknown): boolean => Number(v) === 1;
const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
const nul = (v: string | undefined): SqlValue => (v === undefined ? null : v);

/** A unique-key clash from either database, as the catalogue's CONFLICT. */
function conflict(e: unknown, what: string): never {
  const code = (e as { code?: string }).code ?? '';
  if (code === '23505' || code.startsWith('SQLITE_CONSTRAINT_UNIQUE') || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    throw new CvoptError('CONFLICT', `${what} already exists`, { hint: 'choose another name' });
  }
  throw e;
}

const toUser = (r: Row): User => ({
  id: str(r.id),
  username: str(r.username),
  passwordHash: str(r.password_hash),
  isAdmin: bool(r.is_admin),
  disabled: bool(r.disabled),
  failedLogins: Number(r.failed_logins),
  ...(opt(r.locked_until) ? { lockedUntil: str(r.locked_until) } : {}),
  createdAt: str(r.created_at),
});

const toToken = (r: Row): Token => ({
  id: str(r.id),
  userId: str(r.user_id),
  kind: str(r.kind) as Token['kind'],
  name: str(r.name),
  secretHash: str(r.secret_hash),
  scopes: json(r.scopes) as TokenScope[],
  createdAt: str(r.created_at),
  expiresAt: str(r.expires_at),
  ...(opt(r.revoked_at) ? { revokedAt: str(r.revoked_at) } : {}),
});

const toProject = (r: Row): Project => ({
  id: str(r.id),
  name: str(r.name),
  description: str(r.description),
  createdBy: str(r.created_by),
  createdAt: str(r.created_at),
  ...(r.deployment ? { deployment: json(r.deployment) as Deployment } : {}),
});

const toMember = (r: Row): Member => ({
  projectId: str(r.project_id),
  userId: str(r.user_id),
  username: str(r.username),
  role: str(r.role) as ProjectRole,
  grantedBy: str(r.granted_by),
  grantedAt: str(r.granted_at),
});

const toDataset = (r: Row): DatasetRecord => ({
  id: str(r.id),
  projectId: str(r.project_id),
  name: str(r.name),
  source: str(r.source) as DatasetRecord['source'],
  path: str(r.path),
  task: str(r.task) as DatasetRecord['task'],
  sizeBytes: Number(r.size_bytes),
  report: json(r.report),
  createdBy: str(r.created_by),
  createdAt: str(r.created_at),
});

const toModel = (r: Row): ModelRecord => ({
  id: str(r.id),
  projectId: str(r.project_id),
  name: str(r.name),
  format: str(r.format) as ModelRecord['format'],
  ...(opt(r.path) ? { path: str(r.path) } : {}),
  ...(opt(r.preset) ? { preset: str(r.preset) } : {}),
  ...(opt(r.sha256) ? { sha256: str(r.sha256) } : {}),
  sizeBytes: Number(r.size_bytes),
  loader: str(r.loader) as ModelRecord['loader'],
  report: json(r.report),
  createdBy: str(r.created_by),
  createdAt: str(r.created_at),
});

const toAudit = (r: Row): AuditEntry => ({
  id: Number(r.id),
  at: str(r.at),
  ...(opt(r.user_id) ? { userId: str(r.user_id) } : {}),
  ...(opt(r.username) ? { username: str(r.username) } : {}),
  ...(opt(r.project_id) ? { projectId: str(r.project_id) } : {}),
  action: str(r.action),
  method: str(r.method),
  path: str(r.path),
  status: Number(r.status),
  outcome: str(r.outcome) as AuditEntry['outcome'],
  requestId: str(r.request_id),
  ...(opt(r.detail) ? { detail: str(r.detail) } : {}),
});

const USER_COLUMNS: Record<string, string> = {
  passwordHash: 'password_hash',
  isAdmin: 'is_admin',
  disabled: 'disabled',
  failedLogins: 'failed_logins',
  lockedUntil: 'locked_until',
};

type SqlValue = string | number | null;

/** Statements are written with `?`; the driver takes `$1, $2 …`. */
const numbered = (sql: string): string => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};

/** The three shapes of call the repository makes, over the job system's shared driver. */
class Q {
  constructor(private readonly d: Pick<SqlDriver, 'query'>) {}
  all<T = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.d.query<T>(numbered(sql), params);
  }
  async get<T = Row>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    return (await this.d.query<T>(numbered(sql), params))[0];
  }
  /** For UPDATE/DELETE: the number of rows changed (counted through RETURNING, which both dialects have). */
  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    const returning = /^\s*(UPDATE|DELETE)/i.test(sql) ? `${sql} RETURNING 1 AS changed` : sql;
    return (await this.d.query(numbered(returning), params)).length;
  }
}

/**
 * The repository over one SQL driver: the one the job system opens (SQLite file or PostgreSQL pool), so the
 * server's `srv_` tables and the job tables live in the same database and migrate through one table.
 */
export class SqlRepository implements Repository {
  private readonly db: Q & { transaction: <T>(fn: (tx: Q) => Promise<T>) => Promise<T> };

  constructor(
    private readonly driver: SqlDriver,
    private readonly ownsDriver = true,
  ) {
    const q = new Q(driver);
    this.db = Object.assign(q, { transaction: <T>(fn: (tx: Q) => Promise<T>) => driver.transaction((tx) => fn(new Q(tx))) });
  }

  get dialect(): SqlDriver['dialect'] {
    return this.driver.dialect;
  }

  migrate(): Promise<number[]> {
    return migrateServer(this.driver);
  }

  async close(): Promise<void> {
    if (this.ownsDriver) await this.driver.close();
  }

  async countUsers(): Promise<number> {
    const r = await this.db.get<{ n: unknown }>(`SELECT COUNT(*) AS n FROM srv_users`);
    return Number(r?.n ?? 0);
  }

  async createUser(u: User): Promise<User> {
    try {
      await this.db.run(
        `INSERT INTO srv_users (id, username, password_hash, is_admin, disabled, failed_logins, locked_until, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [u.id, u.username, u.passwordHash, u.isAdmin ? 1 : 0, u.disabled ? 1 : 0, u.failedLogins, nul(u.lockedUntil), u.createdAt],
      );
    } catch (e) {
      conflict(e, `user "${u.username}"`);
    }
    return u;
  }

  async userById(id: string): Promise<User | undefined> {
    const r = await this.db.get(`SELECT * FROM srv_users WHERE id = ?`, [id]);
    return r && toUser(r);
  }

  async userByName(username: string): Promise<User | undefined> {
    const r = await this.db.get(`SELECT * FROM srv_users WHERE username = ?`, [username]);
    return r && toUser(r);
  }

  async listUsers(): Promise<User[]> {
    return (await this.db.all(`SELECT * FROM srv_users ORDER BY username`)).map(toUser);
  }

  async updateUser(id: string, patch: Partial<Pick<User, 'passwordHash' | 'isAdmin' | 'disabled' | 'failedLogins' | 'lockedUntil'>>): Promise<User | undefined> {
    const sets: string[] = [];
    const params: SqlValue[] = [];
    for (const [k, v] of Object.entries(patch)) {
      const col = USER_COLUMNS[k];
      if (!col) continue;
      sets.push(`${col} = ?`);
      params.push(typeof v === 'boolean' ? (v ? 1 : 0) : v === undefined ? null : (v as SqlValue));
    }
    if (sets.length) await this.db.run(`UPDATE srv_users SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
    return this.userById(id);
  }

  async recordFailedLogin(id: string, lockAfter: number, lockUntil: string): Promise<User | undefined> {
    // One round trip: a refused login should take about as long whether or not the account exists.
    const r = await this.db.get(
      `UPDATE srv_users SET failed_logins = failed_logins + 1,
         locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END WHERE id = ? RETURNING *`,
      [lockAfter, lockUntil, id],
    );
    return r && toUser(r);
  }

  async createToken(t: Token): Promise<Token> {
    await this.db.run(
      `INSERT INTO srv_tokens (id, user_id, kind, name, secret_hash, scopes, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [t.id, t.userId, t.kind, t.name, t.secretHash, JSON.stringify(t.scopes), t.createdAt, t.expiresAt, nul(t.revokedAt)],
    );
    return t;
  }

  async tokenById(id: string): Promise<Token | undefined> {
    const r = await this.db.get(`SELECT * FROM srv_tokens WHERE id = ?`, [id]);
    return r && toToken(r);
  }

  async tokenWithUser(id: string): Promise<{ token: Token; user: User } | undefined> {
    const r = await this.db.get(
      `SELECT t.id AS t_id, t.user_id, t.kind, t.name, t.secret_hash, t.scopes, t.created_at AS t_created_at, t.expires_at, t.revoked_at,
              u.id AS u_id, u.username, u.password_hash, u.is_admin, u.disabled, u.failed_logins, u.locked_until, u.created_at AS u_created_at
       FROM srv_tokens t JOIN srv_users u ON u.id = t.user_id WHERE t.id = ?`,
      [id],
    );
    if (!r) return undefined;
    return { token: toToken({ ...r, id: r.t_id, created_at: r.t_created_at }), user: toUser({ ...r, id: r.u_id, created_at: r.u_created_at }) };
  }

  async listTokens(userId: string): Promise<Token[]> {
    return (await this.db.all(`SELECT * FROM srv_tokens WHERE user_id = ? AND kind = 'api' ORDER BY created_at`, [userId])).map(toToken);
  }

  async revokeToken(id: string, at: string): Promise<boolean> {
    return (await this.db.run(`UPDATE srv_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, [at, id])) > 0;
  }

  async revokeUserTokens(userId: string, at: string): Promise<number> {
    return this.db.run(`UPDATE srv_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, [at, userId]);
  }

  async createProject(p: Project): Promise<Project> {
    try {
      await this.db.transaction(async (tx) => {
        await tx.run(`INSERT INTO srv_projects (id, name, description, created_by, created_at) VALUES (?, ?, ?, ?, ?)`, [p.id, p.name, p.description, p.createdBy, p.createdAt]);
        await tx.run(`INSERT INTO srv_members (project_id, user_id, role, granted_by, granted_at) VALUES (?, ?, 'admin', ?, ?)`, [p.id, p.createdBy, p.createdBy, p.createdAt]);
      });
    } catch (e) {
      conflict(e, `project "${p.name}"`);
    }
    return p;
  }

  async projectById(id: string): Promise<Project | undefined> {
    const r = await this.db.get(`SELECT * FROM srv_projects WHERE id = ?`, [id]);
    return r && toProject(r);
  }

  async projectByName(name: string): Promise<Project | undefined> {
    const r = await this.db.get(`SELECT * FROM srv_projects WHERE name = ?`, [name]);
    return r && toProject(r);
  }

  async listProjects(userId?: string): Promise<(Project & { role?: ProjectRole })[]> {
    if (userId === undefined) return (await this.db.all(`SELECT * FROM srv_projects ORDER BY name`)).map(toProject);
    const rows = await this.db.all(`SELECT p.*, m.role FROM srv_projects p JOIN srv_members m ON m.project_id = p.id WHERE m.user_id = ? ORDER BY p.name`, [userId]);
    return rows.map((r) => ({ ...toProject(r), role: str(r.role) as ProjectRole }));
  }

  async projectAccess(projectId: string, userId: string): Promise<{ project: Project; role?: ProjectRole } | undefined> {
    const r = await this.db.get(`SELECT p.*, m.role FROM srv_projects p LEFT JOIN srv_members m ON m.project_id = p.id AND m.user_id = ? WHERE p.id = ?`, [userId, projectId]);
    if (!r) return undefined;
    return { project: toProject(r), ...(opt(r.role) ? { role: str(r.role) as ProjectRole } : {}) };
  }

  async setDeployment(projectId: string, d: Deployment | undefined): Promise<void> {
    await this.db.run(`UPDATE srv_projects SET deployment = ? WHERE id = ?`, [d ? JSON.stringify(d) : null, projectId]);
  }

  async deleteProject(id: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM srv_projects WHERE id = ?`, [id])) > 0;
  }

  async setMember(m: Omit<Member, 'username'>): Promise<void> {
    await this.db.run(
      `INSERT INTO srv_members (project_id, user_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by, granted_at = excluded.granted_at`,
      [m.projectId, m.userId, m.role, m.grantedBy, m.grantedAt],
    );
  }

  async removeMember(projectId: string, userId: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM srv_members WHERE project_id = ? AND user_id = ?`, [projectId, userId])) > 0;
  }

  async member(projectId: string, userId: string): Promise<Member | undefined> {
    const r = await this.db.get(
      `SELECT m.*, u.username FROM srv_members m JOIN srv_users u ON u.id = m.user_id WHERE m.project_id = ? AND m.user_id = ?`,
      [projectId, userId],
    );
    return r && toMember(r);
  }

  async listMembers(projectId: string): Promise<Member[]> {
    return (await this.db.all(`SELECT m.*, u.username FROM srv_members m JOIN srv_users u ON u.id = m.user_id WHERE m.project_id = ? ORDER BY u.username`, [projectId])).map(
      toMember,
    );
  }

  async createDataset(d: DatasetRecord): Promise<DatasetRecord> {
    try {
      await this.db.run(
        `INSERT INTO srv_datasets (id, project_id, name, source, path, task, size_bytes, report, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [d.id, d.projectId, d.name, d.source, d.path, d.task, d.sizeBytes, JSON.stringify(d.report), d.createdBy, d.createdAt],
      );
    } catch (e) {
      conflict(e, `dataset "${d.name}"`);
    }
    return d;
  }

  async dataset(projectId: string, id: string): Promise<DatasetRecord | undefined> {
    const r = await this.db.get(`SELECT * FROM srv_datasets WHERE project_id = ? AND id = ?`, [projectId, id]);
    return r && toDataset(r);
  }

  async listDatasets(projectId: string): Promise<DatasetRecord[]> {
    return (await this.db.all(`SELECT * FROM srv_datasets WHERE project_id = ? ORDER BY created_at, id`, [projectId])).map(toDataset);
  }

  async deleteDataset(projectId: string, id: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM srv_datasets WHERE project_id = ? AND id = ?`, [projectId, id])) > 0;
  }

  async createModel(m: ModelRecord): Promise<ModelRecord> {
    try {
      await this.db.run(
        `INSERT INTO srv_models (id, project_id, name, format, path, preset, sha256, size_bytes, loader, report, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [m.id, m.projectId, m.name, m.format, nul(m.path), nul(m.preset), nul(m.sha256), m.sizeBytes, m.loader, JSON.stringify(m.report), m.createdBy, m.createdAt],
      );
    } catch (e) {
      conflict(e, `model "${m.name}"`);
    }
    return m;
  }

  async model(projectId: string, id: string): Promise<ModelRecord | undefined> {
    const r = await this.db.get(`SELECT * FROM srv_models WHERE project_id = ? AND id = ?`, [projectId, id]);
    return r && toModel(r);
  }

  async listModels(projectId: string): Promise<ModelRecord[]> {
    return (await this.db.all(`SELECT * FROM srv_models WHERE project_id = ? ORDER BY created_at, id`, [projectId])).map(toModel);
  }

  async deleteModel(projectId: string, id: string): Promise<boolean> {
    return (await this.db.run(`DELETE FROM srv_models WHERE project_id = ? AND id = ?`, [projectId, id])) > 0;
  }

  async resourceIds(): Promise<{ datasets: string[]; models: string[] }> {
    const [datasets, models] = await Promise.all([this.db.all<{ id: string }>(`SELECT id FROM srv_datasets`), this.db.all<{ id: string }>(`SELECT id FROM srv_models`)]);
    return { datasets: datasets.map((r) => r.id), models: models.map((r) => r.id) };
  }

  async appendAudit(e: NewAuditEntry): Promise<void> {
    await this.db.run(
      `INSERT INTO srv_audit (at, user_id, username, project_id, action, method, path, status, outcome, request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [e.at, nul(e.userId), nul(e.username), nul(e.projectId), e.action, e.method, e.path, e.status, e.outcome, e.requestId, nul(e.detail)],
    );
  }

  async listAudit(f: { projectId?: string; limit: number; beforeId?: number }): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.projectId !== undefined) {
      where.push('project_id = ?');
      params.push(f.projectId);
    }
    if (f.beforeId !== undefined) {
      where.push('id < ?');
      params.push(f.beforeId);
    }
    const sql = `SELECT * FROM srv_audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (await this.db.all(sql, [...params, f.limit])).map(toAudit);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const r = await this.db.get<{ value: string }>(`SELECT value FROM srv_settings WHERE key = ?`, [key]);
    return r?.value;
  }

  async setSetting(key: string, value: string | undefined): Promise<void> {
    if (value === undefined) await this.db.run(`DELETE FROM srv_settings WHERE key = ?`, [key]);
    else await this.db.run(`INSERT INTO srv_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, value]);
  }
}
