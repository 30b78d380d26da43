/**
 * Several fraises deployed in parallel (`fraisier deploy api etl worker production`, {@link deployAll}):
 * each through its own Deployer, with its own lock and history row; at most `maxParallel` at a time; with
 * `failFast`, the first failure cancels the others (each stops after its current step and rolls back what
 * it touched, recorded `cancelled`) and those not started yet are skipped.
 */
import type { DeployApp, RuntimeOptions } from './app.js';
import { type DeployOptions, validateVersion } from './deployer.js';
import { FraisierError, asFraisierError } from './errors.js';
import { consoleSink, type LogSink } from './log.js';
import { openStore, storeOptions, type StateStore } from './state/store.js';
import type { DeployResult } from './types.js';

/** One deployment of {@link deployAll}. */
export interface DeployAllItem {
  /** The fraise: `defineDeploy(...)`'s app, or `appFromYaml(config, name)`. */
  app: DeployApp;
  /** The environment to deploy to; every app must have it. */
  environment: string;
  /** This fraise's options (version, force, waitLock); `signal` is deployAll's own. */
  options?: Omit<DeployOptions, 'signal' | 'dryRun'>;
}

/** Options of {@link deployAll}. */
export interface DeployAllOptions {
  /** At most this many deployments at once (a whole number of at least 1). Default: all of them. */
  maxParallel?: number;
  /**
   * When one deployment ends other than `succeeded` (or cannot start: lock held), cancel the others:
   * each stops after its current step and rolls back what it touched (status `cancelled`); those not
   * started yet are skipped. Default false: the others run to their end.
   */
  failFast?: boolean;
  /** Print the plans, change nothing (every deployment is a dry run). */
  dryRun?: boolean;
  /**
   * Where each deployment's lines go: every line is tagged with its fraise (a line's target becomes
   * `api/h1`, a line without one `api`), so one console sink prints `[api] ...`, `[etl/h2] ...`.
   * Default: `runtime.sinks`, else stdout (warnings and errors on stderr).
   */
  sinks?: LogSink[];
  /** Runtime options shared by every deployment (store, clock, owner, lock TTL). */
  runtime?: RuntimeOptions;
}

/** How one fraise's deployment ended in {@link deployAll}. */
export interface DeployAllEntry {
  fraise: string;
  environment: string;
  /**
   * The deployment's status; `skipped` when fail-fast stopped everything before it started; `refused`
   * when it could not start (the lock is held, the version cannot be resolved before the lock): `error` says why.
   */
  status: DeployResult['status'] | 'skipped' | 'refused';
  /** The deployment's result; null when it was skipped or refused. */
  result: DeployResult | null;
  /** Why it did not succeed, or null. */
  error: { code: string; message: string } | null;
}

/** What {@link deployAll} resolves with. */
export interface DeployAllResult {
  /** True when every deployment succeeded. */
  ok: boolean;
  /** One entry per item, in the order given. */
  entries: DeployAllEntry[];
}

/**
 * Deploys several fraises at once, each with its own lock and history row. Bad input (no item, an app
 * without the environment, the same fraise twice, a bad version or `maxParallel`) throws `E_USAGE` /
 * `E_NOT_FOUND` / `E_VERSION` before anything starts. Resolves with every outcome, also when some failed.
 *
 * ```ts
 * const { ok, entries } = await deployAll([{ app: api, environment: 'production' }, { app: worker, environment: 'production' }], { failFast: true });
 * ```
 */
export async function deployAll(items: DeployAllItem[], options: DeployAllOptions = {}): Promise<DeployAllResult> {
  if (items.length === 0) throw new FraisierError('E_USAGE', 'deployAll: name at least one fraise to deploy');
  const max = options.maxParallel ?? items.length;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new FraisierError('E_USAGE', `--max-parallel: expected a whole number of at least 1, got ${JSON.stringify(String(options.maxParallel))}`, {
      hint: 'e.g. --max-parallel 2',
    });
  }
  const seen = new Set<string>();
  for (const item of items) {
    if (!item.app.environments.includes(item.environment)) {
      throw new FraisierError('E_NOT_FOUND', `fraise ${item.app.name} has no environment ${JSON.stringify(item.environment)}: nothing was deployed`, {
        key: `fraises.${item.app.name}.environments.${item.environment}`,
        hint: `known environments of ${item.app.name}: ${item.app.environments.join(', ')}`,
      });
    }
    const key = `${item.app.name}/${item.environment}`;
    if (seen.has(key)) throw new FraisierError('E_USAGE', `${key} is named twice: each fraise is deployed once`);
    seen.add(key);
    if (item.options?.version !== undefined) validateVersion(item.options.version);
  }

  // One store per distinct location, opened one after the other before anything starts (a new SQLite
  // file is migrated once, not by several connections at once) and shared by the deployments using it.
  const stores = new Map<string, StateStore>();
  const storeOf = new Map<number, StateStore>();
  try {
    if (!options.runtime?.store) {
      for (const [i, item] of items.entries()) {
        const location = item.app.stateLocation;
        const key = JSON.stringify(location);
        if (!stores.has(key)) stores.set(key, await openStore(storeOptions(location)));
        storeOf.set(i, stores.get(key)!);
      }
    }
    return await runAll(items, options, storeOf);
  } finally {
    for (const store of stores.values()) await store.close().catch(() => {});
  }
}

async function runAll(items: DeployAllItem[], options: DeployAllOptions, storeOf: Map<number, StateStore>): Promise<DeployAllResult> {
  const max = options.maxParallel ?? items.length;
  const baseSinks = options.sinks ?? options.runtime?.sinks ?? [consoleSink()];
  const controllers = items.map(() => new AbortController());
  const entries: (DeployAllEntry | undefined)[] = items.map(() => undefined);
  let stopping: string | null = null;
  const stopOthers = (i: number, entry: DeployAllEntry) => {
    if (!options.failFast || stopping !== null) return;
    stopping = `cancelled: ${entry.fraise} ${entry.status === 'refused' ? 'could not start' : entry.status} (--fail-fast)`;
    controllers.forEach((c, j) => {
      if (j !== i) c.abort(stopping);
    });
  };

  const runOne = async (i: number): Promise<void> => {
    const item = items[i]!;
    const fraise = item.app.name;
    if (stopping !== null) {
      entries[i] = {
        fraise,
        environment: item.environment,
        status: 'skipped',
        result: null,
        error: { code: 'E_ABORTED', message: `${stopping}; not started` },
      };
      return;
    }
    const sinks = baseSinks.map(
      (sink): LogSink =>
        (e) =>
          sink({ ...e, target: e.target ? `${fraise}/${e.target}` : fraise }),
    );
    const store = storeOf.get(i);
    const runtime: RuntimeOptions = { ...options.runtime, sinks, ...(store ? { store } : {}) };
    let entry: DeployAllEntry;
    try {
      const result = await item.app.deploy(
        item.environment,
        { ...item.options, ...(options.dryRun ? { dryRun: true } : {}), signal: controllers[i]!.signal },
        runtime,
      );
      entry = {
        fraise,
        environment: item.environment,
        status: result.status,
        result,
        error: result.error ? { code: result.error.code, message: result.error.message } : null,
      };
    } catch (err) {
      const e = asFraisierError(err);
      entry = { fraise, environment: item.environment, status: 'refused', result: null, error: { code: e.code, message: e.message } };
    }
    entries[i] = entry;
    if (entry.status !== 'succeeded') stopOthers(i, entry);
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await runOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(max, items.length) }, worker));
  const done = entries as DeployAllEntry[];
  return { ok: done.every((e) => e.status === 'succeeded'), entries: done };
}
