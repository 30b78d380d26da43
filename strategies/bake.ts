/**
 * Bake time: after a rollout, the analysis watches the hosts on the new release for a while; a failed
 * verdict fails the deployment (which rolls back). Shared by the rolling strategy (every host) and the
 * blue-green strategy (the new colour, after the switch). See docs/analysis.md.
 */
import type { NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, abortable, asFraisierError } from '../core/errors.js';
import type { DeployContext, Target } from '../core/types.js';
import { createAnalysis, verdictLine } from '../core/analysis/index.js';
import type { Analysis, AnalysisContext, AnalysisOptions } from '../core/analysis/types.js';
import { defaultSources, metricSourcesFor } from '../plugins/metrics/sources.js';
import type { BakeYaml } from './bake.yaml.js';

/** A watch after the rollout: the analysis runs over the new release's hosts for `duration`; a failure rolls back. */
export interface BakeOptions {
  /** How long the analysis watches the hosts after the rollout (rolling: the last batch; blue-green: the switch). */
  duration: Duration;
  /**
   * What judges the hosts: the analysis engine's options (absolute limits only, `max`/`min`: there is no
   * stable pool to compare with), or a factory. The hosts on the new release are measured as the "canary"
   * pool. Without `sources`, the probe (request metrics) and the host source (cpu, memory) are asked.
   */
  analysis: AnalysisOptions | ((ctx: AnalysisContext) => Analysis);
  /** The health-check URL as seen from a host, where the default probe sends its requests. */
  healthUrl?: string;
  /** The service whose CPU and memory the default host source reads. */
  service?: { type: 'supervisor' | 'systemd'; name: string };
}

/**
 * Checks a strategy's bake options; returns the duration in ms (0 without a bake). A check that compares
 * with a stable pool is `E_CONFIG` (a bake has none). `strategy` names the strategy in the error.
 */
export function bakeMs(bake: BakeOptions | undefined, strategy: string): number {
  if (!bake) return 0;
  const ms = toMs(bake.duration, 'bake.duration');
  if (typeof bake.analysis === 'object') {
    bake.analysis.checks.forEach((c, i) => {
      if (c.maxIncrease !== undefined || c.maxRatio !== undefined || c.mannWhitney !== undefined) {
        throw new FraisierError(
          'E_CONFIG',
          `${strategy}: bake.analysis.checks[${i}] (${c.metric}) compares with a stable pool, which a bake does not have: use absolute limits (max)`,
          { key: `bake.analysis.checks[${i}]` },
        );
      }
    });
  }
  return ms;
}

/**
 * The analysis of a deployment (the bake's and the canary's): its context over the `canary` pool (the hosts
 * on the new release) and the `stable` pool, with the deployment's log, signal, clock, executors and
 * traffic plugin, then the engine on it (the built-in default sources: the probe and the host source), or
 * the caller's factory.
 */
export function analysisFor(
  ctx: DeployContext,
  analysis: AnalysisOptions | ((ctx: AnalysisContext) => Analysis),
  pools: { canary: readonly Target[]; stable: readonly Target[] },
  where: { healthUrl?: string; service?: { type: 'supervisor' | 'systemd'; name: string } },
): Analysis {
  const actx: AnalysisContext = {
    fraise: ctx.fraise,
    environment: ctx.environment,
    log: ctx.log,
    signal: ctx.signal,
    now: () => ctx.clock.now(),
    executor: (t) => ctx.executor(t),
    traffic: ctx.traffic,
    canary: pools.canary,
    stable: pools.stable,
    canaryVersion: ctx.version,
    stableVersion: ctx.previousVersion,
    sleep: (ms, signal) => ctx.clock.sleep(ms, signal),
    ...(where.healthUrl !== undefined ? { healthUrl: where.healthUrl } : {}),
    ...(where.service !== undefined ? { service: where.service } : {}),
  };
  return typeof analysis === 'function' ? analysis(actx) : createAnalysis(analysis, actx, { defaultSources });
}

/**
 * The bake: the analysis over `targets` for `ms`. Resolves on a pass (or an inconclusive verdict, which
 * warns and keeps the release); throws `E_HEALTH` on a failed or error verdict, and `E_ABORTED` at once
 * on Ctrl-C. Does nothing in a dry run.
 */
export async function runBake(ctx: DeployContext, bake: BakeOptions, ms: number, targets: readonly Target[]): Promise<void> {
  if (ctx.dryRun) {
    ctx.log.info(`would bake ${ctx.version} for ${ms} ms: the analysis would watch ${targets.map((t) => t.name).join(', ')}`);
    return;
  }
  const analysis = analysisFor(ctx, bake.analysis, { canary: targets, stable: [] }, bake);
  ctx.log.info(`Baking ${ctx.version} for ${ms} ms: the analysis watches ${targets.map((t) => t.name).join(', ')}`);
  await analysis.start();
  try {
    ctx.checkAborted();
    const status = await abortable(ctx.signal, analysis.run(ms));
    ctx.checkAborted();
    if (status.phase === 'failed' || status.phase === 'error') {
      throw new FraisierError('E_HEALTH', verdictLine('bake', status), { step: 'bake' });
    }
    if (status.phase === 'inconclusive') ctx.log.warn(`${verdictLine('bake', status)}: keeping ${ctx.version}`);
    else ctx.log.info(`Bake passed: ${ctx.version} kept`);
  } finally {
    await analysis.stop().catch((err) => ctx.log.warn(`analysis: ${asFraisierError(err).message}`));
  }
}

/**
 * The {@link BakeOptions} of a normalized YAML bake (`rolling_config.bake`, `blue_green_config.bake`):
 * the environment's `metrics_sources:` when it has one, its http health-check URL for the probe, its
 * service for the host source.
 */
export function bakeFromYaml(bake: BakeYaml, env: NormalizedEnvironment, config: unknown): BakeOptions {
  const check = env.health?.check;
  const service = env.service;
  // `metrics_sources:` (plugins/metrics/sources.yaml.ts), when the environment has it
  const sources = metricSourcesFor(env, config);
  return {
    duration: bake.durationMs,
    analysis: sources ? { ...bake.analysis, sources } : bake.analysis,
    ...(check?.type === 'http' ? { healthUrl: check.url } : {}),
    ...(service?.type === 'supervisor' ? { service: { type: 'supervisor' as const, name: service.program } } : {}),
    ...(service?.type === 'systemd' ? { service: { type: 'systemd' as const, name: service.unit } } : {}),
  };
}
