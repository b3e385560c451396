import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { CvoptError } from '@cvopt/core';

export type Row = Record<string, unknown>;
export type SqlDialect = 'sqlite' | 'postgres';

/** Runs statements written once for both dialects: `$1, $2 …` placeholders, standard SQL, RETURNING. */
export interface SqlExecutor {
  readonly dialect: SqlDialect;
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

/**
 * One database connection (SQLite file or PostgreSQL pool) shared by the job system and the API server's own
 * tables. `transaction` runs `fn` atomically: SQLite takes the write lock at BEGIN (IMMEDIATE), PostgreSQL
 * runs it on one pooled client.
 */
export interface SqlDriver extends SqlExecutor {
  /** Where the data lives, for messages: the SQLite file or the PostgreSQL URL without its password. */
  readonly location: string;
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * PostgreSQL only: call `onMessage` for each NOTIFY on `channel` (a dedicated connection); resolves with the
   * function that stops listening. Other processes' events then arrive without polling.
   */
  listen?(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** `postgres://…` (default: env CVOPT_DATABASE_URL); when absent, the SQLite file in `dataDir`. */
  url?: string;
  /** Folder of the SQLite file `cvopt.db` (default: env CVOPT_DATA_DIR, else `./.cvopt`). */
  dataDir?: string;
  /** SQLite file path; overrides `dataDir`. */
  file?: string;
  /** PostgreSQL schema to create and use (tests use a unique one per run); default the server's search_path. */
  schema?: string;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /** How long SQLite waits for another process's write lock before failing, ms (default 10 000). */
  busyTimeoutMs?: number;
}

/** Open the job system's database: PostgreSQL when a URL is given or set, else the embedded SQLite file. */
export async function openDatabase(opts: OpenDatabaseOptions = {}): Promise<SqlDriver> {
  const url = opts.url ?? process.env.CVOPT_DATABASE_URL;
  if (url) return openPostgres(url, opts);
  const file = opts.file ?? join(resolve(opts.dataDir ?? process.env.CVOPT_DATA_DIR ?? '.cvopt'), 'cvopt.db');
  return openSqlite(file, opts);
}

/** `$1 … $n` → `?` with the parameters reordered by occurrence (a placeholder may repeat). */
function toSqlite(sql: string, params: readonly unknown[]): { sql: string; params: unknown[] } {
  const out: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    out.push(sqliteValue(params[Number(n) - 1]));
    return '?';
  });
  return { sql: text, params: out };
}

function sqliteValue(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

export function openSqlite(file: string, opts: Pick<OpenDatabaseOptions, 'busyTimeoutMs'> = {}): SqlDriver {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (e) {
    throw new CvoptError('INVALID_CONFIG', `cannot open the SQLite database ${file}: ${(e as Error).message}`, {
      where: { file },
      hint: 'set CVOPT_DATA_DIR to a writable folder, or CVOPT_DATABASE_URL to a PostgreSQL database',
    });
  }
  // WAL: readers never block the writer, and several worker processes share the file safely.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
  const cache = new Map<string, Database.Statement>();
  const run = (sql: string, params: readonly unknown[]): Row[] => {
    const q = toSqlite(sql, params);
    let stmt = cache.get(q.sql);
    if (!stmt) {
      stmt = db.prepare(q.sql);
      cache.set(q.sql, stmt);
    }
    if (stmt.reader) return stmt.all(...q.params) as Row[];
    stmt.run(...q.params);
    return [];
  };
  // better-sqlite3 is synchronous, but a transaction's body awaits between statements: a mutex keeps every other
  // statement of this process out of an open transaction.
  let gate: Promise<void> = Promise.resolve();
  const exclusive = async <T>(fn: () => Promise<T>): Promise<T> => {
    const before = gate;
    let done!: () => void;
    gate = new Promise<void>((r) => (done = r));
    await before;
    try {
      return await fn();
    } finally {
      done();
    }
  };
  const inTx: SqlExecutor = { dialect: 'sqlite', query: async <T>(sql: string, params: readonly unknown[] = []) => run(sql, params) as T[] };
  return {
    dialect: 'sqlite',
    location: file,
    query: <T>(sql: string, params: readonly unknown[] = []) => exclusive(async () => run(sql, params) as T[]),
    transaction: <T>(fn: (tx: SqlExecutor) => Promise<T>) =>
      exclusive(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const out = await fn(inTx);
          db.exec('COMMIT');
          return out;
        } catch (e) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw e;
        }
      }),
    close: async () => {
      await exclusive(async () => db.close());
    },
  };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres (unparseable URL)';
  }
}

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openPostgres(url: string, opts: Pick<OpenDatabaseOptions, 'schema' | 'poolSize'> = {}): Promise<SqlDriver> {
  if (opts.schema !== undefined && !SCHEMA_RE.test(opts.schema)) {
    throw new CvoptError('INVALID_CONFIG', `PostgreSQL schema name "${opts.schema}" is not a plain lower-case identifier`, { where: { field: 'schema' } });
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client's connection error must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  const location = redact(url);
  const wrap = (e: unknown): never => {
    const code = (e as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === '3D000' || code === '28P01') {
      throw new CvoptError('DEPENDENCY_MISSING', `cannot reach PostgreSQL at ${location}: ${(e as Error).message}`, {
        hint: 'start PostgreSQL or fix CVOPT_DATABASE_URL (postgres://user@host:5432/db)',
        cause: e,
      });
    }
    throw e;
  };
  const exec = (client: pg.Pool | pg.PoolClient): SqlExecutor => ({
    dialect: 'postgres',
    query: async <T>(sql: string, params: readonly unknown[] = []) => {
      try {
        return (await client.query(sql, params as unknown[])).rows as T[];
      } catch (e) {
        return wrap(e);
      }
    },
  });
  if (opts.schema) {
    const admin = new pg.Client({ connectionString: url });
    try {
      await admin.connect();
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
    } catch (e) {
      wrap(e);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
  const root = exec(pool);
  const listeners = new Set<pg.Client>();
  return {
    dialect: 'postgres',
    location,
    query: root.query,
    listen: async (channel, onMessage) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new CvoptError('INTERNAL', `bad NOTIFY channel name "${channel}"`);
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => undefined);
      await client.connect().catch(wrap);
      client.on('notification', (n) => n.channel === channel && onMessage(n.payload ?? ''));
      await client.query(`LISTEN ${channel}`);
      listeners.add(client);
      return async () => {
        listeners.delete(client);
        await client.end().catch(() => undefined);
      };
    },
    transaction: async <T>(fn: (tx: SqlExecutor) => Promise<T>) => {
      const client = await pool.connect().catch(wrap);
      try {
        await client.query('BEGIN');
        const out = await fn(exec(client));
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    close: async () => {
      await Promise.all([...listeners].map((c) => c.end().catch(() => undefined)));
      listeners.clear();
      await pool.end();
    },
  };
}
