import { CvoptError } from '@cvopt/core';
import type { SqlDialect, SqlDriver } from './driver.js';

/** One schema step of a component; versions start at 1 and never change once released. */
export interface Migration {
  version: number;
  /**
   * Statements run in order inside one transaction (DDL is transactional in both SQLite and PostgreSQL); one that
   * differs between the two is given per dialect.
   */
  statements: readonly (string | Readonly<Record<SqlDialect, string>>)[];
}

/**
 * Bring `component`'s tables up to its newest version. Several components share one database (the job system
 * as `jobs`, the API server as `server`): `schema_migrations(component, version)` records each one's steps.
 * Concurrent starts are safe: PostgreSQL serialises them with an advisory lock, SQLite with its write lock.
 * Returns the versions applied now.
 */
export async function runMigrations(db: SqlDriver, component: string, migrations: readonly Migration[]): Promise<number[]> {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) throw new CvoptError('INTERNAL', `migrations of "${component}" must be numbered 1..n without gaps; found ${m.version} at position ${i + 1}`);
  });
  return db.transaction(async (tx) => {
    // One lock for every component: two processes creating schema_migrations at once would otherwise collide.
    if (tx.dialect === 'postgres') await tx.query("SELECT pg_advisory_xact_lock(hashtext('cvopt-migrate'))");
    await tx.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (component, version))',
    );
    const rows = await tx.query<{ version: number }>('SELECT version FROM schema_migrations WHERE component = $1', [component]);
    const have = new Set(rows.map((r) => Number(r.version)));
    const newest = Math.max(0, ...have);
    if (newest > sorted.length) {
      throw new CvoptError('INVALID_CONFIG', `the database has "${component}" schema version ${newest}, newer than this build knows (${sorted.length})`, {
        hint: 'upgrade cvopt on this machine, or point it at another database',
      });
    }
    const applied: number[] = [];
    for (const m of sorted) {
      if (have.has(m.version)) continue;
      for (const s of m.statements) await tx.query(typeof s === 'string' ? s : s[tx.dialect]);
      await tx.query('INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, $3)', [component, m.version, Date.now()]);
      applied.push(m.version);
    }
    return applied;
  });
}
