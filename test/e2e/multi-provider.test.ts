/**
 * End to end: one environment served by two providers, bare metal on the lab's SSH hosts (priority 1)
 * and Coolify on the simulator (priority 2, a local HTTP server started here), through the `fraisier`
 * command (bin/fraisier.js, the built code: `npm run build` first). Failover: the primary healthy (the
 * fallback never called), the primary failing its health check (rolled back, Coolify serves, the history
 * says so), both failing (both rolled back, exit 1); a rollback on the provider that served; --provider;
 * status per provider; Ctrl-C during the Coolify poll; `all` mode; bad input (exit 2, nothing sent).
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../lab/lab.js';
import { startCoolifySim, type CoolifySim } from '../support/coolify-sim.js';
import { bin, hostState, lab, resetHosts, run, workspace, type Run } from './helpers.js';

const TOKEN = '9|multi-provider-secret-token';
let env: LabEnv;
let sim: CoolifySim;
let ws: string;

// enough attempts for a restart on a loaded machine; the broken release answers 500 to every one
const health = '{ url: "http://localhost:8000/health", expect: ok, timeout: 2, retries: 10, retry_delay: 0.5 }';

function yaml(simUrl: string): string {
  return `ssh:
  config: ${env.sshConfig}
fraises:
  app:
    git_repo: ${env.appRepo}
    branch: main
    app_path: /srv/app
    environments:
      production:
        deployment_mode: multi_provider
        deployment_strategy: rolling
        providers:
          - name: bare_metal
            type: bare_metal
            priority: 1
            instances: [h1, h2]
            supervisor_program: app
            health_check: ${health}
          - name: coolify_cloud
            type: coolify
            priority: 2
            url: ${simUrl}
            application_id: cloud-api
            token_env: CLOUD_TOKEN
            poll_interval: 50ms
            timeout: 2m
      everywhere:
        deployment_mode: multi_provider
        multi_provider_mode: all
        providers:
          - name: bare_metal
            type: bare_metal
            instances: [h3]
            supervisor_program: app
            health_check: ${health}
          - name: coolify_cloud
            type: coolify
            url: ${simUrl}
            application_id: cloud-b
            token_env: CLOUD_TOKEN
            poll_interval: 50ms
            timeout: 2m
`;
}

// generous: the machine may be loaded
const fraisier = async (...args: string[]): Promise<Run> => {
  const t0 = Date.now();
  const r = await run(process.execPath, [bin, ...args], { cwd: ws, env: { CLOUD_TOKEN: TOKEN }, timeoutMs: 300_000 });
  if (process.env.MP_DEBUG) process.stderr.write(`[${Date.now() - t0}ms] ${args.join(' ')} -> ${r.code}\n${process.env.MP_DEBUG === '2' ? r.out : ''}`);
  return r;
};

/** What the simulator was asked to change (PATCH, POST) since `from`: proves which provider was called. */
const changes = (from: number) => sim.requests.slice(from).filter((r) => r.method !== 'GET');

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  sim = await startCoolifySim({ 'cloud-api': 'v1.0.0', 'cloud-b': 'v1.0.0' }, { tokens: { [TOKEN]: ['read', 'write', 'deploy'] } });
  ws = workspace(yaml(sim.url));
});

test.after(async () => {
  await sim?.stop();
  if (ws) rmSync(ws, { recursive: true, force: true });
});

test('failover, the primary healthy: bare metal serves v1.0.0, the Coolify fallback is never called', async () => {
  const before = sim.requests.length;
  const r = await fraisier('deploy', 'app', 'production', '--version', 'v1.0.0', '--json');
  assert.is(r.code, 0, r.out);
  const result = JSON.parse(r.stdout);
  assert.equal(
    result.providers.map((p: { name: string; status: string }) => [p.name, p.status]),
    [
      ['bare_metal', 'served'],
      ['coolify_cloud', 'not_tried'],
    ],
  );
  for (const h of ['h1', 'h2']) assert.is((await hostState(env, h)).serving, 'v1.0.0');
  assert.equal(changes(before), [], 'no PATCH or POST reached Coolify');
  assert.is(sim.deployments.length, 0);
  assert.not.ok(r.out.includes(TOKEN));
});

test('failover, both fail: bare metal and Coolify are both rolled back, exit 1, the history says why each failed', async () => {
  sim.failing.add('v2.0.0-broken');
  try {
    const r = await fraisier('deploy', 'app', 'production', '--version', 'v2.0.0-broken');
    assert.is(r.code, 1, r.out);
    assert.match(r.out, 'provider bare_metal failed');
    for (const h of ['h1', 'h2']) assert.is((await hostState(env, h)).serving, 'v1.0.0');
    assert.is(sim.apps.get('cloud-api')!.running, 'v1.0.0');
    assert.is(sim.setting('cloud-api'), 'v1.0.0');
    const h = await fraisier('history', '--fraise', 'app', '--limit', '1', '--json');
    const [row] = JSON.parse(h.stdout);
    assert.is(row.status, 'rolled_back');
    assert.equal(
      row.providers.map((p: { name: string; status: string }) => [p.name, p.status]),
      [
        ['bare_metal', 'rolled_back'],
        ['coolify_cloud', 'rolled_back'],
      ],
    );
    assert.match(row.providers[0].error, /health check failed on h1/);
    assert.match(row.providers[1].error, /failed/);
  } finally {
    sim.failing.delete('v2.0.0-broken');
  }
});

test('failover, the primary fails its health check: it is rolled back, Coolify serves, and `history --limit 1` says so', async () => {
  const r = await fraisier('deploy', 'app', 'production', '--version', 'v2.0.0-broken');
  assert.is(r.code, 0, r.out);
  for (const h of ['h1', 'h2']) assert.is((await hostState(env, h)).serving, 'v1.0.0');
  assert.is(sim.apps.get('cloud-api')!.running, 'v2.0.0-broken');
  const h = await fraisier('history', '--fraise', 'app', '--limit', '1');
  assert.is(h.code, 0, h.out);
  assert.match(h.stdout, /bare_metal \(priority 1\): rolled_back: .*health check failed on h1/);
  assert.match(h.stdout, /coolify_cloud \(priority 2\): served/);
});

test('rollback goes back on the provider that served (Coolify), the hosts are not touched', async () => {
  const before = sim.deployments.length;
  const r = await fraisier('rollback', 'app', 'production', '--json');
  assert.is(r.code, 0, r.out);
  assert.is(JSON.parse(r.stdout).toVersion, 'v1.0.0');
  assert.is(sim.apps.get('cloud-api')!.running, 'v1.0.0');
  assert.is(sim.deployments.length, before + 1);
  const result = JSON.parse(r.stdout);
  assert.equal(
    result.targets.map((t: { name: string; status: string }) => [t.name, t.status]),
    [
      ['h1', 'pending'],
      ['h2', 'pending'],
      ['cloud-api', 'healthy'],
    ],
  );
});

test('--provider coolify_cloud deploys to Coolify alone; status shows what each provider runs', async () => {
  const r = await fraisier('deploy', 'app', 'production', '--provider', 'coolify_cloud', '--version', 'v1.1.0');
  assert.is(r.code, 0, r.out);
  assert.is(sim.apps.get('cloud-api')!.running, 'v1.1.0');
  for (const h of ['h1', 'h2']) assert.is((await hostState(env, h)).serving, 'v1.0.0');
  const s = await fraisier('status', 'app', 'production', '--json');
  assert.is(s.code, 0, s.out);
  assert.equal(
    JSON.parse(s.stdout).providers.map((p: { name: string; current: string }) => [p.name, p.current]),
    [
      ['bare_metal', 'v1.0.0'],
      ['coolify_cloud', 'v1.1.0'],
    ],
  );
  const unknown = await fraisier('deploy', 'app', 'production', '--provider', 'coolify', '--version', 'v1.1.0');
  assert.is(unknown.code, 2, unknown.out);
  assert.match(unknown.out, /no such provider.*bare_metal, coolify_cloud/s);
});

test('Ctrl-C during the Coolify poll: the Coolify deployment is cancelled and the old version restored; the hosts too', async () => {
  const inProgress = sim.options.inProgressPolls;
  sim.options.inProgressPolls = 100_000; // stays in_progress until cancelled
  try {
    const child = spawn(process.execPath, [bin, 'deploy', 'app', 'production', '--version', 'v2.0.0-broken'], {
      cwd: ws,
      env: { ...process.env, CLOUD_TOKEN: TOKEN, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const started = sim.deployments.length;
    // the primary fails its health check first; then Coolify is polled
    for (let i = 0; i < 3000 && !sim.deployments.slice(started).some((d) => d.status === 'in_progress'); i++) await new Promise((r) => setTimeout(r, 100));
    const d = sim.deployments.slice(started).find((x) => x.status === 'in_progress');
    assert.ok(d, `no Coolify deployment started:\n${out}`);
    child.kill('SIGINT');
    const code = await exited;
    assert.is(code, 130, out);
    assert.is(d!.status, 'cancelled-by-user');
    assert.is(sim.apps.get('cloud-api')!.running, 'v1.1.0');
    assert.is(sim.setting('cloud-api'), 'v1.1.0');
    for (const h of ['h1', 'h2']) assert.is((await hostState(env, h)).serving, 'v1.0.0');
  } finally {
    sim.options.inProgressPolls = inProgress;
  }
});

test('all mode: both providers get the release in parallel; when one fails, both are rolled back', async () => {
  const ok = await fraisier('deploy', 'app', 'everywhere', '--version', 'v1.1.0', '--json');
  assert.is(ok.code, 0, ok.out);
  assert.equal(
    JSON.parse(ok.stdout).providers.map((p: { status: string }) => p.status),
    ['served', 'served'],
  );
  assert.is((await hostState(env, 'h3')).serving, 'v1.1.0');
  assert.is(sim.apps.get('cloud-b')!.running, 'v1.1.0');

  const bad = await fraisier('deploy', 'app', 'everywhere', '--version', 'v2.0.0-broken', '--json');
  assert.is(bad.code, 1, bad.out);
  const result = JSON.parse(bad.stdout);
  assert.is(result.status, 'rolled_back', bad.out);
  assert.equal(
    result.providers.map((p: { name: string; status: string }) => [p.name, p.status]),
    [
      ['bare_metal', 'rolled_back'],
      ['coolify_cloud', 'rolled_back'],
    ],
  );
  assert.is((await hostState(env, 'h3')).serving, 'v1.1.0');
  assert.is(sim.apps.get('cloud-b')!.running, 'v1.1.0');
});

test('bad input: two providers with one priority, an unknown provider type: exit 2 naming the key, nothing sent', async () => {
  const cases: [string, RegExp][] = [
    [
      yaml(sim.url).replace('priority: 2', 'priority: 1'),
      /bad\.yaml: fraises\.app\.environments\.production\.providers\[1\]\.priority: priority 1 is also the priority of providers\[0\] \(bare_metal\).* \(line \d+\)/,
    ],
    [
      yaml(sim.url).replace('type: coolify\n            priority: 2', 'type: coolifi\n            priority: 2'),
      /bad\.yaml: fraises\.app\.environments\.production\.providers\[1\]\.type: unknown provider "coolifi"; known providers: .*bare_metal.*coolify/,
    ],
  ];
  for (const [text, message] of cases) {
    writeFileSync(join(ws, 'bad.yaml'), text);
    const before = sim.requests.length;
    const r = await fraisier('deploy', 'app', 'production', '--version', 'v1.2.0', '-c', 'bad.yaml');
    assert.is(r.code, 2, r.out);
    assert.match(r.out, message, r.out);
    assert.is(sim.requests.length, before);
  }
  for (const h of ['h1', 'h2']) assert.is((await hostState(env, h)).serving, 'v1.0.0');
});

test.run();
