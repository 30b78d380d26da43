import type { Clock } from './clock.js';
import type { Executor } from './exec/executor.js';
import type { Logger } from './log.js';
import type { AsyncSeriesBailHook, AsyncSeriesHook, SyncHook } from 'tapable';

/** One place a release runs: an SSH host, a Coolify application, this machine. */
export interface Target {
  /** Unique within the environment; what logs and the history show (the SSH host alias for bare_metal). */
  readonly name: string;
  /** Which provider made it, e.g. `ssh`. */
  readonly kind: string;
}

/** What happened to one target during a deployment. */
export type TargetStatus =
  | 'pending' // not reached yet (stays so if the deployment stopped before it: untouched)
  | 'prepared' // release uploaded, not live
  | 'activated' // switched and restarted, health not yet known
  | 'healthy' // switched and passed its health checks
  | 'failed' // failed in prepare, activate or health; see error
  | 'rolled_back' // went back to its previous release, healthy again
  | 'rollback_failed'; // could not be brought back: needs a human

/** Per-target bookkeeping, filled in as the deployment runs and stored in the history. */
export interface TargetState {
  readonly target: Target;
  /** The release a failed deployment put this target back on, once a rollback picked it. */
  rolledBackTo?: string;
  /** The release live on the target before this deployment (null on a first deploy). */
  fromVersion: string | null;
  /** The release this deployment put there, once activated. */
  toVersion: string | null;
  status: TargetStatus;
  /** Milliseconds per phase: prepare, activate, health, rollback, and any plugin phase. */
  phases: Record<string, number>;
  error: string | null;
  /**
   * Set when the target's rollback failed: the release it was found running afterwards, read from the
   * target; null when that could not be known (the host was unreachable). Undefined otherwise.
   */
  finalVersion?: string | null;
}

/** A health check failure, returned by a `healthCheck` tap to stop the chain. */
export interface HealthFailure {
  /** Which check failed, e.g. `http http://localhost:8000/health`. */
  check: string;
  reason: string;
}

/** Everything a strategy, provider or plugin sees of the deployment in progress. */
export interface DeployContext {
  readonly fraise: string;
  readonly environment: string;
  /** `deploy` puts a new release out; `rollback` puts a previous one back. */
  readonly kind: 'deploy' | 'rollback';
  /** The release being put on targets (a tag or short sha for git sources). */
  readonly version: string;
  /** The release the history says was live before (null on a first deploy). */
  readonly previousVersion: string | null;
  readonly targets: readonly Target[];
  /** Print the plan instead of changing anything. */
  readonly dryRun: boolean;
  /** Emergency path: skip health checks. */
  readonly force: boolean;
  readonly log: Logger;
  readonly clock: Clock;
  /** Aborted on Ctrl-C: long waits stop, and the strategy stops before its next step. */
  readonly signal: AbortSignal;
  /** Per-target state, by target name. */
  readonly states: ReadonlyMap<string, TargetState>;
  /** Free space for plugins, keyed by plugin name. */
  readonly data: Map<string, unknown>;
  /**
   * The traffic plugin that can send all traffic to one pool of targets (nginx-lb), or null when the
   * environment has none. The blue-green strategy needs one; rolling never looks at it.
   */
  readonly traffic: TrafficSwitch | null;
  /** The executor for a target (one SSH connection per host per deployment). */
  executor(target: Target): Executor;
  /** Adds `ms` to the target's timing for `phase` (history shows per-phase timings). */
  time(target: Target, phase: string, ms: number): void;
  /** Throws `E_ABORTED` if Ctrl-C (or SIGTERM, SIGHUP) stopped the deployment. Strategies call it between steps. */
  checkAborted(): void;
  /**
   * The fencing check: resolves if this deployment still holds its lock (checked in the store, one
   * statement that also renews it), else rejects with `E_LOCKED` and stops the deployment, which then
   * touches no host again. The core runs it before each step that changes a host; a strategy calls it
   * before a host-changing step it runs itself (blue-green's switch). Resolves at once in a dry run.
   */
  fence(): Promise<void>;
  /**
   * The environment's canary bookkeeping in the state store (what the canary strategy reads and writes);
   * absent where no store is involved (unit tests that build a context by hand).
   */
  readonly canary?: CanaryLedger;
}

/** How a deployment was asked to treat a canary: `only` (`--canary-only`), `complete` (`--complete-rollout`, `fraisier promote`). */
export type CanaryMode = 'only' | 'complete';

/** An open canary as a strategy sees it (the state store's record, see `StateStore.openCanary`). */
export interface OpenCanary {
  /** The deployment that put the canary hosts on {@link version}. */
  readonly deploymentId: number;
  /** The release on the canary hosts. */
  readonly version: string;
  /** The release the stable hosts run (null on a first deployment). */
  readonly stableVersion: string | null;
  /** The canary hosts' target names. */
  readonly canaryHosts: readonly string[];
  /** The traffic step reached (0-based). */
  readonly step: number;
  /** The canary's share of requests at that step, in percent; null: its natural share. */
  readonly weight: number | null;
  /** The latest verdict lines. */
  readonly verdicts: readonly string[];
}

/** Where the canary strategy keeps its state between deployments (one per deployment, made by the Deployer). */
export interface CanaryLedger {
  /** What the user asked for: `--canary-only`, `--complete-rollout`/`promote`, or null for a plain run. */
  readonly mode: CanaryMode | null;
  /** The environment's canary left open by an earlier deployment (the one this run continues or removes), or null. */
  readonly open: OpenCanary | null;
  /** Records where this deployment's canary stands (open). Does nothing in a dry run. */
  save(state: {
    version: string;
    stableVersion: string | null;
    canaryHosts: readonly string[];
    step: number;
    weight: number | null;
    verdicts: readonly string[];
  }): Promise<void>;
  /**
   * Ends this deployment "in canary" once the strategy returns: status `canary`, the canary hosts left on
   * the new release, the lock released; no old release is pruned.
   */
  hold(): void;
  /**
   * Closes the environment's open canaries (this deployment's, and {@link open} if it continued one):
   * `promoted` or `aborted`. Does nothing in a dry run.
   */
  close(outcome: 'promoted' | 'aborted'): Promise<void>;
}

/** The outcome of a deployment or rollback, as the SDK returns it and `--json` prints it. */
export interface DeployResult {
  /** Row id in the history (null in a dry run). */
  id: number | null;
  fraise: string;
  environment: string;
  kind: 'deploy' | 'rollback';
  /**
   * `lock_lost`: the deployer lost its lock mid-way (unlocked with --force, taken over) and stopped
   * without touching any host again; the hosts it changed belong to the new holder. `cancelled`:
   * `fraisier cancel` (or `deployAll`'s fail-fast) stopped it and every host it touched was rolled back;
   * `error.message` says who cancelled it (`cancelled by alice@laptop:4242`).
   * `canary`: it stopped with a canary live (`--canary-only`, or a step waiting for `fraisier promote`).
   */
  status: 'succeeded' | 'failed' | 'rolled_back' | 'lock_lost' | 'cancelled' | 'canary';
  fromVersion: string | null;
  toVersion: string;
  durationMs: number;
  targets: {
    name: string;
    status: TargetStatus;
    fromVersion: string | null;
    toVersion: string | null;
    phases: Record<string, number>;
    error: string | null;
    /** See {@link TargetState.finalVersion}: what a target whose rollback failed runs now (null: unknown). */
    finalVersion?: string | null;
  }[];
  error: { code: string; message: string; target?: string; step?: string } | null;
  dryRun: boolean;
  /** The signal (SIGINT, SIGTERM, SIGHUP) that stopped the deployment, if one did; the CLI then exits 128 + its number. */
  signal?: 'SIGINT' | 'SIGTERM' | 'SIGHUP';
  /**
   * Multi-provider environments only (see docs/multi-provider.md): each provider, by priority, with what
   * happened to it: which one served, and why each one before it failed.
   */
  providers?: ProviderOutcome[];
}

/** What happened to one provider of a multi-provider environment during a deployment. */
export interface ProviderOutcome {
  /** The provider's name in the environment (`coolify_cloud`). */
  name: string;
  /** Its failover priority (1 first). */
  priority: number;
  /**
   * `served`: it runs the new release; `rolled_back`: it failed (or another one did, in `all` mode) and is
   * back on its previous release; `failed`: it failed and was not (or could not be) brought back;
   * `unavailable`: its preflight failed, nothing was sent to it; `not_tried`: never needed (a provider
   * before it served).
   */
  status: 'served' | 'rolled_back' | 'failed' | 'unavailable' | 'not_tried';
  /** Why it failed (its first error), else null. */
  error: string | null;
  /** Its targets' names. */
  targets: string[];
}

/**
 * Puts releases on targets and activates them. Built by a factory such as `bareMetal({...})`.
 * The Deployer calls these methods; a provider never decides order (that is the strategy's job).
 */
export interface Provider {
  /** Namespaced name, e.g. `provider:bare-metal`. */
  readonly name: string;
  readonly targets: readonly Target[];
  /**
   * Connects to every target and checks it can be deployed to (reachable, host key, paths, service).
   * Must change nothing on any target. Called before the lock-protected work begins.
   */
  open(ctx: ProviderSession): Promise<void>;
  /** Turns what the user asked for (a ref, or nothing for the configured branch) into a release name. */
  resolveVersion(ref: string | undefined, ctx: DeployContext): Promise<string>;
  /** The release live on the target now, or null. */
  currentRelease(target: Target, ctx: DeployContext): Promise<string | null>;
  /** Releases present on the target, oldest first. */
  releases(target: Target, ctx: DeployContext): Promise<string[]>;
  /** Puts the release on the target without making it live (idempotent: nothing to do if present). */
  prepare(target: Target, version: string, ctx: DeployContext): Promise<void>;
  /**
   * Makes the release live: atomic switch, then restart. With `prune` (passed only to a provider with
   * {@link Provider.prunesOnActivate}): once switched and restarted, also prune old releases in the same
   * step, never those in `prune.protect`; a failed prune is a warning, never a failed activation.
   */
  activate(target: Target, version: string, ctx: DeployContext, prune?: { readonly protect: readonly string[] }): Promise<void>;
  /**
   * True when `activate` can prune old releases itself (`prune`): the Deployer then does not call
   * `finalize` for a target it activated that way, which saves a round trip per target.
   */
  readonly prunesOnActivate?: boolean;
  /** After success: prune old releases. */
  finalize(target: Target, ctx: DeployContext): Promise<void>;
  /** The executor for the target; valid between `open` and `close`. */
  executor(target: Target): Executor;
  close(): Promise<void>;
  /**
   * Optional: throws the `E_CONFIG` error of a configuration problem found when the provider was built
   * (a missing token variable), before anything is sent or recorded. The SDK calls it before a deploy,
   * a rollback or a status, so a `deploy.ts` with such a problem exits 2 with one clear line.
   */
  check?(): void;
}

/** What a provider gets when it opens its connections. */
export interface ProviderSession {
  readonly log: Logger;
  readonly dryRun: boolean;
  readonly signal: AbortSignal;
  /**
   * Set when the deployment calls `resolveVersion(ref)` right after `open`: a provider may look the ref
   * up, read-only, in the same round trip as its preflight instead of one of its own (bare_metal does,
   * on its first host, with `git ls-remote`). Absent: nothing will be resolved (status, check, a
   * rollback to the previous release).
   */
  readonly resolving?: { readonly ref: string | undefined };
  /**
   * Set when the deployment has exactly one target and prepares it right after resolving the version,
   * with nothing in between that could stop it (a deploy, not a dry run, no preDeploy hook): a provider
   * may then check, resolve and prepare in one round trip, provided a failed check still changes nothing
   * and `resolveVersion` and `prepare` then report that round trip's outcome as their own.
   */
  readonly prepareNext?: boolean;
  /**
   * Set when the caller reads every target's releases right after `open` and changes nothing
   * (`fraisier status`): a provider may list them in the same round trip as its preflight, so that
   * `releases(t)` answers without one of its own (bare_metal does). Nothing else runs on the targets
   * after it: a provider need not set anything up for later commands (bare_metal connects with
   * `persistentShell: false`: no second session per host for a shell nothing would use).
   */
  readonly listing?: boolean;
}

/** The Deployer's side of a strategy: how it deploys one target, and how it waits. */
export interface StrategyRunner {
  /**
   * Deploys one target: beforeTarget → prepare → activate → healthCheck → afterTarget. Rejects if any
   * step fails; the target is then marked failed and the Deployer rolls back what was touched.
   */
  deployTarget(target: Target): Promise<void>;
  /**
   * Checks a target without changing it: runs the health checks on the release it runs now (no prepare,
   * no restart, no traffic hooks). Rejects with `E_HEALTH` if it is unhealthy. The target's history
   * entry then shows its current release as both from and to. Used by blue-green when the idle pool
   * already runs the requested release (a rollback is then an instant switch back).
   */
  checkTarget(target: Target): Promise<void>;
  /**
   * Takes over a target an earlier deployment left on `ctx.version` (a canary continued by
   * `--complete-rollout`): health-checks it, and counts it as touched by this deployment with `from` as
   * the release it goes back to if this deployment fails. Rejects with `E_HEALTH` if it is unhealthy.
   */
  adoptTarget?(target: Target, from: string | null): Promise<void>;
  /** Waits, unless Ctrl-C is pressed. */
  sleep(ms: number): Promise<void>;
  /**
   * Rolls back, now, those of `targets` this deployment touched (each to its previous release, health
   * checked, as a failed deployment does), and forgets them: the deployment goes on with other targets
   * (a multi-provider failover moves to the next provider). Resolves true if every one came back.
   */
  rollbackTargets?(targets: readonly Target[]): Promise<boolean>;
}

/**
 * A traffic plugin's pool switch: all new requests go to one named pool of targets, in one step.
 * nginx-lb implements it (one reload). Registered with {@link PluginHost.useTraffic}; strategies see it as
 * `ctx.traffic`.
 */
export interface TrafficSwitch {
  /** Namespaced name of the plugin, e.g. `plugin:nginx-lb`. */
  readonly name: string;
  /**
   * The pool that gets the traffic now, as recorded where the traffic is routed (the generated upstream
   * file for nginx), and its targets; null when no pool was ever switched to (every server gets traffic).
   * Reads only; opens its own connection outside a deployment.
   */
  livePool(ctx: DeployContext | null): Promise<{ pool: string; targets: string[] } | null>;
  /**
   * Sends every new request to `targets` and records `pool` as live, in one step (validated first: a
   * rejected change leaves the live pool as it was). Resolves once the new routing is in effect.
   */
  switchTo(pool: string, targets: readonly Target[], ctx: DeployContext): Promise<void>;
  /** The address traffic is sent to for a target (`10.0.0.12:8000`), or null if the plugin has none. */
  addressOf(target: Target): string | null;
  /**
   * Optional: splits new requests between targets by weight (what a canary strategy uses).
   * `weights` is keyed by target name; each weight is a non-negative integer, and a target that is not
   * listed (or has weight 0) gets no new requests. Validated first: a rejected change leaves the routing
   * as it was. Resolves once the weights are in effect. A later {@link switchTo} resets the routing to
   * an equal split of its pool. A plugin that cannot weight traffic leaves it undefined; a strategy that
   * needs it checks for it and fails with `E_CONFIG` before any host changes.
   */
  setWeights?(weights: Readonly<Record<string, number>>, ctx: DeployContext): Promise<void>;
}

/** Decides order and gates across targets. Built by a factory such as `rolling({...})`. */
export interface Strategy {
  /** Namespaced name, e.g. `strategy:rolling`. */
  readonly name: string;
  run(ctx: DeployContext, runner: StrategyRunner): Promise<void>;
}

/**
 * Every hook of a deployment, in the order they fire (tapable hooks: plugins tap, only the core fires).
 * See docs/plugins.md, "Plugin API reference", for each hook's kind, arguments and what a throw does.
 */
export interface DeployHooks {
  /** After the lock is taken, before any target changes. A throw aborts the deployment; nothing was changed. */
  readonly preDeploy: AsyncSeriesHook<[DeployContext]>;
  /** Before each target's activation (and not before a rollback's): where traffic plugins drain a host. */
  readonly beforeTarget: AsyncSeriesHook<[Target, DeployContext]>;
  /**
   * After a target is activated. Return a {@link HealthFailure} to fail the target; the first failure
   * stops the chain. The environment's health policy is the first tap (`core:health`).
   */
  readonly healthCheck: AsyncSeriesBailHook<[Target, DeployContext], HealthFailure | undefined>;
  /** After a target passed its health checks (or was rolled back healthy): where traffic is restored. */
  readonly afterTarget: AsyncSeriesHook<[Target, DeployContext]>;
  /**
   * After success, lock still held: cache purges, notifications. A throw is a warning, except a
   * `PostDeployError` (core/errors.ts), which fails the deployment (and rolls it back if it asks to).
   */
  readonly postDeploy: AsyncSeriesHook<[DeployResult]>;
  /**
   * Instead of postDeploy when the deployment stopped with a canary open (status `canary`: held for
   * `fraisier promote` or `rollback`, or `--canary-only`), lock still held: the deployment is not complete,
   * so no success hook fires; close what preDeploy opened. postDeploy fires at the end of the promotion.
   * A throw is a warning.
   */
  readonly held: AsyncSeriesHook<[DeployResult]>;
  /** After a failure and the targets' rollback. Every tap runs even if one throws; errors are aggregated. */
  readonly rollback: AsyncSeriesHook<[DeployContext, Error]>;
  /** Last, on failure: notifications. A throw is a warning. */
  readonly failed: SyncHook<[Error, DeployContext]>;
}

/** One past deployment or rollback of the environment, as {@link HistoryReader.recent} returns it. */
export interface DeploymentSummary {
  /** Row id; a higher id is a newer deployment. */
  readonly id: number;
  readonly kind: 'deploy' | 'rollback';
  /** `running` while in progress (or left so by a deployer that died before it was reaped). */
  readonly status: 'running' | 'succeeded' | 'failed' | 'rolled_back' | 'lock_lost' | 'cancelled' | 'canary';
  readonly fromVersion: string | null;
  readonly toVersion: string;
  /** Epoch ms. */
  readonly startedAt: number;
  /** Epoch ms, or null while running. */
  readonly finishedAt: number | null;
}

/** Read-only access to this environment's deployment history (the state store). */
export interface HistoryReader {
  /** The environment's deployments, newest first (at most `limit`, default 50). */
  recent(limit?: number): Promise<DeploymentSummary[]>;
  /** The release the history says is live (the newest successful deployment's), or null. */
  currentVersion(): Promise<string | null>;
  /** Releases that deployed successfully here, newest first, each once. */
  succeededVersions(): Promise<string[]>;
}

/**
 * What a plugin's {@link Plugin.apply} receives: the hooks to tap, the log, the traffic registration, the
 * history (read only) and the environment's names. It is the whole plugin API: a plugin never sees the
 * Deployer or its options.
 */
export interface PluginHost {
  /** The fraise being deployed (`app`). */
  readonly fraise: string;
  /** The environment being deployed (`production`). */
  readonly environment: string;
  /** The hooks to tap. */
  readonly hooks: DeployHooks;
  /** The deployment's log (also recorded as the deployment's events in the history). */
  readonly log: Logger;
  /**
   * Registers this plugin as the environment's traffic switch (strategies see it as `ctx.traffic`).
   * One per environment: a second, different one is an `E_CONFIG` error.
   */
  useTraffic(traffic: TrafficSwitch): void;
  /** The environment's history, read only. */
  readonly history: HistoryReader;
}

/** A plugin taps the hooks of a {@link PluginHost}; it never fires them. Made by a factory: `nginxLb({...})`. */
export interface Plugin {
  /** Namespaced name, e.g. `plugin:nginx-lb`. */
  readonly name: string;
  /** Called once, when the Deployer is built: tap hooks, register a traffic switch. Must not do I/O. */
  apply(host: PluginHost): void;
}

/** One probe of a target's health; throws with a short reason (`Connection refused`) when unhealthy. */
export interface HealthCheck {
  /** What the output calls it, e.g. `http http://localhost:8000/health`. */
  readonly name: string;
  probe(target: Target, ctx: DeployContext, timeoutMs: number): Promise<void>;
}

/** Which migrations a {@link Migrator} applies: `prepare` (before a deploy), or `cleanup` (only when asked, after it). */
export type MigrationPhase = 'prepare' | 'cleanup';

/** What `fraisier migrate` (and a deployment's preDeploy) asks a {@link Migrator} to do. */
export interface MigrateRequest {
  readonly fraise: string;
  readonly environment: string;
  /** Recorded with each applied migration: the release being deployed, or the live one for `fraisier migrate`. */
  readonly version: string;
  readonly phase: MigrationPhase;
  /** List the pending migrations; change nothing. */
  readonly dryRun: boolean;
  readonly log: Logger;
}

/** What a {@link Migrator} did. */
export interface MigrateReport {
  readonly phase: MigrationPhase;
  /** File names applied, in order (empty in a dry run). */
  readonly applied: string[];
  /** File names of this phase still pending (in a dry run: what would be applied). */
  readonly pending: string[];
}

/**
 * A plugin that can also apply migrations outside a deployment (`fraisier migrate <fraise> <env>`).
 * `DeployApp.migrate` finds it among the environment's plugins by this method.
 */
export interface Migrator extends Plugin {
  migrate(request: MigrateRequest): Promise<MigrateReport>;
}
