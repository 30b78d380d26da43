/**
 * psql-migration: applies the pending SQL files of a migrations directory to a PostgreSQL database, from
 * the deploying machine, in the preDeploy phase (before any host changes). Each file runs in its own
 * transaction and is recorded in a migrations table; a PostgreSQL advisory lock serialises deployers that
 * share the database. Down files are kept in the table at apply time, so a rollback does not depend on
 * the files present in the checkout. See docs/migrations.md.
 *
 * File names, in the migrations directory:
 *   `NNN_name.sql`               prepare phase: applied by every deployment, before the hosts change
 *   `NNN_name.cleanup.sql`       cleanup phase: applied only by `fraisier migrate <fraise> <env> --phase cleanup`
 *   `<either>.down.sql`          optional down file of the file with the same name without `.down`
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import type { LoadedConfig, NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, PostDeployError, asFraisierError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { registry, type BuildContext } from '../core/registry.js';
import { Secret, redact, registerSecret } from '../core/secret.js';
import type { DeployContext, MigrateReport, MigrateRequest, MigrationPhase, Migrator, PluginHost } from '../core/types.js';

export const PSQL_MIGRATION = 'plugin:psql-migration';

/** Options of {@link psqlMigration}. */
export interface PsqlMigrationOptions {
  /**
   * Directory of the migration files, on the deploying machine. A relative path is resolved against
   * `baseDir`. It is read when a deployment starts: run the deployment from a checkout of the release
   * you deploy (or from CI), so the files match the code.
   */
  dir: string;
  /** Directory a relative `dir` is resolved against. Default: the current directory. */
  baseDir?: string;
  /**
   * Name of the environment variable that holds the connection URL
   * (`postgres://user:password@host:5432/db`). Read when a deployment starts, never printed: the URL and
   * its password are registered as secrets. Default `DATABASE_URL`. Ignored when `url` is given.
   */
  urlEnv?: string;
  /** The connection URL itself, e.g. `secret(process.env.APP_DB!)`. Default: read from `urlEnv`. */
  url?: string | Secret;
  /** Table that records applied migrations (`name` or `schema.name`). Default `fraisier_migrations`. */
  table?: string;
  /** Longest wait for the advisory lock held by another deployer applying migrations. Default `'5m'`. */
  lockTimeout?: Duration;
  /** Longest wait to connect to the database. Default `'10s'`. */
  connectTimeout?: Duration;
}

/** One migration file and its optional down file. */
export interface MigrationFile {
  /** File name, e.g. `001_create_users.sql`: the key in the migrations table. */
  name: string;
  phase: MigrationPhase;
  /** Absolute path. */
  path: string;
  sql: string;
  /** sha256 of the file's bytes, hex. */
  checksum: string;
  /** The `.down.sql` file, when there is one. */
  down: { name: string; sql: string } | null;
}

/** A row of the migrations table. */
export interface AppliedMigration {
  name: string;
  phase: MigrationPhase;
  checksum: string;
  /** The down file's name and SQL at apply time, or null when the migration had none. */
  downName: string | null;
  downSql: string | null;
  appliedAt: Date;
  fraise: string;
  environment: string;
  /** The release whose deployment applied it (or the live release, for `fraisier migrate`). */
  version: string;
  /** `user@host` of the deployer. */
  appliedBy: string;
}

/** The plugin object: a {@link Migrator} with the plan, for scripts and tests. */
export interface PsqlMigrationPlugin extends Migrator {
  /** Reads and checks the migration files (names, down files without an up file). */
  files(): MigrationFile[];
}

const FILE_RE = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_-]*)(\.cleanup)?(\.down)?\.sql$/;
const TABLE_RE = /^(?:[a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$/;
/** First key of the advisory lock: "FRAS". The second is a hash of the table name. */
const LOCK_KEY = 0x46524153;

/**
 * Reads a migrations directory: every `*.sql` file must follow the naming convention, and every down
 * file needs its migration. Ordered by number, then name.
 */
export function readMigrations(dir: string): MigrationFile[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    names = readdirSync(dir);
  } catch (err) {
    throw new FraisierError(
      'E_CONFIG',
      `${PSQL_MIGRATION}: cannot read the migrations directory ${dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (err as Error).message}`,
      {
        key: 'dir',
        hint: 'create it, or fix the migrations directory in the config',
      },
    );
  }
  const ups = new Map<string, MigrationFile & { order: number }>();
  const downs = new Map<string, string>();
  for (const name of names.filter((n) => n.endsWith('.sql'))) {
    const m = FILE_RE.exec(name);
    if (!m) {
      throw new FraisierError(
        'E_CONFIG',
        `${PSQL_MIGRATION}: ${path.join(dir, name)}: the file name does not follow the convention NNN_name.sql, NNN_name.cleanup.sql or <migration>.down.sql`,
        {
          key: 'dir',
          hint: 'start with a number and an underscore, e.g. 004_add_email.sql; use letters, digits, _ and -',
        },
      );
    }
    const full = path.join(dir, name);
    if (m[4]) {
      downs.set(name.replace(/\.down\.sql$/, '.sql'), name);
      continue;
    }
    const bytes = readFileSync(full);
    ups.set(name, {
      name,
      phase: m[3] ? 'cleanup' : 'prepare',
      path: full,
      sql: bytes.toString('utf8'),
      checksum: createHash('sha256').update(bytes).digest('hex'),
      down: null,
      order: Number(m[1]),
    });
  }
  for (const [up, down] of downs) {
    const file = ups.get(up);
    if (!file) {
      throw new FraisierError('E_CONFIG', `${PSQL_MIGRATION}: ${path.join(dir, down)}: down file without its migration ${up}`, { key: 'dir' });
    }
    file.down = { name: down, sql: readFileSync(path.join(dir, down), 'utf8') };
  }
  return [...ups.values()].sort((a, b) => a.order - b.order || a.name.localeCompare(b.name)).map(({ order: _order, ...f }) => f);
}

/** `host:port/db` of a URL: what messages show instead of the URL. */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'the database';
  }
}

/** Line (1-based) of a 1-based character position in `sql`. */
function lineOf(sql: string, position: string | undefined): number | null {
  const pos = Number(position);
  if (!Number.isInteger(pos) || pos < 1) return null;
  return sql.slice(0, pos - 1).split('\n').length;
}

function pgMessage(err: unknown, sql?: string): string {
  const e = err as { message?: string; position?: string; code?: string };
  const line = sql !== undefined ? lineOf(sql, e.position) : null;
  return redact(`${line !== null ? `line ${line}: ` : ''}${e.message ?? String(err)}`);
}

function hash32(text: string): number {
  const h = createHash('sha256').update(text).digest();
  return h.readInt32BE(0);
}

/** One session with the database: the table, the advisory lock, apply and revert. */
class MigrationDb {
  private constructor(
    private readonly client: pg.Client,
    private readonly table: string,
  ) {}

  static async connect(url: string, table: string, timeoutMs: number): Promise<MigrationDb> {
    // the driver loads only when a migration really connects (most deployments never do)
    const { default: driver } = await import('pg');
    const client = new driver.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: 'fraisier' });
    // A dropped connection must not crash the process: the pending query rejects instead.
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw new FraisierError('E_UNREACHABLE', `${PSQL_MIGRATION}: cannot connect to the database at ${where(url)}: ${pgMessage(err)}; nothing was changed`, {
        step: 'migrations',
        hint: 'check the URL in the environment variable, that the server is up and that this machine may connect',
        cause: err,
      });
    }
    return new MigrationDb(client, table);
  }

  private get quoted(): string {
    return this.table
      .split('.')
      .map((p) => `"${p}"`)
      .join('.');
  }

  async exists(): Promise<boolean> {
    const r = await this.client.query<{ t: string | null }>('select to_regclass($1) as t', [this.table]);
    return r.rows[0]?.t !== null && r.rows[0]?.t !== undefined;
  }

  async ensureTable(): Promise<void> {
    await this.client.query(`create table if not exists ${this.quoted} (
      name text primary key,
      phase text not null,
      checksum text not null,
      down_name text,
      down_sql text,
      applied_at timestamptz not null default now(),
      fraise text not null,
      environment text not null,
      version text not null,
      applied_by text not null
    )`);
  }

  async applied(): Promise<AppliedMigration[]> {
    if (!(await this.exists())) return [];
    const r = await this.client.query(`select * from ${this.quoted} order by applied_at, name`);
    return r.rows.map((row: Record<string, unknown>) => ({
      name: String(row['name']),
      phase: row['phase'] as MigrationPhase,
      checksum: String(row['checksum']),
      downName: (row['down_name'] as string | null) ?? null,
      downSql: (row['down_sql'] as string | null) ?? null,
      appliedAt: row['applied_at'] as Date,
      fraise: String(row['fraise']),
      environment: String(row['environment']),
      version: String(row['version']),
      appliedBy: String(row['applied_by']),
    }));
  }

  /** Takes the session advisory lock, polling; logs once while it waits. */
  async lock(timeoutMs: number, log: Logger): Promise<void> {
    const key2 = hash32(this.table);
    const deadline = Date.now() + timeoutMs;
    let told = false;
    for (;;) {
      const r = await this.client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [LOCK_KEY, key2]);
      if (r.rows[0]?.ok) return;
      if (!told) {
        log.info('waiting for the migration lock: another deployer is applying migrations to this database');
        told = true;
      }
      if (Date.now() >= deadline) {
        throw new FraisierError(
          'E_LOCKED',
          `${PSQL_MIGRATION}: another deployer held the migration lock of ${this.table} for longer than ${timeoutMs} ms; nothing was changed`,
          {
            step: 'migrations',
            hint: 'wait for the other deployment to finish, or raise lockTimeout (lock_timeout in fraises.yaml)',
          },
        );
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  async unlock(): Promise<void> {
    await this.client.query('select pg_advisory_unlock($1, $2)', [LOCK_KEY, hash32(this.table)]).catch(() => {});
  }

  /** Runs one file in its own transaction and records it there. */
  async apply(file: MigrationFile, meta: { fraise: string; environment: string; version: string; appliedBy: string }): Promise<void> {
    await this.client.query('begin');
    try {
      try {
        await this.client.query(file.sql);
      } catch (err) {
        throw new FraisierError('E_COMMAND', `${PSQL_MIGRATION}: migration ${file.name} failed: ${pgMessage(err, file.sql)}; its transaction was rolled back`, {
          step: 'migrations',
          hint: `fix ${file.path}`,
          cause: err,
        });
      }
      await this.client.query(
        `insert into ${this.quoted} (name, phase, checksum, down_name, down_sql, fraise, environment, version, applied_by) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [file.name, file.phase, file.checksum, file.down?.name ?? null, file.down?.sql ?? null, meta.fraise, meta.environment, meta.version, meta.appliedBy],
      );
      await this.client.query('commit');
    } catch (err) {
      await this.client.query('rollback').catch(() => {});
      throw err;
    }
  }

  /** Runs the down SQL of `rows` in the order given, and deletes their rows, all in one transaction. */
  async revert(rows: AppliedMigration[]): Promise<void> {
    await this.client.query('begin');
    try {
      for (const row of rows) {
        try {
          await this.client.query(row.downSql!);
        } catch (err) {
          throw new FraisierError(
            'E_ROLLBACK',
            `${PSQL_MIGRATION}: down file ${row.downName} of ${row.name} failed: ${pgMessage(err, row.downSql!)}; no down file was applied (one transaction), the schema is as before the rollback`,
            {
              step: 'migrations',
              cause: err,
            },
          );
        }
        await this.client.query(`delete from ${this.quoted} where name = $1`, [row.name]);
      }
      await this.client.query('commit');
    } catch (err) {
      await this.client.query('rollback').catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

function owner(): string {
  return `${userInfo().username}@${hostname()}`;
}

/**
 * The psql-migration plugin. Taps preDeploy (apply the pending `prepare` migrations; a dry run lists
 * them), rollback (after the hosts were rolled back: run the down files of what this deployment applied)
 * and postDeploy of an explicit rollback (run the down files of the releases rolled back). Also a
 * {@link Migrator}: `fraisier migrate <fraise> <env> --phase cleanup`.
 */
export function psqlMigration(options: PsqlMigrationOptions): PsqlMigrationPlugin {
  if (!options || typeof options.dir !== 'string' || options.dir === '') {
    throw new FraisierError('E_CONFIG', `${PSQL_MIGRATION}: dir (the migrations directory) is required`, { key: 'dir' });
  }
  const table = options.table ?? 'fraisier_migrations';
  if (!TABLE_RE.test(table)) {
    throw new FraisierError(
      'E_CONFIG',
      `${PSQL_MIGRATION}: invalid table name ${JSON.stringify(table)}: expected lower-case letters, digits and _ (optionally schema.table)`,
      { key: 'table' },
    );
  }
  const urlEnv = options.urlEnv ?? 'DATABASE_URL';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(urlEnv)) {
    throw new FraisierError('E_CONFIG', `${PSQL_MIGRATION}: invalid environment variable name ${JSON.stringify(urlEnv)} (urlEnv)`, { key: 'urlEnv' });
  }
  const dir = path.resolve(options.baseDir ?? process.cwd(), options.dir);
  const lockTimeoutMs = toMs(options.lockTimeout ?? '5m', 'lockTimeout');
  const connectTimeoutMs = toMs(options.connectTimeout ?? '10s', 'connectTimeout');

  function url(): string {
    let value: string;
    if (options.url !== undefined) value = options.url instanceof Secret ? options.url.reveal() : options.url;
    else {
      const v = process.env[urlEnv];
      if (!v) {
        throw new FraisierError(
          'E_CONFIG',
          `${PSQL_MIGRATION}: the environment variable ${urlEnv} is not set: it must hold the database URL; nothing was changed`,
          {
            key: 'urlEnv',
            hint: `export ${urlEnv}=postgres://user:password@host:5432/dbname`,
          },
        );
      }
      value = v;
    }
    registerSecret(value);
    try {
      const pw = new URL(value).password;
      if (pw) {
        registerSecret(pw);
        registerSecret(decodeURIComponent(pw));
      }
    } catch {
      /* not a URL: pg reports it, redacted */
    }
    return value;
  }

  async function session<T>(fn: (db: MigrationDb) => Promise<T>): Promise<T> {
    const db = await MigrationDb.connect(url(), table, connectTimeoutMs);
    try {
      return await fn(db);
    } catch (err) {
      const e = asFraisierError(err, 'E_COMMAND', { step: 'migrations' });
      // pg errors may quote connection details: never let a secret through.
      throw e.message === redact(e.message) ? e : new FraisierError(e.code, redact(e.message), { step: 'migrations', cause: err });
    } finally {
      await db.close();
    }
  }

  function checkChecksums(files: MigrationFile[], applied: AppliedMigration[]): void {
    const byName = new Map(files.map((f) => [f.name, f]));
    for (const row of applied) {
      const f = byName.get(row.name);
      if (f && f.checksum !== row.checksum) {
        throw new FraisierError(
          'E_CONFIG',
          `${PSQL_MIGRATION}: ${f.path} was changed after it was applied (recorded checksum ${row.checksum.slice(0, 12)}, file now ${f.checksum.slice(0, 12)}); nothing was changed`,
          {
            key: 'dir',
            hint: `restore the applied version of ${f.name} and put the change in a new migration`,
          },
        );
      }
    }
  }

  async function migrate(req: MigrateRequest): Promise<MigrateReport> {
    const files = readMigrations(dir);
    const { log } = req;
    return session(async (db) => {
      if (req.dryRun) {
        const applied = await db.applied();
        checkChecksums(files, applied);
        const done = new Set(applied.map((a) => a.name));
        const pending = files.filter((f) => f.phase === req.phase && !done.has(f.name)).map((f) => f.name);
        log.info(
          pending.length
            ? `[dry-run] would apply ${pending.length} ${req.phase} migration(s): ${pending.join(', ')}`
            : `[dry-run] no pending ${req.phase} migrations`,
        );
        return { phase: req.phase, applied: [], pending };
      }
      await db.lock(lockTimeoutMs, log);
      try {
        await db.ensureTable();
        const applied = await db.applied();
        checkChecksums(files, applied);
        const done = new Set(applied.map((a) => a.name));
        const pendingOf = (phase: MigrationPhase) => files.filter((f) => f.phase === phase && !done.has(f.name));
        if (req.phase === 'cleanup' && pendingOf('prepare').length > 0) {
          throw new FraisierError(
            'E_PREFLIGHT',
            `${PSQL_MIGRATION}: ${pendingOf('prepare')
              .map((f) => f.name)
              .join(', ')} not applied yet: deploy first, then run the cleanup phase; nothing was changed`,
            {
              step: 'migrations',
              hint: `fraisier deploy ${req.fraise} ${req.environment}`,
            },
          );
        }
        const todo = pendingOf(req.phase);
        if (todo.length === 0) log.info(`no pending ${req.phase} migrations`);
        const appliedNow: string[] = [];
        for (const f of todo) {
          const started = performance.now();
          try {
            await db.apply(f, { fraise: req.fraise, environment: req.environment, version: req.version, appliedBy: owner() });
          } catch (err) {
            if (appliedNow.length > 0) log.warn(`applied before the failure, and kept: ${appliedNow.join(', ')}`);
            throw err;
          }
          appliedNow.push(f.name);
          log.info(
            `applied migration ${f.name} (${Math.round(performance.now() - started)} ms)${f.down ? '' : ' (no down file: not reversible automatically)'}`,
          );
        }
        if (req.phase === 'prepare' && pendingOf('cleanup').length > 0) {
          log.info(
            `cleanup migrations pending: ${pendingOf('cleanup')
              .map((f) => f.name)
              .join(', ')}; apply them once every host runs the new release: fraisier migrate ${req.fraise} ${req.environment} --phase cleanup`,
          );
        }
        return { phase: req.phase, applied: appliedNow, pending: [] };
      } finally {
        await db.unlock();
      }
    });
  }

  /** Reverts `rows` (newest first) if every one has a down file; else says which have none and changes nothing. */
  async function revert(rows: AppliedMigration[], log: Logger, why: string): Promise<void> {
    if (rows.length === 0) return;
    const missing = rows.filter((r) => r.downSql === null).map((r) => r.name);
    if (missing.length > 0) {
      log.warn(
        `schema NOT rolled back (${why}): ${missing.join(', ')} ${missing.length === 1 ? 'has' : 'have'} no down file, so this release is not automatically reversible; the hosts were rolled back, the database keeps ${rows.map((r) => r.name).join(', ')}`,
      );
      return;
    }
    await session(async (db) => {
      await db.lock(lockTimeoutMs, log);
      try {
        await db.revert(rows);
      } finally {
        await db.unlock();
      }
    });
    log.info(`schema rolled back (${why}): ran ${rows.map((r) => r.downName).join(', ')}`);
  }

  /** Applied rows of the releases newer than `target` in this environment's history, newest first; null if unknown. */
  async function newerThan(host: PluginHost, target: string): Promise<AppliedMigration[] | null> {
    const history = await host.history.recent(1000);
    const newer = new Set<string>();
    let found = false;
    for (const d of history) {
      if (d.status !== 'succeeded') continue;
      if (d.toVersion === target) {
        found = true;
        break;
      }
      newer.add(d.toVersion);
    }
    if (!found) return null;
    const applied = await session((db) => db.applied());
    return applied.filter((r) => r.fraise === host.fraise && r.environment === host.environment && newer.has(r.version)).reverse();
  }

  const plugin: PsqlMigrationPlugin = {
    name: PSQL_MIGRATION,
    files: () => readMigrations(dir),
    migrate,
    apply(host: PluginHost): void {
      const { hooks } = host;
      /** What this deployment applied, in order. */
      let appliedNow: string[] = [];

      hooks.preDeploy.tapPromise(PSQL_MIGRATION, async (ctx: DeployContext) => {
        appliedNow = [];
        if (ctx.kind !== 'deploy') return; // an explicit rollback reverts after the hosts are back (postDeploy)
        const report = await migrate({
          fraise: ctx.fraise,
          environment: ctx.environment,
          version: ctx.version,
          phase: 'prepare',
          dryRun: ctx.dryRun,
          log: ctx.log,
        });
        appliedNow = report.applied;
      });

      hooks.rollback.tapPromise(PSQL_MIGRATION, async (ctx: DeployContext) => {
        if (ctx.kind !== 'deploy' || appliedNow.length === 0) return;
        const names = appliedNow;
        appliedNow = [];
        const hostsBack = [...ctx.states.values()].some((s) => s.status === 'rolled_back' || s.status === 'rollback_failed');
        if (!hostsBack) {
          ctx.log.warn(`the migrations this deployment applied stay applied (no host was rolled back): ${names.join(', ')}`);
          return;
        }
        const applied = await session((db) => db.applied());
        const rows = names
          .map((n) => applied.find((r) => r.name === n))
          .filter((r): r is AppliedMigration => r !== undefined)
          .reverse();
        await revert(rows, ctx.log, `deployment of ${ctx.version} rolled back`);
      });

      hooks.postDeploy.tapPromise(PSQL_MIGRATION, async (result) => {
        if (result.kind !== 'rollback') return;
        try {
          const rows = await newerThan(host, result.toVersion);
          if (rows === null) {
            host.log.warn(`schema left as it is: ${result.toVersion} is not in the history, so the migrations of the releases after it are unknown`);
            return;
          }
          await revert(rows, host.log, `rollback to ${result.toVersion}`);
        } catch (err) {
          const e = asFraisierError(err);
          throw new PostDeployError(`the hosts were rolled back to ${result.toVersion}, but the schema was not: ${e.message}`, {
            rollback: false,
            step: 'migrations',
            cause: err,
          });
        }
      });
    },
  };
  return plugin;
}

registry.registerPlugin('postgresql', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  const db = env.database!;
  const c = config as LoadedConfig;
  return psqlMigration({
    dir: db.migrationsDir,
    baseDir: c.baseDir,
    urlEnv: db.urlEnv,
    ...(db.table !== undefined ? { table: db.table } : {}),
    ...(db.lockTimeoutMs !== undefined ? { lockTimeout: db.lockTimeoutMs } : {}),
    ...(db.connectTimeoutMs !== undefined ? { connectTimeout: db.connectTimeoutMs } : {}),
  });
});
