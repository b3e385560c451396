import Database from 'better-sqlite3';
import pg from 'pg';

/**
 * The two SQL databases behind one small interface. Statements are written once with `?` placeholders; the
 * PostgreSQL side numbers them ($1, $2 …). Values are strings, numbers or null: times are ISO-8601 text, JSON is
 * text, booleans are 0/1, so the same rows come back from both.
 */
export type SqlValue = string | number | null;
export type Row = Record<string, unknown>;

export interface Db {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: SqlValue[]): Promise<number>;
  /** Runs `fn` in one transaction: all of it commits or none of it. */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export class SqliteDb implements Db {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Database.Statement>();

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
  }

  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  async all<T>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.stmt(sql).all(...params) as T[];
  }

  async get<T>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    return this.stmt(sql).get(...params) as T | undefined;
  }

  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    const s = this.stmt(sql);
    if (!s.reader) return s.run(...params).changes;
    return s.all(...params).length;
  }

  /**
   * better-sqlite3 is synchronous, so every statement of `fn` resolves within the same run of the microtask queue:
   * no other request's statements can interleave between BEGIN and COMMIT as long as `fn` awaits only this Db.
   */
  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = await fn(this);
      this.db.exec('COMMIT');
      return out;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

const numbered = (sql: string): string => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};

interface Queryable {
  query(sql: string, params?: SqlValue[]): Promise<pg.QueryResult>;
}

class PgQueries {
  constructor(protected readonly q: Queryable) {}

  async all<T>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return (await this.q.query(numbered(sql), params)).rows as T[];
  }

  async get<T>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    return (await this.q.query(numbered(sql), params)).rows[0] as T | undefined;
  }

  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    return (await this.q.query(numbered(sql), params)).rowCount ?? 0;
  }
}

class PgTx extends PgQueries implements Db {
  readonly dialect = 'postgres' as const;
  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async close(): Promise<void> {}
}

export interface PostgresOptions {
  url: string;
  /** Schema that holds the tables (created when missing); tests use a fresh one per run. */
  schema?: string;
  /** Connection pool size (default 10). */
  poolMax?: number;
}

export class PostgresDb extends PgQueries implements Db {
  readonly dialect = 'postgres' as const;
  readonly schema: string;
  private readonly pool: pg.Pool;

  private constructor(pool: pg.Pool, schema: string) {
    super(pool);
    this.pool = pool;
    this.schema = schema;
  }

  static async open(o: PostgresOptions): Promise<PostgresDb> {
    const schema = o.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid PostgreSQL schema name "${schema}"`);
    const pool = new pg.Pool({ connectionString: o.url, max: o.poolMax ?? 10, options: `-c search_path=${schema}` });
    // A dropped connection must not crash the server; the next query reconnects.
    pool.on('error', () => undefined);
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    return new PostgresDb(pool, schema);
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(new PgTx(client));
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
