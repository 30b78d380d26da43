/**
 * Schema migrations of the state store, kept in code (no migration files on disk) and run by kysely's
 * `Migrator`. Written with the schema builder so the same steps run on SQLite and PostgreSQL; the only
 * difference is how a generated integer id is spelled, chosen by {@link SqlFlavor}.
 *
 * Migrations are append-only: never edit one that has shipped, add a new one.
 */
import { Migrator, sql } from 'kysely';
import type { ColumnDefinitionBuilder, Kysely, Migration, MigrationProvider, MigrationResultSet } from 'kysely';

/** The SQL dialect the migrations target. */
export type SqlFlavor = 'sqlite' | 'postgres';

/** Name of the table where kysely records the applied migrations. */
export const MIGRATION_TABLE = 'fraisier_migration';
/** Name of kysely's migration lock table. */
export const MIGRATION_LOCK_TABLE = 'fraisier_migration_lock';

/** Adds an `id` column: `integer primary key autoincrement` on SQLite, `serial primary key` on PostgreSQL. */
function idColumn(flavor: SqlFlavor): [type: 'integer' | 'serial', build: (c: ColumnDefinitionBuilder) => ColumnDefinitionBuilder] {
  return flavor === 'sqlite' ? ['integer', (c) => c.primaryKey().autoIncrement()] : ['serial', (c) => c.primaryKey()];
}

/** All migrations, by name; names sort in the order they must run. */
export function migrations(flavor: SqlFlavor): Record<string, Migration> {
  const [idType, idBuild] = idColumn(flavor);
  return {
    '0001_initial': {
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('deployments')
          .addColumn('id', idType, idBuild)
          .addColumn('fraise', 'text', (c) => c.notNull())
          .addColumn('environment', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('strategy', 'text', (c) => c.notNull())
          .addColumn('from_version', 'text')
          .addColumn('to_version', 'text', (c) => c.notNull())
          .addColumn('user', 'text', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint')
          .addColumn('duration_ms', 'bigint')
          .addColumn('error', 'text')
          .execute();
        await db.schema.createIndex('deployments_fraise_environment_id').on('deployments').columns(['fraise', 'environment', 'id']).execute();
        await db.schema.createIndex('deployments_started_at').on('deployments').column('started_at').execute();

        await db.schema
          .createTable('targets')
          .addColumn('id', idType, idBuild)
          .addColumn('deployment_id', 'integer', (c) => c.notNull().references('deployments.id').onDelete('cascade'))
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('from_version', 'text')
          .addColumn('to_version', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('phases', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('error', 'text')
          .execute();
        // Unique (deployment_id, target): the upsert key of recordTarget, and the deployment_id index.
        await db.schema.createIndex('targets_deployment_id_target').on('targets').columns(['deployment_id', 'target']).unique().execute();

        await db.schema
          .createTable('events')
          .addColumn('id', idType, idBuild)
          .addColumn('deployment_id', 'integer', (c) => c.notNull().references('deployments.id').onDelete('cascade'))
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('level', 'text', (c) => c.notNull())
          .addColumn('target', 'text')
          .addColumn('message', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('events_deployment_id').on('events').column('deployment_id').execute();

        await db.schema
          .createTable('locks')
          .addColumn('fraise', 'text', (c) => c.notNull())
          .addColumn('environment', 'text', (c) => c.notNull())
          .addColumn('owner_user', 'text', (c) => c.notNull())
          .addColumn('owner_host', 'text', (c) => c.notNull())
          .addColumn('owner_pid', 'integer', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('acquired_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('token', 'text', (c) => c.notNull())
          .addColumn('prev_owner_user', 'text')
          .addColumn('prev_owner_host', 'text')
          .addColumn('prev_owner_pid', 'integer')
          .addColumn('prev_reason', 'text')
          .addColumn('prev_acquired_at', 'bigint')
          .addColumn('prev_expires_at', 'bigint')
          .addPrimaryKeyConstraint('locks_pkey', ['fraise', 'environment'])
          .execute();
      },
      async down(db: Kysely<any>): Promise<void> {
        await db.schema.dropTable('locks').execute();
        await db.schema.dropTable('events').execute();
        await db.schema.dropTable('targets').execute();
        await db.schema.dropTable('deployments').execute();
      },
    },
    '0100_canary_state': {
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('canaries')
          .addColumn('deployment_id', 'integer', (c) => c.primaryKey().references('deployments.id').onDelete('cascade'))
          .addColumn('fraise', 'text', (c) => c.notNull())
          .addColumn('environment', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('stable_version', 'text')
          .addColumn('canary_hosts', 'text', (c) => c.notNull())
          .addColumn('step', 'integer', (c) => c.notNull())
          .addColumn('weight', 'integer')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('verdicts', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('canaries_fraise_environment_state').on('canaries').columns(['fraise', 'environment', 'state']).execute();
      },
      async down(db: Kysely<any>): Promise<void> {
        await db.schema.dropTable('canaries').execute();
      },
    },
    // Multi-provider environments: each provider's outcome (which one served, why each before it
    // failed), as JSON; null for a single-provider environment.
    '0200_provider_outcomes': {
      async up(db: Kysely<any>): Promise<void> {
        await db.schema.alterTable('deployments').addColumn('providers', 'text').execute();
      },
    },
    // `fraisier cancel` and `status-all`: a cancel request and the holder's progress, on the lock row, so
    // the holder's renewal reads them in the statement it already runs.
    '0300_cancel_lock_progress': {
      async up(db: Kysely<any>): Promise<void> {
        for (const [column, type] of [
          ['cancel_by', 'text'],
          ['cancel_reason', 'text'],
          ['cancel_at', 'bigint'],
          ['step', 'text'],
          ['targets', 'text'],
        ] as const) {
          await db.schema.alterTable('locks').addColumn(column, type).execute();
        }
      },
      async down(db: Kysely<any>): Promise<void> {
        for (const column of ['cancel_by', 'cancel_reason', 'cancel_at', 'step', 'targets']) await db.schema.alterTable('locks').dropColumn(column).execute();
      },
    },
    '0400_queue': {
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('queue')
          .addColumn('id', idType, idBuild)
          .addColumn('fraise', 'text', (c) => c.notNull())
          .addColumn('environment', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('ref', 'text')
          .addColumn('flags', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('requested_by', 'text', (c) => c.notNull())
          .addColumn('queued_at', 'bigint', (c) => c.notNull())
          .addColumn('due_at', 'bigint', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('claimed_by', 'text')
          .addColumn('claimed_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .addColumn('deployment_id', 'integer')
          .addColumn('error', 'text')
          .addColumn('note', 'text')
          .execute();
        await db.schema.createIndex('queue_status_due_at').on('queue').columns(['status', 'due_at']).execute();
      },
      async down(db: Kysely<any>): Promise<void> {
        await db.schema.dropTable('queue').execute();
      },
    },
    // `fraisier serve`: the delivery ids of the git webhooks already handled, so a replay queues nothing.
    '0500_webhook_deliveries': {
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('delivery', 'text', (c) => c.primaryKey())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<any>): Promise<void> {
        await db.schema.dropTable('webhook_deliveries').execute();
      },
    },
  };
}

/** A kysely `MigrationProvider` serving {@link migrations} from memory. */
export class InCodeMigrationProvider implements MigrationProvider {
  /** @param flavor the dialect the migrations are written for. */
  constructor(private readonly flavor: SqlFlavor) {}

  /** Returns every migration of this flavor. */
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.flavor);
  }
}

/**
 * Brings the schema up to date. Safe to call on every open: applied migrations are skipped.
 * Throws the migration error, if any.
 *
 * @returns the migrations that ran this time (empty when already up to date).
 */
export async function migrateToLatest(db: Kysely<any>, flavor: SqlFlavor): Promise<NonNullable<MigrationResultSet['results']>> {
  // Fast path for every open after the first: one query instead of the Migrator's lock dance.
  if (await isUpToDate(db, flavor)) return [];
  if (flavor === 'postgres') {
    // Several processes may open a brand-new database at once. kysely's own lock is taken only after it
    // has created its tables (a concurrent `create table if not exists` can still fail on PostgreSQL), so
    // the whole migration runs under a session advisory lock held on one connection; the others wait,
    // then find the schema up to date.
    return db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(${sql.lit(PG_MIGRATION_LOCK_KEY)})`.execute(conn);
      try {
        if (await isUpToDate(conn, flavor)) return [];
        return await runMigrator(conn, flavor);
      } finally {
        await sql`select pg_advisory_unlock(${sql.lit(PG_MIGRATION_LOCK_KEY)})`.execute(conn);
      }
    });
  }
  return runMigrator(db, flavor);
}

/** The advisory lock key Fraisier takes on PostgreSQL while migrating (advisory locks are per database). */
export const PG_MIGRATION_LOCK_KEY = 0x66726169; // "frai"

async function isUpToDate(db: Kysely<any>, flavor: SqlFlavor): Promise<boolean> {
  const wanted = Object.keys(migrations(flavor)).sort();
  try {
    const applied = await appliedMigrations(db);
    return applied.length === wanted.length && applied.every((name, i) => name === wanted[i]);
  } catch {
    return false; // no migration table yet
  }
}

async function runMigrator(db: Kysely<any>, flavor: SqlFlavor): Promise<NonNullable<MigrationResultSet['results']>> {
  const migrator = new Migrator({
    db,
    provider: new InCodeMigrationProvider(flavor),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    throw error instanceof Error ? error : new Error(`state store migration failed: ${String(error)}`);
  }
  return results ?? [];
}

/** The applied migration names, oldest first (for diagnostics and tests). */
export async function appliedMigrations(db: Kysely<any>): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}
