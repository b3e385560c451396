import { openDatabase, type SqlDriver } from '@cvopt/jobs';
import type { Repository } from './repository.js';
import { SqlRepository } from './sql-repository.js';

export interface StoreOptions {
  /** PostgreSQL URL (CVOPT_DATABASE_URL); without it the store is the SQLite file `cvopt.db` in `dataDir`. */
  databaseUrl?: string;
  /** PostgreSQL schema for the tables (default: the connection's search_path). */
  pgSchema?: string;
  dataDir: string;
}

/** Open the database shared with the job system. */
export function openDriver(o: StoreOptions): Promise<SqlDriver> {
  return o.databaseUrl ? openDatabase({ url: o.databaseUrl, ...(o.pgSchema ? { schema: o.pgSchema } : {}) }) : openDatabase({ dataDir: o.dataDir });
}

/** The repository on `driver`, its tables brought up to the current migration. */
export async function openRepository(driver: SqlDriver, ownsDriver = true): Promise<Repository> {
  const repo = new SqlRepository(driver, ownsDriver);
  await repo.migrate();
  return repo;
}
