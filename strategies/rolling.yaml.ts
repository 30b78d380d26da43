/** The YAML of the rolling strategy: `rolling_config:` and its normalizer. */
import { Type } from '../core/typebox.js';
import { DurationSchema } from '../core/config/schema.js';
import { registry, type YamlContext } from '../core/registry.js';
import { BakeSchema, normalizeBake, type BakeBlock, type BakeYaml } from './bake.yaml.js';

export { BakeSchema } from './bake.yaml.js';

/** `rolling_config:` — how the rolling strategy batches hosts. */
export const RollingConfigSchema = Type.Object(
  {
    /** Hosts deployed at once. Default 1. */
    batch_size: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Pause between batches. Default 0. */
    wait_between_batches: Type.Optional(DurationSchema),
    /** Health probes per host (overridden by `rollback_config.health_check_retries`). */
    health_check_retries: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Roll back when a host fails its health check (overridden by the `rollback_config` key). */
    rollback_on_health_check_failure: Type.Optional(Type.Boolean()),
    /** Bake time: the analysis watches every host after the last batch; a failure rolls every host back. */
    bake: Type.Optional(BakeSchema),
  },
  { additionalProperties: false },
);

/** The normalized options of the rolling strategy (`env.strategy` with `type: 'rolling'`). */
export interface RollingYaml {
  /** Default 1. */
  batchSize: number;
  /** Default 0. */
  waitBetweenBatchesMs: number;
  /** `rolling_config.bake`, when given: its duration and the analysis its thresholds stand for. */
  bake?: BakeYaml;
}

declare module '../core/registry.js' {
  interface StrategyOptionsByName {
    rolling: RollingYaml;
  }
}

type RollingBlock = {
  rolling_config?: {
    batch_size?: number;
    wait_between_batches?: number | string;
    health_check_retries?: number;
    rollback_on_health_check_failure?: boolean;
    bake?: BakeBlock;
  };
};

/** The original Fraisier's health settings in rolling_config apply whatever the strategy (as before). */
function envelopeDefaults(block: RollingBlock, ctx: YamlContext): void {
  const rc = block.rolling_config;
  ctx.envelopeDefaults({
    ...(rc?.health_check_retries !== undefined ? { healthCheckRetries: rc.health_check_retries } : {}),
    ...(rc?.rollback_on_health_check_failure !== undefined ? { rollbackOnHealthCheckFailure: rc.rollback_on_health_check_failure } : {}),
  });
}

registry.registerStrategy({
  name: 'rolling',
  default: true,
  keys: { rolling_config: Type.Optional(RollingConfigSchema) },
  normalize(block, ctx): RollingYaml {
    envelopeDefaults(block, ctx);
    const rc = block.rolling_config;
    return {
      batchSize: rc?.batch_size ?? 1,
      waitBetweenBatchesMs: rc?.wait_between_batches !== undefined ? ctx.ms(rc.wait_between_batches, ctx.at('rolling_config', 'wait_between_batches')) : 0,
      ...(rc?.bake ? { bake: normalizeBake(rc.bake, ctx, 'rolling_config') } : {}),
    };
  },
  unselected(block, ctx) {
    envelopeDefaults(block, ctx);
    if (block.rolling_config?.bake !== undefined) {
      throw ctx.error(
        ctx.at('rolling_config', 'bake'),
        `bake is a rolling setting but deployment_strategy is ${ctx.env.strategy.type}: set deployment_strategy: rolling${ctx.env.strategy.type === 'blue_green' ? ', or move it to blue_green_config.bake' : ''}`,
      );
    }
  },
});
