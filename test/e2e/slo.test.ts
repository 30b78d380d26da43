/**
 * End to end: `fraisier slo check`, `stats` and `metrics` over a history seeded through the store API
 * in the SQLite file a fraises.yaml names. A broken objective fails the gate (exit 1, one line per key),
 * a good history passes it, `metrics --textfile` writes a node_exporter file, and bad input exits 2.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../core/state/store.js';
import { fraisier, workspace } from './helpers.js';

const YAML = (slo: string) => `state:
  path: state.db
${slo}fraises:
  api:
    environments:
      production:
        instances: [h1]
        app_path: /srv/api
        git_repo: https://example.com/api.git
        systemd_service: api.service
`;
const SLO = 'deployment_slo:\n  success_rate: 90%\n  rollback_rate: 10%\n  latency_p99: 5m\n';

/** Finished deployments of api/production: `[status, seconds]` each, yesterday. */
async function seed(dir: string, rows: [string, number][]) {
  let t = Date.now() - 86_400_000;
  const store = await openStore({ path: join(dir, 'state.db'), now: () => t });
  try {
    for (const [status, secs] of rows) {
      const id = await store.recordDeployment({
        fraise: 'api',
        environment: 'production',
        kind: 'deploy',
        strategy: 'rolling',
        fromVersion: null,
        toVersion: 'v',
        user: 'ci',
        host: 'ci',
      });
      t += secs * 1000;
      await store.finishDeployment(id, { status: status as 'succeeded' });
    }
  } finally {
    await store.close();
  }
}

test('slo check fails on a history that breaks the objectives, with one line per key; stats shows the same', async () => {
  const ws = workspace(YAML(SLO));
  await seed(ws, [...Array.from({ length: 7 }, (): [string, number] => ['succeeded', 40]), ['rolled_back', 60], ['rolled_back', 50], ['failed', 400]]);
  const r = await fraisier(ws, 'slo', 'check', '--days', '7');
  assert.is(r.code, 1, r.out);
  assert.match(r.stdout, 'BROKEN  api success_rate: 70% (objective >= 90%, 10 deployment(s))');
  assert.match(r.stdout, 'BROKEN  api rollback_rate: 20% (objective <= 10%, 10 deployment(s))');
  assert.match(r.stdout, 'BROKEN  api latency_p99: 400s (objective <= 300s, 10 deployment(s))');
  assert.match(r.stdout, 'SLO broken over the last 7 days: api success_rate, api latency_p99, api rollback_rate');
  const s = await fraisier(ws, 'stats');
  assert.is(s.code, 0, s.out);
  assert.match(s.stdout, 'SLO (last 30 days):');
  assert.match(s.stdout, 'BROKEN  api success_rate: 70%');
  const j = await fraisier(ws, 'slo', 'check', '--json');
  assert.is(j.code, 1);
  assert.is(JSON.parse(j.stdout).ok, false);
});

test('slo check passes on a good history; metrics --textfile writes a .prom file atomically', async () => {
  const ws = workspace(YAML(SLO));
  await seed(ws, [...Array.from({ length: 19 }, (): [string, number] => ['succeeded', 40]), ['rolled_back', 60]]);
  const r = await fraisier(ws, 'slo', 'check');
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, 'ok      api success_rate: 95% (objective >= 90%, 20 deployment(s))');
  assert.match(r.stdout, 'SLO met over the last 30 days');

  const m = await fraisier(ws, 'metrics', '--textfile', 'fraisier.prom');
  assert.is(m.code, 0, m.out);
  const text = readFileSync(join(ws, 'fraisier.prom'), 'utf8');
  assert.match(text, 'fraisier_deployments_total{fraise="api",environment="production",kind="deploy",status="succeeded"} 19');
  assert.match(text, 'fraisier_deployment_duration_seconds_count{fraise="api",environment="production"} 20');
  assert.equal(
    readdirSync(ws).filter((f) => f.includes('.tmp')),
    [],
    'no temporary file left',
  );
  const out = await fraisier(ws, 'metrics');
  assert.is(out.stdout, text);
});

test('bad input exits 2 and changes nothing: an ambiguous SLO value, no SLO to check, a textfile that is not .prom', async () => {
  const ws = workspace(YAML('deployment_slo:\n  success_rate: 0.9\n'));
  const r = await fraisier(ws, 'slo', 'check');
  assert.is(r.code, 2, r.out);
  assert.match(r.stderr, 'fraises.yaml: deployment_slo.success_rate: 0.9 is ambiguous: write "0.9%" or "90%" (line 4)');

  const none = workspace(YAML(''));
  const n = await fraisier(none, 'slo', 'check');
  assert.is(n.code, 2, n.out);
  assert.match(n.stderr, 'no deployment_slo: nothing to check');

  const t = await fraisier(none, 'metrics', '--textfile', 'metrics.txt');
  assert.is(t.code, 2, t.out);
  assert.match(t.stderr, "--textfile: node_exporter's textfile collector reads only *.prom files");
  assert.not.ok(existsSync(join(none, 'metrics.txt')));
});

test.run();
