/**
 * The state store: deployments, per-target results, events (and, through `lock.ts`, locks), kept through
 * kysely in a SQLite file (the default) or a PostgreSQL database (`url`). `openStore()` opens the file
 * with safe permissions, WAL and a busy timeout so several deployer processes can share it, or connects
 * to PostgreSQL (the `pg` driver is imported only then), and migrates the schema.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import type { DatabaseConnection, DialectAdapter, Driver, SqliteDialectConfig } from 'kysely';
import type { CanaryRow, Database, DeploymentRow, EventRow, TargetRow } from './schema.js';
import { migrateToLatest } from './migrations.js';
import { num, prepareFile, toDeployment, writable } from './read.js';

export { resolveState, statePath, storeOptions, type StateLocation } from './read.js';
import { isHiddenUrl, postgresUrlProblem, redactUrl, urlSecrets } from './url.js';

export { postgresUrlProblem, redactUrl } from './url.js';
import { FraisierError } from '../errors.js';
import { redact, registerSecret } from '../secret.js';
import type { ProviderOutcome } from '../types.js';

/** How to open the state store: a SQLite `path` or a PostgreSQL `url` (exactly one). */
export interface StoreOptions {
  /**
   * SQLite file path. Its directory is created with mode 0700 if missing; the file is created with
   * mode 0600, and narrowed to 0600 if it existed with wider permissions. `':memory:'` gives a
   * private in-memory database (tests).
   */
  path?: string;
  /**
   * PostgreSQL connection URL, `postgres://user:password@host:5432/database` (libpq URL parameters such
   * as `sslmode` are honoured). The database must exist; the tables are created in it. Errors and logs
   * show the URL with its password replaced by `***`.
   */
  url?: string;
  /**
   * The caller only reads (status, history, stats, status-all). A SQLite file that cannot be written
   * (read-only file system, no write permission) is then read from a private temporary copy instead of
   * failing; a writer gets an `E_STATE` error naming the file. Default false.
   */
  readOnly?: boolean;
  /**
   * Clock, in epoch milliseconds, of the history's timestamps (started, finished, events); injectable
   * for tests. Default `Date.now`. Locks never use it: see {@link StoreOptions.databaseClock}.
   */
  now?: () => number;
  /**
   * Tests only: stands in for the database's clock in every lock decision (acquire, expiry, renew,
   * unlock). Default: the database's own clock, `clock_timestamp()` on PostgreSQL and the machine's clock
   * read by SQLite (`julianday('now')`), so a deployer whose own clock is wrong can never take over a
   * live lock.
   */
  databaseClock?: () => number;
}

/**
 * Status of a deployment: `running` until {@link StateStore.finishDeployment} records the outcome.
 * `canary`: it left a canary open (the canary hosts on its release, the others on the stable one) for
 * `--complete-rollout` / `fraisier promote` or `rollback`; it becomes `succeeded` when promoted and
 * `rolled_back` when aborted (see {@link StateStore.closeCanary}). It is never the live release.
 * `lock_lost`: its deployer lost the lock mid-way (unlocked with --force, or taken over) and stopped
 * without touching any host again; the hosts it had changed stay as they were (the new holder owns them).
 * `cancelled`: `fraisier cancel` stopped it and what it touched was rolled back; `error` says who cancelled.
 */
export type DeploymentStatus = 'running' | 'succeeded' | 'failed' | 'rolled_back' | 'lock_lost' | 'cancelled' | 'canary';
/** A forward deployment, or an explicit rollback to an earlier version. */
export type DeploymentKind = 'deploy' | 'rollback';
/** Outcome on one target. `untouched`: the deployment stopped before reaching it. */
export type TargetStatus = 'succeeded' | 'failed' | 'rolled_back' | 'untouched' | 'rollback_failed';

/** What is known when a deployment starts. */
export interface NewDeployment {
  /** The service deployed. */
  fraise: string;
  /** Where it is deployed: production, staging, ... */
  environment: string;
  /** `deploy` or `rollback`. */
  kind: DeploymentKind;
  /** Strategy name: rolling, canary, blue-green, ... */
  strategy: string;
  /** Version live before this deployment, or null if none (first deployment). */
  fromVersion: string | null;
  /** Version this deployment installs. */
  toVersion: string;
  /** Who ran it. */
  user: string;
  /** The machine it was run from. */
  host: string;
}

/** A recorded deployment. */
export interface Deployment extends NewDeployment {
  /** Database id; grows with each deployment, so a higher id is a newer deployment. */
  id: number;
  /** Current status. */
  status: DeploymentStatus;
  /** Epoch ms when it was recorded. */
  startedAt: number;
  /** Epoch ms when it finished, or null while running. */
  finishedAt: number | null;
  /** finishedAt − startedAt; null while running, and for deployments reaped as interrupted. */
  durationMs: number | null;
  /** Error message of a failed deployment, else null. */
  error: string | null;
  /** Multi-provider environments: each provider's outcome (which one served, why each before it failed). */
  providers?: ProviderOutcome[];
}

/** The outcome of a deployment on one target. */
export interface TargetResult {
  /** Target name (SSH host, Coolify application, ...). */
  target: string;
  /** Version on the target before, or null if none. */
  fromVersion: string | null;
  /** Version on the target after, or null if nothing was installed. */
  toVersion: string | null;
  /** Outcome on this target. */
  status: TargetStatus;
  /** Milliseconds spent per phase, e.g. `{ prepare: 812, activate: 95, health: 410, rollback: 300 }`. */
  phases: Record<string, number>;
  /** Error message on this target, else null. */
  error: string | null;
}

/** An environment's canary as recorded (strategies/canary.ts); see {@link StateStore.openCanary}. */
export interface CanaryState {
  /** The deployment that put the canary hosts on {@link version}. */
  deploymentId: number;
  fraise: string;
  environment: string;
  /** The release on the canary hosts. */
  version: string;
  /** The release the stable hosts run (null on a first deployment). */
  stableVersion: string | null;
  /** The canary hosts' target names. */
  canaryHosts: string[];
  /** The traffic step reached (0-based index into the strategy's steps). */
  step: number;
  /** The canary's share of requests at that step, in percent; null: its natural share (no load balancer). */
  weight: number | null;
  /** `open` while in canary; `promoted` or `aborted` once closed. */
  state: 'open' | 'promoted' | 'aborted';
  /** The latest verdict lines of the analysis. */
  verdicts: string[];
  /** Epoch ms. */
  startedAt: number;
  /** Epoch ms of the last update. */
  updatedAt: number;
}

/** A log line of a deployment. */
export interface DeployEvent {
  /** Database id; events of a deployment are returned in id order. */
  id: number;
  /** The deployment it belongs to. */
  deploymentId: number;
  /** Epoch ms. */
  at: number;
  /** Severity. */
  level: 'info' | 'warn' | 'error';
  /** The target concerned, or null for the whole deployment. */
  target: string | null;
  /** Text. */
  message: string;
}

/** Deployment statistics of one fraise over a window. */
export interface Stats {
  /** The fraise. */
  fraise: string;
  /** Finished deployments of kind `deploy` in the window, cancelled ones left out. */
  total: number;
  /** Of which succeeded. */
  succeeded: number;
  /** Of which failed. */
  failed: number;
  /** Of which were rolled back. */
  rolledBack: number;
  /** succeeded / total. */
  successRate: number;
  /** rolledBack / total. */
  rollbackRate: number;
  /** Mean duration in ms over those with a duration, or null if none. */
  meanMs: number | null;
  /** 95th percentile duration (nearest rank) in ms, or null if none. */
  p95Ms: number | null;
}

const DAY_MS = 86_400_000;

/**
 * kysely's SQLite dialect with two changes that make it safe for several processes sharing one file:
 *
 * - Transactions start with `BEGIN IMMEDIATE`: the write lock is taken (waiting up to busy_timeout) when
 *   the transaction starts, so a transaction that reads then writes cannot fail with SQLITE_BUSY because
 *   another process wrote in between.
 * - The adapter reports transactional DDL (which SQLite has; kysely 0.28's `SqliteAdapter` says it has
 *   not). Without it kysely's `Migrator` runs migrations outside any transaction and with no lock, so two
 *   processes opening a fresh file at once both run `0001_initial` ("table deployments already exists"),
 *   and a migration failing halfway leaves half a schema. With it, the check of applied migrations and
 *   the migrations themselves run in one immediate transaction: one process migrates, the others wait
 *   and then find nothing to do.
 */
class SharedFileSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

function toCanary(r: CanaryRow): CanaryState {
  return {
    deploymentId: num(r.deployment_id),
    fraise: r.fraise,
    environment: r.environment,
    version: r.version,
    stableVersion: r.stable_version,
    canaryHosts: JSON.parse(r.canary_hosts) as string[],
    step: num(r.step),
    weight: num(r.weight),
    state: r.state as CanaryState['state'],
    verdicts: JSON.parse(r.verdicts) as string[],
    startedAt: num(r.started_at),
    updatedAt: num(r.updated_at),
  };
}

function toTarget(r: TargetRow): TargetResult {
  return {
    target: r.target,
    fromVersion: r.from_version,
    toVersion: r.to_version,
    status: r.status as TargetStatus,
    phases: JSON.parse(r.phases) as Record<string, number>,
    error: r.error,
  };
}

function toEvent(r: EventRow): DeployEvent {
  return {
    id: num(r.id),
    deploymentId: num(r.deployment_id),
    at: num(r.at),
    level: r.level as DeployEvent['level'],
    target: r.target,
    message: r.message,
  };
}

/**
 * Deployments, target results and events. Get one with {@link openStore}; the constructor takes an
 * already migrated kysely instance (for other dialects).
 */
export class StateStore {
  /** The kysely instance, for queries the store does not offer. */
  readonly db: Kysely<Database>;
  /** The history's clock (epoch ms). Locks use the database's clock instead: {@link StateStore.clockSql}. */
  readonly now: () => number;
  /** `sqlite` or `postgres`: which SQL {@link StateStore.clockSql} writes. */
  readonly dialect: 'sqlite' | 'postgres';
  readonly #databaseClock: (() => number) | undefined;

  /**
   * @param db a kysely instance over a migrated database.
   * @param now clock in epoch ms of the history's timestamps; default `Date.now`.
   * @param options.dialect the database behind `db`. Default `sqlite`.
   * @param options.databaseClock tests only: replaces the database's clock in lock decisions.
   */
  constructor(db: Kysely<Database>, now: () => number = Date.now, options: { dialect?: 'sqlite' | 'postgres'; databaseClock?: () => number } = {}) {
    this.db = db;
    this.now = now;
    this.dialect = options.dialect ?? 'sqlite';
    this.#databaseClock = options.databaseClock;
  }

  /**
   * The database's clock, in epoch ms, as an SQL expression evaluated by the database itself: every lock
   * decision (who may take an expired lock, when a renewed lock expires) is made by this one clock, never
   * by a deployer's own. PostgreSQL: `clock_timestamp()` of the server, shared by every machine using the
   * store. SQLite: `julianday('now')`, the clock of the one machine whose processes share the file.
   */
  clockSql(): RawBuilder<number> {
    if (this.#databaseClock) return sql<number>`cast(${Math.round(this.#databaseClock())} as bigint)`;
    if (this.dialect === 'postgres') return sql<number>`cast(extract(epoch from clock_timestamp()) * 1000 as bigint)`;
    return sql<number>`cast((julianday('now') - 2440587.5) * 86400000 as integer)`;
  }

  /** The database's clock now, in epoch ms (see {@link StateStore.clockSql}). */
  async databaseNow(): Promise<number> {
    const { rows } = await sql<{ t: number | string }>`select ${this.clockSql()} as t`.execute(this.db);
    return Number(rows[0]!.t);
  }

  /** Records a deployment as `running`, started now. @returns its id. */
  async recordDeployment(d: NewDeployment): Promise<number> {
    const row = await this.db
      .insertInto('deployments')
      .values({
        fraise: d.fraise,
        environment: d.environment,
        kind: d.kind,
        strategy: d.strategy,
        from_version: d.fromVersion,
        to_version: d.toVersion,
        user: d.user,
        host: d.host,
        status: 'running',
        started_at: this.now(),
        finished_at: null,
        duration_ms: null,
        error: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return num(row.id);
  }

  /**
   * Records the outcome of a deployment: status, error (stored redacted: no secret reaches the database),
   * finishedAt = now, durationMs = now − startedAt. Throws if there is no deployment with this id.
   */
  async finishDeployment(
    id: number,
    outcome: { status: Exclude<DeploymentStatus, 'running'>; error?: string | null; providers?: ProviderOutcome[] },
  ): Promise<void> {
    const now = this.now();
    const res = await this.db
      .updateTable('deployments')
      .set({
        status: outcome.status,
        error: outcome.error == null ? null : redact(outcome.error),
        ...(outcome.providers ? { providers: redact(JSON.stringify(outcome.providers)) } : {}),
        finished_at: now,
        duration_ms: sql<number>`${now} - started_at`,
      })
      .where('id', '=', id)
      .executeTakeFirst();
    if (res.numUpdatedRows === 0n) throw new Error(`no deployment with id ${id}`);
  }

  /** Records (or replaces) the result of a deployment on one target, keyed by (deploymentId, target). Its error is stored redacted. */
  async recordTarget(deploymentId: number, r: TargetResult): Promise<void> {
    const values = {
      from_version: r.fromVersion,
      to_version: r.toVersion,
      status: r.status,
      phases: JSON.stringify(r.phases),
      error: r.error === null ? null : redact(r.error),
    };
    await this.db
      .insertInto('targets')
      .values({ deployment_id: deploymentId, target: r.target, ...values })
      .onConflict((oc) => oc.columns(['deployment_id', 'target']).doUpdateSet(values))
      .execute();
  }

  /** Appends an event, timestamped now, to a deployment. Its message is stored redacted ({@link redact}). */
  async recordEvent(deploymentId: number, e: { level: DeployEvent['level']; target?: string | null; message: string }): Promise<void> {
    await this.db
      .insertInto('events')
      .values({ deployment_id: deploymentId, at: this.now(), level: e.level, target: e.target ?? null, message: redact(e.message) })
      .execute();
  }

  /** Deployments, newest first (by id), optionally filtered by fraise and environment; at most `limit` (default 20). */
  async history(q: { fraise?: string; environment?: string; limit?: number } = {}): Promise<Deployment[]> {
    let query = this.db.selectFrom('deployments').selectAll();
    if (q.fraise !== undefined) query = query.where('fraise', '=', q.fraise);
    if (q.environment !== undefined) query = query.where('environment', '=', q.environment);
    const rows = await query
      .orderBy('id', 'desc')
      .limit(q.limit ?? 20)
      .execute();
    return rows.map(toDeployment);
  }

  /**
   * The newest deployment of fraise+environment still `running`, with the target results recorded so
   * far (each target's row is written as it finishes), or undefined: what `status-all` shows as active.
   */
  async runningDeployment(fraise: string, environment: string): Promise<(Deployment & { targets: TargetResult[] }) | undefined> {
    const row = await this.db
      .selectFrom('deployments')
      .selectAll()
      .where('fraise', '=', fraise)
      .where('environment', '=', environment)
      .where('status', '=', 'running')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const targets = await this.db.selectFrom('targets').selectAll().where('deployment_id', '=', row.id).orderBy('id').execute();
    return { ...toDeployment(row), targets: targets.map(toTarget) };
  }

  /** One deployment with its target results and events (both in recording order), or undefined. */
  async deployment(id: number): Promise<(Deployment & { targets: TargetResult[]; events: DeployEvent[] }) | undefined> {
    const row = await this.db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    const [targets, events] = await Promise.all([
      this.db.selectFrom('targets').selectAll().where('deployment_id', '=', id).orderBy('id').execute(),
      this.db.selectFrom('events').selectAll().where('deployment_id', '=', id).orderBy('id').execute(),
    ]);
    return { ...toDeployment(row), targets: targets.map(toTarget), events: events.map(toEvent) };
  }

  /**
   * The version currently live for fraise+environment: the toVersion of the newest deployment with
   * status `succeeded` (either kind), or null if none succeeded.
   */
  async currentVersion(fraise: string, environment: string): Promise<string | null> {
    const row = await this.succeededVersions(fraise, environment).limit(1).executeTakeFirst();
    return row?.to_version ?? null;
  }

  /** The toVersion of every `succeeded` deployment (either kind) of fraise+environment, newest first. */
  private succeededVersions(fraise: string, environment: string) {
    return this.db
      .selectFrom('deployments')
      .select('to_version')
      .where('fraise', '=', fraise)
      .where('environment', '=', environment)
      .where('status', '=', 'succeeded')
      .orderBy('id', 'desc');
  }

  /**
   * What a plain `rollback` goes back to: the release that was live before the current one was deployed,
   * following the chain of deployments, or null when there is none. The history is replayed oldest first
   * as a stack of live releases: a succeeded deploy pushes its release (a redeploy of the live one changes
   * nothing); a succeeded rollback to X pops down to X (to the entry below the live one when X is not in
   * the chain, e.g. `--to` a release older than the history) and marks what it popped as rolled back; a
   * deploy that ended `rolled_back` marks its release too. A release marked rolled back is never
   * returned, unless a later deploy of it succeeded. After v1 → v2 → v3, two rollbacks give v2, then v1,
   * then null.
   */
  async previousVersion(fraise: string, environment: string): Promise<string | null> {
    return (await this.releaseChain(fraise, environment)).previous;
  }

  /**
   * The chain {@link previousVersion} replays: `stack` (oldest first, the live release last) and the
   * releases marked rolled back.
   */
  async releaseChain(fraise: string, environment: string): Promise<{ stack: string[]; rolledBack: string[]; previous: string | null }> {
    const rows = await this.db
      .selectFrom('deployments')
      .select(['kind', 'status', 'to_version'])
      .where('fraise', '=', fraise)
      .where('environment', '=', environment)
      .orderBy('id', 'asc')
      .execute();
    const stack: string[] = [];
    const rolledBack = new Set<string>();
    for (const r of rows) {
      const v = r.to_version;
      if (r.kind === 'deploy') {
        if (r.status === 'succeeded') {
          rolledBack.delete(v);
          if (stack[stack.length - 1] !== v) stack.push(v);
        } else if (r.status === 'rolled_back') {
          rolledBack.add(v);
        }
      } else if (r.kind === 'rollback' && r.status === 'succeeded') {
        const at = stack.lastIndexOf(v);
        if (at >= 0) {
          for (const popped of stack.splice(at + 1)) if (popped !== v) rolledBack.add(popped);
        } else {
          // a release outside the chain (--to): the live one is rolled back from, X takes its place
          const popped = stack.pop();
          if (popped !== undefined) rolledBack.add(popped);
          stack.push(v);
        }
        rolledBack.delete(v);
      }
    }
    const current = stack[stack.length - 1];
    let previous: string | null = null;
    for (let i = stack.length - 2; i >= 0; i--) {
      const v = stack[i]!;
      if (v !== current && !rolledBack.has(v)) {
        previous = v;
        break;
      }
    }
    return { stack, rolledBack: [...rolledBack], previous };
  }

  /**
   * The releases that deployed successfully to fraise+environment (the toVersion of `succeeded`
   * deployments of either kind), newest first, each once; at most `limit` (default 50). A failed
   * deployment's targets go back to one of these, never to a release that never deployed successfully.
   */
  async knownGoodVersions(fraise: string, environment: string, limit = 50): Promise<string[]> {
    const rows = await this.succeededVersions(fraise, environment)
      .limit(limit * 4)
      .execute();
    return [...new Set(rows.map((r) => r.to_version))].slice(0, limit);
  }

  /**
   * Statistics per fraise (sorted by name) over the finished deployments of kind `deploy` started in
   * the last `days` days (default 30), cancelled ones left out (a person stopped them: neither a success
   * nor a failure). Mean and p95 (nearest rank: the ⌈0.95·n⌉-th smallest) are over
   * the deployments that have a duration (interrupted ones have none).
   */
  async stats(q: { fraise?: string; days?: number } = {}): Promise<Stats[]> {
    const since = this.now() - (q.days ?? 30) * DAY_MS;
    const rows = await this.db
      .with('d', (db) => {
        let w = db
          .selectFrom('deployments')
          .select(['fraise', 'status', 'duration_ms'])
          .where('kind', '=', 'deploy')
          .where('finished_at', 'is not', null)
          // a cancelled deployment (`fraisier cancel`, Ctrl-C) was stopped by a person: neither a success nor a failure
          .where('status', '!=', 'cancelled')
          .where('started_at', '>=', since);
        if (q.fraise !== undefined) w = w.where('fraise', '=', q.fraise);
        return w;
      })
      .with('agg', (db) =>
        db
          .selectFrom('d')
          .select((eb) => [
            'fraise',
            eb.fn.countAll<number>().as('total'),
            sql<number>`sum(case when status = 'succeeded' then 1 else 0 end)`.as('succeeded'),
            sql<number>`sum(case when status = 'failed' then 1 else 0 end)`.as('failed'),
            sql<number>`sum(case when status = 'rolled_back' then 1 else 0 end)`.as('rolled_back'),
            eb.fn.avg<number | null>('duration_ms').as('mean_ms'),
            eb.fn.count<number>('duration_ms').as('n_dur'),
          ])
          .groupBy('fraise'),
      )
      .with('ranked', (db) =>
        db
          .selectFrom('d')
          .select((eb) => [
            'fraise',
            'duration_ms',
            eb.fn
              .agg<number>('row_number')
              .over((ob) => ob.partitionBy('fraise').orderBy('duration_ms'))
              .as('rn'),
          ])
          .where('duration_ms', 'is not', null),
      )
      .selectFrom('agg')
      .leftJoin('ranked', (j) =>
        // nearest rank: ceil(0.95 * n) in integer arithmetic, portable to SQLite and PostgreSQL
        j.onRef('ranked.fraise', '=', 'agg.fraise').on('ranked.rn', '=', sql<number>`(95 * agg.n_dur + 99) / 100`),
      )
      .select(['agg.fraise', 'total', 'succeeded', 'failed', 'rolled_back', 'mean_ms', 'ranked.duration_ms as p95_ms'])
      .orderBy('agg.fraise')
      .execute();
    return rows.map((r) => {
      const total = num(r.total);
      const succeeded = num(r.succeeded);
      const rolledBack = num(r.rolled_back);
      return {
        fraise: r.fraise,
        total,
        succeeded,
        failed: num(r.failed),
        rolledBack,
        successRate: total === 0 ? 0 : succeeded / total,
        rollbackRate: total === 0 ? 0 : rolledBack / total,
        meanMs: num(r.mean_ms),
        p95Ms: num(r.p95_ms ?? null),
      };
    });
  }

  /**
   * Marks as `failed` with error `interrupted` the deployments of fraise+environment left `running` by a
   * deployer that no longer holds the lock: all of them if the lock is free or expired, else those
   * started before the current holder acquired it. Call it right after taking the lock (notably after
   * a takeover), before recording the new deployment. Each reaped deployment gets a `warn` event.
   * With `heldByCaller` (the caller has just taken the lock and recorded nothing yet), every `running`
   * deployment of fraise+environment is marked: none of them can still own the hosts (a deployer killed
   * with SIGKILL whose lock was then removed with `unlock`).
   * @returns how many deployments were marked.
   */
  async reapInterrupted(fraise: string, environment: string, options: { heldByCaller?: boolean } = {}): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const now = this.now();
      const lock = await trx
        .selectFrom('locks')
        .select(['acquired_at', 'expires_at', this.clockSql().as('db_now')])
        .where('fraise', '=', fraise)
        .where('environment', '=', environment)
        .executeTakeFirst();
      let update = trx
        .updateTable('deployments')
        .set({ status: 'failed', error: 'interrupted', finished_at: now, duration_ms: null })
        .where('fraise', '=', fraise)
        .where('environment', '=', environment)
        .where('status', '=', 'running');
      if (!options.heldByCaller && lock !== undefined && num(lock.expires_at) > num(lock.db_now)) {
        update = update.where('started_at', '<', num(lock.acquired_at));
      }
      const reaped = await update.returning('id').execute();
      if (reaped.length > 0) {
        await trx
          .insertInto('events')
          .values(
            reaped.map((r) => ({
              deployment_id: r.id,
              at: now,
              level: 'warn',
              target: null,
              message: 'marked failed: interrupted (its deployer lost the lock)',
            })),
          )
          .execute();
      }
      return reaped.length;
    });
  }

  /** The environment's open canary (the newest, if several were left open), or null. */
  async openCanary(fraise: string, environment: string): Promise<CanaryState | null> {
    const row = await this.db
      .selectFrom('canaries')
      .selectAll()
      .where('fraise', '=', fraise)
      .where('environment', '=', environment)
      .where('state', '=', 'open')
      .orderBy('deployment_id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toCanary(row) : null;
  }

  /** The canary recorded by a deployment (open or closed), or null. */
  async canary(deploymentId: number): Promise<CanaryState | null> {
    const row = await this.db.selectFrom('canaries').selectAll().where('deployment_id', '=', deploymentId).executeTakeFirst();
    return row ? toCanary(row) : null;
  }

  /**
   * Records (or updates) the canary of a deployment, `open`: where it stands. Verdict lines are stored
   * redacted.
   */
  async saveCanary(c: Omit<CanaryState, 'state' | 'startedAt' | 'updatedAt'>): Promise<void> {
    const now = this.now();
    const values = {
      version: c.version,
      stable_version: c.stableVersion,
      canary_hosts: JSON.stringify(c.canaryHosts),
      step: c.step,
      weight: c.weight,
      verdicts: JSON.stringify(c.verdicts.map((v) => redact(v))),
      updated_at: now,
    };
    await this.db
      .insertInto('canaries')
      .values({ deployment_id: c.deploymentId, fraise: c.fraise, environment: c.environment, state: 'open', started_at: now, ...values })
      .onConflict((oc) => oc.column('deployment_id').doUpdateSet(values))
      .execute();
  }

  /**
   * Closes the environment's open canaries (the one a deployment opened, and any it continued):
   * `promoted` (their deployment rows, left `canary`, become `succeeded`) or `aborted` (they become
   * `rolled_back`, so their release is never picked again by a plain rollback).
   */
  async closeCanary(fraise: string, environment: string, outcome: 'promoted' | 'aborted'): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const open = await trx
        .updateTable('canaries')
        .set({ state: outcome, updated_at: this.now() })
        .where('fraise', '=', fraise)
        .where('environment', '=', environment)
        .where('state', '=', 'open')
        .returning('deployment_id')
        .execute();
      if (open.length === 0) return;
      await trx
        .updateTable('deployments')
        .set({ status: outcome === 'promoted' ? 'succeeded' : 'rolled_back' })
        .where(
          'id',
          'in',
          open.map((r) => r.deployment_id),
        )
        .where('status', '=', 'canary')
        .execute();
    });
  }

  /** Closes the database. The store is unusable afterwards. */
  async close(): Promise<void> {
    await this.db.destroy();
  }
}

/** Where a state store lives: a SQLite file or a PostgreSQL database. */
/**
 * Opens the state store. With `path`: creates the SQLite file if needed (directory 0700, file 0600),
 * WAL journal, busy_timeout 5000 ms, foreign keys on. With `url`: connects to PostgreSQL (loading `pg`
 * only then); an unreachable server or a refused login is a `FraisierError('E_STATE')` whose message
 * shows the URL with the password replaced by `***`. Either way the schema is migrated to the latest
 * version (on PostgreSQL under an advisory lock, so processes opening a new database at once are safe).
 */
export async function openStore(options: StoreOptions): Promise<StateStore> {
  if (options.url !== undefined) {
    if (options.path !== undefined) throw new FraisierError('E_STATE', 'give the state store a path or a url, not both');
    return openPostgres(options.url, options.now ?? Date.now, options.databaseClock);
  }
  if (options.path === undefined) throw new FraisierError('E_STATE', 'the state store needs a path or a url');
  const file = options.path;
  if (file !== ':memory:') {
    if (options.readOnly && fs.existsSync(file) && !writable(file)) return openReadOnlyCopy(file, options.now ?? Date.now, options.databaseClock);
    try {
      prepareFile(file);
    } catch (error) {
      throw stateFileError(file, error);
    }
  }
  return openSqlite(file, options.now ?? Date.now, file, undefined, options.databaseClock);
}

/**
 * The `E_STATE` error for a SQLite state file that cannot be used: which file, why (the SQLite or system
 * code), and what to do.
 */
export function stateFileError(file: string, error: unknown): FraisierError {
  const e = error as { code?: string; message?: string };
  const code = typeof e?.code === 'string' ? e.code : '';
  const why = `${e?.message ?? String(error)}${code && !(e?.message ?? '').includes(code) ? ` (${code})` : ''}`;
  if (/^(EROFS|EACCES|EPERM|SQLITE_READONLY)/.test(code)) {
    return new FraisierError(
      'E_STATE',
      `the state file ${file} is read-only: ${why}; deploy, rollback, migrate and unlock record the history and the lock there`,
      {
        file,
        hint: 'make it writable, or point state.path (or $FRAISIER_STATE) at a writable file; status, history, stats and status-all still read it',
        cause: error,
      },
    );
  }
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) {
    return new FraisierError('E_STATE', `the state file ${file} is damaged or not a Fraisier state database: ${why}`, {
      file,
      hint: `restore it from a backup, or move it aside (mv ${file} ${file}.broken) to start a new, empty history`,
      cause: error,
    });
  }
  if (/^(ENOSPC|SQLITE_FULL)/.test(code)) {
    return new FraisierError('E_STATE', `no space left for the state file ${file}: ${why}`, {
      file,
      hint: `free space on the disk that holds ${path.dirname(path.resolve(file))}`,
      cause: error,
    });
  }
  return new FraisierError('E_STATE', `cannot use the state file ${file}: ${why}`, {
    file,
    hint: 'check the file and its directory (permissions, disk), or point state.path at another file',
    cause: error,
  });
}

/**
 * Opens, checks and migrates a SQLite file. `shown` is the path errors name (the user's file, also when
 * `file` is a temporary copy of it). A damaged file is found here (`quick_check`), not by a later query.
 */
async function openSqlite(file: string, now: () => number, shown: string, onClose?: () => void, databaseClock?: () => number): Promise<StateStore> {
  let sqlite: BetterSqlite3.Database;
  try {
    sqlite = new BetterSqlite3(file);
  } catch (error) {
    throw stateFileError(shown, error);
  }
  // SQLite does not call the busy handler in every case (another process creating the file or recovering
  // its WAL at the same moment answers SQLITE_BUSY at once): retry the opening steps for up to 5 s.
  const startedAt = performance.now();
  for (;;) {
    try {
      sqlite.pragma('busy_timeout = 5000'); // first, so the pragmas below wait for other processes too
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('foreign_keys = ON');
      if (file !== ':memory:') {
        const check = sqlite.pragma('quick_check(1)', { simple: true });
        if (check !== 'ok') throw Object.assign(new Error(`integrity check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
      }
      break;
    } catch (error) {
      const code = (error as { code?: string })?.code ?? '';
      if (code.startsWith('SQLITE_BUSY') && performance.now() - startedAt < 5000) {
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
        continue;
      }
      sqlite.close();
      onClose?.();
      throw stateFileError(shown, error);
    }
  }
  const db = new Kysely<Database>({ dialect: new SharedFileSqliteDialect({ database: sqlite }) });
  try {
    await migrateToLatest(db, 'sqlite');
  } catch (error) {
    await db.destroy();
    onClose?.();
    const code = (error as { code?: string })?.code ?? '';
    throw !(error instanceof FraisierError) && /^(SQLITE_|E[A-Z]+$)/.test(code) ? stateFileError(shown, error) : error;
  }
  const store = new StateStore(db, now, { dialect: 'sqlite', ...(databaseClock ? { databaseClock } : {}) });
  if (onClose) {
    const close = store.close.bind(store);
    store.close = async () => {
      await close();
      onClose();
    };
  }
  return store;
}

/**
 * A read-only SQLite file (read-only mount, no write permission): SQLite cannot open a WAL database it
 * cannot write beside, so a reader gets a private copy (with its -wal), removed when the store closes.
 */
async function openReadOnlyCopy(file: string, now: () => number, databaseClock?: () => number): Promise<StateStore> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-state-ro-'));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const copy = path.join(dir, 'state.db');
  try {
    fs.copyFileSync(file, copy);
    if (fs.existsSync(`${file}-wal`)) fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
  } catch (error) {
    remove();
    throw stateFileError(file, error);
  }
  return openSqlite(copy, now, file, remove, databaseClock);
}

/** How long connecting to PostgreSQL may take before the store gives up. */
const PG_CONNECT_TIMEOUT_MS = 10_000;

async function openPostgres(url: string, now: () => number, databaseClock?: () => number): Promise<StateStore> {
  const shown = redactUrl(url);
  for (const s of urlSecrets(url)) registerSecret(s);
  const problem = postgresUrlProblem(url);
  if (problem !== null) {
    const what = isHiddenUrl(shown) ? 'invalid state database URL (not shown: a password in it cannot be told apart)' : `invalid state database URL ${shown}`;
    throw new FraisierError('E_STATE', `${what}: ${problem}`, {
      hint: 'expected postgres://user:password@host:5432/database (state.url, or FRAISIER_DATABASE_URL)',
    });
  }
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS, idleTimeoutMillis: 5_000 });
  // An idle client losing its server emits 'error' on the pool; the next query reports it instead.
  pool.on('error', () => {});
  // A client lent out (a query or a transaction holds it) has no 'error' listener of pg-pool's: the
  // server ending its connection between two statements (a restart, pg_terminate_backend, a failover)
  // was an unhandled 'error' that ended the process. The statement that uses it next fails instead, and
  // the pool drops it when it comes back (pg marks it not queryable).
  pool.on('connect', (client) => client.on('error', () => {}));
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => {});
    const reason = redact(((error as Error)?.message || String(error)).split(url).join(shown));
    throw new FraisierError('E_STATE', `cannot connect to the state database ${shown}: ${reason}`, {
      hint: 'check state.url (or FRAISIER_DATABASE_URL), that the server runs and accepts this user and password, and that the database exists',
      cause: error,
    });
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db, 'postgres');
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return new StateStore(db, now, { dialect: 'postgres', ...(databaseClock ? { databaseClock } : {}) });
}
