/**
 * The state-store backends every state test runs against: SQLite (a private in-memory database, or a
 * file for tests that reopen it) and PostgreSQL (a fresh database on the test server of
 * test/support/postgres.ts). A test file using this helper is parametrised with `each(name, fn)`: the
 * test is registered once per backend, named `[sqlite] name` and `[postgres] name`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { test } from 'uvu';
import { openStore } from '../../core/state/store.js';
import type { StateStore, StoreOptions } from '../../core/state/store.js';
import { freshDatabase } from './postgres.js';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A new, empty location: a file path (SQLite) or a database URL (PostgreSQL). */
  fresh(): Promise<string>;
  /** Store options for a location made by `fresh()`. */
  options(location: string, now?: () => number, databaseClock?: () => number): StoreOptions;
  /** Opens a store on a new empty database (SQLite: in memory). `databaseClock` stands in for the database's clock in lock decisions. */
  open(options?: { now?: () => number; databaseClock?: () => number }): Promise<StateStore>;
  /** The names of the indexes the store created (primary keys and the migration tables excluded). */
  indexes(store: StateStore): Promise<string[]>;
}

const tmpDirs: string[] = [];
test.after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

export const sqliteBackend: Backend = {
  name: 'sqlite',
  async fresh() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-state-'));
    tmpDirs.push(dir);
    return path.join(dir, 'state.db');
  },
  options: (location, now, databaseClock) => ({ path: location, ...(now ? { now } : {}), ...(databaseClock ? { databaseClock } : {}) }),
  open: (o = {}) => openStore({ path: ':memory:', ...(o.now ? { now: o.now } : {}), ...(o.databaseClock ? { databaseClock: o.databaseClock } : {}) }),
  async indexes(store) {
    const rows = await sql<{ name: string }>`
      select name from sqlite_master
      where type = 'index' and name not like 'sqlite_%' and tbl_name not like 'fraisier_migration%' order by name`.execute(store.db);
    return rows.rows.map((r) => r.name);
  },
};

export const postgresBackend: Backend = {
  name: 'postgres',
  fresh: () => freshDatabase('state'),
  options: (location, now, databaseClock) => ({ url: location, ...(now ? { now } : {}), ...(databaseClock ? { databaseClock } : {}) }),
  async open(o = {}) {
    return openStore({ url: await freshDatabase('state'), ...(o.now ? { now: o.now } : {}), ...(o.databaseClock ? { databaseClock: o.databaseClock } : {}) });
  },
  async indexes(store) {
    const rows = await sql<{ name: string }>`
      select indexname as name from pg_indexes
      where schemaname = current_schema() and indexname not like '%_pkey' and tablename not like 'fraisier_migration%' order by indexname`.execute(store.db);
    return rows.rows.map((r) => r.name);
  },
};

export const backends: Backend[] = [sqliteBackend, postgresBackend];

/** Registers `fn` once per backend, as `[sqlite] name` and `[postgres] name`. */
export function each(name: string, fn: (b: Backend) => Promise<void>): void {
  for (const b of backends) test(`[${b.name}] ${name}`, () => fn(b));
}
