import { registry, type BuildContext } from '../core/registry.js';
import type { NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, asFraisierError } from '../core/errors.js';
import type { Strategy, Target } from '../core/types.js';
import { bakeFromYaml, bakeMs as checkBake, runBake, type BakeOptions } from './bake.js';

export type { BakeOptions } from './bake.js';

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
  const bakeMs = checkBake(bake, 'rolling');

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
      if (bake && ctx.kind !== 'rollback') await runBake(ctx, bake, bakeMs, ctx.targets);
    },
  };
}

registry.registerStrategy('rolling', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  if (env.strategy.type !== 'rolling') return rolling();
  const y = env.strategy;
  return rolling({
    batchSize: y.batchSize,
    waitBetweenBatches: y.waitBetweenBatchesMs,
    ...(y.bake ? { bake: bakeFromYaml(y.bake, env, config) } : {}),
  });
});
