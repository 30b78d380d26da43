/**
 * `fraisier migrate <fraise> <env>`: applies one phase of migrations outside a deployment, through the
 * environment's {@link Migrator} plugin (psql-migration), under the environment's deployment lock.
 */
import { hostname, userInfo } from 'node:os';
import { FraisierError } from './errors.js';
import { LockSession } from './lock-session.js';
import { FanoutLogger, consoleSink, type LogSink } from './log.js';
import type { LockOwner } from './state/lock.js';
import type { StateStore } from './state/store.js';
import type { MigrateReport, MigrationPhase, Migrator, Plugin } from './types.js';

/** Options of `DeployApp.migrate`. */
export interface MigrateOptions {
  /** `prepare` (the files a deployment applies) or `cleanup` (the `.cleanup.sql` files). Default `cleanup`. */
  phase?: MigrationPhase;
  /** List the pending migrations; change nothing and take no lock. */
  dryRun?: boolean;
}

function isMigrator(p: Plugin): p is Migrator {
  return typeof (p as Partial<Migrator>).migrate === 'function';
}

/** Runs the migrators among `plugins` for one environment. */
export async function runMigrate(
  fraise: string,
  environment: string,
  plugins: Plugin[],
  store: StateStore,
  options: MigrateOptions,
  runtime: { sinks?: LogSink[]; owner?: LockOwner; lockTtlMs?: number },
): Promise<MigrateReport[]> {
  const migrators = plugins.filter(isMigrator);
  if (migrators.length === 0) {
    throw new FraisierError('E_CONFIG', `${fraise}/${environment} has no migrations configured`, {
      hint: 'add a database: block to the environment in fraises.yaml, or psqlMigration({...}) to its plugins in deploy.ts',
    });
  }
  const phase = options.phase ?? 'cleanup';
  if (phase !== 'prepare' && phase !== 'cleanup') {
    throw new FraisierError('E_USAGE', `unknown migration phase ${JSON.stringify(phase)}; expected prepare or cleanup`);
  }
  const dryRun = options.dryRun ?? false;
  const log = new FanoutLogger(runtime.sinks ?? [consoleSink()]);
  const owner = runtime.owner ?? { user: userInfo().username, host: hostname(), pid: process.pid };
  // The same lock session as a deployment's: renewed every third of its TTL while the migrations run
  // (a migration may outlast the TTL), and checked (fencing) before each migrator, so a lock lost to
  // `unlock --force` or a takeover stops before the next migrator touches the database. A dry run takes none.
  return LockSession.with(
    {
      store,
      fraise,
      environment,
      owner,
      reason: `migrate --phase ${phase} by ${owner.user}`,
      log,
      activity: 'migration',
      dryRun,
      ...(runtime.lockTtlMs !== undefined ? { ttlMs: runtime.lockTtlMs } : {}),
    },
    async (lock) => {
      const version = (await store.currentVersion(fraise, environment)) ?? '(none)';
      log.info(`Migrating ${fraise}/${environment} (${phase} phase, live release ${version})${dryRun ? ' (dry run)' : ''}`);
      const reports: MigrateReport[] = [];
      for (const m of migrators) {
        await lock.fence();
        reports.push(await m.migrate({ fraise, environment, version, phase, dryRun, log }));
      }
      return reports;
    },
  );
}
