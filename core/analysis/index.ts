/**
 * The analysis engine: asks the metric sources on an interval, judges every check against its absolute
 * limit and its comparison to the stable pool, and turns the rounds into a verdict in Argo Rollouts'
 * vocabulary (see {@link createAnalysis}).
 */
import { toMs } from '../duration.js';
import { FraisierError } from '../errors.js';
import { systemClock } from '../clock.js';
import { kayentaScore, mannWhitneyU } from './stats.js';
import type {
  Analysis,
  AnalysisContext,
  AnalysisOptions,
  AnalysisPhase,
  AnalysisRound,
  AnalysisStatus,
  Measurement,
  MetricCheck,
  MetricName,
  MetricResult,
  MetricSource,
  PoolName,
} from './types.js';

export * from './types.js';
export { kayentaScore, mannWhitneyU, normalSf, percentile, type MannWhitneyResult, type ScoredMetric } from './stats.js';

/** The metrics that count requests: their checks default to `minSamples` 20. */
const REQUEST_METRICS = new Set(['error_rate', 'response_latency_p50', 'response_latency_p90', 'response_latency_p95', 'response_latency_p99']);

type Verdict = Exclude<AnalysisPhase, 'running'>;

/** Argo's order: a round (and a run) takes its worst metric's phase. */
const WORSENESS: Record<Verdict, number> = { successful: 0, inconclusive: 1, error: 2, failed: 3 };

function worst(phases: readonly Verdict[]): Verdict {
  return phases.reduce<Verdict>((w, p) => (WORSENESS[p] > WORSENESS[w] ? p : w), 'successful');
}

/** How a metric reads in a verdict line: its label and unit. */
function describe(metric: MetricName): { label: string; unit: string; digits: number } {
  if (metric === 'error_rate') return { label: 'error rate', unit: ' %', digits: 1 };
  const p = /^response_latency_(p\d+)$/.exec(metric);
  if (p) return { label: p[1]!, unit: ' ms', digits: 0 };
  if (metric === 'cpu_usage') return { label: 'cpu', unit: ' %', digits: 1 };
  if (metric === 'memory_usage') return { label: 'memory', unit: ' MiB', digits: 0 };
  return { label: metric, unit: '', digits: 2 };
}

function fmt(metric: MetricName, v: number): string {
  const d = describe(metric);
  if (!Number.isFinite(v)) return 'no data';
  return `${v.toFixed(d.digits)}${d.unit}`;
}

/** A number as a user wrote it (no trailing zeros). */
function num(v: number): string {
  return String(Number(v.toFixed(4)));
}

/**
 * What the caller of {@link createAnalysis} brings: the core knows no metric source itself (the sources are
 * plugins, plugins/metrics/), so a strategy passes the ones to ask when the options name none.
 */
export interface AnalysisDefaults {
  /**
   * The sources to ask when `options.sources` is not given: the built-in strategies pass
   * `defaultSources()` of plugins/metrics/sources.ts (the probe and the host source).
   */
  defaultSources?: () => readonly MetricSource[];
}

/** Validates the checks against the sources: every check's metric must be provided by some source. */
function sourceFor(check: MetricCheck, sources: readonly MetricSource[]): MetricSource {
  if (check.source !== undefined) {
    const s = sources.find((x) => x.name === check.source);
    if (!s)
      throw new FraisierError(
        'E_CONFIG',
        `analysis: metric ${check.metric}: source ${check.source} is not configured (configured: ${sources.map((x) => x.name).join(', ') || 'none'})`,
      );
    if (!s.provides(check.metric)) throw new FraisierError('E_CONFIG', `analysis: metric ${check.metric}: source ${check.source} does not provide it`);
    return s;
  }
  const s = sources.find((x) => x.provides(check.metric));
  if (!s)
    throw new FraisierError(
      'E_CONFIG',
      `analysis: unknown metric ${check.metric}: no configured source provides it (sources: ${sources.map((x) => x.name).join(', ') || 'none'})`,
    );
  return s;
}

function validateChecks(checks: readonly MetricCheck[]): void {
  for (const c of checks) {
    const bad = (key: string, v: unknown, what: string) => {
      throw new FraisierError('E_CONFIG', `analysis: metric ${c.metric}: ${key}: expected ${what}, got ${JSON.stringify(v)}`);
    };
    for (const key of ['max', 'maxIncrease'] as const) if (c[key] !== undefined && !Number.isFinite(c[key])) bad(key, c[key], 'a number');
    if (c.maxRatio !== undefined && !(Number.isFinite(c.maxRatio) && c.maxRatio > 0)) bad('maxRatio', c.maxRatio, 'a number above 0');
    if (c.minSamples !== undefined && !(Number.isInteger(c.minSamples) && c.minSamples >= 0)) bad('minSamples', c.minSamples, 'a non-negative integer');
    if (c.weight !== undefined && !(Number.isFinite(c.weight) && c.weight >= 0)) bad('weight', c.weight, 'a non-negative number');
    if (c.mannWhitney !== undefined && !(c.mannWhitney.alpha > 0 && c.mannWhitney.alpha < 1))
      bad('mannWhitney.alpha', c.mannWhitney.alpha, 'a number between 0 and 1');
  }
}

/**
 * Judges one check from its measurements. Pure: exported for tests and for a strategy that wants to
 * judge measurements it took itself.
 */
export function judge(check: MetricCheck, source: string, canary: Measurement, stable: Measurement | null, defaultMinSamples?: number): MetricResult {
  const { label } = describe(check.metric);
  const minSamples = check.minSamples ?? defaultMinSamples ?? (REQUEST_METRICS.has(check.metric) || /^response_latency_/.test(check.metric) ? 20 : 1);
  const compares = check.maxIncrease !== undefined || check.maxRatio !== undefined || check.mannWhitney !== undefined;
  const result = (phase: Verdict, message: string): MetricResult => ({ metric: check.metric, source, phase, canary, stable, message });
  const stableText = stable && compares ? ` vs stable ${fmt(check.metric, stable.value)}` : '';
  const head = `canary ${label} ${fmt(check.metric, canary.value)}${stableText}`;
  if (!Number.isFinite(canary.value)) return result('inconclusive', `${head} (canary: no data, ${canary.samples} samples): INCONCLUSIVE`);
  if (canary.samples < minSamples) return result('inconclusive', `${head} (canary: ${canary.samples} samples < min ${minSamples}): INCONCLUSIVE`);
  const limits: string[] = [];
  let failed = false;
  if (check.max !== undefined) {
    limits.push(`max ${fmt(check.metric, check.max)}`);
    if (canary.value > check.max) failed = true;
  }
  if (compares) {
    if (!stable) return result('inconclusive', `${head} (no stable hosts to compare with): INCONCLUSIVE`);
    if (!Number.isFinite(stable.value)) return result('inconclusive', `${head} (stable: no data, ${stable.samples} samples): INCONCLUSIVE`);
    if (stable.samples < minSamples) return result('inconclusive', `${head} (stable: ${stable.samples} samples < min ${minSamples}): INCONCLUSIVE`);
    if (check.maxIncrease !== undefined) {
      limits.push(`limit +${num(check.maxIncrease)}${check.metric === 'error_rate' ? ' points' : describe(check.metric).unit}`);
      if (canary.value > stable.value + check.maxIncrease) failed = true;
    }
    if (check.maxRatio !== undefined) {
      limits.push(`limit ${num(check.maxRatio)}×`);
      if (canary.value > stable.value * check.maxRatio) failed = true;
    }
    if (check.mannWhitney) {
      const a = canary.values ?? [];
      const b = stable.values ?? [];
      if (a.length < minSamples || b.length < minSamples) {
        return result('inconclusive', `${head} (Mann-Whitney needs ${minSamples} raw samples per pool, has ${a.length} and ${b.length}): INCONCLUSIVE`);
      }
      const mw = mannWhitneyU(a, b);
      limits.push(
        `Mann-Whitney U ${num(mw.u)}, p ${Number.isFinite(mw.p) ? mw.p.toPrecision(2) : 'n/a'} vs α ${num(check.mannWhitney.alpha)}${mw.aHigher ? ', canary higher' : ''}`,
      );
      // a significant difference fails only when the canary is the worse (higher) one
      if (Number.isFinite(mw.p) && mw.p < check.mannWhitney.alpha && mw.aHigher) failed = true;
    }
  }
  const suffix = limits.length ? ` (${limits.join('; ')})` : '';
  return result(failed ? 'failed' : 'successful', `${head}${suffix}: ${failed ? 'FAIL' : 'PASS'}`);
}

/**
 * The metrics behind an analysis's verdict, with their numbers, for an error line or a history reason:
 * `error_rate 20.0 % vs stable 0.0 % (limit +1 points)` (several joined with `; `). They come from the
 * last round of the deciding phase: its failed metrics for `failed` (its inconclusive ones when
 * `on_inconclusive: fail` decided), its errors for `error`, its inconclusive metrics for `inconclusive`.
 * Empty while running or when no metric explains it.
 */
export function verdictDetail(status: AnalysisStatus): string {
  const deciding: Exclude<AnalysisPhase, 'running'>[] =
    status.phase === 'failed' ? ['failed', 'inconclusive'] : status.phase === 'running' || status.phase === 'successful' ? [] : [status.phase];
  for (const phase of deciding) {
    let round: AnalysisRound | undefined;
    for (const r of status.rounds) if (r.phase === phase) round = r; // the last one
    if (!round) continue;
    const results = round.results.filter((r) => r.phase === phase);
    const parts = results.map((r) => {
      const text = r.message.replace(/: (FAIL|ERROR|INCONCLUSIVE)$/, '');
      const head = `canary ${describe(r.metric).label} `;
      return text.startsWith(head) ? `${r.metric} ${text.slice(head.length)}` : `${r.metric}: ${text}`;
    });
    if (round.score !== undefined) parts.push(`score ${round.score.toFixed(0)}`);
    if (parts.length) return parts.join('; ');
  }
  return '';
}

/**
 * The line an ended analysis gives a strategy's error, warning and history: `<what> analysis <phase>:
 * <reason>: <metrics and numbers>`, e.g. `canary analysis failed: failed (1) > failure_limit (0):
 * error_rate 20.0 % vs stable 0.0 % (limit +1 points)`.
 */
export function verdictLine(what: string, status: AnalysisStatus): string {
  const detail = verdictDetail(status);
  return `${what} analysis ${status.phase}${status.reason ? `: ${status.reason}` : ''}${detail ? `: ${detail}` : ''}`;
}

/**
 * Creates an analysis over `ctx`'s canary and stable pools. Throws `E_CONFIG` at once when a check names a
 * metric no source provides, a source that is not configured, or a bad limit.
 *
 * - A round measures every check once over the window since the previous round (or since `start`, after
 *   `initialDelay`); a check with comparisons also measures the stable pool.
 * - Too few samples, `NaN` or no data is `inconclusive`, never a pass; a source that throws is an `error`
 *   (counted apart from measured failures, as Argo Rollouts does).
 * - A round takes its worst metric's phase; with `scoring`, non-critical metrics are weighed into a
 *   Kayenta-style score instead, and a failed `critical` metric fails the round on its own.
 * - The analysis ends `failed` when failed rounds exceed `failureLimit`, `inconclusive` (or `failed`, by
 *   `onInconclusive`) when inconclusive rounds exceed `inconclusiveLimit`, and `error` when consecutive
 *   source errors exceed `consecutiveErrorLimit`; `reason` says which, with the counts.
 */
export function createAnalysis(options: AnalysisOptions, ctx: AnalysisContext, defaults: AnalysisDefaults = {}): Analysis {
  validateChecks(options.checks);
  const sources = options.sources ?? defaults.defaultSources?.() ?? [];
  if (sources.length === 0 && options.checks.length > 0) {
    throw new FraisierError(
      'E_CONFIG',
      'analysis: no metric source: give sources (probeSource(), hostSource(), prometheusSource(), nginxSource()) or a defaultSources',
    );
  }
  const bound = options.checks.map((check) => ({ check, source: sourceFor(check, sources) }));
  const used = [...new Set(bound.map((b) => b.source))];
  const intervalMs = toMs(options.interval ?? '30s', 'analysis.interval');
  const initialDelayMs = toMs(options.initialDelay ?? 0, 'analysis.initialDelay');
  if (intervalMs <= 0) throw new FraisierError('E_CONFIG', `analysis.interval: expected a duration above 0, got ${intervalMs} ms`);
  const failureLimit = options.failureLimit ?? 0;
  const inconclusiveLimit = options.inconclusiveLimit ?? 0;
  const consecutiveErrorLimit = options.consecutiveErrorLimit ?? 4;
  const onInconclusive = options.onInconclusive ?? 'pause';
  const scoring = options.scoring;
  if (scoring && !(scoring.pass >= scoring.marginal && scoring.marginal >= 0 && scoring.pass <= 100)) {
    throw new FraisierError('E_CONFIG', `analysis.scoring: expected 0 <= marginal <= pass <= 100, got pass ${scoring.pass}, marginal ${scoring.marginal}`);
  }
  const sleep = (ms: number) => (ctx.sleep ? ctx.sleep(ms, ctx.signal) : systemClock.sleep(ms, ctx.signal));

  const rounds: AnalysisRound[] = [];
  const counts = { successful: 0, failed: 0, inconclusive: 0, error: 0, consecutiveErrors: 0 };
  let phase: AnalysisPhase = 'running';
  let reason: string | null = null;
  let started = false;
  let stopped = false;
  let delayed = initialDelayMs === 0;
  let windowStart = ctx.now();

  const status = (): AnalysisStatus => ({ phase, rounds: [...rounds], counts: { ...counts }, reason });

  async function measureOne(source: MetricSource, metric: MetricName, pool: PoolName, since: number, until: number): Promise<Measurement> {
    const targets = pool === 'canary' ? ctx.canary : ctx.stable;
    const version = pool === 'canary' ? ctx.canaryVersion : (ctx.stableVersion ?? 'stable');
    return source.measure({ metric, pool, targets, version, since, until }, ctx);
  }

  async function round(): Promise<AnalysisStatus> {
    if (phase !== 'running') return status();
    const since = windowStart;
    const until = ctx.now();
    windowStart = until;
    const results = await Promise.all(
      bound.map(async ({ check, source }): Promise<MetricResult> => {
        const compares = check.maxIncrease !== undefined || check.maxRatio !== undefined || check.mannWhitney !== undefined;
        try {
          const [canary, stable] = await Promise.all([
            measureOne(source, check.metric, 'canary', since, until),
            compares && ctx.stable.length > 0 ? measureOne(source, check.metric, 'stable', since, until) : Promise.resolve(null),
          ]);
          return judge(check, source.name, canary, stable, source.defaultMinSamples?.(check.metric));
        } catch (err) {
          if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
          const msg = err instanceof Error ? err.message : String(err);
          return {
            metric: check.metric,
            source: source.name,
            phase: 'error',
            canary: null,
            stable: null,
            message: `${describe(check.metric).label}: ${source.name}: ${msg}: ERROR`,
          };
        }
      }),
    );
    let roundPhase: Verdict;
    let score: number | undefined;
    const criticalFailed = results.some((r, i) => r.phase === 'failed' && bound[i]!.check.critical);
    if (scoring) {
      const judged = results.flatMap((r, i) =>
        r.phase === 'successful' || r.phase === 'failed' ? [{ weight: bound[i]!.check.weight ?? 1, passed: r.phase === 'successful' }] : [],
      );
      const s = kayentaScore(judged);
      if (criticalFailed) roundPhase = 'failed';
      else if (Number.isNaN(s)) roundPhase = results.some((r) => r.phase === 'error') ? 'error' : 'inconclusive';
      else {
        score = s;
        roundPhase = s >= scoring.pass ? 'successful' : s >= scoring.marginal ? 'inconclusive' : 'failed';
      }
    } else {
      roundPhase = worst(results.map((r) => r.phase));
    }
    const r: AnalysisRound = score === undefined ? { at: until, results, phase: roundPhase } : { at: until, results, phase: roundPhase, score };
    rounds.push(r);
    counts[roundPhase] += 1;
    counts.consecutiveErrors = roundPhase === 'error' ? counts.consecutiveErrors + 1 : 0;
    for (const m of results) ctx.log[m.phase === 'successful' ? 'info' : 'warn'](`analysis: ${m.message}`);
    if (score !== undefined)
      ctx.log.info(`analysis: score ${score.toFixed(0)} (pass ${scoring!.pass}, marginal ${scoring!.marginal}): ${roundPhase.toUpperCase()}`);
    if (criticalFailed) {
      phase = 'failed';
      reason = `critical metric ${results.find((x, i) => x.phase === 'failed' && bound[i]!.check.critical)!.metric} failed`;
    } else if (counts.failed > failureLimit) {
      phase = 'failed';
      reason = `failed (${counts.failed}) > failure_limit (${failureLimit})`;
    } else if (counts.consecutiveErrors > consecutiveErrorLimit) {
      phase = 'error';
      reason = `consecutive errors (${counts.consecutiveErrors}) > consecutive_error_limit (${consecutiveErrorLimit})`;
    } else if (counts.inconclusive > inconclusiveLimit) {
      phase = onInconclusive === 'fail' ? 'failed' : 'inconclusive';
      reason = `inconclusive (${counts.inconclusive}) > inconclusive_limit (${inconclusiveLimit})${onInconclusive === 'fail' ? ', on_inconclusive: fail' : ''}`;
    }
    if (reason) ctx.log[phase === 'failed' || phase === 'error' ? 'error' : 'warn'](`analysis ${phase}: ${reason}`);
    return status();
  }

  async function waitInitialDelay(deadline: number): Promise<boolean> {
    if (delayed) return true;
    const left = windowStart + initialDelayMs - ctx.now();
    if (left > 0) {
      const ms = Math.min(left, deadline - ctx.now());
      if (ms > 0) await sleep(ms);
      if (ctx.now() < windowStart + initialDelayMs) return false;
    }
    delayed = true;
    windowStart = ctx.now();
    return true;
  }

  return {
    async start() {
      if (started) return;
      started = true;
      for (const s of used) await s.start?.(ctx);
      windowStart = ctx.now();
    },
    async measure() {
      if (!started) await this.start();
      delayed = true;
      return round();
    },
    async run(ms: number) {
      if (!started) await this.start();
      const deadline = ctx.now() + ms;
      if (!(await waitInitialDelay(deadline))) return status();
      while (phase === 'running') {
        const next = windowStart + intervalMs;
        if (next > deadline) break;
        const wait = next - ctx.now();
        if (wait > 0) await sleep(wait);
        await round();
      }
      const rest = deadline - ctx.now();
      if (phase === 'running' && rest > 0) await sleep(rest);
      return status();
    },
    status,
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(used.map((s) => s.stop?.().catch(() => undefined)));
    },
  };
}
