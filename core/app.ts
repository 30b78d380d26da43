import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock } from './clock.js';
import { Deployer, type DeployOptions, type RollbackOptions, type RollbackPolicy, type StatusReport } from './deployer.js';
import { toMs } from './duration.js';
import { FraisierError } from './errors.js';
import type { HealthPolicy } from './health.js';
import type { LogSink } from './log.js';
import { LiveHolderError, Locks, type LockInfo, type LockOwner } from './state/lock.js';
import {
  openStore,
  resolveState,
  statePath,
  storeOptions,
  type Deployment,
  type StateLocation,
  type StateStore,
  type StoreOptions,
  type Stats,
} from './state/store.js';
import { runMigrate, type MigrateOptions } from './migrate.js';
import { checkMultiProvider, isMultiProvider, selectProvider } from './multi-provider.js';
import type { DeployResult, MigrateReport, Plugin, Provider, Strategy } from './types.js';
import type { DeployWindowPolicy } from './windows.js';
import { trace } from './trace.js';

/** One environment of a fraise: where it runs and how it is rolled out. */
export interface EnvironmentDefinition {
  /** Puts releases on targets: `bareMetal({...})`. */
  provider: Provider;
  /** Order and gates across targets: `rolling({...})`. */
  strategy: Strategy;
  /** Health checks after each target's activation; a failure rolls back (see `rollback`). */
  health?: HealthPolicy;
  /** What happens when a deployment fails. Default: roll every touched target back. */
  rollback?: RollbackPolicy;
  /** Plugins for this environment only (after the fraise-wide ones). */
  plugins?: Plugin[];
  /**
   * When deploys may start (`deploy_windows`, `freeze` in YAML; see docs/scheduling.md). The `deploy`
   * command refuses a deploy outside every window or inside a freeze (`E_WINDOW`, exit 2) unless
   * `--force`, and the worker keeps a due scheduled item queued until the next allowed time. Rollbacks
   * are never refused. Default: no restriction.
   */
  deployWindows?: DeployWindowPolicy;
}

/** Which provider of a multi-provider environment a call is about (see docs/multi-provider.md). */
export interface ProviderSelection {
  /**
   * Multi-provider environments only: deploy to (or roll back, or report) this provider alone, by its
   * name (`coolify_cloud`). Default: every provider, as the environment's mode says. An `E_USAGE` error
   * on an environment that has no such provider (or is not a multi-provider one).
   */
  provider?: string;
}

/**
 * Where the history and locks are kept: a SQLite file (the default) or a PostgreSQL database shared
 * by every deployer. Which one, first match wins: `url`; `path` (`$FRAISIER_STATE` overrides it);
 * `$FRAISIER_DATABASE_URL`; `.fraisier/state.db` next to the deploy script (or `$FRAISIER_STATE`).
 */
export interface StateOptions {
  /**
   * SQLite file, relative to the deploy script (or the fraises.yaml). Default `.fraisier/state.db`.
   * `$FRAISIER_STATE` overrides it. Exclusive with `url`.
   */
  path?: string;
  /**
   * PostgreSQL URL, `postgres://user:password@host:5432/database`: locks and history shared across
   * machines. Wins over `$FRAISIER_DATABASE_URL`. The password is never printed (`***`). Default: none
   * (`$FRAISIER_DATABASE_URL` if set, else the SQLite file).
   */
  url?: string;
}

/** A fraise: one deployable service and its environments. */
export interface DeployDefinition<E extends string = string> {
  /** The fraise's name, as the history shows it: `api`. */
  name: string;
  environments: Record<E, EnvironmentDefinition>;
  /** Plugins for every environment. */
  plugins?: Plugin[];
  state?: StateOptions;
}

/** Per-call runtime options for embedding: output sinks, clock, store. */
export interface RuntimeOptions {
  /** Where output lines go. Default: stdout. */
  sinks?: LogSink[];
  clock?: Clock;
  /** Use this store instead of opening the configured one. */
  store?: StateStore;
  owner?: LockOwner;
  handleSignals?: boolean;
  /**
   * Time-to-live of the environment's lock, in ms, for deployments, rollbacks and `migrate` (renewed
   * every third of it while they run). Default `$FRAISIER_LOCK_TTL` (a duration: `90s`, `2m`), else 60 s.
   */
  lockTtlMs?: number;
}

/**
 * The lock TTL from `$FRAISIER_LOCK_TTL` (a duration such as `90s` or `2m`, or milliseconds), or undefined
 * when it is not set. A bad value is an `E_CONFIG` error naming the variable; nothing was changed.
 */
export function lockTtlFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env['FRAISIER_LOCK_TTL'];
  if (raw === undefined || raw === '') return undefined;
  const ms = /^\d+$/.test(raw.trim())
    ? Number(raw.trim())
    : (() => {
        try {
          return toMs(raw, 'FRAISIER_LOCK_TTL');
        } catch {
          return NaN;
        }
      })();
  if (!Number.isFinite(ms) || ms < 1000) {
    throw new FraisierError(
      'E_CONFIG',
      `environment variable FRAISIER_LOCK_TTL: expected a duration of at least 1s such as 90s or 2m (or milliseconds), got ${JSON.stringify(raw)}`,
      {
        key: 'FRAISIER_LOCK_TTL',
        hint: 'unset it for the default, 60s',
      },
    );
  }
  return ms;
}

/**
 * A fraise's deployments, as an API. `defineDeploy()` returns one; the `fraisier` command builds one per
 * fraise from fraises.yaml. Every method opens the state store, does its work and closes it.
 */
export class DeployApp<E extends string = string> {
  readonly definition: DeployDefinition<E>;
  /** Directory the default state path is relative to. */
  readonly baseDir: string;

  constructor(definition: DeployDefinition<E>, baseDir: string) {
    this.definition = definition;
    this.baseDir = baseDir;
  }

  get name(): string {
    return this.definition.name;
  }

  /** The environments' names. */
  get environments(): E[] {
    return Object.keys(this.definition.environments) as E[];
  }

  /** The SQLite state file this app uses when its store is not PostgreSQL (see {@link stateLocation}). */
  get statePath(): string {
    return statePath(this.baseDir, this.definition.state?.path);
  }

  /** The store this app uses: a SQLite file or a PostgreSQL URL (see {@link StateOptions}). */
  get stateLocation(): StateLocation {
    return resolveState(this.baseDir, this.definition.state ?? {});
  }

  private env(environment: string): EnvironmentDefinition {
    const env = (this.definition.environments as Record<string, EnvironmentDefinition>)[environment];
    if (!env) {
      throw new FraisierError('E_NOT_FOUND', `fraise ${this.name} has no environment ${JSON.stringify(environment)}`, {
        key: `environments.${environment}`,
        hint: `known environments: ${this.environments.join(', ')}`,
      });
    }
    return env;
  }

  /**
   * Runs `fn` with an open store (the runtime's, or the configured file). `readOnly`: `fn` only reads, so
   * a read-only SQLite file is still usable (see {@link StoreOptions.readOnly}).
   */
  async withStore<T>(runtime: RuntimeOptions, fn: (store: StateStore) => Promise<T>, readOnly = false): Promise<T> {
    if (runtime.store) return fn(runtime.store);
    const store = await openStore({ ...storeOptions(this.stateLocation), readOnly });
    trace('state store open');
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  /**
   * The environment a call works on: checked (a configuration problem found when it was built is thrown
   * now, before anything is sent), and restricted to one provider when `select.provider` says so.
   */
  private usable(environment: string, select: ProviderSelection = {}): EnvironmentDefinition {
    const env = this.env(environment);
    env.provider.check?.();
    if (isMultiProvider(env)) {
      checkMultiProvider(env);
      return select.provider !== undefined ? selectProvider(env, select.provider) : env;
    }
    if (select.provider !== undefined) {
      throw new FraisierError('E_USAGE', `--provider ${JSON.stringify(select.provider)}: ${this.name} ${environment} is not a multi-provider environment`, {
        key: 'provider',
        hint: 'drop --provider; it selects one provider of a deployment_mode: multi_provider environment',
      });
    }
    return env;
  }

  /** A Deployer for one environment, with the fraise's and the environment's plugins applied. */
  deployer(environment: E | string, store: StateStore, runtime: RuntimeOptions = {}, select: ProviderSelection = {}): Deployer {
    const env = this.usable(environment, select);
    const lockTtlMs = runtime.lockTtlMs ?? lockTtlFromEnv();
    return new Deployer({
      fraise: this.name,
      environment,
      provider: env.provider,
      strategy: env.strategy,
      ...(env.health ? { health: env.health } : {}),
      ...(env.rollback ? { rollback: env.rollback } : {}),
      plugins: [...(this.definition.plugins ?? []), ...(env.plugins ?? [])],
      store,
      ...(runtime.clock ? { clock: runtime.clock } : {}),
      ...(runtime.sinks ? { sinks: runtime.sinks } : {}),
      ...(runtime.owner ? { owner: runtime.owner } : {}),
      ...(runtime.handleSignals !== undefined ? { handleSignals: runtime.handleSignals } : {}),
      ...(lockTtlMs !== undefined ? { lockTtlMs } : {}),
    });
  }

  /**
   * Deploys `options.version` (default: the configured branch) to an environment. Resolves with the
   * result also when the deployment failed (status `failed` or `rolled_back`); rejects only when nothing
   * was started (unknown environment, invalid version, lock held).
   */
  async deploy(environment: E, options: DeployOptions & ProviderSelection = {}, runtime: RuntimeOptions = {}): Promise<DeployResult> {
    const { provider, ...rest } = options;
    const select = provider !== undefined ? { provider } : {};
    this.usable(environment, select);
    return this.withStore(runtime, (store) => this.deployer(environment, store, runtime, select).deploy(rest));
  }

  /** The environment's deploy windows and freezes, or undefined when it has none (see {@link EnvironmentDefinition.deployWindows}). */
  deployWindows(environment: E | string): DeployWindowPolicy | undefined {
    return this.env(environment).deployWindows;
  }

  /**
   * Puts the previous release (or `options.to`) back on every target. In a multi-provider environment,
   * on the provider(s) that run the live release (those that served), or on `options.provider`.
   */
  async rollback(environment: E, options: RollbackOptions & ProviderSelection = {}, runtime: RuntimeOptions = {}): Promise<DeployResult> {
    const { provider, ...rest } = options;
    const select = provider !== undefined ? { provider } : {};
    this.usable(environment, select);
    return this.withStore(runtime, (store) => this.deployer(environment, store, runtime, select).rollback(rest));
  }

  /**
   * What is live on each target, and the lock. In a multi-provider environment, every provider answers
   * for itself (one that is down is its own rows' error): `providers` says what each one runs.
   */
  async status(environment: E, runtime: RuntimeOptions = {}, select: ProviderSelection = {}): Promise<StatusReport> {
    const env = this.usable(environment, select);
    if (!isMultiProvider(env)) return this.withStore(runtime, (store) => this.deployer(environment, store, runtime).status(), true);
    return this.withStore(
      runtime,
      async (store) => {
        const reports = await Promise.all(
          env.multi.members.map((m) =>
            this.deployer(environment, store, runtime, { provider: m.name })
              .status()
              .then((r) => ({ m, r })),
          ),
        );
        const first = reports[0]!.r;
        const report: StatusReport = { ...first, targets: reports.flatMap(({ r }) => r.targets) };
        report.providers = reports.map(({ m, r }) => {
          const running = [...new Set(r.targets.map((t) => t.current ?? '-'))];
          return {
            name: m.name,
            priority: m.priority,
            current: running.length === 1 && running[0] !== '-' ? running[0]! : null,
            targets: r.targets.map((t) => t.name),
          };
        });
        return report;
      },
      true,
    );
  }

  /** Past deployments of this fraise, newest first. */
  history(query: { environment?: E; limit?: number } = {}, runtime: RuntimeOptions = {}): Promise<Deployment[]> {
    return this.withStore(
      runtime,
      (store) =>
        store.history({ fraise: this.name, ...(query.environment ? { environment: query.environment } : {}), ...(query.limit ? { limit: query.limit } : {}) }),
      true,
    );
  }

  /** Success and rollback rates, mean and p95 duration over the last `days`. */
  stats(days = 30, runtime: RuntimeOptions = {}): Promise<Stats[]> {
    return this.withStore(runtime, (store) => store.stats({ fraise: this.name, days }), true);
  }

  /**
   * Applies one phase of migrations outside a deployment (default: `cleanup`), through the environment's
   * migration plugin, under the environment's lock. A dry run lists the pending files.
   */
  migrate(environment: E, options: MigrateOptions = {}, runtime: RuntimeOptions = {}): Promise<MigrateReport[]> {
    const env = this.env(environment);
    const lockTtlMs = runtime.lockTtlMs ?? lockTtlFromEnv();
    return this.withStore(runtime, (store) =>
      runMigrate(this.name, environment, [...(this.definition.plugins ?? []), ...(env.plugins ?? [])], store, options, {
        ...runtime,
        ...(lockTtlMs !== undefined ? { lockTtlMs } : {}),
      }),
    );
  }

  /**
   * Removes the environment's lock; returns what was removed (with `live` set when its holder looked
   * alive), or undefined if it was not locked. A holder that looks alive (its pid runs on this machine,
   * or the lock was renewed recently) is refused with `E_LOCKED` unless `options.force`: its deployer
   * then stops at its next step without touching any host, and records `lock_lost`.
   */
  unlock(environment: E, runtime: RuntimeOptions = {}, options: { force?: boolean } = {}): Promise<(LockInfo & { live: string | null }) | undefined> {
    this.env(environment);
    return this.withStore(runtime, async (store) => {
      try {
        return await new Locks(store).unlock(this.name, environment, options);
      } catch (err) {
        if (!(err instanceof LiveHolderError)) throw err;
        throw new FraisierError('E_LOCKED', err.message, {
          hint: `its deployment is still running; to stop it anyway (it will touch no host again): fraisier unlock ${this.name} ${environment} --force`,
        });
      }
    });
  }
}

/** The file that called the function that called this one (the deploy script), from the stack. */
export function callerFile(depth = 2): string | null {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  const files = stack
    .map((l) => /\(?((?:file:\/\/)?\/[^():]+):\d+:\d+\)?\s*$/.exec(l)?.[1])
    .filter((f): f is string => !!f)
    .map((f) => (f.startsWith('file://') ? fileURLToPath(f) : f));
  return files[depth] ?? null;
}

/** True when `file` is the script node/tsx was started with. */
export function isMain(file: string | null): boolean {
  if (!file || !process.argv[1]) return false;
  try {
    return realpathSync(file) === realpathSync(process.argv[1]);
  } catch {
    return false;
  }
}

export function dirOf(file: string | null): string {
  return file ? dirname(file) : process.cwd();
}
