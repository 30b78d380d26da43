import { setMaxListeners } from 'node:events';
import { hostname, userInfo } from 'node:os';
import { AsyncSeriesBailHook, AsyncSeriesHook, SyncHook } from 'tapable';
import { systemClock, type Clock } from './clock.js';
import { toMs, type Duration } from './duration.js';
import { FraisierError, PostDeployError, TargetErrors, asFraisierError } from './errors.js';
import type { Executor } from './exec/executor.js';
import { runHealthPolicy, type HealthPolicy } from './health.js';
import { FanoutLogger, consoleSink, type LogSink, type Logger } from './log.js';
import { HistoryRecorder, historyReader } from './history-recorder.js';
import { DEFAULT_LOCK_TTL_MS, LockSession } from './lock-session.js';
import { DEFAULT_LOCK_WAIT_MS, Locks, cancelledBy, type LockInfo, type LockOwner } from './state/lock.js';
import type { CanaryState, StateStore } from './state/store.js';
import type {
  CanaryLedger,
  CanaryMode,
  DeployContext,
  DeployHooks,
  DeployResult,
  HealthFailure,
  Plugin,
  PluginHost,
  Provider,
  Strategy,
  StrategyRunner,
  Target,
  TargetState,
  TrafficSwitch,
} from './types.js';
import { trace } from './trace.js';

/** When and how a failed deployment is undone. */
export interface RollbackPolicy {
  /** Roll every touched target back to its previous release when the deployment fails. Default true. */
  enabled?: boolean;
  /** Also roll back when the failure is a health check (not only a command error). Default true. */
  onHealthCheckFailure?: boolean;
  /** Longest time the whole rollback may take. Default `'5m'`. */
  timeout?: Duration;
}

/** Everything a Deployer needs for one fraise in one environment. */
export interface DeployerOptions {
  fraise: string;
  environment: string;
  provider: Provider;
  strategy: Strategy;
  /** Health checks run on each target after activation (and after a rollback). */
  health?: HealthPolicy;
  rollback?: RollbackPolicy;
  plugins?: Plugin[];
  store: StateStore;
  /** Injectable clock (tests). */
  clock?: Clock;
  /** Where output goes. Default: human lines on stdout. */
  sinks?: LogSink[];
  /** Lock owner. Default: this user, host and pid. */
  owner?: LockOwner;
  /** Lock time-to-live; renewed every third of it while the deployment runs. Default 60 s. */
  lockTtlMs?: number;
  /** Pause between attempts while waiting for the lock (`waitLock`). Default 1000 ms. */
  lockPollMs?: number;
  /**
   * Handle SIGINT (Ctrl-C), SIGTERM (systemd, CI runners, `timeout`) and SIGHUP (a closed terminal)
   * during a deployment: stop after the current step, roll back what was touched, record the outcome,
   * release the lock; the result's `signal` names it (the CLI then exits 128 + its number). Default true.
   */
  handleSignals?: boolean;
}

/** Options of {@link Deployer.deploy}. */
export interface DeployOptions {
  /** Git ref (tag, branch, sha) or artifact version to deploy. Default: the configured branch. */
  version?: string;
  /** Skip health checks (emergency path). */
  force?: boolean;
  /** Print the plan; change nothing. */
  dryRun?: boolean;
  /** Stored with the lock, shown to whoever finds it taken. Default `deploy by <user>`. */
  reason?: string;
  /**
   * When another live deployment holds the lock: `false` (default) fails at once (`E_LOCKED`, exit 3);
   * a duration waits up to that long, polling every second and printing whom it waits for, then fails
   * with `E_LOCKED` naming the holder; `true` waits up to 10 minutes. A lock whose holder died expires
   * (60 s) and is taken over, so a wait never outlasts a crashed deployer by more than that.
   */
  waitLock?: boolean | Duration;
  /**
   * Stops the deployment from the outside, as `fraisier cancel` does: once aborted, it stops after its
   * current step, rolls back what it touched and records `cancelled`, with the abort reason (a string or
   * an Error's message) as the error. `deployAll`'s fail-fast uses it.
   */
  signal?: AbortSignal;
  /**
   * For the canary strategy: `only` (`--canary-only`) deploys the canary hosts, runs the first step and
   * stops with the canary live (status `canary`); `complete` (`--complete-rollout`, `fraisier promote`)
   * continues the environment's open canary to the full rollout. Without it, a deployment while a canary
   * is open is refused (`E_USAGE`).
   */
  canary?: CanaryMode;
}

/** Options of {@link Deployer.rollback}. */
export interface RollbackOptions {
  /** Release to go back to. Default: the release live before the current one. */
  to?: string;
  /** Skip health checks (emergency path). */
  force?: boolean;
  /** Print the plan; change nothing. */
  dryRun?: boolean;
  /** Stored with the lock, shown to whoever finds it taken. Default `rollback by <user>`. */
  reason?: string;
  /** Queue behind a live holder of the lock: see {@link DeployOptions.waitLock}. */
  waitLock?: boolean | Duration;
}

/** What `status` reports. */
export interface StatusReport {
  fraise: string;
  environment: string;
  /** What the history says is live. */
  version: string | null;
  /**
   * One row per target, each with its own result: `reachable` false when the target could not be
   * connected to (then `current` is unknown: null); `error` set when it was unreachable or failed its
   * checks (then `current` is still read if the connection works).
   */
  targets: { name: string; reachable: boolean; current: string | null; releases: string[]; error: string | null }[];
  lock: LockInfo | null;
  /**
   * The pool that gets the traffic (blue-green: `blue` or `green`) and its targets, read from the traffic
   * plugin; null when no pool was switched to, undefined without a traffic plugin.
   */
  live?: { pool: string; targets: string[] } | null;
  /** Set when the traffic plugin could not be asked which pool is live. */
  liveError?: string;
  /**
   * Multi-provider environments only: each provider by priority, the release all its targets run
   * (`current`; null when they differ or it is unknown) and its targets (rows of {@link targets}).
   */
  providers?: { name: string; priority: number; current: string | null; targets: string[] }[];
  /** The environment's open canary (strategies/canary.ts): its release, hosts, step, weight and latest verdicts; absent when none. */
  canary?: CanaryState;
}

const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}$/;

/** Rejects versions and refs that are not plain names: `v1; rm -rf /` and `$(id)` never reach a host. */
export function validateVersion(v: string, key = 'version'): string {
  if (!VERSION_RE.test(v) || v.includes('..') || v.endsWith('.lock') || v.endsWith('/')) {
    throw new FraisierError('E_VERSION', `invalid ${key} ${JSON.stringify(v)}: expected a tag, branch or commit name (letters, digits, . _ / + -)`, {
      key,
      hint: 'pass a git tag, branch or sha, e.g. --version v1.2.3',
    });
  }
  return v;
}

function defaultOwner(): LockOwner {
  return { user: userInfo().username, host: hostname(), pid: process.pid };
}

/**
 * Runs deployments of one fraise to one environment. Its lifecycle is the one frozen `hooks` object:
 * read it to know when a plugin's tap runs. Plugins tap; only the Deployer fires.
 */
export class Deployer {
  /** Every hook of a deployment, in the order they fire (plugins get them through {@link PluginHost.hooks}). */
  readonly hooks: DeployHooks = Object.freeze({
    /** After the lock is taken, before any target changes. A throw aborts the deployment; nothing was changed. */
    preDeploy: new AsyncSeriesHook<[DeployContext]>(['context']),
    /** Before each target's activation (and not before a rollback's): where traffic plugins drain a host. */
    beforeTarget: new AsyncSeriesHook<[Target, DeployContext]>(['target', 'context']),
    /**
     * After a target is activated. Return a {@link HealthFailure} to fail the target; the first failure
     * stops the chain. The environment's health policy is the first tap (`core:health`).
     */
    healthCheck: new AsyncSeriesBailHook<[Target, DeployContext], HealthFailure | undefined>(['target', 'context']),
    /** After a target passed its health checks (or was rolled back healthy): where traffic is restored. */
    afterTarget: new AsyncSeriesHook<[Target, DeployContext]>(['target', 'context']),
    /**
     * After success, lock still held: cache purges, notifications. A throw is a warning, except a
     * {@link PostDeployError}, which fails the deployment (and rolls it back if it asks to).
     */
    postDeploy: new AsyncSeriesHook<[DeployResult]>(['result']),
    /**
     * Instead of postDeploy when the deployment stopped with a canary open (status `canary`): not complete,
     * so no success hook fires; plugins close what preDeploy opened. A throw is a warning.
     */
    held: new AsyncSeriesHook<[DeployResult]>(['result']),
    /** After a failure and the targets' rollback. Every tap runs even if one throws; errors are aggregated. */
    rollback: new AsyncSeriesHook<[DeployContext, Error]>(['context', 'error']),
    /** Last, on failure: notifications. */
    failed: new SyncHook<[Error, DeployContext]>(['error', 'context']),
  });

  readonly options: DeployerOptions;
  readonly log: Logger;
  private readonly clock: Clock;
  private rollbackErrors: Error[] = [];
  private trafficSwitch: TrafficSwitch | null = null;
  /** What plugins see of this Deployer: the whole plugin API. */
  readonly pluginHost: PluginHost;

  constructor(options: DeployerOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.log = new FanoutLogger(options.sinks ?? [consoleSink()]);
    // rollback: every tap runs; failures are collected instead of stopping the series.
    this.hooks.rollback.intercept({
      register: (tap) => {
        const fn = tap.fn as (...a: unknown[]) => Promise<void> | void;
        return {
          ...tap,
          type: 'promise',
          fn: async (...args: unknown[]) => {
            try {
              await fn(...args);
            } catch (err) {
              this.rollbackErrors.push(err instanceof Error ? err : new Error(String(err)));
            }
          },
        };
      },
    });
    const health = options.health;
    if (health) {
      this.hooks.healthCheck.tapPromise('core:health', (target, ctx) => runHealthPolicy(health, target, ctx));
    }
    this.pluginHost = Object.freeze({
      fraise: options.fraise,
      environment: options.environment,
      hooks: this.hooks,
      log: this.log,
      useTraffic: (traffic: TrafficSwitch) => this.useTraffic(traffic),
      history: historyReader(options.store, options.fraise, options.environment),
    });
    for (const plugin of options.plugins ?? []) plugin.apply(this.pluginHost);
  }

  /**
   * Registers the traffic plugin that can switch pools (called by such a plugin in `apply`). One per
   * Deployer: a second registration is a configuration error.
   */
  useTraffic(traffic: TrafficSwitch): void {
    if (this.trafficSwitch && this.trafficSwitch !== traffic) {
      throw new FraisierError('E_CONFIG', `two traffic plugins switch pools: ${this.trafficSwitch.name} and ${traffic.name}; keep one`);
    }
    this.trafficSwitch = traffic;
  }

  /** The registered traffic switch, or null. */
  get traffic(): TrafficSwitch | null {
    return this.trafficSwitch;
  }

  get fraise(): string {
    return this.options.fraise;
  }

  get environment(): string {
    return this.options.environment;
  }

  /** Deploys a release. Resolves with the result, also when the deployment failed and was rolled back;
   * rejects only when nothing was started (bad input, lock held). */
  deploy(options: DeployOptions = {}): Promise<DeployResult> {
    if (options.version !== undefined) validateVersion(options.version);
    return this.run('deploy', options.version, options);
  }

  /** Puts a previous release back on every target (health-checked unless `force`). */
  async rollback(options: RollbackOptions = {}): Promise<DeployResult> {
    if (options.to !== undefined) validateVersion(options.to, 'to');
    // During a canary, a plain rollback removes it: the canary hosts go back to the stable release.
    const open = options.to === undefined ? await this.options.store.openCanary(this.fraise, this.environment) : null;
    if (open?.stableVersion) return this.run('rollback', undefined, options);
    if (options.to === undefined && (await this.options.store.previousVersion(this.fraise, this.environment)) === null) {
      // Without a history, a release on the hosts may be one that never deployed successfully: ask.
      throw await this.nothingToRollBackTo();
    }
    return this.run('rollback', options.to, options);
  }

  /** What is live where, and who holds the lock. Changes nothing. */
  async status(): Promise<StatusReport> {
    const { provider, store, fraise, environment } = { ...this.options, fraise: this.fraise, environment: this.environment };
    const locks = new Locks(store);
    const lock = (await locks.get(fraise, environment)) ?? null;
    const version = await store.currentVersion(fraise, environment);
    const controller = new AbortController();
    const ctx = this.context('deploy', version ?? '', null, false, false, controller.signal, new Map(), async () => {});
    // Every target answers for itself: one unreachable host is its own row, never the others' error.
    const broken = new Map<string, FraisierError>();
    let targets: StatusReport['targets'];
    try {
      try {
        // listing: the releases come with each host's preflight, one round trip per host
        await provider.open({ log: this.log, dryRun: false, signal: controller.signal, listing: true });
      } catch (err) {
        if (err instanceof TargetErrors) for (const [name, e] of err.byTarget) broken.set(name, e);
        else for (const t of provider.targets) broken.set(t.name, asFraisierError(err));
      }
      targets = await Promise.all(
        provider.targets.map(async (t): Promise<StatusReport['targets'][number]> => {
          const problem = broken.get(t.name);
          // A host we could not reach (or whose key is wrong) is not asked anything more.
          if (problem && (problem.code === 'E_UNREACHABLE' || problem.code === 'E_HOST_KEY')) {
            return { name: t.name, reachable: false, current: null, releases: [], error: problem.message };
          }
          try {
            const [current, releases] = await Promise.all([provider.currentRelease(t, ctx), provider.releases(t, ctx)]);
            return { name: t.name, reachable: true, current, releases, error: problem?.message ?? null };
          } catch (err) {
            const e = asFraisierError(err);
            return { name: t.name, reachable: e.code !== 'E_UNREACHABLE', current: null, releases: [], error: problem?.message ?? e.message };
          }
        }),
      );
    } finally {
      await provider.close();
    }
    const report: StatusReport = { fraise, environment, version, targets, lock };
    const canary = await store.openCanary(fraise, environment);
    if (canary) report.canary = canary;
    if (this.trafficSwitch) {
      try {
        report.live = await this.trafficSwitch.livePool(null);
      } catch (err) {
        report.live = null;
        report.liveError = asFraisierError(err).message;
      }
    }
    return report;
  }

  private context(
    kind: 'deploy' | 'rollback',
    version: string,
    previousVersion: string | null,
    dryRun: boolean,
    force: boolean,
    signal: AbortSignal,
    states: Map<string, TargetState>,
    fence: () => Promise<void>,
    canary?: CanaryLedger,
  ): DeployContext {
    const { provider } = this.options;
    return {
      ...(canary ? { canary } : {}),
      fraise: this.fraise,
      environment: this.environment,
      kind,
      version,
      previousVersion,
      targets: provider.targets,
      dryRun,
      force,
      log: this.log,
      clock: this.clock,
      signal,
      states,
      data: new Map(),
      traffic: this.trafficSwitch,
      executor: (t: Target): Executor => provider.executor(t),
      time: (t: Target, phase: string, ms: number) => {
        const s = states.get(t.name);
        if (s) s.phases[phase] = Math.round((s.phases[phase] ?? 0) + ms);
      },
      checkAborted: () => {
        if (signal.aborted) throw asFraisierError(signal.reason, 'E_ABORTED');
      },
      fence,
    };
  }

  private async run(kind: 'deploy' | 'rollback', ref: string | undefined, options: DeployOptions): Promise<DeployResult> {
    // An open canary (strategies/canary.ts) is continued only when asked, and removed by a rollback.
    const openCanary = await this.options.store.openCanary(this.fraise, this.environment);
    const canaryMode = kind === 'deploy' ? (options.canary ?? null) : null;
    if (canaryMode && !openCanary && this.options.strategy.name !== 'strategy:canary') {
      throw new FraisierError(
        'E_USAGE',
        `${canaryMode === 'only' ? '--canary-only' : '--complete-rollout (promote)'} needs the canary strategy; ${this.fraise}/${this.environment} uses ${this.options.strategy.name}`,
        { hint: 'set deployment_strategy: canary (see docs/canary.md)' },
      );
    }
    if (kind === 'deploy' && openCanary && canaryMode !== 'complete') {
      throw new FraisierError(
        'E_USAGE',
        `a canary of ${openCanary.version} is open in ${this.fraise}/${this.environment} (on ${openCanary.canaryHosts.join(', ')}): finish it before deploying again`,
        {
          hint: `fraisier deploy ${this.fraise} ${this.environment} --complete-rollout (or fraisier promote ${this.fraise} ${this.environment}) continues it; fraisier rollback ${this.fraise} ${this.environment} removes it`,
        },
      );
    }
    if (canaryMode === 'complete') {
      if (!openCanary) {
        throw new FraisierError('E_USAGE', `no canary is open in ${this.fraise}/${this.environment}: nothing to promote or complete`, {
          hint: `fraisier deploy ${this.fraise} ${this.environment} --canary-only opens one`,
        });
      }
      if (ref !== undefined && ref !== openCanary.version) {
        throw new FraisierError('E_USAGE', `the open canary runs ${openCanary.version}, not ${ref}: --complete-rollout continues the open canary`, {
          hint: `omit --version, or fraisier rollback ${this.fraise} ${this.environment} first`,
        });
      }
      ref = openCanary.version;
    }
    const { provider, strategy, store } = this.options;
    const dryRun = options.dryRun ?? false;
    const force = options.force ?? false;
    const started = this.clock.now();
    const owner = this.options.owner ?? defaultOwner();

    // 1. The lock. Held until the end, renewed while we run; a dry run takes none. Once it is lost, this
    // deployer never runs another command on a host (the new holder owns them).
    const controller = new AbortController();
    // every host of a batch waits on this signal at once (health retries, sleeps): no warning past 10.
    // Infinity, not 0: on an EventTarget Node's getMaxListeners() throws when the limit is 0 (the
    // Coolify provider reads it to raise its own).
    setMaxListeners(Number.POSITIVE_INFINITY, controller.signal);
    /** Why the deployment was cancelled (`cancelled by ...`), once `fraisier cancel` or `options.signal` asked. */
    let cancelled: string | null = null;
    const cancel = (why: string): void => {
      if (cancelled !== null || controller.signal.aborted) return;
      cancelled = why;
      this.log.warn(`${why[0]!.toUpperCase()}${why.slice(1)}: stopping after the current step, then rolling back what was touched`);
      controller.abort(new FraisierError('E_ABORTED', why));
    };
    const external = options.signal;
    const onExternal = () => {
      const r: unknown = external?.reason;
      cancel(typeof r === 'string' ? r : r instanceof Error ? r.message : 'cancelled');
    };
    const lock = dryRun
      ? LockSession.none()
      : await LockSession.acquire({
          store,
          fraise: this.fraise,
          environment: this.environment,
          owner,
          reason: options.reason ?? `${kind} by ${owner.user}`,
          log: this.log,
          ttlMs: this.options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS,
          waitMs: options.waitLock === true ? DEFAULT_LOCK_WAIT_MS : options.waitLock ? toMs(options.waitLock, 'waitLock') : 0,
          pollMs: this.options.lockPollMs ?? 1000,
          onLost: (error) => controller.abort(error),
          onCancel: (request) => cancel(cancelledBy(request)),
        });
    trace(dryRun ? 'no lock (dry run)' : 'lock taken');
    if (external?.aborted) onExternal();
    else external?.addEventListener('abort', onExternal, { once: true });
    if (lock.held) {
      try {
        // Deployments left `running` by a deployer that is gone (taken over, or killed and then unlocked)
        // are marked failed: interrupted. We hold the lock and have recorded nothing yet.
        await store.reapInterrupted(this.fraise, this.environment, { heldByCaller: true });
      } catch (err) {
        external?.removeEventListener('abort', onExternal);
        await lock.release();
        throw err;
      }
    }
    /** The fencing check: the lock is still ours, or this deployment stops (`E_LOCKED`). */
    const fence = async (): Promise<void> => {
      try {
        await lock.fence();
      } catch (err) {
        throw controller.signal.aborted ? asFraisierError(controller.signal.reason, 'E_LOCKED') : err;
      }
    };
    let stoppedBy: DeployResult['signal'];
    const onSignal = (sig: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => {
      if (stoppedBy || controller.signal.aborted) {
        this.log.warn(`${sig}: already stopping; rolling back what was touched, then releasing the lock`);
        stoppedBy ??= sig;
        return;
      }
      stoppedBy = sig;
      this.log.warn(`Interrupted (${sig}): stopping after the current step, then rolling back what was touched`);
      controller.abort(new FraisierError('E_ABORTED', `interrupted (${sig === 'SIGINT' ? 'Ctrl-C' : sig})`));
    };
    const signalHandlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, () => onSignal(sig)] as const);
    const handleSignals = (this.options.handleSignals ?? true) && !dryRun;
    if (handleSignals) for (const [sig, fn] of signalHandlers) process.on(sig, fn);

    const states = new Map<string, TargetState>();
    for (const t of provider.targets) states.set(t.name, { target: t, fromVersion: null, toVersion: null, status: 'pending', phases: {}, error: null });
    const touched = new Set<string>();
    const history = new HistoryRecorder(store);
    history.attach(this.log as FanoutLogger);
    let held = false;
    const ledger: CanaryLedger = {
      mode: canaryMode,
      open: openCanary && (kind === 'rollback' || canaryMode === 'complete') ? openCanary : null,
      save: async (c) => {
        if (dryRun || history.id === null) return;
        await store.saveCanary({
          deploymentId: history.id,
          fraise: this.fraise,
          environment: this.environment,
          ...c,
          canaryHosts: [...c.canaryHosts],
          verdicts: [...c.verdicts],
        });
      },
      hold: () => {
        held = true;
      },
      close: async (outcome) => {
        if (!dryRun) await store.closeCanary(this.fraise, this.environment, outcome);
      },
    };

    let version = ref ?? '';
    let previousVersion: string | null = null;
    /** What was live before: the history's answer, else what the first target runs. */
    const liveBefore = () => previousVersion ?? states.get(provider.targets[0]?.name ?? '')?.fromVersion ?? null;
    let ctx = this.context(kind, version, null, dryRun, force, controller.signal, states, fence, ledger);
    /** Releases that deployed successfully here, newest first: what a failed target goes back to. */
    let knownGood: string[] = [];
    /**
     * Old releases removed in the activation's own round trip (a provider with `prunesOnActivate`, not a
     * canary, which prunes nothing while held): never the new release, the one the target ran, the
     * previous deployment's or the one a rollback of this target would go to. Those targets are not
     * finalized again at the end.
     */
    const pruned = new Set<string>();
    const prune =
      provider.prunesOnActivate && !dryRun && strategy.name !== 'strategy:canary'
        ? {
            protect: (t: Target): string[] => {
              const from = states.get(t.name)!.fromVersion;
              const back = Deployer.rollbackRelease(from, ctx.version, knownGood);
              return [...new Set([ctx.version, from, ctx.previousVersion, back].filter((v): v is string => !!v))];
            },
            done: (t: Target) => pruned.add(t.name),
          }
        : undefined;
    let failure: FraisierError | null = null;
    let status: DeployResult['status'] = 'succeeded';
    /** The targets being deployed now, for the lock row's step (`status-all`). */
    const inFlight = new Set<string>();
    const working = (name: string, on: boolean): void => {
      if (on) inFlight.add(name);
      else inFlight.delete(name);
      if (inFlight.size > 0) lock.progress(`${kind === 'deploy' ? 'deploying' : 'rolling back'} ${[...inFlight].join(', ')}`);
    };

    try {
      previousVersion = await store.currentVersion(this.fraise, this.environment);
      knownGood = await store.knownGoodVersions(this.fraise, this.environment);
      try {
        // 2. Preflight: connect to every target and check it; a failure here changes no host.
        const resolving = kind === 'rollback' && ref === undefined ? {} : { resolving: { ref } };
        // One target, prepared right after (no preDeploy hook that could stop the deployment first): the
        // provider may check, resolve and prepare in one round trip (a failed check still changes nothing).
        const prepareNext = kind === 'deploy' && !dryRun && provider.targets.length === 1 && !this.hooks.preDeploy.isUsed() && !ledger.open;
        await provider.open({ log: this.log, dryRun, signal: controller.signal, ...resolving, ...(prepareNext ? { prepareNext } : {}) });
        trace('targets connected and preflight passed');
        if (kind === 'rollback' && ref === undefined) {
          version = openCanary?.stableVersion ?? (await this.rollbackTarget(ctx, previousVersion)) ?? '';
        } else {
          version = await provider.resolveVersion(ref, ctx);
        }
        validateVersion(version, 'resolved version');
        trace('version resolved');
        if (version.includes('/')) {
          throw new FraisierError('E_VERSION', `release name ${JSON.stringify(version)} contains "/": a release is one directory on the host`, {
            hint: 'name the release without "/"',
          });
        }
        ctx = this.context(kind, version, previousVersion, dryRun, force, controller.signal, states, fence, ledger);
        await Promise.all(
          provider.targets.map(async (t) => {
            states.get(t.name)!.fromVersion = await provider.currentRelease(t, ctx);
          }),
        );
      } finally {
        if (!dryRun) {
          await history.start({
            fraise: this.fraise,
            environment: this.environment,
            kind,
            strategy: strategy.name,
            fromVersion: liveBefore(),
            toVersion: version || ref || '(unresolved)',
            user: owner.user,
            host: owner.host,
          });
        }
      }
      this.log.info(
        `${kind === 'deploy' ? 'Deploying' : 'Rolling back'} ${this.fraise} to ${this.environment}: ${liveBefore() ?? '(none)'} → ${version} on ${provider.targets.length} target(s) [${strategy.name}]${dryRun ? ' (dry run)' : ''}${force ? ' (--force: no health checks)' : ''}`,
      );

      // 3. preDeploy: migrations, builds. A throw aborts before any target changes.
      lock.progress(
        'preDeploy',
        provider.targets.map((t) => t.name),
      );
      await fence();
      await this.hooks.preDeploy.promise(ctx);
      ctx.checkAborted();

      // 4. The strategy decides order; the runner does one target.
      const runner: StrategyRunner = {
        // Each target's row is written as soon as it is done (healthy or failed), so the history shows
        // the hosts done while the deployment runs; the final rows are written again at the end.
        deployTarget: (t) => {
          working(t.name, true);
          return this.deployTarget(t, ctx, touched, prune).finally(() => {
            working(t.name, false);
            history.targetDone(states.get(t.name)!);
          });
        },
        checkTarget: (t) => {
          working(t.name, true);
          return this.checkTarget(t, ctx).finally(() => {
            working(t.name, false);
            history.targetDone(states.get(t.name)!);
          });
        },
        adoptTarget: (t, from) => {
          working(t.name, true);
          return this.adoptTarget(t, from, ctx, touched).finally(() => {
            working(t.name, false);
            history.targetDone(states.get(t.name)!);
          });
        },
        sleep: (ms) => {
          lock.progress(`waiting ${Math.round(ms / 100) / 10} s before the next batch`);
          return this.clock.sleep(ms, controller.signal);
        },
        rollbackTargets: async (targets) => {
          const some = new Set(targets.map((t) => t.name).filter((n) => touched.has(n)));
          if (some.size === 0) return true;
          const policy = this.options.rollback ?? {};
          if (policy.enabled === false) {
            this.log.warn(`automatic rollback is disabled: ${[...some].join(', ')} stay on ${version}`);
            for (const n of some) touched.delete(n);
            return false;
          }
          const ok = await this.rollbackTouched(ctx, some, toMs(policy.timeout ?? '5m', 'rollback.timeout'), knownGood);
          for (const n of some) {
            if (ctx.states.get(n)!.status === 'rolled_back') touched.delete(n);
            history.targetDone(states.get(n)!);
          }
          return ok;
        },
      };
      await strategy.run(ctx, runner);
      trace('strategy done');
      // Held in canary: the canary hosts stay on the new release, and no old release is pruned.
      if (held && !dryRun) status = 'canary';

      // 5. Success: prune old releases, postDeploy.
      if (!dryRun && !held) {
        await fence();
        await Promise.all(
          provider.targets
            .filter((t) => !pruned.has(t.name))
            .map((t) => provider.finalize(t, ctx).catch((err) => this.log.warn(`cleanup of old releases failed: ${asFraisierError(err).message}`, t.name))),
        );
        trace('old releases cleaned up');
      }
    } catch (err) {
      failure = asFraisierError(err);
      status = 'failed';
      this.log.error(failure.message, failure.target ?? null);
      if (lock.lost) {
        // Never another command on a host: no rollback, no rollback hook (the new holder owns the hosts).
        failure = asFraisierError(controller.signal.reason, 'E_LOCKED');
        status = 'lock_lost';
        if (touched.size > 0)
          this.log.warn(
            `not rolled back (the lock is no longer ours): ${[...touched].map((n) => `${n} (${states.get(n)!.toVersion ?? states.get(n)!.fromVersion ?? '-'})`).join(', ')}`,
          );
        try {
          this.hooks.failed.call(failure, ctx);
        } catch (e) {
          this.log.warn(`failed hook: ${asFraisierError(e).message}`);
        }
      } else {
        const healthPolicy = failure.code !== 'E_HEALTH' || (this.options.rollback?.onHealthCheckFailure ?? true);
        if (touched.size > 0) lock.progress(`rolling back ${[...touched].join(', ')} after: ${failure.message}`);
        status = await this.afterFailure(ctx, touched, failure, version, !dryRun && healthPolicy, !dryRun, knownGood);
        if (lock.lost) status = 'lock_lost';
        // Cancelled (`fraisier cancel`, fail-fast) and every touched host back where it was: `cancelled`.
        else if (cancelled !== null && [...touched].every((n) => states.get(n)!.status === 'rolled_back')) {
          status = 'cancelled';
          if (failure.code !== 'E_ABORTED') failure = new FraisierError('E_ABORTED', `${cancelled} (the step it stopped: ${failure.message})`);
        }
      }
    }

    /** A multi-provider environment's per-provider outcome (core/multi-provider.ts), from the final target states. */
    const providers = ctx.data.get('core:providers') as ((s: ReadonlyMap<string, TargetState>) => NonNullable<DeployResult['providers']>) | undefined;
    const buildResult = (): DeployResult => ({
      id: history.id,
      fraise: this.fraise,
      environment: this.environment,
      kind,
      status,
      fromVersion: previousVersion,
      toVersion: version,
      durationMs: Math.round(this.clock.now() - started),
      targets: [...states.values()].map((s) => ({
        name: s.target.name,
        status: s.status === 'pending' || s.status === 'prepared' ? 'pending' : s.status,
        fromVersion: s.fromVersion,
        toVersion: s.toVersion,
        phases: s.phases,
        error: s.error,
        ...(s.finalVersion !== undefined ? { finalVersion: s.finalVersion } : {}),
      })),
      error: failure
        ? {
            code: failure.code,
            message: failure.message,
            ...(failure.target ? { target: failure.target } : {}),
            ...(failure.step ? { step: failure.step } : {}),
          }
        : null,
      dryRun,
      ...(stoppedBy ? { signal: stoppedBy } : {}),
      ...(providers ? { providers: providers(states) } : {}),
    });
    let result = buildResult();

    try {
      // A canary held for a human (promote or rollback) is not complete: postDeploy (post-deploy hooks,
      // the success notification) fires at the end of the promotion; now only the held hook.
      if (status === 'canary' && !dryRun) {
        await this.hooks.held.promise(result).catch((err) => this.log.warn(`held: ${asFraisierError(err).message}`));
      }
      if (status === 'succeeded' && !dryRun) {
        try {
          await this.hooks.postDeploy.promise(result);
        } catch (err) {
          if (!(err instanceof PostDeployError)) this.log.warn(`postDeploy: ${asFraisierError(err).message}`);
          else {
            // A postDeploy step asked to fail the deployment (a post-deployment hook's on_failure).
            failure = err;
            this.log.error(err.message);
            status = await this.afterFailure(ctx, touched, err, version, err.rollback, err.rollback, knownGood);
            result = buildResult();
          }
        }
      }
      if (status === 'canary') {
        this.log.info(
          `Canary of ${version} live; the other targets stay on ${previousVersion ?? '(none)'}. Continue: fraisier promote ${this.fraise} ${this.environment}; abort: fraisier rollback ${this.fraise} ${this.environment}`,
        );
      } else if (status === 'succeeded') {
        this.log.info(`${kind === 'deploy' ? 'Deployment' : 'Rollback'} successful! ${previousVersion ?? '(none)'} → ${version}`);
      } else if (status === 'rolled_back') {
        this.log.error(
          `Deployment failed; rolled back to ${[...new Set([...touched].map((n) => states.get(n)!.rolledBackTo ?? states.get(n)!.fromVersion))].join(', ')}`,
        );
      } else if (status === 'lock_lost') {
        this.log.error(`${kind === 'deploy' ? 'Deployment' : 'Rollback'} stopped: the lock was lost`);
      } else if (status === 'cancelled') {
        const back = [...new Set([...touched].map((n) => states.get(n)!.rolledBackTo ?? states.get(n)!.fromVersion))];
        this.log.warn(
          `${kind === 'deploy' ? 'Deployment' : 'Rollback'} ${failure?.message ?? 'cancelled'}${back.length > 0 ? `; rolled back to ${back.join(', ')}` : '; no host was changed'}`,
        );
      } else {
        this.log.error(`${kind === 'deploy' ? 'Deployment' : 'Rollback'} failed`);
      }
      await history.finish(states.values(), { status, error: failure?.message ?? null, ...(result.providers ? { providers: result.providers } : {}) });
      trace('history written');
    } finally {
      history.detach();
      await provider.close().catch(() => {});
      await lock.release();
      trace('connections closed, lock released');
      external?.removeEventListener('abort', onExternal);
      if (handleSignals) for (const [sig, fn] of signalHandlers) process.off(sig, fn);
    }
    return result;
  }

  /**
   * After a failure: rolls the touched targets back (when `rollbackHosts` and the rollback policy allow;
   * else, if `undo`, warns that they stay), fires the rollback hook (when `undo`), then the failed hook.
   * Returns the deployment's status: `rolled_back` only if every target came back and no rollback tap failed.
   */
  private async afterFailure(
    ctx: DeployContext,
    touched: Set<string>,
    failure: FraisierError,
    version: string,
    rollbackHosts: boolean,
    undo: boolean,
    knownGood: string[],
  ): Promise<DeployResult['status']> {
    let status: DeployResult['status'] = 'failed';
    const policy = this.options.rollback ?? {};
    if (rollbackHosts && touched.size > 0 && (policy.enabled ?? true)) {
      const ok = await this.rollbackTouched(ctx, touched, toMs(policy.timeout ?? '5m', 'rollback.timeout'), knownGood);
      status = ok ? 'rolled_back' : 'failed';
    } else if (undo && touched.size > 0) {
      this.log.warn(`automatic rollback is disabled: ${[...touched].join(', ')} stay on ${version}`);
    }
    if (undo) {
      this.rollbackErrors = [];
      await ctx.fence().then(
        () => this.hooks.rollback.promise(ctx, failure),
        () => this.log.warn('rollback hook skipped: the lock is no longer ours'),
      );
      for (const e of this.rollbackErrors) this.log.error(`rollback hook: ${asFraisierError(e).message}`);
      if (this.rollbackErrors.length > 0) status = 'failed';
    }
    try {
      this.hooks.failed.call(failure, ctx);
    } catch (e) {
      this.log.warn(`failed hook: ${asFraisierError(e).message}`);
    }
    return status;
  }

  /**
   * For a rollback without `--to`: the newest release the history says deployed successfully, other than
   * the live one. Never a release found only on the hosts: it may be one that never deployed successfully.
   */
  private async rollbackTarget(_ctx: DeployContext, _current: string | null): Promise<string | null> {
    const prev = await this.options.store.previousVersion(this.fraise, this.environment);
    if (prev) return prev;
    throw await this.nothingToRollBackTo();
  }

  /**
   * The E_USAGE of a plain rollback with no previous release in the chain (see
   * `StateStore.previousVersion`): nothing ever deployed, or nothing before the live release.
   */
  private async nothingToRollBackTo(): Promise<FraisierError> {
    const hint = `fraisier rollback ${this.fraise} ${this.environment} --to VERSION (fraisier status lists the releases on each host)`;
    const current = await this.options.store.currentVersion(this.fraise, this.environment);
    if (current === null) {
      return new FraisierError(
        'E_USAGE',
        `no earlier release of ${this.fraise} in ${this.environment} ever deployed successfully according to the history: name the release to roll back to`,
        { hint },
      );
    }
    return new FraisierError(
      'E_USAGE',
      `nothing before ${current} to roll back to: according to the history, no release of ${this.fraise} in ${this.environment} was live before it (a release that was rolled back is never picked again): name the release to roll back to`,
      { hint },
    );
  }

  /**
   * Where a failed target goes back to: its own previous release if that is not the failing one and (with
   * a history) it deployed successfully; else the newest release the history knows good other than the
   * failing one. Null when there is none (a first deployment).
   */
  private static rollbackRelease(from: string | null, failing: string, knownGood: string[]): string | null {
    if (from !== null && from !== failing && (knownGood.length === 0 || knownGood.includes(from))) return from;
    return knownGood.find((v) => v !== failing) ?? (from !== failing ? from : null);
  }

  private async timed<T>(t: Target, ctx: DeployContext, phase: string, fn: () => Promise<T>): Promise<T> {
    const s = performance.now();
    try {
      return await fn();
    } finally {
      ctx.time(t, phase, performance.now() - s);
    }
  }

  private async deployTarget(
    t: Target,
    ctx: DeployContext,
    touched: Set<string>,
    prune?: { protect: (t: Target) => string[]; done: (t: Target) => void },
  ): Promise<void> {
    const { provider } = this.options;
    const state = ctx.states.get(t.name)!;
    ctx.checkAborted();
    try {
      // Each step that changes a host is fenced: it runs only while the store says the lock is ours.
      await ctx.fence();
      await this.timed(t, ctx, 'prepare', () => provider.prepare(t, ctx.version, ctx));
      state.status = 'prepared';
      ctx.checkAborted();
      if (state.fromVersion === ctx.version) this.log.info(`${ctx.version} is already live; restarting it`, t.name);
      await ctx.fence();
      // Touched from here on: a plugin may drain the target in beforeTarget, so a failure must restore it.
      touched.add(t.name);
      await this.timed(t, ctx, 'before', () => this.hooks.beforeTarget.promise(t, ctx));
      await ctx.fence();
      await this.timed(t, ctx, 'activate', () =>
        prune ? provider.activate(t, ctx.version, ctx, { protect: prune.protect(t) }) : provider.activate(t, ctx.version, ctx),
      );
      prune?.done(t);
      state.toVersion = ctx.version;
      state.status = 'activated';
      await this.checkHealth(t, ctx);
      state.status = 'healthy';
      await ctx.fence();
      await this.timed(t, ctx, 'after', () => this.hooks.afterTarget.promise(t, ctx));
    } catch (err) {
      throw this.targetFailed(state, err);
    }
  }

  private async adoptTarget(t: Target, from: string | null, ctx: DeployContext, touched: Set<string>): Promise<void> {
    const state = ctx.states.get(t.name)!;
    ctx.checkAborted();
    try {
      await this.checkHealth(t, ctx);
      state.fromVersion = from;
      state.toVersion = ctx.version;
      state.status = 'healthy';
      touched.add(t.name);
    } catch (err) {
      throw this.targetFailed(state, err);
    }
  }

  private async checkTarget(t: Target, ctx: DeployContext): Promise<void> {
    const state = ctx.states.get(t.name)!;
    ctx.checkAborted();
    try {
      await this.checkHealth(t, ctx);
      state.toVersion = state.fromVersion;
      state.status = 'healthy';
    } catch (err) {
      throw this.targetFailed(state, err);
    }
  }

  /** The healthCheck hook on one target (skipped by `force` and dry runs); throws `E_HEALTH` on a failure. */
  private async checkHealth(t: Target, ctx: DeployContext): Promise<void> {
    if (ctx.force || ctx.dryRun) return;
    const failure = await this.timed(t, ctx, 'health', () => this.hooks.healthCheck.promise(t, ctx));
    if (failure) {
      throw new FraisierError('E_HEALTH', `health check failed on ${t.name}: ${failure.check}: ${failure.reason}`, { target: t.name, step: 'health' });
    }
  }

  /** Marks the target failed and returns the error to throw, naming the target. */
  private targetFailed(state: TargetState, err: unknown): FraisierError {
    const name = state.target.name;
    const e = asFraisierError(err, 'E_COMMAND', { target: name });
    // The fencing check stopped us before this target was switched: it is untouched, not failed.
    if (e.code === 'E_LOCKED' && (state.status === 'pending' || state.status === 'prepared')) return e;
    state.status = 'failed';
    state.error = e.message;
    return e.target ? e : new FraisierError(e.code, e.message, { target: name, cause: e });
  }

  /** Puts every touched target back on its previous release, in parallel. True if all came back healthy. */
  private async rollbackTouched(ctx: DeployContext, touched: Set<string>, timeoutMs: number, knownGood: string[]): Promise<boolean> {
    const { provider } = this.options;
    this.log.warn(`Rolling back ${[...touched].join(', ')}`);
    // Health checks and waits during a rollback must not stop because Ctrl-C aborted the deployment.
    const calm = new AbortController();
    const rctx: DeployContext = { ...ctx, signal: calm.signal, checkAborted: () => {} };
    const work = Promise.all(
      [...touched].map(async (name) => {
        const state = ctx.states.get(name)!;
        const t = state.target;
        const prev = Deployer.rollbackRelease(state.fromVersion, ctx.version, knownGood);
        if (!prev) {
          const why =
            state.fromVersion === ctx.version
              ? `no release known good other than ${ctx.version}, which failed`
              : 'no previous release to roll back to (first deployment)';
          state.status = 'rollback_failed';
          state.error = `${state.error ?? ''}${state.error ? '; ' : ''}${why}`;
          this.log.error(why, name);
          return false;
        }
        if (prev !== state.fromVersion)
          this.log.warn(
            `was on ${state.fromVersion ?? '(none)'}, not a release known good: rolling back to ${prev}, the last release that deployed successfully`,
            name,
          );
        state.rolledBackTo = prev;
        const s = performance.now();
        try {
          await ctx.fence();
          await provider.activate(t, prev, rctx);
          if (!ctx.force) {
            const failure = await this.hooks.healthCheck.promise(t, rctx);
            if (failure)
              throw new FraisierError('E_ROLLBACK', `still unhealthy after rollback to ${prev}: ${failure.check}: ${failure.reason}`, { target: name });
          }
          await ctx.fence();
          await this.hooks.afterTarget.promise(t, rctx);
          state.status = 'rolled_back';
          this.log.info(`rolled back to ${prev}`, name);
          return true;
        } catch (err) {
          state.status = 'rollback_failed';
          const e = asFraisierError(err, 'E_ROLLBACK', { target: name });
          state.error = `${state.error ?? ''}; rollback: ${e.message}`;
          this.log.error(`rollback to ${prev} failed: ${e.message}`, name);
          // What it runs now, read from the host; unknown (null) when it cannot be reached, never a guess.
          state.finalVersion = e.code === 'E_UNREACHABLE' && (e.target ?? name) === name ? null : await provider.currentRelease(t, rctx).catch(() => null);
          this.log.error(`now runs ${state.finalVersion ?? 'an unknown release (unreachable)'}`, name);
          return false;
        } finally {
          ctx.time(t, 'rollback', performance.now() - s);
        }
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean[]>((resolve) => {
      timer = setTimeout(() => {
        this.log.error(`rollback did not finish within ${timeoutMs} ms`);
        resolve([false]);
      }, timeoutMs);
      timer.unref();
    });
    const results = await Promise.race([work, timeout]);
    clearTimeout(timer);
    return results.every(Boolean);
  }
}
