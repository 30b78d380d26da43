/**
 * The YAML of bake time, shared by `rolling_config.bake` and `blue_green_config.bake`: its schema and
 * normalizer (the implementation is strategies/bake.ts).
 */
import { Type } from '../core/typebox.js';
import type { AnalysisOptions, MetricCheck } from '../core/analysis/types.js';
import { DurationSchema } from '../core/config/schema.js';
import type { YamlContext } from '../core/registry.js';

/** The metrics a bake may judge (the canary's: strategies/canary.yaml.ts, not imported so that the strategies register in their order). */
export const BAKE_METRICS = ['error_rate', 'response_latency_p99', 'cpu_usage', 'memory_usage'] as const;

/** `<strategy>_config.bake:` — the analysis watching the hosts on the new release after the rollout (absolute limits only). */
export const BakeSchema = Type.Object(
  {
    /** How long the analysis watches the hosts after the rollout. */
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

/** A normalized bake: its duration and the analysis its thresholds stand for. */
export interface BakeYaml {
  durationMs: number;
  analysis: AnalysisOptions;
}

/** A `bake:` block as written. */
export type BakeBlock = {
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

/** Normalizes the `bake:` block of `<block>` (`rolling_config`, `blue_green_config`); errors name its keys. */
export function normalizeBake(b: BakeBlock, ctx: YamlContext, block: string): BakeYaml {
  const at = (...k: (string | number)[]) => ctx.at(block, 'bake', ...k);
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
