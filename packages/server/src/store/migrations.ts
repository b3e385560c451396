import { runMigrations, type Migration, type SqlDriver } from '@cvopt/jobs';

/**
 * Versioned migrations of the server's tables (all prefixed `srv_`). They run at start through the job
 * system's migration runner and are recorded in `schema_migrations(component, version)` as component `server`.
 * A migration is never edited once released: add the next version.
 */
export const COMPONENT = 'server';

interface ServerMigration {
  version: number;
  up: (dialect: SqlDriver['dialect']) => string[];
}

const autoId = (d: SqlDriver['dialect']) => (d === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY');

export const MIGRATIONS: ServerMigration[] = [
  {
    version: 1,
    up: (d) => [
      `CREATE TABLE srv_users (
        id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0,
        failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT, created_at TEXT NOT NULL)`,
      `CREATE TABLE srv_tokens (
        id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES srv_users(id) ON DELETE CASCADE,
        kind TEXT NOT NULL, name TEXT NOT NULL, secret_hash TEXT NOT NULL, scopes TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT)`,
      `CREATE INDEX srv_tokens_user ON srv_tokens(user_id)`,
      `CREATE TABLE srv_projects (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL REFERENCES srv_users(id), created_at TEXT NOT NULL, deployment TEXT)`,
      `CREATE TABLE srv_members (
        project_id TEXT NOT NULL REFERENCES srv_projects(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES srv_users(id) ON DELETE CASCADE,
        role TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at TEXT NOT NULL,
        PRIMARY KEY (project_id, user_id))`,
      `CREATE INDEX srv_members_user ON srv_members(user_id)`,
      `CREATE TABLE srv_datasets (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES srv_projects(id) ON DELETE CASCADE,
        name TEXT NOT NULL, source TEXT NOT NULL, path TEXT NOT NULL, task TEXT NOT NULL,
        size_bytes INTEGER NOT NULL, report TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL,
        UNIQUE (project_id, name))`,
      `CREATE TABLE srv_models (
        id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES srv_projects(id) ON DELETE CASCADE,
        name TEXT NOT NULL, format TEXT NOT NULL, path TEXT, preset TEXT, sha256 TEXT, size_bytes INTEGER NOT NULL,
        loader TEXT NOT NULL, report TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL,
        UNIQUE (project_id, name))`,
      `CREATE TABLE srv_audit (
        id ${autoId(d)}, at TEXT NOT NULL, user_id TEXT, username TEXT, project_id TEXT, action TEXT NOT NULL,
        method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, outcome TEXT NOT NULL,
        request_id TEXT NOT NULL, detail TEXT)`,
      `CREATE INDEX srv_audit_project ON srv_audit(project_id, id)`,
      `CREATE TABLE srv_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
    ],
  },
];

export function migrateServer(db: SqlDriver): Promise<number[]> {
  const steps: Migration[] = MIGRATIONS.map((m) => ({ version: m.version, statements: m.up(db.dialect) }));
  return runMigrations(db, COMPONENT, steps);
}
