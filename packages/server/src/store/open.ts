import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresDb, SqliteDb } from './db.js';
import type { Repository } from './repository.js';
import { SqlRepository } from './sql-repository.js';

export interface StoreOptions {
  /** PostgreSQL URL (CVOPT_DATABASE_URL); without it the store is SQLite in `dataDir`. */
  databaseUrl?: string;
  /** PostgreSQL schema for the tables (default public). */
  pgSchema?: string;
  dataDir: string;
}

/** Open the store and bring its tables up to the current migration. */
export async function openRepository(o: StoreOptions): Promise<Repository> {
  let repo: Repository;
  if (o.databaseUrl) {
    repo = new SqlRepository(await PostgresDb.open({ url: o.databaseUrl, ...(o.pgSchema ? { schema: o.pgSchema } : {}) }));
  } else {
    mkdirSync(o.dataDir, { recursive: true });
    repo = new SqlRepository(new SqliteDb(join(o.dataDir, 'cvopt.db')));
  }
  await repo.migrate();
  return repo;
}
