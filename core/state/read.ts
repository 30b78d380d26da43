/**
 * The parts of the state store that load neither kysely nor the migrations: where the state is
 * ({@link resolveState}), how a SQLite file is prepared, how a deployment row reads, and
 * {@link quickHistory}, the read that `fraisier history` makes on a SQLite file whose schema is current
 * (better-sqlite3 and one prepared statement: kysely was a large part of the command's cold start).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { DeploymentRow } from './schema.js';
import type { Deployment, DeploymentKind, DeploymentStatus, StoreOptions } from './store.js';
import type { ProviderOutcome } from '../types.js';

/**
 * The state store's migration names, oldest first: the schema {@link quickHistory} reads. A unit test
 * (test/core/state-read.test.ts) checks it against `migrations()` of both flavours: add a migration's
 * name here when you add the migration. A file whose schema differs (older, or newer) is read through
 * the store, which migrates it.
 */
export const MIGRATION_NAMES: readonly string[] = [
  '0001_initial',
  '0100_canary_state',
  '0200_provider_outcomes',
  '0300_cancel_lock_progress',
  '0400_queue',
  '0500_webhook_deliveries',
];
/** Creates the directory (0700) and the file (0600) of a SQLite store, or narrows the file to 0600. */
export function prepareFile(file: string): void {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700); // the umask may have narrowed it further, never widened: make it exact
  }
  const fd = fs.openSync(file, 'a', 0o600);
  try {
    if ((fs.fstatSync(fd).mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
}

/** True when this process can write the SQLite file and create its -wal and -shm files next to it. */
export function writable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.W_OK);
    fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
    // root passes access() on a read-only mount: ask the file system itself
    fs.closeSync(fs.openSync(file, 'r+'));
    return true;
  } catch {
    return false;
  }
}

/** Converts a database integer (a number on SQLite, possibly a string for PostgreSQL bigint) to a number. */
export function num(v: number | string | bigint): number;
export function num(v: number | string | bigint | null): number | null;
export function num(v: number | string | bigint | null): number | null {
  return v === null ? null : Number(v);
}

export function toDeployment(r: DeploymentRow): Deployment {
  return {
    id: num(r.id),
    fraise: r.fraise,
    environment: r.environment,
    kind: r.kind as DeploymentKind,
    strategy: r.strategy,
    fromVersion: r.from_version,
    toVersion: r.to_version,
    user: r.user,
    host: r.host,
    status: r.status as DeploymentStatus,
    startedAt: num(r.started_at),
    finishedAt: num(r.finished_at),
    durationMs: num(r.duration_ms),
    error: r.error,
    ...(r.providers ? { providers: JSON.parse(r.providers) as ProviderOutcome[] } : {}),
  };
}

export type StateLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/**
 * Where the state file is: `$FRAISIER_STATE`, else the configured path (relative to `baseDir`), else
 * `.fraisier/state.db` in `baseDir` (the directory of the deploy script or fraises.yaml).
 */
export function statePath(baseDir: string, configured?: string): string {
  const p = process.env['FRAISIER_STATE'] ?? configured;
  return p ? path.resolve(baseDir, p) : path.join(baseDir, '.fraisier', 'state.db');
}

/**
 * Which store to open, first match wins:
 * 1. `configured.url` (`state.url` in fraises.yaml, `state: { url }` in deploy.ts): PostgreSQL;
 * 2. `configured.path` (`state.path`): that SQLite file (`$FRAISIER_STATE` still overrides the path);
 * 3. `$FRAISIER_DATABASE_URL`: PostgreSQL;
 * 4. the SQLite file of {@link statePath} (`$FRAISIER_STATE`, else `.fraisier/state.db` in `baseDir`).
 */
export function resolveState(baseDir: string, configured: { path?: string; url?: string } = {}, env: NodeJS.ProcessEnv = process.env): StateLocation {
  if (configured.url) return { kind: 'postgres', url: configured.url };
  const fromEnv = env['FRAISIER_DATABASE_URL'];
  if (!configured.path && fromEnv) return { kind: 'postgres', url: fromEnv };
  return { kind: 'sqlite', path: statePath(baseDir, configured.path) };
}

/** A location as {@link openStore} options. */
export function storeOptions(location: StateLocation, now?: () => number, databaseClock?: () => number): StoreOptions {
  return {
    ...(location.kind === 'sqlite' ? { path: location.path } : { url: location.url }),
    ...(now ? { now } : {}),
    ...(databaseClock ? { databaseClock } : {}),
  };
}

/** The calls {@link quickHistory} makes on a SQLite file: those of a better-sqlite3 `Database`. */
type SqliteHandle = Pick<BetterSqlite3.Database, 'prepare' | 'pragma' | 'close'>;

/** The native addon's database, as better-sqlite3 12's lib/database.js constructs and calls it. */
interface Addon {
  isInitialized?: boolean;
  setErrorConstructor(ctor: unknown): void;
  Database: new (
    filename: string,
    filenameGiven: string,
    anonymous: boolean,
    readonly: boolean,
    fileMustExist: boolean,
    timeout: number,
    verbose: null,
    buffer: null,
  ) => { prepare(sql: string, db: unknown, pragma: boolean): BetterSqlite3.Statement; close(): void };
}

/**
 * Whether the installed better-sqlite3 calls its addon exactly as {@link openSqlite} does (the database's
 * constructor, `prepare` and `pragma`): the addon's interface is internal, so it is used directly only
 * when the package's own source shows these calls (three small files read; any difference, and the
 * package opens the file itself).
 */
function callsAddonAsExpected(dir: string): boolean {
  const read = (f: string) => fs.readFileSync(path.join(dir, 'lib', ...f.split('/')), 'utf8');
  return (
    read('database.js').includes('new addon.Database(filename, filenameGiven, anonymous, readonly, fileMustExist, timeout, verbose || null, buffer || null)') &&
    read('methods/wrappers.js').includes('this[cppdb].prepare(sql, this, false)') &&
    read('methods/pragma.js').includes('this[cppdb].prepare(`PRAGMA ${source}`, this, true)')
  );
}

/**
 * Opens an existing SQLite `file` for {@link quickHistory}. With better-sqlite3 12 (the version this
 * was written against, checked in its package.json and in its source: {@link callsAddonAsExpected}) and its addon built at build/Release, the addon is
 * loaded directly, as better-sqlite3's own lib/database.js calls it, without that JavaScript wrapper (a
 * dozen modules, and the `bindings` package that searches for the addon): on a loaded machine loading
 * them was the largest part of a cold `fraisier history`. Anything else opens through the package.
 */
function openSqlite(file: string): SqliteHandle {
  // required, not imported: an ESM import of a CommonJS package first scans its source for its exports
  const require = createRequire(import.meta.url);
  let addon: Addon | undefined;
  try {
    const pkg = require.resolve('better-sqlite3/package.json');
    const dir = path.dirname(pkg);
    if (/^12\./.test((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: string }).version ?? '') && callsAddonAsExpected(dir)) {
      addon = require(path.join(dir, 'build', 'Release', 'better_sqlite3.node')) as Addon;
      if (!addon.isInitialized) {
        // what lib/database.js does on its first open: the same error class, so the package works after this
        addon.setErrorConstructor(require(path.join(dir, 'lib', 'sqlite-error.js')));
        addon.isInitialized = true;
      }
    }
  } catch {
    addon = undefined; // another layout (a prebuilt addon elsewhere): the package finds it
  }
  if (!addon) return new (require('better-sqlite3') as typeof BetterSqlite3)(file);
  const db = new addon.Database(file, file, false, false, false, 5000, null, null);
  const handle: SqliteHandle = {
    prepare: ((sql: string) => db.prepare(sql, handle, false)) as SqliteHandle['prepare'],
    pragma: ((source: string, options?: { simple?: boolean }) => {
      const stmt = db.prepare(`PRAGMA ${source}`, handle, true);
      return options?.simple ? stmt.pluck().get() : stmt.all();
    }) as SqliteHandle['pragma'],
    close: () => {
      db.close();
      return handle as BetterSqlite3.Database;
    },
  };
  return handle;
}

/**
 * Past deployments, newest first, read straight from a SQLite state file with better-sqlite3: the same
 * rows as `StateStore.history`, opened the same way (WAL, busy timeout, `quick_check`). Only for the
 * plain case, an existing writable file whose schema is exactly current; anything else (no file yet, a
 * read-only file, an older or newer schema, a damaged file, any SQLite error) returns `undefined`, and
 * the caller opens the store, which creates, copies or migrates the file, or reports the error.
 */
export function quickHistory(file: string, q: { fraise?: string; environment?: string; limit?: number } = {}): Deployment[] | undefined {
  if (file === ':memory:' || !fs.existsSync(file) || !writable(file)) return undefined;
  let db: SqliteHandle | undefined;
  try {
    prepareFile(file);
    db = openSqlite(file);
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    if (db.pragma('quick_check(1)', { simple: true }) !== 'ok') return undefined;
    const applied = db.prepare('select name from fraisier_migration order by name').pluck().all() as string[];
    if (applied.length !== MIGRATION_NAMES.length || applied.some((n, i) => n !== MIGRATION_NAMES[i])) return undefined;
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.fraise !== undefined) {
      where.push('fraise = ?');
      params.push(q.fraise);
    }
    if (q.environment !== undefined) {
      where.push('environment = ?');
      params.push(q.environment);
    }
    params.push(q.limit ?? 20);
    const rows = db
      .prepare(`select * from deployments${where.length > 0 ? ` where ${where.join(' and ')}` : ''} order by id desc limit ?`)
      .all(...params) as DeploymentRow[];
    return rows.map(toDeployment);
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}
