/**
 * Builds the metric sources an environment's `metrics_sources:` block names (see sources.yaml.ts), for
 * the strategy that runs an analysis (a canary, a bake period).
 */
import type { LoadedConfig, NormalizedEnvironment } from '../../core/config/load.js';
import { registry, type BuildContext } from '../../core/registry.js';
import type { MetricSource } from '../../core/analysis/types.js';
import { hostSource } from './host.js';
import { nginxSource } from './nginx.js';
import { probeSource } from './probe.js';
import { prometheusSource } from './prometheus.js';
import type { MetricSourcesYaml } from './sources.yaml.js';

export type { MetricSourcesYaml } from './sources.yaml.js';

/**
 * The sources of a normalized `metrics_sources:` block, in the order written, then the probe and the host
 * source as fallbacks unless written. `undefined` (no block): `undefined`, so the analysis uses its
 * defaults. A strategy built from YAML passes the result as `AnalysisOptions.sources`:
 * `sources: metricSourcesFor(env, config)`.
 */
export function buildMetricSources(y: MetricSourcesYaml | undefined, config?: Pick<LoadedConfig, 'ssh'>): MetricSource[] | undefined {
  if (!y) return undefined;
  const out: MetricSource[] = [];
  for (const name of y.order) {
    if (name === 'probe' && y.probe) {
      out.push(
        probeSource({
          ...(y.probe.url !== undefined ? { url: y.probe.url } : {}),
          ...(y.probe.rate !== undefined ? { rate: y.probe.rate } : {}),
          ...(y.probe.timeoutMs !== undefined ? { timeout: y.probe.timeoutMs } : {}),
        }),
      );
    } else if (name === 'host' && y.host) {
      out.push(hostSource({ ...(y.host.port !== undefined ? { port: y.host.port } : {}) }));
    } else if (name === 'prometheus' && y.prometheus) {
      const p = y.prometheus;
      out.push(
        prometheusSource({
          url: p.url,
          metrics: p.metrics,
          ...(p.timeoutMs !== undefined ? { timeout: p.timeoutMs } : {}),
          ...(p.addresses !== undefined ? { addresses: p.addresses } : {}),
        }),
      );
    } else if (name === 'nginx' && y.nginx) {
      const n = y.nginx;
      out.push(
        nginxSource({
          accessLog: n.accessLog,
          ...(n.host !== undefined ? { host: n.host } : {}),
          ...(n.servers !== undefined ? { servers: n.servers } : {}),
          ...(n.compress !== undefined ? { compress: n.compress } : {}),
          ...(config?.ssh ? { ssh: config.ssh } : {}),
        }),
      );
    }
  }
  if (!y.order.includes('probe')) out.push(probeSource());
  if (!y.order.includes('host')) out.push(hostSource());
  return out;
}

/**
 * The sources an analysis asks when none are configured: the probe (request metrics, to the health-check
 * URL) and the host source (cpu and memory of the service). The strategies pass it to `createAnalysis`
 * (core/analysis), which knows no source itself: `createAnalysis(options, ctx, { defaultSources })`.
 */
export function defaultSources(): MetricSource[] {
  return [probeSource(), hostSource()];
}

/** {@link buildMetricSources} for an environment of a loaded fraises.yaml. */
export function metricSourcesFor(env: NormalizedEnvironment, config: unknown): MetricSource[] | undefined {
  return buildMetricSources(env.metricsSources, config as Pick<LoadedConfig, 'ssh'> | undefined);
}

// `metrics_sources:` configures sources, not deployment hooks: its plugin taps nothing.
registry.registerPlugin('metrics-sources', (_ctx: BuildContext<NormalizedEnvironment>) => ({
  name: 'plugin:metrics-sources',
  apply() {},
}));
