/**
 * The canary strategy: a few hosts get the new release first and a growing share of the requests, step
 * by step, while an analysis compares their metrics with the stable hosts'; then the rest of the fleet
 * follows in rolling batches. A failed verdict sends all traffic back to the stable hosts first, then the
 * Deployer rolls the canary hosts back; the stable hosts are never touched. See docs/canary.md.
 */
import { verdictLine } from '../core/analysis/index.js';
import type { Analysis, AnalysisContext, AnalysisOptions, AnalysisRound, AnalysisStatus } from '../core/analysis/types.js';
import type { NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, abortable, asFraisierError } from '../core/errors.js';
import { registry, type BuildContext } from '../core/registry.js';
import type { DeployContext, Strategy, Target, TrafficSwitch } from '../core/types.js';
import type { CanaryYaml } from './canary.yaml.js';
import { batches, runBatch } from './rolling.js';
import { metricSourcesFor } from '../plugins/metrics/sources.js';
import { analysisFor } from './bake.js';
import { checkGate, runGate, type CanaryGates, type GateName } from './canary-gates.js';

export type { CanaryGates, Gate, GateName } from './canary-gates.js';

/** One traffic step of a canary. */
export interface CanaryStep {
  /**
   * Percent of the requests the canary hosts get during the step (an integer from 1 to 100), set through
   * the traffic plugin's `setWeights`. Omitted: no weights are set, and the canary hosts get their natural
   * share (their number over the fleet's, with a load balancer that splits evenly).
   */
  weight?: number;
  /**
   * How long the step lasts; the analysis runs through it and gates at its end. Omitted: the deployment
   * stops here with the canary live ("in canary") and waits for `fraisier promote` (or `rollback`).
   */
  pause?: Duration;
}

/** Builds the analysis of a canary: what `createAnalysis` (core/analysis) does with {@link AnalysisOptions}. */
export type AnalysisFactory = (ctx: AnalysisContext) => Analysis;

/** Options of the canary strategy. */
export interface CanaryOptions {
  /** The canary hosts: a count (the first N targets, in the environment's order) or target names. Default 1. */
  instances?: number | readonly string[];
  /**
   * The traffic steps, in order; after the last one the rest of the fleet is deployed (promotion).
   * Default: one step of {@link duration} at the canary's natural share.
   */
  steps?: readonly CanaryStep[];
  /** How long `--canary-only` runs the analysis (on the first step, when that step has no pause of its own). Default `5m`. */
  duration?: Duration;
  /**
   * What judges the canary: the analysis engine's options (checks, sources, interval, limits; built with
   * the engine of core/analysis), or a factory. Omitted: no metrics; the steps only wait (the health
   * checks still gate each host).
   */
  analysis?: AnalysisOptions | AnalysisFactory;
  /** Hosts deployed at once when promoting the rest of the fleet. Default 1. */
  batchSize?: number;
  /** Pause between promotion batches. Default 0. */
  waitBetweenBatches?: Duration;
  /** The largest per-host weight the load balancer takes (HAProxy's is 256). Default 256. */
  maxWeight?: number;
  /**
   * The health-check URL as seen from a host (`http://localhost:8000/health`): where the default probe
   * source sends its requests. The YAML form takes it from `health_check`.
   */
  healthUrl?: string;
  /** The service whose CPU and memory the default host source reads. The YAML form takes it from the environment. */
  service?: { type: 'supervisor' | 'systemd'; name: string };
  /**
   * Gates (Flagger's webhooks): commands or http(s) URLs run before each traffic increase, before the
   * promotion, and when the canary is aborted. See {@link CanaryGates} and docs/canary.md.
   */
  gates?: CanaryGates;
}

/** The marker a halted gate leaves as the canary record's last verdict line: `promote` then approves that gate. */
const HALTED = 'gate halted: ';

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Per-host weights that give a canary pool of `nCanary` hosts exactly `percent` % of the requests against
 * `nStable` stable hosts: canary = percent × nStable, stable = (100 − percent) × nCanary, reduced by their
 * gcd; when that exceeds `maxWeight`, the closest share with both weights within 1..maxWeight.
 */
export function canaryWeights(percent: number, nCanary: number, nStable: number, maxWeight = 256): { canary: number; stable: number } {
  if (percent >= 100) return { canary: 1, stable: 0 };
  let canary = percent * nStable;
  let stable = (100 - percent) * nCanary;
  const g = gcd(canary, stable);
  canary /= g;
  stable /= g;
  if (canary <= maxWeight && stable <= maxWeight) return { canary, stable };
  const want = percent / 100;
  const share = (c: number, s: number) => (c * nCanary) / (c * nCanary + s * nStable);
  let best = { canary: 1, stable: 1 };
  let bestErr = Number.POSITIVE_INFINITY;
  const consider = (c: number, s: number) => {
    if (c < 1 || c > maxWeight || s < 1 || s > maxWeight) return;
    const err = Math.abs(share(c, s) - want);
    if (err < bestErr - 1e-12) {
      bestErr = err;
      best = { canary: c, stable: s };
    }
  };
  for (let i = 1; i <= maxWeight; i++) {
    consider(Math.round((i * canary) / stable), i);
    consider(i, Math.round((i * stable) / canary));
  }
  return best;
}

/** The canary's share of requests in percent, as the weights give it. */
export function shareOf(w: { canary: number; stable: number }, nCanary: number, nStable: number): number {
  return (100 * w.canary * nCanary) / (w.canary * nCanary + w.stable * nStable);
}

/** One weight for every canary host, another for every stable host. */
function weightsFor(canaryPool: readonly Target[], canary: number, stablePool: readonly Target[], stable: number): Record<string, number> {
  return Object.fromEntries([...canaryPool.map((t) => [t.name, canary] as const), ...stablePool.map((t) => [t.name, stable] as const)]);
}

function checkStep(step: CanaryStep, i: number): void {
  if (step.weight !== undefined && (!Number.isInteger(step.weight) || step.weight < 1 || step.weight > 100)) {
    throw new FraisierError(
      'E_CONFIG',
      `canary: steps[${i}].weight must be an integer from 1 to 100 (percent of requests), got ${JSON.stringify(step.weight)}`,
      {
        key: `steps[${i}].weight`,
      },
    );
  }
  if (step.pause !== undefined) toMs(step.pause, `steps[${i}].pause`);
}

/**
 * Canary deployment: deploy `instances` hosts, shift traffic to them step by step while an analysis
 * judges them, then deploy the rest of the fleet in rolling batches and split traffic evenly again. A
 * failed verdict, a failed health check or Ctrl-C sends all traffic back to the stable hosts first; the
 * Deployer then rolls the canary hosts back. With `--canary-only`, or at a step without a pause, the
 * deployment stops "in canary" (recorded in the state store) until `fraisier promote` or `rollback`.
 */
export function canary(options: CanaryOptions = {}): Strategy {
  const instances = options.instances ?? 1;
  if (typeof instances === 'number' && (!Number.isInteger(instances) || instances < 1)) {
    throw new FraisierError('E_CONFIG', `canary: instances must be a positive integer or a list of targets, got ${JSON.stringify(instances)}`, {
      key: 'instances',
    });
  }
  const batchSize = options.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new FraisierError('E_CONFIG', `canary: batchSize must be a positive integer, got ${JSON.stringify(batchSize)}`, { key: 'batchSize' });
  }
  const maxWeight = options.maxWeight ?? 256;
  const durationMs = toMs(options.duration ?? '5m', 'duration');
  const steps: readonly CanaryStep[] = options.steps && options.steps.length > 0 ? options.steps : [{ pause: durationMs }];
  steps.forEach(checkStep);
  const waitMs = toMs(options.waitBetweenBatches ?? 0, 'waitBetweenBatches');
  const gates = options.gates ?? {};
  if (gates.beforeStep !== undefined) checkGate(gates.beforeStep, 'gates.beforeStep');
  if (gates.confirmPromotion !== undefined) checkGate(gates.confirmPromotion, 'gates.confirmPromotion');
  if (gates.onRollback !== undefined) checkGate(gates.onRollback, 'gates.onRollback');
  const gateTimeout = toMs(gates.timeout ?? '30s', 'gates.timeout');

  /** Splits the targets into the canary pool and the stable pool; E_CONFIG before any host changes. */
  function pools(ctx: DeployContext, recorded: readonly string[] | null): { canaryPool: Target[]; stablePool: Target[] } {
    let canaryPool: Target[];
    if (recorded) canaryPool = ctx.targets.filter((t) => recorded.includes(t.name));
    else if (typeof instances === 'number') canaryPool = ctx.targets.slice(0, instances);
    else {
      const unknown = instances.filter((n) => !ctx.targets.some((t) => t.name === n));
      if (unknown.length > 0) {
        throw new FraisierError(
          'E_CONFIG',
          `canary: instances names ${unknown.join(', ')}, not targets of ${ctx.environment} (${ctx.targets.map((t) => t.name).join(', ')})`,
          {
            key: 'instances',
          },
        );
      }
      canaryPool = ctx.targets.filter((t) => instances.includes(t.name));
    }
    const stablePool = ctx.targets.filter((t) => !canaryPool.includes(t));
    if (stablePool.length === 0) {
      throw new FraisierError(
        'E_CONFIG',
        `canary: ${canaryPool.length} canary instance(s) out of ${ctx.targets.length} target(s) leaves no stable host to compare with: use fewer instances`,
        { key: 'instances' },
      );
    }
    return { canaryPool, stablePool };
  }

  /**
   * Sets the weights for `percent` % to the canary pool; with `percent` null, resets them (`{}`): every
   * host back at the load balancer's configured weight (HAProxy's `weight` in haproxy.cfg, nginx's none),
   * the even split the fleet had before the canary.
   */
  async function route(ctx: DeployContext, traffic: TrafficSwitch, canaryPool: Target[], stablePool: Target[], percent: number | null): Promise<void> {
    await ctx.fence();
    if (percent === null) {
      await traffic.setWeights!({}, ctx);
      return;
    }
    const w = canaryWeights(percent, canaryPool.length, stablePool.length, maxWeight);
    await traffic.setWeights!(weightsFor(canaryPool, w.canary, stablePool, w.stable), ctx);
    const exact = shareOf(w, canaryPool.length, stablePool.length);
    ctx.log.info(
      `canary ${percent}% of requests: weight ${w.canary} on ${canaryPool.map((t) => t.name).join(', ')}, ${w.stable} on ${stablePool.map((t) => t.name).join(', ')}${Math.abs(exact - percent) > 0.05 ? ` (${exact.toFixed(1)}% with the load balancer's largest weight ${maxWeight})` : ''}`,
    );
  }

  /** All traffic to the stable pool; never throws (the Deployer's rollback restores the routing too). */
  async function backToStable(ctx: DeployContext, traffic: TrafficSwitch | null, canaryPool: Target[], stablePool: Target[]): Promise<void> {
    if (!traffic?.setWeights || ctx.dryRun) return;
    try {
      await ctx.fence();
      await traffic.setWeights(weightsFor(canaryPool, 0, stablePool, 1), ctx);
      ctx.log.warn(`all traffic back to the stable hosts (${stablePool.map((t) => t.name).join(', ')})`);
    } catch (err) {
      ctx.log.error(`could not send the traffic back to the stable hosts: ${asFraisierError(err).message}`);
    }
  }

  /** Runs the on_rollback gate, if any; its failure only warns. */
  async function onRollbackGate(ctx: DeployContext, version: string, step: number, weight: number | null): Promise<void> {
    if (!gates.onRollback || ctx.dryRun) return;
    const r = await runGate(
      gates.onRollback,
      'on_rollback',
      { fraise: ctx.fraise, environment: ctx.environment, version, step: step + 1, weight },
      gateTimeout,
    );
    if (r.ok) ctx.log.info(`gate on_rollback passed (${r.detail})`);
    else ctx.log.warn(`gate on_rollback failed (${r.detail}); the rollback goes on`);
  }

  function analysisOf(ctx: DeployContext, canaryPool: Target[], stablePool: Target[]): Analysis | null {
    return options.analysis ? analysisFor(ctx, options.analysis, { canary: canaryPool, stable: stablePool }, options) : null;
  }

  return {
    name: 'strategy:canary',
    async run(ctx, runner) {
      const open = ctx.canary?.open ?? null;
      const traffic = ctx.traffic;
      const { canaryPool, stablePool } = pools(ctx, open ? open.canaryHosts : null);
      const names = (ts: Target[]) => ts.map((t) => t.name).join(', ');

      // A rollback during a canary removes it: traffic to stable, then the canary hosts back.
      if (ctx.kind === 'rollback') {
        if (!open) {
          for (const [i, batch] of batches<Target>(ctx.targets, batchSize).entries()) {
            ctx.checkAborted();
            await runBatch(batch, (t) => runner.deployTarget(t), `batch ${i + 1}`);
          }
          return;
        }
        ctx.log.info(`Removing the canary of ${open.version} from ${names(canaryPool)}`);
        await backToStable(ctx, traffic, canaryPool, stablePool);
        await onRollbackGate(ctx, open.version, open.step, open.weight);
        await runBatch(canaryPool, (t) => runner.deployTarget(t), 'canary');
        if (traffic?.setWeights && !ctx.dryRun) await route(ctx, traffic, canaryPool, stablePool, null);
        await ctx.canary?.close('aborted');
        return;
      }

      const weighted = steps.some((s) => s.weight !== undefined);
      if (weighted && traffic && !traffic.setWeights) {
        throw new FraisierError('E_CONFIG', `canary: the traffic plugin ${traffic.name} cannot weight traffic (no setWeights); use steps without weight`, {
          key: 'steps',
        });
      }
      const canWeight = weighted && traffic?.setWeights !== undefined;
      if (weighted && !traffic) {
        ctx.log.warn(
          `no traffic plugin: the canary gets its natural share of requests, ${((100 * canaryPool.length) / ctx.targets.length).toFixed(0)}% (${canaryPool.length} of ${ctx.targets.length} hosts), not the steps' weights`,
        );
      }
      const mode = ctx.canary?.mode ?? null;
      const verdicts: string[] = [...(open?.verdicts ?? [])];
      let stepIndex = open ? open.step : 0;
      let percent: number | null = open ? open.weight : null;
      // What the stable hosts run: the history's live release, else (a first deployment here) what they were found on.
      const stableVersion = open?.stableVersion ?? ctx.previousVersion ?? ctx.states.get(stablePool[0]!.name)?.fromVersion ?? null;
      const save = () =>
        ctx.canary?.save({
          version: ctx.version,
          stableVersion,
          canaryHosts: canaryPool.map((t) => t.name),
          step: stepIndex,
          weight: percent,
          verdicts,
        });

      ctx.log.info(`Canary: ${names(canaryPool)}; stable: ${names(stablePool)}`);
      // Built (and its checks validated) before any host changes; started once the canary hosts are live.
      const analysis = analysisOf(ctx, canaryPool, stablePool);
      try {
        // 1. The canary hosts: deployed and health-checked (or, when continuing, taken over and checked).
        // With weighted steps, their servers are taken out of the traffic first (weight 0): the traffic
        // plugin then keeps them out through their restart (its drain finds nothing to change, and its
        // "back up" leaves the weight 0), so a healthy canary gets no request before step 1's weights.
        if (!open && canWeight && steps[0]!.weight !== undefined && !ctx.dryRun) {
          await ctx.fence();
          await traffic!.setWeights!(weightsFor(canaryPool, 0, stablePool, 1), ctx);
          percent = 0;
          ctx.log.info(`the canary hosts (${names(canaryPool)}) get no request until step 1 (${steps[0]!.weight}%)`);
        }
        if (open) {
          await runBatch(canaryPool, (t) => (runner.adoptTarget ? runner.adoptTarget(t, open.stableVersion) : runner.checkTarget(t)), 'canary');
        } else {
          await runBatch(canaryPool, (t) => runner.deployTarget(t), 'canary');
        }
        if (ctx.dryRun) {
          ctx.log.info(
            `would shift traffic: ${steps.map((s) => `${s.weight ?? 'natural'}%${s.pause === undefined ? ' (wait for promote)' : ''}`).join(' → ')}, then promote ${names(stablePool)}`,
          );
          return;
        }
        await analysis?.start();
        let printed = 0;
        const print = (s: AnalysisStatus) => {
          for (const round of s.rounds.slice(printed)) collectRound(round, verdicts);
          printed = s.rounds.length;
          if (verdicts.length > 50) verdicts.splice(0, verdicts.length - 50);
        };

        /** Runs the analysis (or waits) for `ms`; throws on a failed verdict; false if it asks for a human. */
        const gate = async (ms: number): Promise<boolean> => {
          if (!analysis) {
            await runner.sleep(ms);
            return true;
          }
          ctx.checkAborted();
          const a = analysis;
          const timer = setInterval(() => print(a.status()), 200);
          let status: AnalysisStatus;
          try {
            status = await abortable(ctx.signal, a.run(ms));
          } finally {
            clearInterval(timer);
          }
          print(status);
          await save();
          if (status.phase === 'failed' || status.phase === 'error') {
            throw new FraisierError('E_HEALTH', verdictLine('canary', status), { step: 'analysis' });
          }
          if (status.phase === 'inconclusive') {
            ctx.log.warn(`${verdictLine('canary', status)}: not promoting`);
            return false;
          }
          return true;
        };

        // A gate halted the canary last time: the `promote` that continues it approves that gate.
        let approved: string | null = open && verdicts.at(-1)?.startsWith(HALTED) ? verdicts.at(-1)!.slice(HALTED.length) : null;
        /** Runs a gate; false (after holding the canary, its reason printed and recorded) when it halts. */
        const passGate = async (name: GateName, gateCmd: string | undefined, step: number, weight: number | null, where: string): Promise<boolean> => {
          if (!gateCmd) return true;
          if (approved === name) {
            approved = null;
            ctx.log.info(`gate ${name}: approved by fraisier promote`);
            verdicts.push(`gate ${name}: approved by fraisier promote`);
            return true;
          }
          ctx.checkAborted();
          const r = await runGate(
            gateCmd,
            name,
            { fraise: ctx.fraise, environment: ctx.environment, version: ctx.version, step: step + 1, weight },
            gateTimeout,
            ctx.signal,
          );
          ctx.checkAborted();
          if (r.ok) {
            ctx.log.info(`gate ${name} passed (${r.detail})`);
            return true;
          }
          ctx.log.warn(
            `gate ${name} halted the canary ${where} (${r.detail}): fraisier promote ${ctx.fraise} ${ctx.environment} continues, fraisier rollback ${ctx.fraise} ${ctx.environment} aborts`,
          );
          // Halted before any weight was set: the canary gets no traffic while it waits.
          if (canWeight && percent === null) {
            await backToStable(ctx, traffic, canaryPool, stablePool);
            percent = 0;
          }
          verdicts.push(`${HALTED}${name}`);
          await save();
          ctx.canary?.hold();
          return false;
        };

        // 2. The traffic steps.
        const first = open ? open.step + 1 : 0;
        for (let i = first; i < steps.length; i++) {
          ctx.checkAborted();
          const step = steps[i]!;
          // Before each traffic increase; when it halts, the canary stays at the step before.
          if (canWeight && step.weight !== undefined && (percent === null || step.weight > percent)) {
            stepIndex = i - 1; // halted here, the canary stays at the step before; promote continues with this one
            if (!(await passGate('before_step', gates.beforeStep, i, step.weight, `before step ${i + 1} (${step.weight}%)`))) return;
          }
          stepIndex = i;
          ctx.log.info(
            `Step ${i + 1}/${steps.length}: ${step.weight !== undefined ? `${step.weight}%` : 'natural share'}${step.pause !== undefined ? ` for ${toMs(step.pause, 'pause')} ms` : ', then wait for promote'}`,
          );
          if (canWeight && step.weight !== undefined) {
            await route(ctx, traffic!, canaryPool, stablePool, step.weight);
            percent = step.weight;
          }
          await save();
          const canaryOnly = mode === 'only' && i === first;
          if (step.pause === undefined && !canaryOnly) {
            ctx.log.info(
              `Paused at step ${i + 1}: fraisier promote ${ctx.fraise} ${ctx.environment} continues, fraisier rollback ${ctx.fraise} ${ctx.environment} aborts`,
            );
            ctx.canary?.hold();
            return;
          }
          // --canary-only runs the analysis for the canary duration on the first step, then holds.
          const passed = await gate(canaryOnly ? durationMs : toMs(step.pause!, 'pause'));
          if (!passed || canaryOnly) {
            ctx.canary?.hold();
            return;
          }
        }

        // 3. Promotion: the rest of the fleet, rolling; then an even split.
        stepIndex = Math.max(stepIndex, steps.length - 1);
        if (!(await passGate('confirm_promotion', gates.confirmPromotion, stepIndex, percent, 'before the promotion'))) return;
        ctx.log.info(`Promoting ${ctx.version}: ${names(stablePool)}`);
        const all = batches<Target>(stablePool, batchSize);
        for (const [i, batch] of all.entries()) {
          ctx.checkAborted();
          if (all.length > 1) ctx.log.info(`Batch ${i + 1}/${all.length}: ${names(batch)}`);
          await runBatch(batch, (t) => runner.deployTarget(t), `batch ${i + 1}`);
          if (i < all.length - 1 && waitMs > 0) await runner.sleep(waitMs);
        }
        if (canWeight) await route(ctx, traffic!, canaryPool, stablePool, null);
        await ctx.canary?.close('promoted');
      } catch (err) {
        // Traffic goes back to the stable hosts first; the Deployer then rolls back the canary hosts.
        const e = asFraisierError(err);
        if (e.code !== 'E_LOCKED') {
          await backToStable(ctx, traffic, canaryPool, stablePool);
          await onRollbackGate(ctx, ctx.version, stepIndex, percent);
        }
        await ctx.canary?.close('aborted').catch((ce) => ctx.log.warn(`could not record the canary as aborted: ${asFraisierError(ce).message}`));
        throw e;
      } finally {
        if (!ctx.dryRun) await analysis?.stop().catch((err) => ctx.log.warn(`analysis: ${asFraisierError(err).message}`));
      }
    },
  };
}

/**
 * Keeps one analysis round's verdict lines for the canary record (`status` shows the latest). The analysis
 * prints them itself as it measures (and so records them in the history, as the deployment's events).
 */
function collectRound(round: AnalysisRound, verdicts: string[]): void {
  for (const r of round.results) verdicts.push(`${r.metric}: ${r.message}`);
}

registry.registerStrategy('canary', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  if (env.strategy.type !== 'canary') return canary();
  const options = canaryOptionsFromYaml(env.strategy, env);
  // `metrics_sources:` (plugins/metrics/sources.yaml.ts), when the environment has it: the sources to ask
  const sources = metricSourcesFor(env, config);
  return canary(sources && options.analysis && typeof options.analysis === 'object' ? { ...options, analysis: { ...options.analysis, sources } } : options);
});

/** The SDK options a YAML canary stands for (the health-check URL and the service come from the environment). */
export function canaryOptionsFromYaml(y: CanaryYaml, env?: NormalizedEnvironment): CanaryOptions {
  const check = env?.health?.check;
  const service = env?.service;
  return {
    instances: y.instances,
    steps: y.steps,
    duration: y.durationMs,
    batchSize: y.batchSize,
    analysis: y.analysis,
    ...(y.gates ? { gates: y.gates } : {}),
    ...(check?.type === 'http' ? { healthUrl: check.url } : {}),
    ...(service?.type === 'supervisor' ? { service: { type: 'supervisor' as const, name: service.program } } : {}),
    ...(service?.type === 'systemd' ? { service: { type: 'systemd' as const, name: service.unit } } : {}),
  };
}
