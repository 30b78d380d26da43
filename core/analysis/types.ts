/**
 * The contract between a canary (or a bake period) and the metrics that judge it. A {@link MetricSource}
 * measures one metric over one pool of targets during a window; an {@link Analysis} asks the sources on an
 * interval and turns the measurements into verdicts, in Argo Rollouts' vocabulary (successful, failed,
 * inconclusive, error). Third parties add a source (Datadog, CloudWatch) in their own package by
 * implementing {@link MetricSource}.
 */
import type { Duration } from '../duration.js';
import type { Executor } from '../exec/executor.js';
import type { Logger } from '../log.js';
import type { Target, TrafficSwitch } from '../types.js';

/** The metrics the seed's YAML names; a source may offer any other name. */
export type MetricName = 'error_rate' | 'response_latency_p99' | 'cpu_usage' | 'memory_usage' | (string & {});

/** The pool a measurement is about: the hosts on the new release, or the ones still on the old. */
export type PoolName = 'canary' | 'stable';

/** What a source is asked: one metric over one pool, during the window `[since, until]` (epoch ms). */
export interface MetricQuery {
  readonly metric: MetricName;
  readonly pool: PoolName;
  readonly targets: readonly Target[];
  /** The release the pool runs. */
  readonly version: string;
  readonly since: number;
  readonly until: number;
}

/**
 * One metric over one pool. Units: `error_rate` in percent (0-100), latencies in milliseconds,
 * `cpu_usage` in percent of one core, `memory_usage` in MiB.
 */
export interface Measurement {
  /** The value; `NaN` when there was no data (an empty Prometheus result, no requests): inconclusive, never a pass. */
  readonly value: number;
  /** How many samples (requests, scrapes, reads) the value comes from; compared with a check's `minSamples`. */
  readonly samples: number;
  /** Optional raw samples (e.g. each request's latency in ms), for statistical comparisons (Mann-Whitney U). */
  readonly values?: readonly number[];
}

/** What an {@link Analysis} and its sources see of the deployment. */
export interface AnalysisContext {
  readonly fraise: string;
  readonly environment: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Epoch ms (the deployment's clock, a fake one in unit tests). */
  now(): number;
  /** The deployment's executor for a target (its SSH connection). */
  executor(target: Target): Executor;
  /** The environment's traffic plugin, or null (then the canary's share of traffic is its natural share). */
  readonly traffic: TrafficSwitch | null;
  /** The targets on the new release, and the ones on the old one. */
  readonly canary: readonly Target[];
  readonly stable: readonly Target[];
  readonly canaryVersion: string;
  readonly stableVersion: string | null;
  /**
   * Resolves after `ms` (the deployment's clock; rejects with the signal's reason when `signal` aborts).
   * Default: a real timer. Give it with a fake {@link now}, so rounds run instantly in a unit test.
   */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * The environment's health-check URL as seen from a target (`http://localhost:8000/health`): where the
   * default probe sends its requests when it has no `path`/`url` of its own.
   */
  readonly healthUrl?: string;
  /** The service the host source reads CPU and memory of (its main pid); default: whatever listens on the probe's port. */
  readonly service?: { readonly type: 'supervisor' | 'systemd'; readonly name: string };
}

/**
 * Measures metrics. A source that cannot answer (Prometheus down, SSH read failed) throws a
 * {@link MetricSourceError}: the analysis counts it as an error (see `consecutiveErrorLimit`), not as a
 * measured failure.
 */
export interface MetricSource {
  /** Namespaced, e.g. `source:prometheus`. */
  readonly name: string;
  /** Whether this source can measure `metric`. */
  provides(metric: MetricName): boolean;
  /**
   * Optional: the `minSamples` of a check on `metric` that sets none (e.g. 1 for a Prometheus query that
   * has no sample-count query). Default: 20 for request metrics (`error_rate`, `response_latency_*`), 1 otherwise.
   */
  defaultMinSamples?(metric: MetricName): number;
  /** Called once before the first measurement (a probe starts sending requests, a log reader notes its offset). */
  start?(ctx: AnalysisContext): Promise<void>;
  measure(query: MetricQuery, ctx: AnalysisContext): Promise<Measurement>;
  /** Called once at the end, whatever happened (stops probes, closes connections). */
  stop?(): Promise<void>;
}

/** Thrown by a source that could not measure (not a measured failure). */
export class MetricSourceError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(message);
    this.name = 'MetricSourceError';
  }
}

/** One metric's check. A check with neither an absolute limit nor a comparison only records the metric. */
export interface MetricCheck {
  readonly metric: MetricName;
  /** Name of the source to ask (`source:prometheus`); default: the first configured source that provides the metric. */
  readonly source?: string;
  /** Absolute upper limit on the canary's value (in the metric's unit). */
  readonly max?: number;
  /** Comparison to stable: canary ≤ stable + `maxIncrease` (in the metric's unit, e.g. 0.5 percentage points). */
  readonly maxIncrease?: number;
  /** Comparison to stable: canary ≤ stable × `maxRatio` (e.g. 1.2). */
  readonly maxRatio?: number;
  /** Fewer samples than this gives `inconclusive`, never a pass. Default 20 for request metrics, 1 otherwise. */
  readonly minSamples?: number;
  /** A failed critical metric fails the canary on its own, whatever the limits and the score. */
  readonly critical?: boolean;
  /** Weight in Kayenta-style scoring. Default 1. */
  readonly weight?: number;
  /** Also compare the canary's raw samples with stable's (Mann-Whitney U, two-sided), at this significance level (e.g. 0.05). */
  readonly mannWhitney?: { readonly alpha: number };
}

/** Options of an analysis: the checks, how often they run, and the limits Argo Rollouts has. */
export interface AnalysisOptions {
  readonly checks: readonly MetricCheck[];
  /**
   * The sources to ask. Default: the caller's `defaultSources` (the built-in strategies: the probe for the
   * request metrics and the host source for cpu and memory, plugins/metrics/sources.ts).
   */
  readonly sources?: readonly MetricSource[];
  /** Time between measurements. Default `30s`. */
  readonly interval?: Duration;
  /** Wait before the first measurement. Default 0. */
  readonly initialDelay?: Duration;
  /** More failed measurements than this fails the analysis. Default 0. */
  readonly failureLimit?: number;
  /** More inconclusive measurements than this ends the analysis as inconclusive. Default 0. */
  readonly inconclusiveLimit?: number;
  /** What an inconclusive analysis does: wait for a human (`pause`), or fail. Default `pause`. */
  readonly onInconclusive?: 'pause' | 'fail';
  /** More consecutive source errors than this fails the analysis. Default 4 (Argo's default). */
  readonly consecutiveErrorLimit?: number;
  /** Kayenta-style scoring over weighted metrics: a score ≥ `pass` passes, ≥ `marginal` is inconclusive, below fails. */
  readonly scoring?: { readonly pass: number; readonly marginal: number };
}

/** A measurement's or an analysis's outcome, in Argo Rollouts' vocabulary. */
export type AnalysisPhase = 'successful' | 'failed' | 'inconclusive' | 'error' | 'running';

/** One metric's result in one measurement round. */
export interface MetricResult {
  readonly metric: MetricName;
  readonly source: string;
  readonly phase: Exclude<AnalysisPhase, 'running'>;
  readonly canary: Measurement | null;
  readonly stable: Measurement | null;
  /** The line a user reads, with its numbers: `canary p99 182 ms vs stable 95 ms (limit 1.2×): FAIL`. */
  readonly message: string;
}

/** One measurement round: every check once. */
export interface AnalysisRound {
  /** Epoch ms. */
  readonly at: number;
  readonly results: readonly MetricResult[];
  /** The worst metric's phase (a failed critical metric or a failing score makes it `failed`). */
  readonly phase: Exclude<AnalysisPhase, 'running'>;
  /** The Kayenta-style score (0-100) when `scoring` is set and some metric could be judged. */
  readonly score?: number;
}

/** Where an analysis stands: its rounds so far, the counts, and the overall phase. */
export interface AnalysisStatus {
  readonly phase: AnalysisPhase;
  readonly rounds: readonly AnalysisRound[];
  readonly counts: {
    readonly successful: number;
    readonly failed: number;
    readonly inconclusive: number;
    readonly error: number;
    readonly consecutiveErrors: number;
  };
  /** Why it ended, with the counts, as Argo prints it: `failed (2) > failure_limit (1)`. Null while running. */
  readonly reason: string | null;
}

/**
 * A running analysis. `start` calls the sources' `start`; `measure` runs one round now and returns the
 * status after it; `run(ms)` measures every `interval` for `ms` (after `initialDelay`), in the background
 * of a traffic step, and resolves early when the phase leaves `running`; `stop` stops the sources.
 */
export interface Analysis {
  start(): Promise<void>;
  measure(): Promise<AnalysisStatus>;
  run(ms: number): Promise<AnalysisStatus>;
  status(): AnalysisStatus;
  stop(): Promise<void>;
}
