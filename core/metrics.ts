/**
 * The deployment history as Prometheus metrics (text exposition format 0.0.4): deployments by outcome,
 * failures, rollbacks, duration histograms and the last success, per fraise and environment. `fraisier
 * metrics` prints them, or writes a node_exporter textfile-collector file. See docs/slo.md.
 */
import type { StateStore } from './state/store.js';

/** Upper bounds (seconds) of the duration histogram's buckets. */
export const DURATION_BUCKETS = [5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

/** One finished or running deployment, as the metrics need it. */
export interface MetricRow {
  fraise: string;
  environment: string;
  kind: 'deploy' | 'rollback';
  status: string;
  durationMs: number | null;
  finishedAt: number | null;
}

/** Every deployment of the store (optionally of one fraise), oldest first. */
export async function metricRows(store: StateStore, q: { fraise?: string } = {}): Promise<MetricRow[]> {
  let query = store.db.selectFrom('deployments').select(['fraise', 'environment', 'kind', 'status', 'duration_ms', 'finished_at']);
  if (q.fraise !== undefined) query = query.where('fraise', '=', q.fraise);
  const rows = await query.orderBy('id').execute();
  return rows.map((r) => ({
    fraise: r.fraise,
    environment: r.environment,
    kind: r.kind as MetricRow['kind'],
    status: r.status,
    durationMs: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
    finishedAt: r.finished_at === null || r.finished_at === undefined ? null : Number(r.finished_at),
  }));
}

/** A label value escaped as the format asks: `\\`, `\"` and `\n`. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  return `{${Object.entries(l)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')}}`;
}

/** A number as the format writes it (`+Inf`, integers without a decimal point). */
function value(n: number): string {
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  return Number.isInteger(n) ? String(n) : String(+n.toFixed(6));
}

/** The metrics text: HELP and TYPE once per family, samples sorted by fraise and environment; ends with a newline. */
export function renderMetrics(rows: MetricRow[]): string {
  const places = new Map<string, { fraise: string; environment: string; rows: MetricRow[] }>();
  for (const r of rows) {
    const k = `${r.fraise}\u0000${r.environment}`;
    const p = places.get(k) ?? { fraise: r.fraise, environment: r.environment, rows: [] };
    p.rows.push(r);
    places.set(k, p);
  }
  const sorted = [...places.values()].sort((a, b) => a.fraise.localeCompare(b.fraise) || a.environment.localeCompare(b.environment));
  const out: string[] = [];
  const family = (name: string, type: string, help: string, samples: string[]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
  };
  const finished = (r: MetricRow) => r.status !== 'running';

  family(
    'fraisier_deployments_total',
    'counter',
    'Finished deployments and rollbacks, by kind and outcome.',
    sorted.flatMap((p) => {
      const counts = new Map<string, number>();
      for (const r of p.rows.filter(finished)) counts.set(`${r.kind}\u0000${r.status}`, (counts.get(`${r.kind}\u0000${r.status}`) ?? 0) + 1);
      return [...counts]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => {
          const [kind, status] = k.split('\u0000') as [string, string];
          return `fraisier_deployments_total${labels({ fraise: p.fraise, environment: p.environment, kind, status })} ${n}`;
        });
    }),
  );
  family(
    'fraisier_deployment_failures_total',
    'counter',
    'Deployments (kind deploy) that did not succeed: failed, rolled back or stopped by a lost lock.',
    sorted.map(
      (p) =>
        `fraisier_deployment_failures_total${labels({ fraise: p.fraise, environment: p.environment })} ${p.rows.filter((r) => r.kind === 'deploy' && finished(r) && r.status !== 'succeeded').length}`,
    ),
  );
  family(
    'fraisier_rollbacks_total',
    'counter',
    'Rollbacks: automatic (a deployment rolled back after a failure) and manual (a successful fraisier rollback).',
    sorted.flatMap((p) => [
      `fraisier_rollbacks_total${labels({ fraise: p.fraise, environment: p.environment, trigger: 'automatic' })} ${p.rows.filter((r) => r.kind === 'deploy' && r.status === 'rolled_back').length}`,
      `fraisier_rollbacks_total${labels({ fraise: p.fraise, environment: p.environment, trigger: 'manual' })} ${p.rows.filter((r) => r.kind === 'rollback' && r.status === 'succeeded').length}`,
    ]),
  );
  family(
    'fraisier_deployment_duration_seconds',
    'histogram',
    'Duration of finished deployments (kind deploy), in seconds.',
    sorted.flatMap((p) => {
      const secs = p.rows.filter((r) => r.kind === 'deploy' && finished(r) && r.durationMs !== null).map((r) => r.durationMs! / 1000);
      const base = { fraise: p.fraise, environment: p.environment };
      return [
        ...[...DURATION_BUCKETS, Number.POSITIVE_INFINITY].map(
          (le) => `fraisier_deployment_duration_seconds_bucket${labels({ ...base, le: value(le) })} ${secs.filter((s) => s <= le).length}`,
        ),
        `fraisier_deployment_duration_seconds_sum${labels(base)} ${value(secs.reduce((a, b) => a + b, 0))}`,
        `fraisier_deployment_duration_seconds_count${labels(base)} ${secs.length}`,
      ];
    }),
  );
  family(
    'fraisier_last_success_timestamp_seconds',
    'gauge',
    'When the last successful deployment or rollback finished (Unix seconds).',
    sorted.flatMap((p) => {
      const last = Math.max(0, ...p.rows.filter((r) => r.status === 'succeeded' && r.finishedAt !== null).map((r) => r.finishedAt!));
      return last > 0 ? [`fraisier_last_success_timestamp_seconds${labels({ fraise: p.fraise, environment: p.environment })} ${value(last / 1000)}`] : [];
    }),
  );
  family(
    'fraisier_deployments_running',
    'gauge',
    'Deployments recorded as running.',
    sorted.map((p) => `fraisier_deployments_running${labels({ fraise: p.fraise, environment: p.environment })} ${p.rows.filter((r) => !finished(r)).length}`),
  );
  return `${out.join('\n')}\n`;
}

/** One sample of the metrics text: `fraisier metrics --json` prints them. */
export interface MetricSample {
  /** The metric's name (a histogram's `_bucket`, `_sum` and `_count` are separate names). */
  name: string;
  labels: Record<string, string>;
  /** The value; `+Inf` (a histogram's last bucket bound) stays in the `le` label, values are numbers. */
  value: number;
}

/** The samples of a text made by {@link renderMetrics} (its HELP and TYPE lines skipped). */
export function metricSamples(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}
