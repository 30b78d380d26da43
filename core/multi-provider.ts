/**
 * Multi-provider environments: one environment served by several providers (bare metal first, Coolify
 * as the fallback), each with its own strategy and health checks. `failover` deploys to the first
 * provider by priority and moves to the next one only when it fails for availability (preflight, deploy
 * or health: the failed one is rolled back first); `all` deploys to every provider in parallel.
 *
 * It is built from ordinary parts: a composite {@link Provider} (every member's targets, each call sent
 * to the member that owns the target), a composite {@link Strategy} (which member runs, in what order,
 * each member's own strategy on its own targets) and a health plugin (each member's own checks). So one
 * Deployer runs it: one lock, one history row for the environment, one row per target, and the
 * per-provider outcome in {@link DeployResult.providers}. See docs/multi-provider.md.
 */
import type { EnvironmentDefinition } from './app.js';
import type { RollbackPolicy } from './deployer.js';
import { FraisierError, TargetErrors, asFraisierError } from './errors.js';
import type { Executor } from './exec/executor.js';
import { runHealthPolicy, type HealthPolicy } from './health.js';
import type { DeployContext, Plugin, Provider, ProviderOutcome, ProviderSession, Strategy, Target, TargetState } from './types.js';

/** One provider of a multi-provider environment. */
export interface ProviderMember {
  /** Unique within the environment: what `--provider`, the history and `status` call it (`coolify_cloud`). */
  name: string;
  /** Failover order: 1 is tried first. Unique in `failover` mode. Default: its position in the list (1, 2, ...). */
  priority?: number;
  /** Puts releases on this member's targets: `bareMetal({...})`, `coolify({...})`. */
  provider: Provider;
  /** Order and gates across this member's targets. Default: the environment's `strategy`, else required. */
  strategy?: Strategy;
  /** This member's health checks. Default: the environment's `health`. */
  health?: HealthPolicy;
}

/** How a multi-provider environment deploys. */
export type MultiProviderMode = 'failover' | 'all';

/** Options of {@link multiProvider}. */
export interface MultiProviderOptions {
  /**
   * `failover` (default): deploy to the provider with priority 1; when it fails for availability
   * (unreachable, a failed command or deployment, a failed health check), roll it back and try the next
   * priority. A configuration error (bad token, unknown application, bad version), Ctrl-C or a lost lock
   * stops at once. `all`: every provider in parallel.
   */
  mode?: MultiProviderMode;
  /**
   * `all` mode only: when a provider fails, `rollback_all` (default) rolls every provider back;
   * `keep_others` rolls back only the failed one and keeps the others on the new release (the deployment
   * then succeeds if at least one provider served).
   */
  onFailure?: 'rollback_all' | 'keep_others';
  /** The providers. At least one; names unique; target names unique across providers. */
  providers: ProviderMember[];
  /** The strategy of members that name none. */
  strategy?: Strategy;
  /** The health checks of members that name none. */
  health?: HealthPolicy;
  /** What happens when a deployment fails (see {@link RollbackPolicy}). */
  rollback?: RollbackPolicy;
  /** Plugins for this environment. */
  plugins?: Plugin[];
}

/** A member with its defaults applied. */
interface Member {
  readonly name: string;
  readonly priority: number;
  readonly provider: Provider;
  readonly strategy: Strategy;
  readonly health: HealthPolicy | undefined;
}

/** The setup of a multi-provider environment, as {@link multiProvider} returns it on `multi`. */
export interface MultiProviderSetup {
  readonly mode: MultiProviderMode;
  readonly onFailure: 'rollback_all' | 'keep_others';
  /** Members sorted by priority. */
  readonly members: readonly Member[];
  /** The configuration problem found when it was built, thrown by {@link check} (a deploy, a status). */
  readonly problem: FraisierError | null;
}

/** A multi-provider environment: an {@link EnvironmentDefinition} plus its {@link MultiProviderSetup}. */
export interface MultiProviderEnvironment extends EnvironmentDefinition {
  readonly multi: MultiProviderSetup;
}

/** True when the environment is a multi-provider one. */
export function isMultiProvider(env: EnvironmentDefinition): env is MultiProviderEnvironment {
  return typeof (env as Partial<MultiProviderEnvironment>).multi === 'object';
}

/** Where in `ctx.data` the composite strategy leaves the per-provider outcome (read by the Deployer). */
export const PROVIDERS_DATA_KEY = 'core:providers';

/**
 * One environment served by several providers (see {@link MultiProviderOptions}):
 *
 * ```ts
 * production: multiProvider({
 *   mode: 'failover',
 *   providers: [
 *     { name: 'bare_metal', priority: 1, provider: bareMetal({...}), strategy: rolling(), health: {...} },
 *     { name: 'coolify_cloud', priority: 2, provider: coolify({...}), strategy: rolling() },
 *   ],
 * }),
 * ```
 * A configuration problem (two providers with one priority in failover mode, a name used twice) is an
 * `E_CONFIG` error thrown when the environment is used (deploy, rollback, status), before anything is sent.
 */
export function multiProvider(options: MultiProviderOptions): MultiProviderEnvironment {
  const mode = options.mode ?? 'failover';
  const onFailure = options.onFailure ?? 'rollback_all';
  let problem: FraisierError | null = null;
  const fail = (message: string, key: string, hint?: string) => {
    problem ??= new FraisierError('E_CONFIG', `multiProvider: ${message}`, { key, ...(hint ? { hint } : {}) });
  };
  if (mode !== 'failover' && mode !== 'all') fail(`mode must be "failover" or "all", got ${JSON.stringify(mode)}`, 'mode');
  if (onFailure !== 'rollback_all' && onFailure !== 'keep_others')
    fail(`onFailure must be "rollback_all" or "keep_others", got ${JSON.stringify(onFailure)}`, 'onFailure');
  if (!Array.isArray(options.providers) || options.providers.length === 0) fail('expected at least one provider', 'providers');
  const members: Member[] = (options.providers ?? []).map((m, i) => {
    const strategy = m.strategy ?? options.strategy;
    if (!strategy) fail(`providers[${i}] (${m.name}) has no strategy and the environment gives none`, `providers[${i}].strategy`);
    const priority = m.priority ?? i + 1;
    if (!Number.isInteger(priority) || priority < 1)
      fail(`providers[${i}].priority: expected an integer >= 1, got ${JSON.stringify(m.priority)}`, `providers[${i}].priority`);
    return { name: m.name, priority, provider: m.provider, strategy: strategy!, health: m.health ?? options.health };
  });
  const names = new Set<string>();
  const targetOwner = new Map<string, string>();
  for (const [i, m] of members.entries()) {
    if (typeof m.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(m.name))
      fail(`providers[${i}].name: expected a name (letters, digits, _ and -), got ${JSON.stringify(m.name)}`, `providers[${i}].name`);
    if (names.has(m.name)) fail(`providers[${i}].name: ${JSON.stringify(m.name)} is used twice`, `providers[${i}].name`);
    names.add(m.name);
    if (mode === 'failover') {
      const same = members.findIndex((o) => o !== m && o.priority === m.priority);
      if (same >= 0 && same < i)
        fail(
          `providers[${i}].priority: ${m.priority} is also the priority of providers[${same}] (${members[same]!.name}); in failover mode each provider needs its own`,
          `providers[${i}].priority`,
        );
    }
    for (const t of m.provider?.targets ?? []) {
      const other = targetOwner.get(t.name);
      if (other !== undefined) fail(`target ${t.name} belongs to both ${other} and ${m.name}: target names must be unique across providers`, `providers[${i}]`);
      targetOwner.set(t.name, m.name);
    }
  }
  const sorted = [...members].sort((a, b) => a.priority - b.priority);
  const setup: MultiProviderSetup = { mode, onFailure, members: sorted, problem };
  return environmentOf(setup, options);
}

/** The environment for a setup (all its members, or the one `--provider` selected). */
function environmentOf(setup: MultiProviderSetup, options: Pick<MultiProviderOptions, 'rollback' | 'plugins'>): MultiProviderEnvironment {
  const composite = new CompositeProvider(setup);
  return {
    provider: composite,
    strategy: compositeStrategy(setup, composite),
    plugins: [memberHealth(setup, composite), ...(options.plugins ?? [])],
    ...(options.rollback ? { rollback: options.rollback } : {}),
    multi: setup,
  };
}

/** Throws the environment's configuration problem, if any (before anything is sent). */
export function checkMultiProvider(env: MultiProviderEnvironment): void {
  if (env.multi.problem) throw env.multi.problem;
  for (const m of env.multi.members) m.provider.check?.();
}

/**
 * The environment restricted to one provider (`--provider coolify_cloud`): the same composite with that
 * member only, so the history records it like any other multi-provider deployment.
 */
export function selectProvider(env: MultiProviderEnvironment, name: string): MultiProviderEnvironment {
  const member = env.multi.members.find((m) => m.name === name);
  if (!member) {
    throw new FraisierError('E_USAGE', `--provider ${JSON.stringify(name)}: this environment has no such provider`, {
      key: 'provider',
      hint: `its providers: ${env.multi.members.map((m) => m.name).join(', ')}`,
    });
  }
  const setup: MultiProviderSetup = { ...env.multi, members: [member] };
  return environmentOf(setup, { ...(env.rollback ? { rollback: env.rollback } : {}), plugins: (env.plugins ?? []).slice(1) });
}

/**
 * A failure that must not move a failover to the next provider: a configuration error (anywhere in the
 * cause chain, or marked so by its provider with `failure: 'configuration'`), Ctrl-C, a lost lock.
 */
export function stopsFailover(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const failure = (e as { failure?: unknown }).failure;
    if (failure === 'configuration' || failure === 'cancelled') return true;
    if (e instanceof FraisierError && ['E_CONFIG', 'E_USAGE', 'E_VERSION', 'E_ABORTED', 'E_LOCKED'].includes(e.code)) return true;
    if (e instanceof TargetErrors) return [...e.byTarget.values()].some(stopsFailover);
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Every member's targets as one provider; each call goes to the member that owns the target. */
class CompositeProvider implements Provider {
  readonly name = 'provider:multi';
  readonly targets: readonly Target[];
  /** Members whose preflight (`open`) failed, with why: never deployed to. */
  readonly unavailable = new Map<string, FraisierError>();
  private readonly owner = new Map<string, Member>();
  private readonly opened = new Set<Member>();

  constructor(readonly setup: MultiProviderSetup) {
    this.targets = setup.members.flatMap((m) => m.provider.targets);
    for (const m of setup.members) for (const t of m.provider.targets) this.owner.set(t.name, m);
  }

  memberOf(t: Target): Member {
    const m = this.owner.get(t.name);
    if (!m) throw new FraisierError('E_CONFIG', `target ${t.name} belongs to no provider of this environment`, { target: t.name });
    return m;
  }

  /** The context a member's provider and strategy see: only its own targets. */
  static sub(ctx: DeployContext, m: Member): DeployContext {
    return { ...ctx, targets: m.provider.targets };
  }

  /** Members that passed their preflight, by priority. */
  get available(): Member[] {
    return this.setup.members.filter((m) => this.opened.has(m));
  }

  check(): void {
    if (this.setup.problem) throw this.setup.problem;
    for (const m of this.setup.members) m.provider.check?.();
  }

  async open(session: ProviderSession): Promise<void> {
    this.check();
    const results = await Promise.allSettled(this.setup.members.map((m) => m.provider.open(session)));
    for (const [i, r] of results.entries()) {
      const m = this.setup.members[i]!;
      if (r.status === 'fulfilled') this.opened.add(m);
      else this.unavailable.set(m.name, asFraisierError(r.reason));
    }
    if (this.unavailable.size === 0) return;
    const first = [...this.unavailable.values()][0]!;
    // Only an availability failure of some providers leaves a failover with the others.
    const fatal = [...this.unavailable.values()].find(stopsFailover);
    if (fatal) throw fatal;
    if (this.setup.members.length === 1) throw first;
    if (this.setup.mode === 'all' || this.opened.size === 0) {
      throw new FraisierError(first.code, `preflight failed: ${[...this.unavailable].map(([n, e]) => `${n}: ${e.message}`).join('; ')}`, {
        ...(first.target ? { target: first.target } : {}),
        cause: first,
      });
    }
    for (const [n, e] of this.unavailable) session.log.warn(`provider ${n} is unavailable (${e.message}): it is skipped`);
  }

  async resolveVersion(ref: string | undefined, ctx: DeployContext): Promise<string> {
    let last: unknown;
    for (const m of this.available) {
      try {
        return await m.provider.resolveVersion(ref, CompositeProvider.sub(ctx, m));
      } catch (err) {
        if (stopsFailover(err) || this.setup.mode === 'all') throw err;
        // This member cannot even resolve the version (unreachable): it cannot serve; the next one may.
        last = err;
        this.unavailable.set(m.name, asFraisierError(err));
        this.opened.delete(m);
        ctx.log.warn(`provider ${m.name} cannot resolve the version (${asFraisierError(err).message}): it is skipped`);
      }
    }
    throw last ?? new FraisierError('E_PREFLIGHT', 'no provider of this environment is available');
  }

  async currentRelease(t: Target, ctx: DeployContext): Promise<string | null> {
    const m = this.memberOf(t);
    // Never deployed to: what it runs does not matter to this deployment (status asks each member itself).
    if (!this.opened.has(m)) return m.provider.currentRelease(t, CompositeProvider.sub(ctx, m)).catch(() => null);
    return m.provider.currentRelease(t, CompositeProvider.sub(ctx, m));
  }

  releases(t: Target, ctx: DeployContext): Promise<string[]> {
    const m = this.memberOf(t);
    return m.provider.releases(t, CompositeProvider.sub(ctx, m));
  }

  prepare(t: Target, version: string, ctx: DeployContext): Promise<void> {
    const m = this.memberOf(t);
    return m.provider.prepare(t, version, CompositeProvider.sub(ctx, m));
  }

  activate(t: Target, version: string, ctx: DeployContext): Promise<void> {
    const m = this.memberOf(t);
    return m.provider.activate(t, version, CompositeProvider.sub(ctx, m));
  }

  async finalize(t: Target, ctx: DeployContext): Promise<void> {
    const m = this.memberOf(t);
    // Only where this deployment went live: a member it never reached (or rolled back) is left alone.
    if (!this.opened.has(m) || ctx.states.get(t.name)?.status !== 'healthy') return;
    await m.provider.finalize(t, CompositeProvider.sub(ctx, m));
  }

  executor(t: Target): Executor {
    return this.memberOf(t).provider.executor(t);
  }

  async close(): Promise<void> {
    await Promise.all(this.setup.members.map((m) => m.provider.close().catch(() => {})));
  }
}

/** What the composite strategy records per member, turned into outcomes from the targets' final states. */
interface Record_ {
  member: Member;
  tried: boolean;
  error: string | null;
}

function outcomes(records: Record_[], states: ReadonlyMap<string, TargetState>): ProviderOutcome[] {
  return records.map(({ member, tried, error }) => {
    const st = member.provider.targets.map((t) => states.get(t.name)?.status ?? 'pending');
    let status: ProviderOutcome['status'];
    if (!tried) status = error ? 'unavailable' : 'not_tried';
    else if (st.includes('rollback_failed') || st.includes('failed')) status = 'failed';
    else if (st.includes('rolled_back')) status = 'rolled_back';
    else if (st.length > 0 && st.every((s) => s === 'healthy' || s === 'activated')) status = 'served';
    else status = error ? 'failed' : 'not_tried';
    return { name: member.name, priority: member.priority, status, error, targets: member.provider.targets.map((t) => t.name) };
  });
}

function compositeStrategy(setup: MultiProviderSetup, composite: CompositeProvider): Strategy {
  return {
    name: `multi-provider:${setup.mode}`,
    async run(ctx, runner) {
      const records: Record_[] = setup.members.map((member) => {
        const why = composite.unavailable.get(member.name);
        return { member, tried: false, error: why ? `preflight: ${why.message}` : null };
      });
      ctx.data.set(PROVIDERS_DATA_KEY, (states: ReadonlyMap<string, TargetState>) => outcomes(records, states));
      const recordOf = (m: Member) => records.find((r) => r.member === m)!;
      let members = composite.available;
      if (ctx.kind === 'rollback' && ctx.previousVersion !== null) {
        // A rollback goes back on the provider(s) that served: those running the live release.
        const served = members.filter((m) => m.provider.targets.some((t) => ctx.states.get(t.name)?.fromVersion === ctx.previousVersion));
        if (served.length > 0) members = served;
      }
      const runMember = async (m: Member): Promise<void> => {
        const r = recordOf(m);
        r.tried = true;
        ctx.log.info(`Provider ${m.name} (priority ${m.priority}): ${m.provider.targets.map((t) => t.name).join(', ')} [${m.strategy.name}]`);
        try {
          await m.strategy.run(CompositeProvider.sub(ctx, m), runner);
        } catch (err) {
          r.error = asFraisierError(err).message;
          throw err;
        }
      };

      if (setup.mode === 'all' || ctx.kind === 'rollback') {
        const settled = await Promise.allSettled(members.map(runMember));
        const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ member: members[i]!, error: asFraisierError(s.reason) }] : []));
        if (failed.length === 0) {
          ctx.log.info(`Served by ${members.map((m) => m.name).join(', ')}`);
          return;
        }
        const first = failed[0]!.error;
        const served = members.filter((m) => !failed.some((f) => f.member === m));
        const aborted = failed.find((f) => stopsFailover(f.error) && ['E_ABORTED', 'E_LOCKED'].includes(f.error.code));
        if (setup.onFailure === 'keep_others' && served.length > 0 && !aborted && ctx.kind === 'deploy') {
          for (const f of failed) {
            ctx.log.warn(
              `provider ${f.member.name} failed (${f.error.message}): rolling it back, keeping ${served.map((m) => m.name).join(', ')} (on_failure: keep_others)`,
            );
            if (runner.rollbackTargets) await runner.rollbackTargets(f.member.provider.targets);
          }
          ctx.log.info(`Served by ${served.map((m) => m.name).join(', ')}`);
          return;
        }
        throw failed.length === 1
          ? first
          : new FraisierError(first.code, failed.map((f) => `${f.member.name}: ${f.error.message}`).join('; '), {
              ...(first.target ? { target: first.target } : {}),
              cause: first,
            });
      }

      // failover: one provider at a time, by priority.
      for (const [i, m] of members.entries()) {
        ctx.checkAborted();
        try {
          await runMember(m);
          const before = records.filter((r) => r.error !== null && r.member !== m);
          ctx.log.info(`Served by ${m.name}${before.length > 0 ? ` (after ${before.map((r) => `${r.member.name}: ${r.error}`).join('; ')})` : ''}`);
          return;
        } catch (err) {
          const e = asFraisierError(err);
          const last = i === members.length - 1;
          if (stopsFailover(e) || last || !runner.rollbackTargets) {
            if (last && i > 0)
              ctx.log.error(
                `every provider failed: ${records
                  .filter((r) => r.error)
                  .map((r) => `${r.member.name}: ${r.error}`)
                  .join('; ')}`,
              );
            throw e;
          }
          ctx.log.warn(`provider ${m.name} failed (${e.message}): rolling it back, then trying ${members[i + 1]!.name}`);
          await runner.rollbackTargets(m.provider.targets);
        }
      }
      throw new FraisierError('E_PREFLIGHT', 'no provider of this environment is available');
    },
  };
}

/** Each member's own health checks, as the environment's first healthCheck tap. */
function memberHealth(setup: MultiProviderSetup, composite: CompositeProvider): Plugin {
  return {
    name: 'plugin:multi-provider-health',
    apply(host) {
      if (setup.members.every((m) => !m.health)) return;
      host.hooks.healthCheck.tapPromise('core:multi-provider-health', async (target, ctx) => {
        const m = composite.memberOf(target);
        return m.health ? runHealthPolicy(m.health, target, CompositeProvider.sub(ctx, m)) : undefined;
      });
    },
  };
}
