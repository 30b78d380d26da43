/**
 * `fraisier deploy api etl worker production`: three fraises in parallel on the lab, each with its own
 * lock and history row (api: the app on h1 and h2; etl: a second app path on h1 and h2, no service;
 * worker: the app on h3). Per-fraise prefixes and one summary table; an unknown fraise is refused before
 * anything starts; with `--fail-fast`, worker's broken release fails and the other two are cancelled and
 * rolled back.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { allHosts, fraisier, lab, resetHosts, workspace } from './helpers.js';

let env: LabEnv;
const state = join(mkdtempSync(join(tmpdir(), 'fraisier-multi-')), 'state.db');

const HEALTH = `          health_check: { url: "http://localhost:8000/health", expect: ok, timeout: 2, retries: 8, retry_delay: 0.25 }\n`;

/** api and etl wait `wait` seconds after their first host (0: no wait); worker deploys `workerBranch` by default. */
function yaml(wait: number, workerBranch = 'v1.1.0'): string {
  const rolling = `          rolling_config: { batch_size: 1${wait ? `, wait_between_batches: ${wait}` : ''} }\n`;
  return `state:
  path: ${state}
ssh:
  config: ${env.sshConfig}
fraises:
  api:
    git_repo: ${env.appRepo}
    branch: v1.1.0
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [h1, h2]
        supervisor_program: app
        deployment_strategy: rolling
${rolling.slice(2)}${HEALTH.slice(2)}  etl:
    git_repo: ${env.appRepo}
    branch: v1.1.0
    app_path: /srv/etl
    environments:
      production:
        provider: bare_metal
        instances: [h1, h2]
        restart_command: "true"
        deployment_strategy: rolling
${rolling.slice(2)}  worker:
    git_repo: ${env.appRepo}
    branch: ${workerBranch}
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [h3]
        supervisor_program: app
${HEALTH.slice(2)}`;
}

const etlCurrent = async () =>
  Promise.all(['h1', 'h2'].map(async (h) => (await hostExec(env, h, 'readlink /srv/etl/current || echo -')).stdout.trim().split('/').pop()));

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  await Promise.all(env.hosts.map((h) => hostExec(env, h.name, 'rm -rf /srv/etl')));
});

test('three fraises in parallel: each its own history row, prefixed lines, one summary table, exit 0', async () => {
  const ws = workspace(yaml(0));
  const r = await fraisier(ws, 'deploy', 'api', 'etl', 'worker', 'production', '--version', 'v1.0.0', '--max-parallel', '3');
  assert.is(r.code, 0, r.out);
  for (const prefix of ['[api/h1]', '[api/h2]', '[etl/h1]', '[etl/h2]', '[worker/h3]', '[api] ', '[worker] '])
    assert.ok(r.stdout.includes(prefix), `${prefix} in ${r.stdout}`);
  for (const f of ['api', 'etl', 'worker']) assert.match(r.stdout, new RegExp(`^${f}\\s+production\\s+succeeded\\s+\\S+\\s+v1\\.0\\.0\\s`, 'm'));
  assert.match(r.stdout, '3 of 3 fraise(s) deployed');
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
  );
  assert.equal(await etlCurrent(), ['v1.0.0', 'v1.0.0']);
  const hist = JSON.parse((await fraisier(ws, 'history', '--json')).stdout) as { fraise: string; status: string; toVersion: string }[];
  assert.equal(hist.map((d) => `${d.fraise} ${d.status} ${d.toVersion}`).sort(), ['api succeeded v1.0.0', 'etl succeeded v1.0.0', 'worker succeeded v1.0.0']);

  // an unknown fraise: refused before anything starts (exit 2), nothing recorded
  const bad = await fraisier(ws, 'deploy', 'api', 'nope', 'worker', 'production', '--version', 'v1.1.0');
  assert.is(bad.code, 2, bad.out);
  assert.match(bad.stderr, 'unknown fraise "nope"');
  assert.match(bad.stderr, 'known fraises: api, etl, worker');
  assert.is(JSON.parse((await fraisier(ws, 'history', '--json')).stdout).length, 3, 'nothing recorded');
});

test('--fail-fast: worker fails its health check; api and etl are cancelled and rolled back; exit 1', async () => {
  const ws = workspace(yaml(60, 'v2.0.0-broken'));
  const r = await fraisier(ws, 'deploy', 'api', 'etl', 'worker', 'production', '--fail-fast', '--json');
  assert.is(r.code, 1, r.out);
  const out = JSON.parse(r.stdout) as { ok: boolean; entries: { fraise: string; status: string; error: { message: string } | null }[] };
  assert.is(out.ok, false);
  assert.equal(
    out.entries.map((e) => [e.fraise, e.status]),
    [
      ['api', 'cancelled'],
      ['etl', 'cancelled'],
      ['worker', 'rolled_back'],
    ],
  );
  for (const e of out.entries.slice(0, 2)) assert.match(e.error?.message ?? '', /^cancelled: worker rolled_back \(--fail-fast\)/);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
  );
  assert.equal(await etlCurrent(), ['v1.0.0', 'v1.0.0']);
  const hist = JSON.parse((await fraisier(ws, 'history', '--json', '--limit', '3')).stdout) as { fraise: string; status: string }[];
  assert.equal(hist.map((d) => `${d.fraise} ${d.status}`).sort(), ['api cancelled', 'etl cancelled', 'worker rolled_back']);
  const all = JSON.parse((await fraisier(ws, 'status-all', '--json')).stdout) as { lock: unknown }[];
  assert.ok(
    all.every((row) => row.lock === null),
    'every lock released',
  );
});

test.run();
