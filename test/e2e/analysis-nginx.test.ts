/**
 * End to end: the nginx source, with no monitoring system (no Prometheus anywhere in this file). A real
 * nginx (foreground, started and stopped by pid by this test, on a free loopback port) proxies to h1
 * (v3.0.0-errors: 5xx on 20 % of GET /) and h2 (the good v3.2.0); the upstream file is written by the
 * nginx-lb plugin with its `accessLog` option (setWeights 1:1, validated with nginx -t and reloaded). The
 * source reads the JSON access log (only the lines since it started) and judges h1 against h2; read over
 * SSH from lab host h1 (compressed there), it measures what the file read measures.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createAnalysis } from '../../core/analysis/index.js';
import { nginxLb } from '../../plugins/nginx-lb.js';
import { nginxSource } from '../../plugins/metrics/nginx.js';
import type { LabEnv } from '../lab/lab.js';
import { analysisContext, type LocalNginx, putReleases, startLocalNginx } from './analysis-support.js';
import { lab, resetHosts } from './helpers.js';

let env: LabEnv;
let ngx: LocalNginx | undefined;
let port: number;
let paused = false;
let loading = true;
let loader: Promise<void> = Promise.resolve();
const RELEASES: Record<string, string> = { h1: 'v3.0.0-errors', h2: 'v3.2.0' };
const servers: Record<string, string> = {};

const context = (lines: string[]) =>
  analysisContext(RELEASES, { canary: 'h1', stable: 'h2' }, lines, { noExecutor: 'the nginx source reads the load balancer, not the hosts' });

/** GET / through nginx in a loop (while not paused), until the file ends; four of them run at once. */
async function load(): Promise<void> {
  while (loading) {
    if (!paused) {
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', () => resolve());
        req.on('timeout', () => req.destroy());
        req.end();
      });
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  for (const h of env.hosts.slice(0, 2)) servers[h.name] = `${h.address}:${env.appPort}`;
  await putReleases(env, RELEASES);
  ngx = await startLocalNginx(servers, { location: 'proxy_next_upstream off; proxy_connect_timeout 2s;' });
  port = ngx.port;
  // the plugin writes the JSON log_format + access_log, checks with nginx -t and reloads
  const lb = nginxLb({ file: ngx.upstreamFile, servers, upstream: 'app', accessLog: ngx.accessLog, nginxArgs: ngx.args, pidFile: ngx.pidFile });
  await lb.setWeights({ h1: 1, h2: 1 });
  assert.match(readFileSync(ngx.upstreamFile, 'utf8'), /^log_format fraisier_app escape=json '\{"msec":"\$msec",/m);
  loader = Promise.all([load(), load(), load(), load()]).then(() => undefined);
  // the log fills before the analysis starts: those lines must not count
  for (let i = 0; ; i++) {
    let text = '';
    try {
      text = readFileSync(ngx!.accessLog, 'utf8');
    } catch {
      // not written yet
    }
    if (text.split('\n').length > 20) break;
    if (i > 300) throw new Error('nginx wrote no JSON access log');
    await new Promise((r) => setTimeout(r, 100));
  }
});

test.after(async () => {
  loading = false;
  await loader;
  await ngx?.stop();
  await resetHosts(env);
});

test('only lines logged since the source started count', async () => {
  paused = true;
  await new Promise((r) => setTimeout(r, 300)); // in-flight requests land before the start
  const lines: string[] = [];
  const a = createAnalysis(
    { checks: [{ metric: 'error_rate', max: 50 }], sources: [nginxSource({ accessLog: ngx!.accessLog, servers })], interval: '1s' },
    context(lines),
  );
  try {
    await a.start();
    const s = await a.measure();
    assert.is(s.rounds[0]!.results[0]!.canary!.samples, 0, lines.join('\n'));
    assert.is(s.phase, 'inconclusive');
  } finally {
    await a.stop();
    paused = false;
  }
});

test('read over SSH from a lab host (the log seen through the shared /tmp), compressed on the host: the same measurements as the file', async () => {
  paused = true;
  await new Promise((r) => setTimeout(r, 300)); // in-flight requests land before the start
  const lines: string[] = [];
  const ctx = context(lines);
  const local = nginxSource({ accessLog: ngx!.accessLog, servers });
  const remote = nginxSource({ accessLog: ngx!.accessLog, servers, host: env.hosts[0]!.name, ssh: { configFile: env.sshConfig } });
  try {
    await local.start!(ctx);
    await remote.start!(ctx);
    const since = Date.now();
    paused = false;
    await new Promise((r) => setTimeout(r, 2000));
    paused = true;
    await new Promise((r) => setTimeout(r, 300));
    const until = Date.now();
    for (const [pool, targets] of [
      ['canary', ctx.canary],
      ['stable', ctx.stable],
    ] as const) {
      for (const metric of ['error_rate', 'response_latency_p99'] as const) {
        const q = { metric, pool, targets, version: 'v', since, until };
        const [a, b] = [await local.measure(q, ctx), await remote.measure(q, ctx)];
        assert.equal({ ...b, values: b.values && [...b.values] }, { ...a, values: a.values && [...a.values] }, `${pool} ${metric}`);
        assert.ok(a.samples > 0, `${pool} ${metric}: requests were logged`);
      }
    }
    assert.ok(lines.includes(`source:nginx: reading ${ngx!.accessLog} on ${env.hosts[0]!.name}, compressed on the host (gzip -1)`), lines.join('\n'));
  } finally {
    await remote.stop!();
    await local.stop!();
    paused = false;
  }
});

test('the 5xx canary is measured near 20 % from the access log and fails against the good stable', async () => {
  const lines: string[] = [];
  const a = createAnalysis(
    {
      checks: [
        // at least 10 requests per pool per round: enough for a 20 % share, reached even on a loaded machine
        { metric: 'error_rate', maxIncrease: 1, minSamples: 10 },
        { metric: 'response_latency_p99', max: 2000, minSamples: 10 },
      ],
      sources: [nginxSource({ accessLog: ngx!.accessLog, servers })],
      interval: '4s',
      inconclusiveLimit: 20,
    },
    context(lines),
  );
  try {
    await a.start();
    const s = await a.run(60_000);
    assert.is(s.phase, 'failed', lines.join('\n'));
    const [errors, latency] = s.rounds[s.rounds.length - 1]!.results;
    console.log(`  [analysis-nginx] ${errors!.message} (${errors!.canary!.samples} canary, ${errors!.stable!.samples} stable requests); ${latency!.message}`);
    assert.is(errors!.phase, 'failed');
    assert.ok(errors!.canary!.value >= 10 && errors!.canary!.value <= 30, errors!.message);
    assert.is(errors!.stable!.value, 0, errors!.message);
    assert.is(latency!.phase, 'successful', latency!.message);
    assert.ok(latency!.canary!.value > 0, latency!.message);
  } finally {
    await a.stop();
  }
});

test.run();
