/**
 * Deployment SLOs and metrics: the values `deployment_slo` accepts and refuses (file, key, line), the
 * measures over a history seeded through the store API on both backends, each objective's verdict, and
 * the Prometheus text checked line by line against the exposition format.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../core/config/load.js';
import { metricRows, metricSamples, renderMetrics } from '../../core/metrics.js';
import { evaluate, formatSlo, measure, nearestRank, parseLatency, parseRate } from '../../core/slo.js';
import type { StateStore } from '../../core/state/store.js';
import { backends } from '../support/backends.js';

test('rates: "99%", "99.5 %", a bare 95 (only a percentage can exceed 1) are accepted; 0.95 and 1 are ambiguous', () => {
  assert.is(parseRate('99%'), 0.99);
  assert.is(parseRate('99.5 %'), 0.995);
  assert.is(parseRate(95), 0.95);
  assert.is(parseRate('95'), 0.95);
  assert.is(parseRate('0%'), 0);
  assert.is(parseRate(0.95), '0.95 is ambiguous: write "0.95%" or "95%"');
  assert.is(parseRate(1), '1 is ambiguous: write "1%" or "100%"');
  assert.match(String(parseRate('150%')), 'expected a percentage from 0% to 100%');
  assert.match(String(parseRate(250)), 'expected a percentage from 0% to 100%');
  assert.match(String(parseRate('lots')), 'expected a percentage such as "99%"');
  assert.is(parseLatency('10m'), 600_000);
  assert.is(parseLatency(90), 90_000);
  assert.is(parseLatency('500ms'), 500);
  assert.match(String(parseLatency('fast')), 'expected a duration such as "90s" or "10m"');
});

const BASE = `fraises:
  api:
    environments:
      production:
        instances: [h1]
        app_path: /srv/api
        git_repo: https://example.com/api.git
        systemd_service: api.service
`;

function configError(text: string): string {
  try {
    parseConfig(text, 'fraises.yaml', {});
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

test('YAML: deployment_slo at the top, overridden key by key in a fraise', () => {
  const c = parseConfig(
    `deployment_slo:\n  success_rate: 99%\n  latency_p99: 10m\n${BASE.replace('  api:\n', '  api:\n    deployment_slo:\n      success_rate: "95%"\n      rollback_rate: 5%\n')}`,
    'fraises.yaml',
    {},
  );
  assert.equal(c.slo, { api: { success_rate: 0.95, latency_p99: 600_000, rollback_rate: 0.05 } });
  assert.equal(parseConfig(BASE, 'fraises.yaml', {}).slo, {});
});

test('YAML: an ambiguous or wrong SLO value is an error naming the file, the key, the line and what to write', () => {
  assert.is(
    configError(`deployment_slo:\n  success_rate: 0.95\n${BASE}`),
    'fraises.yaml: deployment_slo.success_rate: 0.95 is ambiguous: write "0.95%" or "95%" (line 2)',
  );
  assert.match(
    configError(BASE.replace('  api:\n', '  api:\n    deployment_slo:\n      latency_p99: soon\n')),
    /^fraises\.yaml: fraises\.api\.deployment_slo\.latency_p99: expected a duration such as "90s" or "10m" .*\(line 4\)$/,
  );
  assert.match(configError(`deployment_slo:\n  succes_rate: 99%\n${BASE}`), /deployment_slo\.succes_rate: unknown key "succes_rate"/);
  assert.match(configError(`deployment_slo:\n  error_rate_max: [1]\n${BASE}`), /deployment_slo\.error_rate_max: expected a percentage such as "1%"/);
});

/** Seeds finished deployments through the store API: `[status, duration seconds]` each, started `agoDays` ago. */
async function seed(store: StateStore, clock: { t: number }, fraise: string, environment: string, rows: [string, number][], agoDays = 1) {
  for (const [status, secs] of rows) {
    clock.t = Date.now() - agoDays * 86_400_000;
    const id = await store.recordDeployment({
      fraise,
      environment,
      kind: 'deploy',
      strategy: 'rolling',
      fromVersion: null,
      toVersion: 'v',
      user: 'u',
      host: 'h',
    });
    clock.t += secs * 1000;
    await store.finishDeployment(id, { status: status as 'succeeded' });
  }
}

for (const backend of backends) {
  test(`${backend.name}: measures and verdicts over a seeded history; old deployments are outside the window`, async () => {
    const clock = { t: Date.now() };
    const store = await backend.open({ now: () => clock.t });
    try {
      await seed(store, clock, 'api', 'production', [
        ...Array.from({ length: 16 }, (): [string, number] => ['succeeded', 30]),
        ['rolled_back', 60],
        ['rolled_back', 60],
        ['failed', 900],
        ['lock_lost', 45],
        ['cancelled', 1200], // a person stopped it: not counted, its duration not in the p99
      ]);
      await seed(store, clock, 'api', 'production', [['failed', 10]], 40); // outside a 30-day window
      await seed(store, clock, 'etl', 'production', [['succeeded', 20]]);
      const m = await measure(store, { days: 30 });
      assert.equal(
        m.map((x) => [x.fraise, x.total, x.succeeded, x.errored, x.rolledBack, x.p99Ms]),
        [
          ['api', 20, 16, 2, 2, 900_000],
          ['etl', 1, 1, 0, 0, 20_000],
        ],
      );
      const report = evaluate({ success_rate: 0.99, error_rate_max: 0.1, latency_p99: 600_000, rollback_rate: 0.05 }, m[0], 'api');
      assert.equal(
        report.results.map((r) => [r.key, r.actual, r.status]),
        [
          ['success_rate', 0.8, 'broken'],
          ['error_rate_max', 0.1, 'ok'],
          ['latency_p99', 900_000, 'broken'],
          ['rollback_rate', 0.1, 'broken'],
        ],
      );
      const text = formatSlo([report], 30);
      assert.match(text, 'BROKEN  api success_rate: 80% (objective >= 99%, 20 deployment(s))');
      assert.match(text, 'ok      api error_rate_max: 10% (objective <= 10%, 20 deployment(s))');
      assert.match(text, 'BROKEN  api latency_p99: 900s (objective <= 600s, 20 deployment(s))');
      assert.equal(
        evaluate({ success_rate: 0.99 }, undefined, 'worker').results.map((r) => r.status),
        ['no_data'],
      );
    } finally {
      await store.close();
    }
  });

  test(`${backend.name}: Prometheus text: every line is a comment or a valid sample; counters and the histogram add up`, async () => {
    const clock = { t: Date.now() };
    const store = await backend.open({ now: () => clock.t });
    try {
      await seed(store, clock, 'api', 'production', [
        ['succeeded', 3],
        ['succeeded', 45],
        ['rolled_back', 200],
        ['failed', 7200],
      ]);
      await seed(store, clock, 'api', 'staging "eu"', [['succeeded', 12]]);
      const rb = await store.recordDeployment({
        fraise: 'api',
        environment: 'production',
        kind: 'rollback',
        strategy: 'rolling',
        fromVersion: 'v2',
        toVersion: 'v1',
        user: 'u',
        host: 'h',
      });
      await store.finishDeployment(rb, { status: 'succeeded' });
      await store.recordDeployment({
        fraise: 'api',
        environment: 'production',
        kind: 'deploy',
        strategy: 'rolling',
        fromVersion: null,
        toVersion: 'v3',
        user: 'u',
        host: 'h',
      });
      const text = renderMetrics(await metricRows(store));
      assert.ok(text.endsWith('\n'));
      const families = new Map<string, string>();
      const samples = new Map<string, number>();
      for (const line of text.slice(0, -1).split('\n')) {
        const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
        const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
        const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|\+Inf)$/.exec(
          line,
        );
        assert.ok(help || type || sample, `not a valid exposition line: ${line}`);
        if (type) {
          assert.not.ok(families.has(type[1]!), `TYPE twice: ${type[1]}`);
          families.set(type[1]!, type[2]!);
        }
        if (sample) {
          const fam = [...families.keys()].find(
            (f) => sample[1] === f || (families.get(f) === 'histogram' && /_(bucket|sum|count)$/.test(sample[1]!) && sample[1]!.startsWith(f)),
          );
          assert.ok(fam, `sample before its TYPE: ${line}`);
          samples.set(`${sample[1]}${sample[2] ?? ''}`, Number(sample[3]));
        }
      }
      const p = 'fraise="api",environment="production"';
      assert.is(samples.get(`fraisier_deployments_total{${p},kind="deploy",status="succeeded"}`), 2);
      assert.is(samples.get(`fraisier_deployments_total{${p},kind="rollback",status="succeeded"}`), 1);
      assert.is(samples.get(`fraisier_deployment_failures_total{${p}}`), 2);
      assert.is(samples.get(`fraisier_rollbacks_total{${p},trigger="automatic"}`), 1);
      assert.is(samples.get(`fraisier_rollbacks_total{${p},trigger="manual"}`), 1);
      assert.is(samples.get(`fraisier_deployments_running{${p}}`), 1);
      assert.is(samples.get(`fraisier_deployment_duration_seconds_bucket{${p},le="5"}`), 1);
      assert.is(samples.get(`fraisier_deployment_duration_seconds_bucket{${p},le="60"}`), 2);
      assert.is(samples.get(`fraisier_deployment_duration_seconds_bucket{${p},le="300"}`), 3);
      assert.is(samples.get(`fraisier_deployment_duration_seconds_bucket{${p},le="3600"}`), 3);
      assert.is(samples.get(`fraisier_deployment_duration_seconds_bucket{${p},le="+Inf"}`), 4);
      assert.is(samples.get(`fraisier_deployment_duration_seconds_count{${p}}`), 4);
      assert.is(samples.get(`fraisier_deployment_duration_seconds_sum{${p}}`), 3 + 45 + 200 + 7200);
      // a label value with a quote is escaped
      assert.is(samples.get('fraisier_deployment_duration_seconds_count{fraise="api",environment="staging \\"eu\\""}'), 1);
      // buckets never decrease
      const buckets = [...samples].filter(([k]) => k.startsWith(`fraisier_deployment_duration_seconds_bucket{${p}`)).map(([, v]) => v);
      assert.equal(
        buckets,
        [...buckets].sort((a, b) => a - b),
      );
    } finally {
      await store.close();
    }
  });
}

test('metrics --json: every sample of the text, its labels unescaped (a quote, a backslash, a newline)', () => {
  const odd = 'we"ird\\na\nme';
  const rows = [
    { fraise: odd, environment: 'prod', kind: 'deploy' as const, status: 'succeeded', durationMs: 7000, finishedAt: 1_700_000_000_000 },
    { fraise: odd, environment: 'prod', kind: 'deploy' as const, status: 'rolled_back', durationMs: 3000, finishedAt: 1_700_000_100_000 },
  ];
  const text = renderMetrics(rows);
  const samples = metricSamples(text);
  assert.is(samples.length, text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length);
  assert.equal(
    samples.find((x) => x.name === 'fraisier_deployments_total' && x.labels['status'] === 'rolled_back'),
    { name: 'fraisier_deployments_total', labels: { fraise: odd, environment: 'prod', kind: 'deploy', status: 'rolled_back' }, value: 1 },
  );
  assert.is(samples.find((x) => x.name === 'fraisier_deployment_duration_seconds_bucket' && x.labels['le'] === '+Inf')!.value, 2);
  assert.is(samples.find((x) => x.name === 'fraisier_deployment_duration_seconds_sum')!.value, 10);
  assert.is(samples.find((x) => x.name === 'fraisier_last_success_timestamp_seconds')!.value, 1_700_000_000);
});

test('nearest rank: the ⌈p·n⌉-th smallest', () => {
  assert.is(nearestRank([], 0.99), null);
  assert.is(nearestRank([5], 0.99), 5);
  assert.is(nearestRank([...Array.from({ length: 100 }, (_, i) => i + 1)], 0.99), 99);
});

test.run();
