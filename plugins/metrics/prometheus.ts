/**
 * The prometheus metric source: instant queries (`/api/v1/query`) to a Prometheus HTTP API, one PromQL
 * template per metric, asked once for the canary pool and once for the stable pool.
 */
import { toMs, type Duration } from '../../core/duration.js';
import { FraisierError } from '../../core/errors.js';
import { registerSecret } from '../../core/secret.js';
import { type AnalysisContext, type Measurement, type MetricName, type MetricQuery, type MetricSource, MetricSourceError } from '../../core/analysis/types.js';
import type { Target } from '../../core/types.js';

/** The variables a PromQL template may use. */
export const PROMQL_VARIABLES = ['host', 'address', 'version', 'pool', 'window'] as const;

/** One metric's queries. */
export interface PrometheusMetric {
  /**
   * PromQL giving the metric's value in its unit (error rate in percent, latency in ms) as one series or a
   * scalar. Variables: `{{host}}` and `{{address}}` (the pool's target names / addresses joined by `|`,
   * for a `=~` matcher), `{{version}}`, `{{pool}}` (`canary` or `stable`), `{{window}}` (the round's
   * window in seconds, e.g. `30s`, for `rate(...[{{window}}])`).
   */
  readonly query: string;
  /**
   * Optional PromQL counting what the value comes from (e.g. requests in the window:
   * `sum(increase(http_requests_total{instance=~"{{address}}"}[{{window}}]))`), compared with the check's
   * `minSamples`. Without it a value counts as one sample, and checks default to `minSamples` 1.
   */
  readonly samples?: string;
}

/** Options of {@link prometheusSource}. */
export interface PrometheusOptions {
  /**
   * Base URL of the Prometheus server (`http://prometheus:9090`). A password in it
   * (`http://user:password@host:9090`) is sent as basic auth and redacted everywhere.
   */
  readonly url: string;
  /** The metrics this source measures, by name (`error_rate`, `response_latency_p99`, or any name). */
  readonly metrics: Readonly<Record<string, string | PrometheusMetric>>;
  /** Per-query timeout (sent as `timeout=` too). Default `10s`. */
  readonly timeout?: Duration;
  /**
   * A target's address as Prometheus labels it (its `instance`), by target name; default: the traffic
   * plugin's address for it (`10.0.0.12:8000`), else the target's name.
   */
  readonly addresses?: Readonly<Record<string, string>>;
}

/** A URL with its password (and user) hidden, for messages. */
export function redactedPrometheusUrl(url: URL): string {
  return url.username || url.password ? `${url.protocol}//[REDACTED]@${url.host}${url.pathname}` : `${url.origin}${url.pathname}`;
}

/** Checks a template's variables; returns the unknown ones. */
export function unknownVariables(template: string): string[] {
  const names = [...template.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)].map((m) => m[1]!);
  return names.filter((n) => !(PROMQL_VARIABLES as readonly string[]).includes(n));
}

const SAFE_LABEL = /^[A-Za-z0-9_.:@/+-]+$/;

/** Fills a template (values checked first: only label-safe characters go into PromQL). */
export function renderPromql(template: string, vars: Readonly<Record<(typeof PROMQL_VARIABLES)[number], string>>): string {
  return template.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_m, name: string) => {
    const v = vars[name as keyof typeof vars];
    if (v === undefined) throw new FraisierError('E_CONFIG', `PromQL template: unknown variable {{${name}}}`);
    return v;
  });
}

function parseValue(v: unknown): number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  return typeof v === 'string' ? Number(v) : Number.NaN;
}

/**
 * Creates the prometheus source. Config errors (a bad URL, an unknown template variable, a metric with no
 * query) are thrown at once as `E_CONFIG`. At run time, an unreachable server, a non-JSON answer or an
 * `error` envelope is a {@link MetricSourceError} ("metric source unavailable"); an empty result or `NaN`
 * is no data (inconclusive), never a pass; more than one series is an error (aggregate in PromQL).
 */
export function prometheusSource(options: PrometheusOptions): MetricSource {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new FraisierError(
      'E_CONFIG',
      `prometheus: url: expected an http(s) URL such as http://prometheus:9090, got ${JSON.stringify(redactOpaque(options.url))}`,
      { key: 'url' },
    );
  }
  if (url.password) registerSecret(decodeURIComponent(url.password));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FraisierError('E_CONFIG', `prometheus: url: expected an http(s) URL, got ${JSON.stringify(redactedPrometheusUrl(url))}`, { key: 'url' });
  }
  const auth =
    url.username || url.password ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}` : null;
  const shown = redactedPrometheusUrl(url);
  const endpoint = new URL(`${url.pathname.replace(/\/$/, '')}/api/v1/query`, url.origin);
  const timeoutMs = toMs(options.timeout ?? '10s', 'prometheus.timeout');
  const metrics = new Map<string, PrometheusMetric>();
  for (const [name, m] of Object.entries(options.metrics)) {
    const metric = typeof m === 'string' ? { query: m } : m;
    if (typeof metric.query !== 'string' || metric.query.trim() === '')
      throw new FraisierError('E_CONFIG', `prometheus: metrics.${name}.query: expected a PromQL template, got ${JSON.stringify(metric.query)}`, {
        key: `metrics.${name}.query`,
      });
    for (const [key, tpl] of [
      ['query', metric.query],
      ['samples', metric.samples],
    ] as const) {
      if (tpl === undefined) continue;
      const bad = unknownVariables(tpl);
      if (bad.length) {
        throw new FraisierError(
          'E_CONFIG',
          `prometheus: metrics.${name}.${key}: unknown variable {{${bad[0]}}} (expected one of ${PROMQL_VARIABLES.map((v) => `{{${v}}}`).join(', ')})`,
          {
            key: `metrics.${name}.${key}`,
          },
        );
      }
    }
    metrics.set(name, metric);
  }

  let traffic: AnalysisContext['traffic'] = null;

  function addressOf(t: Target): string {
    return options.addresses?.[t.name] ?? traffic?.addressOf(t) ?? t.name;
  }

  function labelValues(values: readonly string[], what: string): string {
    for (const v of values)
      if (!SAFE_LABEL.test(v))
        throw new MetricSourceError(
          'source:prometheus',
          `cannot put ${what} ${JSON.stringify(v)} in a PromQL label matcher (allowed: letters, digits, _ . : @ / + -)`,
        );
    return values.join('|');
  }

  async function query(promql: string, at: number): Promise<{ value: number; series: number }> {
    const body = new URLSearchParams({ query: promql, time: (at / 1000).toFixed(3), timeout: `${Math.max(1, Math.floor(timeoutMs / 1000))}s` });
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: auth } : {}) },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
      throw new MetricSourceError('source:prometheus', `metric source unavailable: ${shown}: ${why}`);
    }
    const text = await res.text();
    let json: { status?: string; error?: string; errorType?: string; data?: { resultType?: string; result?: unknown } };
    try {
      json = JSON.parse(text);
    } catch {
      throw new MetricSourceError('source:prometheus', `metric source unavailable: ${shown}: HTTP ${res.status}, not a Prometheus API answer`);
    }
    if (json.status !== 'success')
      throw new MetricSourceError('source:prometheus', `query failed: ${json.errorType ?? `HTTP ${res.status}`}: ${json.error ?? ''}`.trim());
    const { resultType, result } = json.data ?? {};
    if (resultType === 'scalar' && Array.isArray(result)) return { value: parseValue(result[1]), series: 1 };
    if (resultType === 'vector' && Array.isArray(result)) {
      if (result.length === 0) return { value: Number.NaN, series: 0 };
      if (result.length > 1)
        throw new MetricSourceError('source:prometheus', `query returned ${result.length} series, expected one (aggregate it, e.g. sum(...)): ${promql}`);
      return { value: parseValue((result[0] as { value?: unknown[] }).value?.[1]), series: 1 };
    }
    throw new MetricSourceError('source:prometheus', `query returned a ${resultType ?? 'malformed'} result, expected a vector or a scalar: ${promql}`);
  }

  return {
    name: 'source:prometheus',
    provides(metric: MetricName) {
      return metrics.has(metric);
    },
    defaultMinSamples(metric: MetricName) {
      return metrics.get(metric)?.samples ? 20 : 1;
    },
    async start(ctx: AnalysisContext) {
      traffic = ctx.traffic;
    },
    async measure(q: MetricQuery): Promise<Measurement> {
      const m = metrics.get(q.metric);
      if (!m) throw new MetricSourceError('source:prometheus', `no query for ${q.metric}`);
      const vars = {
        host: labelValues(
          q.targets.map((t) => t.name),
          'host',
        ),
        address: labelValues(q.targets.map(addressOf), 'address'),
        version: labelValues([q.version], 'version'),
        pool: q.pool,
        window: `${Math.max(1, Math.round((q.until - q.since) / 1000))}s`,
      };
      const [v, n] = await Promise.all([query(renderPromql(m.query, vars), q.until), m.samples ? query(renderPromql(m.samples, vars), q.until) : null]);
      if (v.series === 0 || Number.isNaN(v.value)) return { value: Number.NaN, samples: 0 };
      const samples = n ? (Number.isFinite(n.value) ? Math.round(n.value) : 0) : 1;
      return { value: v.value, samples };
    },
  };
}

/** A string that is not a URL, with anything between `://` and `@` hidden. */
function redactOpaque(s: string): string {
  return s.replace(/\/\/[^/@\s]*@/, '//[REDACTED]@');
}
