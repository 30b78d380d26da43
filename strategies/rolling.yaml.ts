/** The YAML of the rolling strategy: `rolling_config:` and its normalizer. */
import { Type } from '../core/typebox.js';
import type { AnalysisOptions, MetricCheck } from '../core/analysis/types.js';
import { DurationSchema } from '../core/config/schema.js';
import { registry, type YamlContext } from '../core/registry.js';

/** The metrics a bake may judge (the canary's: strategies/canary.yaml.ts, not imported so that the strategies register in their order). */
const BAKE_METRICS = ['error_rate', 'response_latency_p99', 'cpu_usage', 'memory_usage'] as const;

/** `rolling_config.bake:` — the analysis watching every host after the last batch (absolute limits only). */
export const BakeSchema = Type.Object(
  {
    /** How long the analysis watches the fleet after the last batch. */
    duration: DurationSchema,
    /** Metrics judged: error_rate, response_latency_p99, cpu_usage, memory_usage. Default the first two. */
    metrics_to_monitor: Type.Optional(Type.Array(Type.String(), { uniqueItems: true })),
    /** The error rate limit, in percent of requests. */
    error_threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    /** The p99 latency limit, in milliseconds. */
    latency_threshold: Type.Optional(Type.Number({ minimum: 0 })),
    /** How the analysis runs. */
    analysis: Type.Optional(
      Type.Object(
        {
          /** Time between measurements. Default 30s. */
          interval: Type.Optional(DurationSchema),
          /** Wait before the first measurement. Default 0. */
          initial_delay: Type.Optional(DurationSchema),
          /** More failed measurements than this fails the bake. Default 0. */
          failure_limit: Type.Optional(Type.Integer({ minimum: 0 })),
          /** More inconclusive measurements than this ends the bake inconclusive (kept, with a warning). Default 0. */
          inconclusive_limit: Type.Optional(Type.Integer({ minimum: 0 })),
          /** More consecutive errors of a metric source than this fails the bake. Default 4. */
          consecutive_error_limit: Type.Optional(Type.Integer({ minimum: 0 })),
          /** Fewer requests than this in a measurement gives inconclusive. Default 20. */
          min_samples: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

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
  bake?: { durationMs: number; analysis: AnalysisOptions };
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

type BakeBlock = {
  duration: number | string;
  metrics_to_monitor?: string[];
  error_threshold?: number;
  latency_threshold?: number;
  analysis?: {
    interval?: number | string;
    initial_delay?: number | string;
    failure_limit?: number;
    inconclusive_limit?: number;
    consecutive_error_limit?: number;
    min_samples?: number;
  };
};

function normalizeBake(b: BakeBlock, ctx: YamlContext): { durationMs: number; analysis: AnalysisOptions } {
  const at = (...k: (string | number)[]) => ctx.at('rolling_config', 'bake', ...k);
  const metrics = b.metrics_to_monitor ?? ['error_rate', 'response_latency_p99'];
  metrics.forEach((m, i) => {
    if (!(BAKE_METRICS as readonly string[]).includes(m)) {
      throw ctx.error(at('metrics_to_monitor', i), `unknown metric ${JSON.stringify(m)}: expected one of ${BAKE_METRICS.join(', ')}`);
    }
  });
  const a = b.analysis ?? {};
  const checks: MetricCheck[] = metrics.map((metric) => ({
    metric,
    ...(metric === 'error_rate' && b.error_threshold !== undefined ? { max: b.error_threshold } : {}),
    ...(metric === 'response_latency_p99' && b.latency_threshold !== undefined ? { max: b.latency_threshold } : {}),
    ...((metric === 'error_rate' || metric === 'response_latency_p99') && a.min_samples !== undefined ? { minSamples: a.min_samples } : {}),
  }));
  return {
    durationMs: ctx.ms(b.duration, at('duration')),
    analysis: {
      checks,
      ...(a.interval !== undefined ? { interval: ctx.ms(a.interval, at('analysis', 'interval')) } : {}),
      ...(a.initial_delay !== undefined ? { initialDelay: ctx.ms(a.initial_delay, at('analysis', 'initial_delay')) } : {}),
      ...(a.failure_limit !== undefined ? { failureLimit: a.failure_limit } : {}),
      ...(a.inconclusive_limit !== undefined ? { inconclusiveLimit: a.inconclusive_limit } : {}),
      ...(a.consecutive_error_limit !== undefined ? { consecutiveErrorLimit: a.consecutive_error_limit } : {}),
    },
  };
}

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
      ...(rc?.bake ? { bake: normalizeBake(rc.bake, ctx) } : {}),
    };
  },
  unselected(block, ctx) {
    envelopeDefaults(block, ctx);
    if (block.rolling_config?.bake !== undefined) {
      throw ctx.error(
        ctx.at('rolling_config', 'bake'),
        `bake is a rolling setting but deployment_strategy is ${ctx.env.strategy.type}: set deployment_strategy: rolling`,
      );
    }
  },
});
