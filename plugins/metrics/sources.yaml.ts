/**
 * The YAML of the metric sources: an environment's `metrics_sources:` block, which says where a canary's
 * (or a bake period's) metrics come from. Without it, the analysis uses its defaults: the probe for
 * request metrics (to the health-check URL) and the host source for cpu and memory.
 *
 * ```yaml
 * metrics_sources:
 *   prometheus:
 *     url: http://prometheus:9090
 *     metrics:
 *       error_rate:
 *         query: 100 * sum(rate(http_requests_total{instance=~"{{address}}",code=~"5.."}[{{window}}])) / sum(rate(http_requests_total{instance=~"{{address}}"}[{{window}}]))
 *         samples: sum(increase(http_requests_total{instance=~"{{address}}"}[{{window}}]))
 *   nginx: {}            # the load_balancer's access_log, read on its host
 *   probe: { path: / }   # the probe's requests go to / instead of the health-check URL
 * ```
 * The sources are asked in the order written; a metric goes to the first one that provides it. The probe
 * and the host source stay as fallbacks after the ones written, unless written themselves.
 */
import { Type } from '../../core/typebox.js';
import { DurationSchema, NonEmptyString } from '../../core/config/schema.js';
import { registry, type YamlContext } from '../../core/registry.js';
import { registerSecret } from '../../core/secret.js';
import { PROMQL_VARIABLES, unknownVariables } from './prometheus.js';

const ProbeSchema = Type.Object(
  {
    /** A path on the health-check URL's host and port (`/`), or a full URL as seen from a host. Default: the health-check URL. */
    path: Type.Optional(NonEmptyString()),
    /** Requests per second to each host. Default 5. */
    rate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000, expected: 'requests per second, above 0 and at most 1000' })),
    /** A request without an answer after this long counts as an error. Default 5s. */
    timeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

const HostSchema = Type.Object(
  {
    /** The port the service listens on, to find its process when it has no supervisor program. Default: the health-check URL's. */
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  },
  { additionalProperties: false },
);

const PrometheusMetricSchema = Type.Union(
  [
    NonEmptyString(),
    Type.Object(
      {
        /** PromQL giving the value in the metric's unit; variables {{host}} {{address}} {{version}} {{pool}} {{window}}. */
        query: NonEmptyString(),
        /** PromQL counting the samples (e.g. requests in the window), compared with min_samples. */
        samples: Type.Optional(NonEmptyString()),
      },
      { additionalProperties: false },
    ),
  ],
  { expected: 'a PromQL template, or { query, samples }' },
);

const PrometheusSchema = Type.Object(
  {
    /** The Prometheus server (`http://prometheus:9090`); a password in it is sent as basic auth and redacted. */
    url: NonEmptyString(),
    /** One PromQL template per metric name. */
    metrics: Type.Record(Type.String({ minLength: 1 }), PrometheusMetricSchema, { expected: 'a mapping of metric names to PromQL templates' }),
    /** Per-query timeout. Default 10s. */
    timeout: Type.Optional(DurationSchema),
    /** Each instance's address as Prometheus labels it; default: the load balancer's server address, else the instance name. */
    addresses: Type.Optional(Type.Record(Type.String({ minLength: 1 }), NonEmptyString())),
  },
  { additionalProperties: false },
);

const NginxSchema = Type.Object(
  {
    /** The JSON access log (absolute path). Default: `load_balancer.access_log`. */
    access_log: Type.Optional(NonEmptyString()),
    /** SSH host running nginx. Default: `load_balancer.host` (else this machine). */
    host: Type.Optional(NonEmptyString()),
    /** Upstream address per instance. Default: `load_balancer.servers`. */
    servers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), NonEmptyString())),
    /**
     * Compress each read on the nginx host (`gzip -1`): `auto` (default: over SSH, when the host has
     * gzip), `true` or `false`. See NginxSourceOptions.compress.
     */
    compress: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('auto')])),
  },
  { additionalProperties: false },
);

/** `metrics_sources:` — where the analysis's metrics come from. */
export const MetricSourcesSchema = Type.Object(
  {
    probe: Type.Optional(ProbeSchema),
    host: Type.Optional(HostSchema),
    prometheus: Type.Optional(PrometheusSchema),
    nginx: Type.Optional(NginxSchema),
  },
  { additionalProperties: false },
);

/** `metrics_sources:` after normalization: the sources in the order written (options of the source factories). */
export interface MetricSourcesYaml {
  readonly order: readonly ('probe' | 'host' | 'prometheus' | 'nginx')[];
  readonly probe?: { url?: string; rate?: number; timeoutMs?: number };
  readonly host?: { port?: number };
  readonly prometheus?: { url: string; metrics: Record<string, { query: string; samples?: string }>; timeoutMs?: number; addresses?: Record<string, string> };
  readonly nginx?: { accessLog: string; host?: string; servers?: Record<string, string>; compress?: boolean | 'auto' };
}

declare module '../../core/registry.js' {
  interface NormalizedEnvironment {
    /** `metrics_sources:`, when present (see plugins/metrics/sources.yaml.ts). */
    metricsSources?: MetricSourcesYaml;
  }
}

type Block = {
  metrics_sources?: {
    probe?: { path?: string; rate?: number; timeout?: number | string };
    host?: { port?: number };
    prometheus?: {
      url: string;
      metrics: Record<string, string | { query: string; samples?: string }>;
      timeout?: number | string;
      addresses?: Record<string, string>;
    };
    nginx?: { access_log?: string; host?: string; servers?: Record<string, string>; compress?: boolean | 'auto' };
  };
};

function normalize(block: Block, ctx: YamlContext): MetricSourcesYaml | undefined {
  const y = block.metrics_sources;
  if (y === undefined) return undefined;
  const at = (...k: (string | number)[]) => ctx.at('metrics_sources', ...k);
  const order = Object.keys(y) as MetricSourcesYaml['order'][number][];
  const out: { -readonly [K in keyof MetricSourcesYaml]: MetricSourcesYaml[K] } = { order };
  if (y.probe) {
    const p = y.probe.path;
    if (p !== undefined && !p.startsWith('/') && !/^http:\/\/[^\s]+$/.test(p)) {
      throw ctx.error(at('probe', 'path'), `expected a path such as / or an http:// URL as seen from a host, got ${ctx.show(at('probe', 'path'), p)}`);
    }
    out.probe = {
      ...(p !== undefined ? { url: p } : {}),
      ...(y.probe.rate !== undefined ? { rate: y.probe.rate } : {}),
      ...(y.probe.timeout !== undefined ? { timeoutMs: ctx.ms(y.probe.timeout, at('probe', 'timeout')) } : {}),
    };
  }
  if (y.host) out.host = { ...(y.host.port !== undefined ? { port: y.host.port } : {}) };
  if (y.prometheus) {
    const pr = y.prometheus;
    let url: URL | null = null;
    try {
      url = new URL(pr.url);
    } catch {
      // reported below
    }
    if (url?.password) registerSecret(decodeURIComponent(url.password));
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw ctx.error(
        at('prometheus', 'url'),
        `expected an http(s) URL such as http://prometheus:9090, got ${ctx.show(at('prometheus', 'url'), pr.url.replace(/\/\/[^/@\s]*@/, '//[REDACTED]@'))}`,
      );
    }
    const metrics: Record<string, { query: string; samples?: string }> = {};
    for (const [name, m] of Object.entries(pr.metrics)) {
      const metric = typeof m === 'string' ? { query: m } : m;
      for (const key of ['query', 'samples'] as const) {
        const tpl = metric[key];
        if (tpl === undefined) continue;
        const bad = unknownVariables(tpl);
        const segs = typeof m === 'string' ? at('prometheus', 'metrics', name) : at('prometheus', 'metrics', name, key);
        if (bad.length)
          throw ctx.error(segs, `unknown variable {{${bad[0]}}} in the PromQL template: expected one of ${PROMQL_VARIABLES.map((v) => `{{${v}}}`).join(', ')}`);
      }
      metrics[name] = { query: metric.query, ...(metric.samples !== undefined ? { samples: metric.samples } : {}) };
    }
    out.prometheus = {
      url: pr.url,
      metrics,
      ...(pr.timeout !== undefined ? { timeoutMs: ctx.ms(pr.timeout, at('prometheus', 'timeout')) } : {}),
      ...(pr.addresses !== undefined ? { addresses: { ...pr.addresses } } : {}),
    };
  }
  if (y.nginx) {
    const lb = ctx.raw['load_balancer'] as { type?: string; access_log?: string; host?: string; servers?: Record<string, string> } | undefined;
    const accessLog = y.nginx.access_log ?? (lb?.type === 'nginx' ? lb.access_log : undefined);
    if (accessLog === undefined) {
      throw ctx.error(
        at('nginx'),
        'the nginx source needs the JSON access log: set load_balancer.access_log (type: nginx) or metrics_sources.nginx.access_log',
      );
    }
    if (!accessLog.startsWith('/'))
      throw ctx.error(at('nginx', 'access_log'), `expected an absolute path, got ${ctx.show(at('nginx', 'access_log'), accessLog)}`);
    const host = y.nginx.host ?? lb?.host;
    const servers = y.nginx.servers ?? lb?.servers;
    if (servers === undefined)
      throw ctx.error(at('nginx'), "the nginx source needs each instance's upstream address: set load_balancer.servers or metrics_sources.nginx.servers");
    out.nginx = {
      accessLog,
      ...(host !== undefined ? { host } : {}),
      servers: { ...servers },
      ...(y.nginx.compress !== undefined ? { compress: y.nginx.compress } : {}),
    };
  }
  return out;
}

registry.registerPlugin({
  name: 'metrics-sources',
  field: 'metricsSources',
  keys: { metrics_sources: Type.Optional(MetricSourcesSchema) },
  normalize,
});
