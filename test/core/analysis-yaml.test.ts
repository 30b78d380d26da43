import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../core/config/load.js';
import { FraisierError } from '../../core/errors.js';
import { redact } from '../../core/secret.js';
import { buildMetricSources } from '../../plugins/metrics/sources.js';

const FILE = 'conf/fraises.yaml';

function yaml(extra: string, accessLog = '  access_log: /var/log/nginx/api.json'): string {
  const body = `instances: [h1, h2, h3]
supervisor_program: app
health_check: { url: "http://localhost:8000/health" }
load_balancer:
  type: nginx
  file: /etc/nginx/fraisier/api.conf
  host: lb1
${accessLog}
  servers: { h1: "10.0.0.11:8000", h2: "10.0.0.12:8000", h3: "10.0.0.13:8000" }
${extra}`
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => `        ${l}`)
    .join('\n');
  return `fraises:\n  api:\n    git_repo: /srv/git/api.git\n    app_path: /srv/api\n    environments:\n      production:\n${body}\n`;
}

function configError(text: string): FraisierError {
  try {
    parseConfig(text, FILE, {});
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_CONFIG');
    return err as FraisierError;
  }
  assert.unreachable('expected an E_CONFIG error');
  throw new Error('unreachable');
}

const envOf = (text: string) => parseConfig(text, FILE, {}).fraises['api']!.environments['production']!;

test('metrics_sources: sources in the order written, nginx defaults from the load balancer, probe and host as fallbacks', () => {
  const env = envOf(
    yaml(`metrics_sources:
  prometheus:
    url: http://prom:9090
    timeout: 3s
    metrics:
      error_rate: 'sum(rate(x{instance=~"{{address}}"}[{{window}}]))'
      response_latency_p99: { query: 'histogram_quantile(0.99, y{host=~"{{host}}",v="{{version}}",p="{{pool}}"})', samples: 'sum(z)' }
  nginx: {}
  probe: { path: /, rate: 10 }`),
  );
  const y = env.metricsSources!;
  assert.equal(y.order, ['prometheus', 'nginx', 'probe']);
  assert.equal(y.nginx, { accessLog: '/var/log/nginx/api.json', host: 'lb1', servers: { h1: '10.0.0.11:8000', h2: '10.0.0.12:8000', h3: '10.0.0.13:8000' } });
  assert.is(y.prometheus!.timeoutMs, 3000);
  assert.equal(y.probe, { url: '/', rate: 10 });
  assert.equal(
    buildMetricSources(y)!.map((s) => s.name),
    ['source:prometheus', 'source:nginx', 'source:probe', 'source:host'],
  );
  assert.is(envOf(yaml('metrics_sources:\n  nginx: { compress: false }')).metricsSources!.nginx!.compress, false);
  assert.is(envOf(yaml('metrics_sources:\n  nginx: { compress: auto }')).metricsSources!.nginx!.compress, 'auto');
  assert.is(envOf(yaml(`metrics_sources:\n  nginx: {}`)).metricsSources!.nginx!.compress, undefined, 'unset: the source applies its default, auto');
  assert.is(envOf(yaml('')).metricsSources, undefined, 'no block: the analysis keeps its defaults');
  assert.is(buildMetricSources(undefined), undefined);
});

test('metrics_sources bad input: unknown PromQL variable, bad URL with its password redacted, nginx without a log, unknown key', () => {
  const v = configError(
    yaml(`metrics_sources:\n  prometheus:\n    url: http://prom:9090\n    metrics:\n      error_rate: 'rate(x{instance="{{instance}}"}[1m])'`),
  );
  assert.match(
    v.message,
    /conf\/fraises\.yaml: fraises\.api\.environments\.production\.metrics_sources\.prometheus\.metrics\.error_rate: unknown variable \{\{instance\}\} in the PromQL template: expected one of \{\{host\}\}, \{\{address\}\}, \{\{version\}\}, \{\{pool\}\}, \{\{window\}\}/,
  );
  const u = configError(yaml(`metrics_sources:\n  prometheus:\n    url: 'ftp://ops:Hunter2-secret@prom:9090'\n    metrics: { error_rate: x }`));
  assert.match(u.message, /metrics_sources\.prometheus\.url: expected an http\(s\) URL/);
  assert.not.ok(u.message.includes('Hunter2-secret'), u.message);
  assert.not.ok(redact('ops:Hunter2-secret').includes('Hunter2-secret'), 'the password is redacted from any later output too');
  const n = configError(yaml('metrics_sources:\n  nginx: {}', ''));
  assert.match(n.message, /metrics_sources\.nginx: the nginx source needs the JSON access log/);
  const z = configError(yaml('metrics_sources:\n  nginx: { compress: gzip }'));
  assert.match(z.message, /conf\/fraises\.yaml: .*metrics_sources\.nginx\.compress/);
  const k = configError(yaml('metrics_sources:\n  datadog: { api_key: x }'));
  assert.match(k.message, /metrics_sources/);
  assert.match(k.message, /datadog/);
});

test.run();
