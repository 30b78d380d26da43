/**
 * The YAML of the canary strategy: the seed's `canary_config:` and `traffic_shifting:`, their normalizer
 * (into the options of `canary({...})`), and the checks they stand for.
 */
import { Type } from '../core/typebox.js';
import type { AnalysisOptions, MetricCheck } from '../core/analysis/types.js';
import { DurationSchema, NonEmptyString } from '../core/config/schema.js';
import { registry, type YamlContext } from '../core/registry.js';
import type { CanaryStep } from './canary.js';
import { checkGate, type CanaryGates } from './canary-gates.js';
import { redact } from '../core/secret.js';

/** The metrics `metrics_to_monitor` may name. */
export const CANARY_METRICS = ['error_rate', 'response_latency_p99', 'cpu_usage', 'memory_usage'] as const;

/** `canary_config.analysis:` — how often the metrics are measured and what the analysis tolerates. */
export const CanaryAnalysisSchema = Type.Object(
  {
    /** Time between measurements. Default 30s. */
    interval: Type.Optional(DurationSchema),
    /** Wait before the first measurement. Default 0. */
    initial_delay: Type.Optional(DurationSchema),
    /** More failed measurements than this fails the canary. Default 0. */
    failure_limit: Type.Optional(Type.Integer({ minimum: 0 })),
    /** More inconclusive measurements than this ends the analysis inconclusive. Default 0. */
    inconclusive_limit: Type.Optional(Type.Integer({ minimum: 0 })),
    /** More consecutive errors of a metric source than this fails the canary. Default 4. */
    consecutive_error_limit: Type.Optional(Type.Integer({ minimum: 0 })),
    /** An inconclusive analysis waits for a human (`pause`: promote or rollback) or fails the canary. Default pause. */
    on_inconclusive: Type.Optional(Type.Union([Type.Literal('pause'), Type.Literal('fail')])),
    /** Fewer requests than this in a measurement gives inconclusive, never a pass. Default 20. */
    min_samples: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Canary error rate at most stable's + this many percentage points (e.g. 0.5). */
    max_error_increase: Type.Optional(Type.Number({ minimum: 0 })),
    /** Canary p99 latency at most stable's × this (e.g. 1.2). */
    max_latency_ratio: Type.Optional(Type.Number({ minimum: 1 })),
  },
  { additionalProperties: false },
);

/** `canary_config.gates:` — commands or http(s) URLs that can halt the canary (Flagger's webhooks). */
export const CanaryGatesSchema = Type.Object(
  {
    /** Before each traffic increase; a non-zero exit or non-2xx answer halts the canary (promote continues, rollback aborts). */
    before_step: Type.Optional(NonEmptyString()),
    /** Before the rest of the fleet is promoted; a failure halts, as above. */
    confirm_promotion: Type.Optional(NonEmptyString()),
    /** When the canary is aborted; its failure only warns. */
    on_rollback: Type.Optional(NonEmptyString()),
    /** How long a gate may take before it counts as failed. Default 30s. */
    timeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

/** `canary_config:` — the seed's canary settings. */
export const CanaryConfigSchema = Type.Object(
  {
    /** The canary hosts: a count (the first N instances) or a list of instances. Default 1. */
    canary_instances: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1 }), Type.Array(NonEmptyString(), { minItems: 1, uniqueItems: true })], {
        expected: 'a number of hosts, or a list of instances',
      }),
    ),
    /** How long `--canary-only` (and a canary without traffic_shifting) runs the analysis. Default 5m. */
    canary_duration: Type.Optional(DurationSchema),
    /** The canary's error rate limit, in percent of requests (1 = 1 %). */
    canary_error_threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    /** The canary's p99 latency limit, in milliseconds. */
    canary_latency_threshold: Type.Optional(Type.Number({ minimum: 0 })),
    /** Metrics measured and judged: error_rate, response_latency_p99, cpu_usage, memory_usage. Default the first two. */
    metrics_to_monitor: Type.Optional(Type.Array(Type.String(), { uniqueItems: true })),
    /** Hosts deployed at once when promoting the rest of the fleet. Default 1. */
    batch_size: Type.Optional(Type.Integer({ minimum: 1 })),
    /** How the analysis runs. */
    analysis: Type.Optional(CanaryAnalysisSchema),
    /** Gates: commands or URLs run before each traffic increase, before the promotion, and on abort. */
    gates: Type.Optional(CanaryGatesSchema),
  },
  { additionalProperties: false },
);

/** `traffic_shifting:` — the steps of a canary's share of requests. */
export const TrafficShiftingSchema = Type.Object(
  {
    /** Shift traffic by weights (needs a load balancer). Default true when a schedule is given. */
    enabled: Type.Optional(Type.Boolean()),
    /** The steps; the last must be 100 (the promotion). A step without duration waits for `fraisier promote`. */
    schedule: Type.Optional(
      Type.Array(
        Type.Object(
          {
            /** Percent of requests to the canary hosts (1 to 100). */
            percentage: Type.Number(),
            /** How long the step lasts; omitted: wait for `fraisier promote`. */
            duration: Type.Optional(DurationSchema),
          },
          { additionalProperties: false },
        ),
        { minItems: 1 },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The normalized options of the canary strategy (`env.strategy` with `type: 'canary'`). */
export interface CanaryYaml {
  /** A count or instance names. */
  instances: number | string[];
  /** canary_duration in ms (default 5 minutes). */
  durationMs: number;
  /** The traffic steps before promotion. */
  steps: CanaryStep[];
  /** Promotion batch size (default 1). */
  batchSize: number;
  /** The analysis the thresholds stand for; sources default to the probe and the host source. */
  analysis: AnalysisOptions;
  /** The gates (`canary_config.gates`), when given. */
  gates?: CanaryGates;
}

declare module '../core/registry.js' {
  interface StrategyOptionsByName {
    canary: CanaryYaml;
  }
}

type Block = {
  canary_config?: {
    canary_instances?: number | string[];
    canary_duration?: number | string;
    canary_error_threshold?: number;
    canary_latency_threshold?: number;
    metrics_to_monitor?: string[];
    batch_size?: number;
    analysis?: {
      interval?: number | string;
      initial_delay?: number | string;
      failure_limit?: number;
      inconclusive_limit?: number;
      consecutive_error_limit?: number;
      on_inconclusive?: 'pause' | 'fail';
      min_samples?: number;
      max_error_increase?: number;
      max_latency_ratio?: number;
    };
    gates?: { before_step?: string; confirm_promotion?: string; on_rollback?: string; timeout?: number | string };
  };
  traffic_shifting?: { enabled?: boolean; schedule?: { percentage: number; duration?: number | string }[] };
};

function normalize(block: Block, ctx: YamlContext): CanaryYaml {
  const cc = block.canary_config ?? {};
  const at = (...k: (string | number)[]) => ctx.at('canary_config', ...k);
  const hosts = ctx.env.instances ?? [];
  const instances = cc.canary_instances ?? 1;
  if (typeof instances === 'number') {
    if (hosts.length > 0 && instances >= hosts.length) {
      throw ctx.error(
        at('canary_instances'),
        `${instances} canary instance(s) out of ${hosts.length} host(s) leaves no stable host: expected fewer than ${hosts.length}`,
      );
    }
  } else {
    const unknown = instances.filter((h) => !hosts.includes(h));
    if (unknown.length > 0) throw ctx.error(at('canary_instances'), `${unknown.join(', ')} not in instances (${hosts.join(', ')})`);
    if (instances.length >= hosts.length) {
      throw ctx.error(at('canary_instances'), `every instance is a canary: expected fewer than the ${hosts.length} instances, so that stable hosts remain`);
    }
  }
  const durationMs = cc.canary_duration !== undefined ? ctx.ms(cc.canary_duration, at('canary_duration')) : 5 * 60_000;

  const metrics = cc.metrics_to_monitor ?? ['error_rate', 'response_latency_p99'];
  metrics.forEach((m, i) => {
    if (!(CANARY_METRICS as readonly string[]).includes(m)) {
      throw ctx.error(at('metrics_to_monitor', i), `unknown metric ${JSON.stringify(m)}: expected one of ${CANARY_METRICS.join(', ')}`);
    }
  });

  const ts = block.traffic_shifting;
  const steps: CanaryStep[] = [];
  if (ts?.schedule && ts.enabled !== false) {
    ts.schedule.forEach((s, i) => {
      if (!Number.isInteger(s.percentage) || s.percentage < 1 || s.percentage > 100) {
        throw ctx.error(
          ctx.at('traffic_shifting', 'schedule', i, 'percentage'),
          `expected a whole percentage from 1 to 100, got ${JSON.stringify(s.percentage)}`,
        );
      }
      const prev = ts.schedule![i - 1];
      if (prev && s.percentage <= prev.percentage) {
        throw ctx.error(
          ctx.at('traffic_shifting', 'schedule', i, 'percentage'),
          `expected more than the step before (${prev.percentage}), got ${s.percentage}`,
        );
      }
    });
    const last = ts.schedule[ts.schedule.length - 1]!;
    if (last.percentage !== 100) {
      throw ctx.error(
        ctx.at('traffic_shifting', 'schedule', ts.schedule.length - 1, 'percentage'),
        `the schedule must end at 100 (the full rollout), got ${last.percentage}`,
      );
    }
    for (const [i, s] of ts.schedule.slice(0, -1).entries()) {
      steps.push({
        weight: s.percentage,
        ...(s.duration !== undefined ? { pause: ctx.ms(s.duration, ctx.at('traffic_shifting', 'schedule', i, 'duration')) } : {}),
      });
    }
  }
  if (ts?.enabled === true && !ts.schedule)
    throw ctx.error(ctx.at('traffic_shifting'), 'traffic_shifting is enabled but has no schedule: expected schedule: [{percentage, duration}, ...]');
  if (steps.length > 0 && ctx.raw['load_balancer'] === undefined) {
    throw ctx.error(ctx.at('traffic_shifting'), 'traffic_shifting sets the canary share through weights and needs a load_balancer (nginx or haproxy)');
  }
  if (steps.length === 0) steps.push({ pause: durationMs });

  const a = cc.analysis ?? {};
  const request = (m: string) => m === 'error_rate' || m === 'response_latency_p99';
  const checks: MetricCheck[] = metrics.map((metric) => {
    const c: { -readonly [K in keyof MetricCheck]: MetricCheck[K] } = { metric };
    if (metric === 'error_rate') {
      if (cc.canary_error_threshold !== undefined) c.max = cc.canary_error_threshold;
      if (a.max_error_increase !== undefined) c.maxIncrease = a.max_error_increase;
    }
    if (metric === 'response_latency_p99') {
      if (cc.canary_latency_threshold !== undefined) c.max = cc.canary_latency_threshold;
      if (a.max_latency_ratio !== undefined) c.maxRatio = a.max_latency_ratio;
    }
    if (request(metric) && a.min_samples !== undefined) c.minSamples = a.min_samples;
    return c;
  });
  const analysis: AnalysisOptions = {
    checks,
    ...(a.interval !== undefined ? { interval: ctx.ms(a.interval, at('analysis', 'interval')) } : {}),
    ...(a.initial_delay !== undefined ? { initialDelay: ctx.ms(a.initial_delay, at('analysis', 'initial_delay')) } : {}),
    ...(a.failure_limit !== undefined ? { failureLimit: a.failure_limit } : {}),
    ...(a.inconclusive_limit !== undefined ? { inconclusiveLimit: a.inconclusive_limit } : {}),
    ...(a.consecutive_error_limit !== undefined ? { consecutiveErrorLimit: a.consecutive_error_limit } : {}),
    ...(a.on_inconclusive !== undefined ? { onInconclusive: a.on_inconclusive } : {}),
  };
  let gates: CanaryGates | undefined;
  if (cc.gates) {
    const g = cc.gates;
    for (const k of ['before_step', 'confirm_promotion', 'on_rollback'] as const) {
      if (g[k] === undefined) continue;
      try {
        checkGate(g[k], k);
      } catch {
        throw ctx.error(at('gates', k), `expected a command or an http(s) URL, got ${JSON.stringify(redact(String(g[k])))}`);
      }
    }
    gates = {
      ...(g.before_step !== undefined ? { beforeStep: g.before_step } : {}),
      ...(g.confirm_promotion !== undefined ? { confirmPromotion: g.confirm_promotion } : {}),
      ...(g.on_rollback !== undefined ? { onRollback: g.on_rollback } : {}),
      ...(g.timeout !== undefined ? { timeout: ctx.ms(g.timeout, at('gates', 'timeout')) } : {}),
    };
  }
  return {
    instances: typeof instances === 'number' ? instances : [...instances],
    durationMs,
    steps,
    batchSize: cc.batch_size ?? 1,
    analysis,
    ...(gates ? { gates } : {}),
  };
}

registry.registerStrategy({
  name: 'canary',
  keys: { canary_config: Type.Optional(CanaryConfigSchema), traffic_shifting: Type.Optional(TrafficShiftingSchema) },
  normalize,
  unselected(block: Block, ctx) {
    if (block.canary_config !== undefined || block.traffic_shifting !== undefined) {
      throw ctx.error(
        ctx.at(block.canary_config !== undefined ? 'canary_config' : 'traffic_shifting'),
        `canary settings given but deployment_strategy is ${ctx.env.strategy.type}: set deployment_strategy: canary`,
      );
    }
  },
});
