/**
 * End to end: the prometheus source against a real Prometheus (started by this test on a free loopback
 * port, scraping the lab hosts' /metrics every second, stopped by pid). h1 runs v3.0.0-errors (5xx on
 * 20 % of GET /), h2 the good v3.2.0; a small load loop sends GET / to both for the whole file. Also:
 * an empty result is inconclusive, a Prometheus that is down is "metric source unavailable" with its
 * password redacted, then the consecutive-error limit ends the analysis; bad templates are config errors.
 */
import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AnalysisOptions } from '../../core/analysis/types.js';
import type { FraisierError } from '../../core/errors.js';
import { redact } from '../../core/secret.js';
import { prometheusSource } from '../../plugins/metrics/prometheus.js';
import type { LabEnv } from '../lab/lab.js';
import { analyse as analyseWith, analysisContext, putReleases } from './analysis-support.js';
import { lab, resetHosts } from './helpers.js';
import { type Prometheus, startPrometheus } from './prometheus.js';
import { freePort } from './traffic.js';

let env: LabEnv;
let prom: Prometheus;
let loading = true;
let loaders: Promise<void>[] = [];
const RELEASES: Record<string, string> = { h1: 'v3.0.0-errors', h2: 'v3.2.0' };
const addresses: Record<string, string> = {};

const ERROR_RATE = {
  query:
    '100 * (sum(increase(http_requests_total{instance=~"{{address}}",path="/",code=~"5.."}[{{window}}])) or vector(0)) / sum(increase(http_requests_total{instance=~"{{address}}",path="/"}[{{window}}]))',
  samples: 'sum(increase(http_requests_total{instance=~"{{address}}",path="/"}[{{window}}]))',
};

const context = (lines: string[]) =>
  analysisContext(RELEASES, { canary: 'h1', stable: 'h2' }, lines, { noExecutor: 'the prometheus source does not use the hosts' });

const analyse = (options: AnalysisOptions, ms = 60_000) => analyseWith(options, context, ms);

/** GET / on one address, about `rate` times a second, until the file ends. */
async function load(address: string, rate: number): Promise<void> {
  const [host, port] = address.split(':');
  while (loading) {
    await new Promise<void>((resolve) => {
      const req = request({ host, port: Number(port), path: '/', timeout: 2000 }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', () => resolve());
      req.on('timeout', () => req.destroy());
      req.end();
    });
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  for (const h of env.hosts) addresses[h.name] = `${h.address}:${env.appPort}`;
  await putReleases(env, RELEASES);
  prom = await startPrometheus(env);
  loaders = Object.keys(RELEASES).map((h) => load(addresses[h]!, 20));
  // wait until both hosts were scraped with traffic counted
  for (let i = 0; ; i++) {
    const r = await prom.query('count(http_requests_total{path="/"})');
    if (Number(r.data?.result[0]?.value[1] ?? 0) >= 3) break;
    if (i > 150) throw new Error(`prometheus never scraped the lab hosts: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
});

test.after(async () => {
  loading = false;
  await Promise.all(loaders);
  await prom?.stop();
  await resetHosts(env);
});

test('the 5xx canary is measured near 20 % from Prometheus and fails against a good stable', async () => {
  const { status, lines } = await analyse({
    checks: [{ metric: 'error_rate', maxIncrease: 1, minSamples: 10 }],
    sources: [prometheusSource({ url: prom.url, metrics: { error_rate: ERROR_RATE }, addresses })],
    interval: '4s',
    inconclusiveLimit: 20,
  });
  assert.is(status.phase, 'failed', lines.join('\n'));
  const r = status.rounds[status.rounds.length - 1]!.results[0]!;
  console.log(`  [analysis-prometheus] ${r.message} (${r.canary!.samples} canary, ${r.stable!.samples} stable requests)`);
  assert.ok(r.canary!.value >= 10 && r.canary!.value <= 30, r.message);
  assert.is(r.stable!.value, 0, r.message);
  assert.ok(r.canary!.samples >= 10, r.message);
});

test('templates get {{host}}, {{version}} and {{pool}}; an empty result is inconclusive, never a pass', async () => {
  const { status, lines } = await analyse({
    checks: [
      { metric: 'scrapes', max: 1 },
      { metric: 'absent_series', max: 100 },
    ],
    sources: [
      prometheusSource({
        url: prom.url,
        metrics: {
          // 1 when the host label and the version the app reports both match the pool's
          scrapes: 'count(app_version_info{host=~"{{host}}",version="{{version}}"})',
          absent_series: 'sum(http_requests_total{host=~"{{host}}",path="/{{pool}}-never-requested"})',
        },
      }),
    ],
    interval: '2s',
    inconclusiveLimit: 0,
  });
  assert.is(status.phase, 'inconclusive', lines.join('\n'));
  const [scrapes, absent] = status.rounds[0]!.results;
  assert.is(scrapes!.phase, 'successful', scrapes!.message);
  assert.is(scrapes!.canary!.value, 1, scrapes!.message);
  assert.is(absent!.phase, 'inconclusive', absent!.message);
  assert.match(absent!.message, /no data/);
});

test('a Prometheus that is down is "metric source unavailable", the password never shown; then the consecutive-error limit applies', async () => {
  const port = await freePort();
  const { status, lines } = await analyse({
    checks: [{ metric: 'error_rate', max: 1 }],
    sources: [prometheusSource({ url: `http://fraisier:pr0m-s3cret-pw@127.0.0.1:${port}`, metrics: { error_rate: ERROR_RATE } })],
    interval: '1s',
    consecutiveErrorLimit: 1,
  });
  assert.is(status.phase, 'error', lines.join('\n'));
  assert.is(status.reason, 'consecutive errors (2) > consecutive_error_limit (1)');
  assert.is(status.counts.failed, 0, 'an unavailable source is not a measured failure');
  const msg = status.rounds[0]!.results[0]!.message;
  assert.match(msg, /metric source unavailable: http:\/\/\[REDACTED\]@127\.0\.0\.1:\d+\/: ECONNREFUSED/);
  assert.not.ok(redact(lines.join('\n')).includes('pr0m-s3cret-pw'));
  assert.not.ok(msg.includes('pr0m-s3cret-pw'));
});

test('an unknown template variable or a bad URL is a config error naming the key; the password is redacted', () => {
  const fail = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e as FraisierError;
    }
    assert.unreachable('expected a config error');
    return null as never;
  };
  const e = fail(() => prometheusSource({ url: prom.url, metrics: { error_rate: 'sum(rate(x{instance="{{instance}}"}[1m]))' } }));
  assert.is(e.code, 'E_CONFIG');
  assert.is(
    e.message,
    'prometheus: metrics.error_rate.query: unknown variable {{instance}} (expected one of {{host}}, {{address}}, {{version}}, {{pool}}, {{window}})',
  );
  const u = fail(() => prometheusSource({ url: 'ftp://ops:hunter2-pw@prom:9090', metrics: { error_rate: 'x' } }));
  assert.is(u.code, 'E_CONFIG');
  assert.not.ok(u.message.includes('hunter2-pw'), u.message);
  assert.match(u.message, /\[REDACTED\]/);
});

test.run();
