import { registry, type BuildContext } from '../core/registry.js';
import type { NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, asFraisierError } from '../core/errors.js';
import type { DeployContext, Strategy, Target } from '../core/types.js';
import { createAnalysis } from '../core/analysis/index.js';
import type { Analysis, AnalysisContext, AnalysisOptions } from '../core/analysis/types.js';
import { metricSourcesFor } from '../plugins/metrics/sources.js';

/** A watch after the rollout: the analysis runs over every host for `duration`; a failure rolls back every host. */
export interface BakeOptions {
  /** How long the analysis watches the fleet after the last batch. */
  duration: Duration;
  /**
   * What judges the fleet: the analysis engine's options (absolute limits only, `max`/`min`: there is no
   * stable pool to compare with), or a factory. Every host is measured as the "canary" pool.
   */
  analysis: AnalysisOptions | ((ctx: AnalysisContext) => Analysis);
  /** The health-check URL as seen from a host, where the default probe sends its requests. */
  healthUrl?: string;
  /** The service whose CPU and memory the default host source reads. */
  service?: { type: 'supervisor' | 'systemd'; name: string };
}

/** Options of the rolling strategy. */
export interface RollingOptions {
  /** Targets deployed at once, in parallel. Default 1. */
  batchSize?: number;
  /** Pause after each batch but the last. Default 0. */
  waitBetweenBatches?: Duration;
  /**
   * Bake time: after the last batch, run the analysis over every host for a while; a failed verdict rolls
   * back every host (the seed's "monitor for issues"). An inconclusive one only warns. See docs/analysis.md.
   */
  bake?: BakeOptions;
}

/** Splits targets into batches of `size`, in order. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Runs `fn` on every target of a batch in parallel and waits for all of them; rejects if any failed
 * (with that target's error, or one error naming every failure).
 */
export async function runBatch(batch: readonly Target[], fn: (t: Target) => Promise<void>, label: string): Promise<void> {
  const settled = await Promise.allSettled(batch.map((t) => fn(t)));
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed.length === 0) return;
  const first = asFraisierError(failed[0]!.reason);
  if (failed.length === 1) throw first;
  throw new FraisierError(first.code, `${failed.length} targets failed in ${label}: ${failed.map((f) => asFraisierError(f.reason).message).join('; ')}`, {
    ...(first.target ? { target: first.target } : {}),
    step: 'batch',
  });
}

/**
 * Rolling deployment: targets in batches of `batchSize`, each batch in parallel, a pause between
 * batches. The first failed batch stops the rollout; the Deployer then rolls back every target that
 * was touched, and targets in later batches are never touched.
 */
export function rolling(options: RollingOptions = {}): Strategy {
  const batchSize = options.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new FraisierError('E_CONFIG', `rolling: batchSize must be a positive integer, got ${JSON.stringify(batchSize)}`, { key: 'batchSize' });
  }
  const wait = toMs(options.waitBetweenBatches ?? 0, 'waitBetweenBatches');
  const bake = options.bake;
  const bakeMs = bake ? toMs(bake.duration, 'bake.duration') : 0;
  if (bake && typeof bake.analysis === 'object') {
    bake.analysis.checks.forEach((c, i) => {
      if (c.maxIncrease !== undefined || c.maxRatio !== undefined || c.mannWhitney !== undefined) {
        throw new FraisierError(
          'E_CONFIG',
          `rolling: bake.analysis.checks[${i}] (${c.metric}) compares with a stable pool, which a bake does not have: use absolute limits (max)`,
          { key: `bake.analysis.checks[${i}]` },
        );
      }
    });
  }

  /** The bake: the analysis over every host for its duration; throws E_HEALTH on a failed verdict. */
  async function runBake(ctx: DeployContext): Promise<void> {
    if (!bake || ctx.dryRun) return;
    const actx: AnalysisContext = {
      fraise: ctx.fraise,
      environment: ctx.environment,
      log: ctx.log,
      signal: ctx.signal,
      now: () => ctx.clock.now(),
      executor: (t) => ctx.executor(t),
      traffic: ctx.traffic,
      canary: ctx.targets,
      stable: [],
      canaryVersion: ctx.version,
      stableVersion: ctx.previousVersion,
      sleep: (ms, signal) => ctx.clock.sleep(ms, signal),
      ...(bake.healthUrl !== undefined ? { healthUrl: bake.healthUrl } : {}),
      ...(bake.service !== undefined ? { service: bake.service } : {}),
    };
    const analysis = typeof bake.analysis === 'function' ? bake.analysis(actx) : createAnalysis(bake.analysis, actx);
    ctx.log.info(`Baking ${ctx.version} for ${bakeMs} ms: the analysis watches ${ctx.targets.map((t) => t.name).join(', ')}`);
    await analysis.start();
    try {
      ctx.checkAborted();
      const status = await analysis.run(bakeMs);
      ctx.checkAborted();
      if (status.phase === 'failed' || status.phase === 'error') {
        throw new FraisierError('E_HEALTH', `bake analysis ${status.phase}${status.reason ? `: ${status.reason}` : ''}`, { step: 'bake' });
      }
      if (status.phase === 'inconclusive') ctx.log.warn(`bake analysis inconclusive${status.reason ? `: ${status.reason}` : ''}: keeping ${ctx.version}`);
      else ctx.log.info(`Bake passed: ${ctx.version} kept`);
    } finally {
      await analysis.stop().catch((err) => ctx.log.warn(`analysis: ${asFraisierError(err).message}`));
    }
  }

  return {
    name: 'strategy:rolling',
    async run(ctx, runner) {
      const all = batches<Target>(ctx.targets, batchSize);
      for (const [i, batch] of all.entries()) {
        ctx.checkAborted();
        if (all.length > 1) ctx.log.info(`Batch ${i + 1}/${all.length}: ${batch.map((t) => t.name).join(', ')}`);
        await runBatch(batch, (t) => runner.deployTarget(t), `batch ${i + 1}`);
        if (i < all.length - 1 && wait > 0) {
          ctx.log.info(`Waiting ${wait} ms before the next batch`);
          await runner.sleep(wait);
        }
      }
      if (ctx.kind !== 'rollback') await runBake(ctx);
    },
  };
}

registry.registerStrategy('rolling', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  if (env.strategy.type !== 'rolling') return rolling();
  const y = env.strategy;
  const bake = y.bake;
  const check = env.health?.check;
  const service = env.service;
  // `metrics_sources:` (plugins/metrics/sources.yaml.ts), when the environment has it
  const sources = bake ? metricSourcesFor(env, config) : undefined;
  return rolling({
    batchSize: y.batchSize,
    waitBetweenBatches: y.waitBetweenBatchesMs,
    ...(bake
      ? {
          bake: {
            duration: bake.durationMs,
            analysis: sources ? { ...bake.analysis, sources } : bake.analysis,
            ...(check?.type === 'http' ? { healthUrl: check.url } : {}),
            ...(service?.type === 'supervisor' ? { service: { type: 'supervisor' as const, name: service.program } } : {}),
            ...(service?.type === 'systemd' ? { service: { type: 'systemd' as const, name: service.unit } } : {}),
          },
        }
      : {}),
  });
});
