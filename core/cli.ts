import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import type { DeployApp } from './app.js';
import { FraisierError, formatError } from './errors.js';
import { consoleSink, type LogSink } from './log.js';
import { formatHistory, formatLock, formatResult, formatResultError, formatStats, formatStatus, formatStatusAll, summarizeLock, toJson, type StatusAllRow } from './report.js';
import { registerSecret } from './secret.js';
import { DEFAULT_LOCK_WAIT_MS, Locks, ownerString, type LockInfo } from './state/lock.js';
import { toMs } from './duration.js';
import { openStore, redactUrl, resolveState, storeOptions, type StateStore } from './state/store.js';
import type { DeployResult, MigrateReport } from './types.js';
import { findConfig, openConfig, type LoadedConfig } from './config/load.js';

/** Loads the SDK side (Deployer, hooks, health checks) only for commands that deploy: history starts fast. */
async function appFromYaml(config: LoadedConfig, fraise: string): Promise<DeployApp> {
  return (await import('./config/build.js')).appFromYaml(config, fraise);
}

/** The package's own version (package.json). */
export function toolVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'fraisier') return pkg.version;
    } catch {}
  }
  return 'unknown';
}

/** Exit status for an error: 2 bad input, 3 lock held, 1 anything else. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof FraisierError) {
    if (['E_CONFIG', 'E_USAGE', 'E_VERSION', 'E_NOT_FOUND', 'E_STATE'].includes(err.code)) return 2;
    if (err.code === 'E_LOCKED') return 3;
  }
  return 1;
}

/** The warning of `unlock --force` over a holder that looked alive. */
function warnLiveUnlock(removed: LockInfo & { live: string | null }): void {
  process.stderr.write(
    `warn: unlocked a live deployment of ${removed.fraise}/${removed.environment} held by ${ownerString(removed.owner)} (${removed.live}): ` +
      'it stops at its next step without touching any host and records lock_lost; its hosts stay as they are\n',
  );
}

function printError(err: unknown, json: boolean): void {
  if (json) process.stdout.write(toJson({ error: err instanceof FraisierError ? err.toJSON() : { message: String(err) } }) + '\n');
  process.stderr.write(formatError(err) + '\n');
}

function sinksFor(json: boolean): LogSink[] {
  return [consoleSink(json ? process.stderr : process.stdout)];
}

function finish(result: DeployResult, json: boolean): number {
  if (json) process.stdout.write(toJson(result, 2) + '\n');
  else process.stdout.write(formatResult(result) + '\n');
  if (result.error) process.stderr.write(`${formatResultError(result.error)}\n`);
  // Stopped by a signal: the conventional 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after the cleanup.
  if (result.signal) return 128 + (result.signal === 'SIGHUP' ? 1 : result.signal === 'SIGINT' ? 2 : 15);
  if (result.status === 'lock_lost') return 3;
  return result.status === 'succeeded' ? 0 : 1;
}

function printMigrate(reports: MigrateReport[], json: boolean): number {
  if (json) process.stdout.write(toJson(reports, 2) + '\n');
  else {
    for (const r of reports) {
      process.stdout.write(
        r.applied.length > 0
          ? `Applied ${r.applied.length} ${r.phase} migration(s): ${r.applied.join(', ')}\n`
          : r.pending.length > 0
            ? `Pending ${r.phase} migration(s): ${r.pending.join(', ')}\n`
            : `No pending ${r.phase} migrations\n`,
      );
    }
  }
  return 0;
}

/** Runs `fn` with the config's state store open for reading (status-all, history, stats, state copy's source), and closes it. */
async function withStore<T>(config: LoadedConfig, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const store = await openStore({ ...storeOptions(resolveState(config.baseDir, config.state)), readOnly: true });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function envOf(app: DeployApp, env: string): string {
  if (!app.environments.includes(env)) {
    throw new FraisierError('E_NOT_FOUND', `fraise ${app.name} has no environment ${JSON.stringify(env)}`, {
      key: `fraises.${app.name}.environments.${env}`,
      hint: /_(blue|green)$/.test(env) && app.environments.includes(env.replace(/_(blue|green)$/, ''))
        ? `${env} is a colour of the blue-green environment ${env.replace(/_(blue|green)$/, '')}: deploy, roll back and check that one`
        : `known environments: ${app.environments.join(', ')}`,
    });
  }
  return env;
}

/**
 * `--wait-lock[=SECONDS]`: absent → undefined (fail at once when locked); no value → 10 minutes; a
 * number → seconds; `30s`, `2m` → that duration. In milliseconds.
 */
export function waitLockOption(v: unknown): number | undefined {
  if (v === undefined || v === false) return undefined;
  const s = String(v).trim();
  if (s === '' || s === 'true') return DEFAULT_LOCK_WAIT_MS;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  try {
    return toMs(s as `${number}s`, '--wait-lock');
  } catch {
    throw new FraisierError('E_USAGE', `--wait-lock: expected a number of seconds (or a duration such as 30s or 2m), got ${JSON.stringify(s)}`, {
      hint: 'e.g. --wait-lock=300; --wait-lock alone waits up to 10 minutes',
    });
  }
}

/**
 * A whole-number option such as `--limit` or `--days`: absent → `fallback`; digits → that number (at
 * least 1); anything else (`abc`, `0`, `2.5`, `-3`) is a usage error naming the option and the value.
 */
export function countOption(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  const s = String(v).trim();
  if (/^\d+$/.test(s) && Number(s) >= 1 && Number.isSafeInteger(Number(s))) return Number(s);
  throw new FraisierError('E_USAGE', `--${name}: expected a whole number of at least 1, got ${JSON.stringify(String(v))}`, {
    hint: `e.g. --${name} ${fallback}`,
  });
}

const WAIT_LOCK_DESCRIBE = 'if another deployment holds the lock, wait for it (up to SECONDS, default 600) instead of failing';

function common<T>(y: Argv<T>) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON on stdout' })
    .option('config', { alias: 'c', type: 'string', describe: 'path to fraises.yaml (default: $FRAISIER_CONFIG, then ./fraises.yaml)' });
}

/**
 * The `fraisier` command over fraises.yaml. Returns the exit status: 0 success, 1 a deployment failed
 * (rolled back or not), 2 bad input, 3 the lock is held.
 */
export async function runFraisierCli(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`fraisier ${toolVersion()}\n`);
    return 0;
  }
  let code = 0;
  let json = argv.includes('--json');
  const load = async (c?: string) => {
    const config = await openConfig(findConfig(c));
    for (const s of config.secrets) registerSecret(s);
    return config;
  };
  const guard = (fn: (a: Record<string, unknown>) => Promise<number>) => async (a: Record<string, unknown>) => {
    json = Boolean(a['json']);
    try {
      code = await fn(a);
    } catch (err) {
      printError(err, json);
      code = exitCodeFor(err);
    }
  };
  const cli = common(yargs(argv))
    .scriptName('fraisier')
    .version(false)
    .strict()
    .command(
      'deploy <fraise> <env>',
      'deploy a release',
      (y) =>
        y
          .positional('fraise', { type: 'string', demandOption: true })
          .positional('env', { type: 'string', demandOption: true })
          .option('version', { type: 'string', describe: 'git ref (tag, branch, sha) or artifact version; default: the configured branch' })
          .option('force', { type: 'boolean', default: false, describe: 'skip health checks (emergency)' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan, change nothing' })
          .option('wait-lock', { type: 'string', describe: WAIT_LOCK_DESCRIBE }),
      guard(async (a) => {
        const app = await appFromYaml(await load(a['config'] as string | undefined), String(a['fraise']));
        const env = envOf(app, String(a['env']));
        const waitLock = waitLockOption(a['waitLock']);
        const result = await app.deploy(env, {
          ...(a['version'] !== undefined ? { version: String(a['version']) } : {}),
          ...(waitLock !== undefined ? { waitLock } : {}),
          force: Boolean(a['force']),
          dryRun: Boolean(a['dryRun']),
        }, { sinks: sinksFor(json) });
        return finish(result, json);
      }),
    )
    .command(
      'rollback <fraise> <env>',
      'go back to the previous release (or --to VERSION)',
      (y) =>
        y
          .positional('fraise', { type: 'string', demandOption: true })
          .positional('env', { type: 'string', demandOption: true })
          .option('to', { type: 'string', describe: 'release to go back to' })
          .option('force', { type: 'boolean', default: false, describe: 'skip health checks (emergency)' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan, change nothing' })
          .option('wait-lock', { type: 'string', describe: WAIT_LOCK_DESCRIBE }),
      guard(async (a) => {
        const app = await appFromYaml(await load(a['config'] as string | undefined), String(a['fraise']));
        const env = envOf(app, String(a['env']));
        const waitLock = waitLockOption(a['waitLock']);
        const result = await app.rollback(
          env,
          {
            ...(a['to'] !== undefined ? { to: String(a['to']) } : {}),
            force: Boolean(a['force']),
            dryRun: Boolean(a['dryRun']),
            ...(waitLock !== undefined ? { waitLock } : {}),
          },
          { sinks: sinksFor(json) },
        );
        return finish(result, json);
      }),
    )
    .command(
      'migrate <fraise> <env>',
      'apply pending migrations outside a deployment (default: the cleanup phase)',
      (y) =>
        y
          .positional('fraise', { type: 'string', demandOption: true })
          .positional('env', { type: 'string', demandOption: true })
          .option('phase', { type: 'string', choices: ['prepare', 'cleanup'], default: 'cleanup', describe: 'which migration files: cleanup (*.cleanup.sql) or prepare' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'list the pending migrations, change nothing' }),
      guard(async (a) => {
        const app = await appFromYaml(await load(a['config'] as string | undefined), String(a['fraise']));
        const env = envOf(app, String(a['env']));
        const reports = await app.migrate(env, { phase: a['phase'] as 'prepare' | 'cleanup', dryRun: Boolean(a['dryRun']) }, { sinks: sinksFor(json) });
        return printMigrate(reports, json);
      }),
    )
    .command(
      'status <fraise> <env>',
      'what is live on each target, and the lock',
      (y) => y.positional('fraise', { type: 'string', demandOption: true }).positional('env', { type: 'string', demandOption: true }),
      guard(async (a) => {
        const app = await appFromYaml(await load(a['config'] as string | undefined), String(a['fraise']));
        const report = await app.status(envOf(app, String(a['env'])), { sinks: sinksFor(json) });
        process.stdout.write((json ? toJson(report, 2) : formatStatus(report)) + '\n');
        return report.targets.some((t) => t.error) ? 1 : 0;
      }),
    )
    .command(
      'status-all',
      'every fraise and environment: live version and lock (from the history, no SSH)',
      (y) => y,
      guard(async (a) => {
        const config = await load(a['config'] as string | undefined);
        return withStore(config, async (store) => {
          const now = await store.databaseNow(); // a lock's age and expiry by the clock that decides them
          const locks = await new Locks(store).list();
          const lockOf = (f: string, e: string) => locks.find((l) => l.fraise === f && l.environment === e);
          const rows: StatusAllRow[] = [];
          const places = Object.entries(config.fraises).flatMap(([fraise, f]) => Object.keys(f.environments).map((environment) => ({ fraise, environment })));
          // locks of places no longer in the config are shown too: they still block whoever shares the store
          for (const l of locks) if (!places.some((p) => p.fraise === l.fraise && p.environment === l.environment)) places.push({ fraise: l.fraise, environment: l.environment });
          for (const { fraise, environment } of places) {
            const lock = lockOf(fraise, environment);
            rows.push({ fraise, environment, version: await store.currentVersion(fraise, environment), lock: lock ? summarizeLock(lock, now) : null });
          }
          process.stdout.write((json ? toJson(rows, 2) : formatStatusAll(rows, now)) + '\n');
          return 0;
        });
      }),
    )
    .command(
      'history',
      'past deployments, newest first',
      (y) =>
        y
          .option('fraise', { type: 'string' })
          .option('env', { type: 'string' })
          .option('limit', { type: 'string', describe: 'rows to show, newest first', defaultDescription: '20' }),
      guard(async (a) => {
        const limit = countOption('limit', a['limit'], 20);
        const config = await load(a['config'] as string | undefined);
        return withStore(config, async (store) => {
          const rows = await store.history({
            ...(a['fraise'] ? { fraise: String(a['fraise']) } : {}),
            ...(a['env'] ? { environment: String(a['env']) } : {}),
            limit,
        });
        process.stdout.write((json ? toJson(rows, 2) : formatHistory(rows)) + '\n');
        return 0;
        });
      }),
    )
    .command(
      'stats',
      'success rate, rollback rate, mean and p95 duration',
      (y) => y.option('fraise', { type: 'string' }).option('days', { type: 'string', describe: 'look back this many days', defaultDescription: '30' }),
      guard(async (a) => {
        const days = countOption('days', a['days'], 30);
        const config = await load(a['config'] as string | undefined);
        return withStore(config, async (store) => {
          const rows = await store.stats({ ...(a['fraise'] ? { fraise: String(a['fraise']) } : {}), days });
          process.stdout.write((json ? toJson(rows, 2) : formatStats(rows, days)) + '\n');
          return 0;
        });
      }),
    )
    .command(
      'unlock <fraise> <env>',
      'remove a lock left by a deployer that is gone (a live holder needs --force)',
      (y) =>
        y
          .positional('fraise', { type: 'string', demandOption: true })
          .positional('env', { type: 'string', demandOption: true })
          .option('force', { type: 'boolean', default: false, describe: 'remove the lock even if its holder looks alive (it then stops, touching no host)' }),
      guard(async (a) => {
        const config = await load(a['config'] as string | undefined);
        const app = await appFromYaml(config, String(a['fraise']));
        const env = envOf(app, String(a['env']));
        const removed = await app.unlock(env, {}, { force: Boolean(a['force']) });
        if (removed?.live) warnLiveUnlock(removed);
        process.stdout.write(
          (json ? toJson({ removed: removed ?? null }) : removed ? `Removed lock of ${app.name}/${env} (${formatLock(removed)})` : `${app.name}/${env} was not locked`) + '\n',
        );
        return 0;
      }),
    )
    .command(
      'state <action>',
      'state store maintenance: `state migrate --to <url>` copies the history into a new PostgreSQL database',
      (y) =>
        y
          .positional('action', { type: 'string', choices: ['migrate'], demandOption: true })
          .option('to', { type: 'string', demandOption: true, describe: 'PostgreSQL URL of an empty database to copy the current store into' }),
      guard(async (a) => {
        const config = await load(a['config'] as string | undefined);
        const to = String(a['to']);
        const { copyState } = await import('./state/copy.js');
        const target = await openStore({ url: to });
        try {
          return await withStore(config, async (source) => {
            const counts = await copyState(source, target, { toPostgres: true });
            const summary = { ...counts, to: redactUrl(to) };
            process.stdout.write(
              (json
                ? toJson(summary)
                : `Copied ${counts.deployments} deployment(s), ${counts.targets} target result(s) and ${counts.events} event(s) to ${summary.to}.\n` +
                  'Now point every deployer at it: state.url in fraises.yaml (or FRAISIER_DATABASE_URL).') + '\n',
            );
            return 0;
          });
        } finally {
          await target.close();
        }
      }),
    )
    .demandCommand(1, 'name a command: deploy, rollback, migrate, status, status-all, history, stats, unlock, state')
    .fail((msg, err) => {
      throw err ?? new FraisierError('E_USAGE', msg);
    })
    .help();
  try {
    await cli.parseAsync();
  } catch (err) {
    printError(err, json);
    return exitCodeFor(err);
  }
  return code;
}

/** Which options each command of a deploy script uses; any other option given is refused, never ignored. */
const SCRIPT_OPTIONS: Record<string, readonly string[]> = {
  deploy: ['version', 'force', 'dry-run', 'wait-lock', 'json'],
  rollback: ['to', 'force', 'dry-run', 'wait-lock', 'json'],
  migrate: ['phase', 'dry-run', 'json'],
  status: ['json'],
  history: ['limit', 'json'],
  stats: ['days', 'json'],
  unlock: ['force', 'json'],
};

/** The long option names written on a command line (`--dry-run`, `--to=v1`, `--no-force` → dry-run, to, force). */
function givenOptions(argv: readonly string[]): string[] {
  const names: string[] = [];
  for (const a of argv) {
    if (a === '--') break;
    const m = /^--(?:no-)?([a-z][a-z-]*)(?:=|$)/.exec(a);
    if (m) names.push(m[1]!);
  }
  return names;
}

/**
 * The command line of a deploy script: `npx tsx deploy.ts <environment> [deploy|rollback|migrate|status|history|stats|unlock]`.
 * Returns the exit status (see {@link runFraisierCli}).
 */
export async function runScriptCli(app: DeployApp, argv: string[]): Promise<number> {
  let code = 0;
  let json = argv.includes('--json');
  try {
    await yargs(argv)
      .scriptName(process.argv[1] ? `npx tsx ${process.argv[1].split('/').pop()}` : 'deploy.ts')
      .usage('$0 <environment> [command]')
      .version(false)
      .strict()
      .command(
        '$0 <environment> [command]',
        `deploy ${app.name}`,
        (y) =>
          y
            .positional('environment', { type: 'string', choices: app.environments, demandOption: true })
            .positional('command', { type: 'string', choices: ['deploy', 'rollback', 'migrate', 'status', 'history', 'stats', 'unlock'], default: 'deploy' })
            .option('phase', { type: 'string', choices: ['prepare', 'cleanup'], default: 'cleanup', describe: 'migrate: which migration files' })
            .option('version', { type: 'string', describe: 'git ref or artifact version to deploy' })
            .option('to', { type: 'string', describe: 'rollback: release to go back to' })
            .option('force', { type: 'boolean', default: false, describe: 'skip health checks (emergency)' })
            .option('dry-run', { type: 'boolean', default: false })
            .option('wait-lock', { type: 'string', describe: WAIT_LOCK_DESCRIBE })
            .option('limit', { type: 'string', describe: 'history: rows to show', defaultDescription: '20' })
            .option('days', { type: 'string', describe: 'stats: look back this many days', defaultDescription: '30' })
            .option('json', { type: 'boolean', default: false }),
        async (a) => {
          json = Boolean(a.json);
          const env = String(a.environment);
          const runtime = { sinks: sinksFor(json) };
          try {
            const accepted = SCRIPT_OPTIONS[a.command] ?? [];
            const refused = givenOptions(argv).filter((o) => o !== 'help' && !accepted.includes(o));
            if (refused.length > 0) {
              throw new FraisierError('E_USAGE', `${a.command} does not take ${refused.map((o) => `--${o}`).join(', ')}`, {
                hint: `${a.command} takes ${accepted.map((o) => `--${o}`).join(', ')}`,
              });
            }
            const waitLock = waitLockOption(a['wait-lock']);
            const wait = waitLock !== undefined ? { waitLock } : {};
            switch (a.command) {
              case 'rollback':
                code = finish(await app.rollback(env, { ...(a.to ? { to: a.to } : {}), force: a.force, dryRun: a['dry-run'], ...wait }, runtime), json);
                break;
              case 'migrate':
                code = printMigrate(await app.migrate(env, { phase: a.phase as 'prepare' | 'cleanup', dryRun: a['dry-run'] }, runtime), json);
                break;
              case 'status': {
                const r = await app.status(env, runtime);
                process.stdout.write((json ? toJson(r, 2) : formatStatus(r)) + '\n');
                // some target unreachable or failing its checks: exit 1, as `fraisier status` does
                if (r.targets.some((t) => t.error)) code = 1;
                break;
              }
              case 'history': {
                const rows = await app.history({ environment: env, limit: countOption('limit', a.limit, 20) });
                process.stdout.write((json ? toJson(rows, 2) : formatHistory(rows)) + '\n');
                break;
              }
              case 'stats': {
                const days = countOption('days', a.days, 30);
                const rows = await app.stats(days);
                process.stdout.write((json ? toJson(rows, 2) : formatStats(rows, days)) + '\n');
                break;
              }
              case 'unlock': {
                const removed = await app.unlock(env, runtime, { force: a.force });
                if (removed?.live) warnLiveUnlock(removed);
                process.stdout.write((json ? toJson({ removed: removed ?? null }) : removed ? `Removed lock (${formatLock(removed)})` : 'not locked') + '\n');
                break;
              }
              default:
                code = finish(await app.deploy(env, { ...(a.version ? { version: a.version } : {}), force: a.force, dryRun: a['dry-run'], ...wait }, runtime), json);
            }
          } catch (err) {
            printError(err, json);
            code = exitCodeFor(err);
          }
        },
      )
      .fail((msg, err) => {
        throw err ?? new FraisierError('E_USAGE', msg);
      })
      .help()
      .parseAsync();
  } catch (err) {
    printError(err, json);
    return exitCodeFor(err);
  }
  return code;
}
