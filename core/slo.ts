/**
 * Deployment SLOs: the seed's `deployment_slo` keys (`success_rate`, `error_rate_max`, `latency_p99`,
 * `rollback_rate`), parsed from fraises.yaml, and measured over the state store's history in a window
 * of days. `fraisier stats` shows each key against its objective; `fraisier slo check` exits 1 when one
 * is broken. See docs/slo.md.
 */
import type { StateStore } from './state/store.js';

/** The SLO keys, as fraises.yaml writes them. */
export const SLO_KEYS = ['success_rate', 'error_rate_max', 'latency_p99', 'rollback_rate'] as const;
export type SloKey = (typeof SLO_KEYS)[number];

/** Objectives of one fraise; a key not set is not checked. Rates are fractions (0.99), the latency is in ms. */
export interface Slo {
  /** Least share of deployments that succeed (`99%`). */
  success_rate?: number;
  /** Most share of deployments that end in error without a clean rollback: `failed` or `lock_lost` (`1%`). */
  error_rate_max?: number;
  /** Longest 99th-percentile deployment duration, in ms (`10m`). */
  latency_p99?: number;
  /** Most share of deployments rolled back automatically (`5%`). */
  rollback_rate?: number;
}

/** What a rate key accepts, for messages. */
const RATE_EXPECTED = 'a percentage such as "99%" or "99.5%" (a bare number above 1 and up to 100, such as 95, is read as a percentage)';

/**
 * A rate objective as a fraction, or the problem. `"99%"`, `"99.5 %"` and a bare number above 1 up to
 * 100 (`95`: a fraction cannot exceed 1, so it can only mean 95%) are accepted; a bare number from 0 to 1
 * (`0.95`, `1`) is ambiguous (0.95% or 95%?) and refused, saying what to write.
 */
export function parseRate(value: unknown): number | string {
  if (typeof value === 'string' && /^\s*\d+(?:\.\d+)?\s*$/.test(value)) return parseRate(Number(value));
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
    if (!m) return `expected ${RATE_EXPECTED}, got ${JSON.stringify(value)}`;
    const n = Number(m[1]);
    if (n > 100) return `expected a percentage from 0% to 100%, got ${JSON.stringify(value)}`;
    return n / 100;
  }
  if (typeof value === 'number' && Number.isFinite(value)) {
    if (value > 1 && value <= 100) return value / 100;
    if (value >= 0 && value <= 1) {
      return `${value} is ambiguous: write "${value}%" or "${+(value * 100).toFixed(4)}%"`;
    }
    return `expected a percentage from 0% to 100%, got ${value}`;
  }
  return `expected ${RATE_EXPECTED}, got ${value === null ? 'an empty value' : typeof value}`;
}

/** A latency objective in ms, or the problem: a duration (`"500ms"`, `"90s"`, `"10m"`) or a number of seconds. */
export function parseLatency(value: unknown): number | string {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.round(value * 1000);
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
    if (m && Number(m[1]) > 0) return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms']);
  }
  return `expected a duration such as "90s" or "10m" (a bare number is seconds), got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;
}

/** One SLO key's value, or the problem. */
export function parseSloValue(key: SloKey, value: unknown): number | string {
  return key === 'latency_p99' ? parseLatency(value) : parseRate(value);
}

/** What was measured for one fraise (and environment) in the window. */
export interface SloMeasure {
  fraise: string;
  /** Set when measured per environment. */
  environment?: string;
  /** Finished deployments of kind `deploy` in the window. */
  total: number;
  succeeded: number;
  /** `failed` or `lock_lost`. */
  errored: number;
  rolledBack: number;
  /** 99th percentile duration (nearest rank) in ms, or null when no deployment has a duration. */
  p99Ms: number | null;
}

/** One key checked. */
export interface SloResult {
  key: SloKey;
  /** The objective: a fraction, or ms for `latency_p99`. */
  objective: number;
  /** What was measured; null when there is nothing to measure (no deployment in the window). */
  actual: number | null;
  /** `ok`, `broken`, or `no_data` (no deployment in the window: nothing to judge, not broken). */
  status: 'ok' | 'broken' | 'no_data';
}

/** The SLO report of one fraise. */
export interface SloReport {
  fraise: string;
  total: number;
  results: SloResult[];
}

/** Reads the finished deployments of kind `deploy` started since `days` ago (cancelled ones left out), per fraise (and environment). */
export async function measure(store: StateStore, q: { fraise?: string; days: number; now?: number }): Promise<SloMeasure[]> {
  const since = (q.now ?? Date.now()) - q.days * 86_400_000;
  let query = store.db
    .selectFrom('deployments')
    .select(['fraise', 'status', 'duration_ms'])
    .where('kind', '=', 'deploy')
    .where('finished_at', 'is not', null)
    // as in `fraisier stats`: a deployment a person cancelled is neither a success nor a failure
    .where('status', '!=', 'cancelled')
    .where('started_at', '>=', since);
  if (q.fraise !== undefined) query = query.where('fraise', '=', q.fraise);
  const rows = await query.orderBy('fraise').execute();
  const by = new Map<string, { statuses: string[]; durations: number[] }>();
  for (const r of rows) {
    const e = by.get(r.fraise) ?? { statuses: [], durations: [] };
    e.statuses.push(r.status);
    if (r.duration_ms !== null && r.duration_ms !== undefined) e.durations.push(Number(r.duration_ms));
    by.set(r.fraise, e);
  }
  return [...by].map(([fraise, e]) => ({
    fraise,
    total: e.statuses.length,
    succeeded: e.statuses.filter((s) => s === 'succeeded').length,
    errored: e.statuses.filter((s) => s === 'failed' || s === 'lock_lost').length,
    rolledBack: e.statuses.filter((s) => s === 'rolled_back').length,
    p99Ms: nearestRank(e.durations, 0.99),
  }));
}

/** The nearest-rank percentile (the ⌈p·n⌉-th smallest), or null for no values. */
export function nearestRank(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

/** Checks one fraise's measures against its objectives, in the order of {@link SLO_KEYS}. */
export function evaluate(slo: Slo, m: SloMeasure | undefined, fraise: string): SloReport {
  const total = m?.total ?? 0;
  const results: SloResult[] = [];
  for (const key of SLO_KEYS) {
    const objective = slo[key];
    if (objective === undefined) continue;
    if (!m || total === 0) {
      results.push({ key, objective, actual: null, status: 'no_data' });
      continue;
    }
    let actual: number | null;
    let ok: boolean;
    switch (key) {
      case 'success_rate':
        actual = m.succeeded / total;
        ok = actual >= objective;
        break;
      case 'error_rate_max':
        actual = m.errored / total;
        ok = actual <= objective;
        break;
      case 'rollback_rate':
        actual = m.rolledBack / total;
        ok = actual <= objective;
        break;
      case 'latency_p99':
        actual = m.p99Ms;
        ok = actual === null || actual <= objective;
        break;
    }
    results.push({ key, objective, actual, status: actual === null ? 'no_data' : ok ? 'ok' : 'broken' });
  }
  return { fraise, total, results };
}

function pct(x: number): string {
  return `${+(x * 100).toFixed(2)}%`;
}

function secs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${+(ms / 1000).toFixed(1)}s`;
}

/** One line per key: `api  success_rate    97.5% (39/40)  objective >= 99%  BROKEN`. */
export function formatSlo(reports: SloReport[], days: number): string {
  const lines: string[] = [];
  for (const r of reports) {
    if (r.results.length === 0) continue;
    for (const x of r.results) {
      const cmp = x.key === 'success_rate' ? '>=' : '<=';
      const show = (v: number) => (x.key === 'latency_p99' ? secs(v) : pct(v));
      const actual = x.actual === null ? `no deployments in the last ${days} days` : show(x.actual);
      const verdict = x.status === 'ok' ? 'ok' : x.status === 'broken' ? 'BROKEN' : 'no data';
      lines.push(`${verdict.padEnd(7)} ${r.fraise} ${x.key}: ${actual} (objective ${cmp} ${show(x.objective)}, ${r.total} deployment(s))`);
    }
  }
  return lines.join('\n');
}
