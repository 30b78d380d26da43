/**
 * End to end: a real HAProxy 2.6 (foreground, started and stopped by pid by this test) in front of the lab's
 * three hosts, driven by the haproxy-lb plugin through its admin socket: no reload ever. Under load from
 * both kinds of client (new connection per request, and wrk's keep-alive connections), a rolling deploy
 * with drain, a rolled-back rolling deploy, a blue-green switch and a blue-green rollback must see zero
 * non-2xx answers and zero socket errors.
 * Traffic: loopback (clients → HAProxy) and the lab's own namespace addresses (HAProxy → the hosts' :8000).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeployApp } from '../../core/app.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { bareMetal } from '../../providers/bare-metal.js';
import { rolling } from '../../strategies/rolling.js';
import { haproxyLb, parseServersState, isMaint, isDrain } from '../../plugins/haproxy-lb.js';
import type { LabEnv } from '../lab/lab.js';
import { hostExec } from '../lab/lab.js';
import { allHosts, fraisier, lab, resetHosts } from './helpers.js';
import { labApp, loadLines, sample, sleep, socketErrorCount, startHaproxy, startTraffic, type Haproxy } from './traffic.js';

let env: LabEnv;
let hap: Haproxy;
let dir: string;
const servers: Record<string, string> = {};

/** What HAProxy routes to now: `h1:ready h2:maint ...`. */
function states(): string {
  return parseServersState(hap.cli('show servers state app'))
    .map((s) => `${s.name}:${isMaint(s) ? 'maint' : isDrain(s) ? 'drain' : 'ready'}`)
    .join(' ');
}

function app(entries: LogEntry[] = []) {
  const plugin = haproxyLb({ socket: hap.socket });
  const { deploy } = labApp(env, dir, { plugins: [plugin], entries });
  return { deploy, entries, plugin };
}

test.before(async () => {
  env = await lab();
  for (const h of env.hosts) servers[h.name] = `${h.address}:${env.appPort}`;
  await resetHosts(env);
  hap = await startHaproxy('app', servers);
  dir = mkdtempSync(join(tmpdir(), 'fraisier-haproxy-e2e-'));
});

test.after(async () => {
  await hap?.stop();
});

test('first rolling deploy of v1.0.0 through haproxy-lb: every server ready afterwards', async () => {
  const { deploy, entries } = app();
  const r = await deploy('v1.0.0');
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.0.0');
  assert.is(states(), 'h1:ready h2:ready h3:ready');
  assert.equal(await sample(hap.port, 12), { '200 v1.0.0': 12 });
});

test('a rolling deploy to v1.1.0 with drain, under keep-alive and new-connection load: zero non-2xx, zero socket errors, no reload', async () => {
  const { deploy, entries } = app();
  const pidBefore = hap.cli('show info').match(/^Pid: (\d+)/m)?.[1];
  const traffic = startTraffic(hap.port);
  await sleep(500);
  const started = Date.now();
  const r = await deploy('v1.1.0');
  const ms = Date.now() - started;
  await sleep(500);
  const load = await traffic.stop();
  console.log(`  [haproxy e2e] rolling v1.0.0 → v1.1.0 with drain in ${ms} ms\n${loadLines('haproxy-lb: rolling deploy with drain', load)}`);
  console.log(
    `  [haproxy e2e] ${entries
      .filter((e) => /drained in|still open/.test(e.message))
      .map((e) => `${e.target}: ${e.message}`)
      .join(' | ')}`,
  );
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  assert.ok(load.fresh.total > 100 && load.keepAlive.requests > 100, `enough requests during the deploy (${load.fresh.total}, ${load.keepAlive.requests})`);
  assert.equal(load.fresh.non2xx, {}, 'new connections: zero non-2xx');
  assert.equal(load.fresh.socketErrors, {}, 'new connections: zero socket errors');
  assert.equal(load.keepAlive.non2xx, {}, `keep-alive: zero non-2xx\n${load.keepAlive.raw}`);
  assert.is(socketErrorCount(load.keepAlive), 0, `keep-alive: zero socket errors\n${load.keepAlive.raw}`);
  assert.ok(
    (load.keepAlive.versions['v1.0.0'] ?? 0) > 0 && (load.keepAlive.versions['v1.1.0'] ?? 0) > 0,
    'keep-alive clients saw both versions during the rollout',
  );
  // Drained (or the drainTimeout warning on a very loaded machine): either way the server was set to drain first.
  for (const h of ['h1', 'h2', 'h3'])
    assert.ok(
      entries.some((e) => e.target === h && /app\/h\d: (drained in \d+ ms \(no reload\)|\d+ session\(s\) still open)/.test(e.message)),
      `${h} drained`,
    );
  assert.is(states(), 'h1:ready h2:ready h3:ready');
  assert.is(hap.cli('show info').match(/^Pid: (\d+)/m)?.[1], pidBefore, 'the same HAProxy process: no reload, no restart');
  assert.equal(await sample(hap.port, 30), { '200 v1.1.0': 30 });
});

test('a rolling deploy whose new version fails its health check, under both loads: rolled back, zero non-2xx, zero socket errors', async () => {
  const { deploy, entries } = app();
  const traffic = startTraffic(hap.port);
  await sleep(500);
  const r = await deploy('v2.0.0-broken');
  await sleep(500);
  const load = await traffic.stop();
  console.log(`  [haproxy e2e] rolling v1.1.0 → v2.0.0-broken (rolled back)\n${loadLines('haproxy-lb: rolling deploy rolled back', load)}`);
  assert.is(r.status, 'rolled_back', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  assert.equal(load.fresh.non2xx, {});
  assert.equal(load.fresh.socketErrors, {});
  assert.equal(load.keepAlive.non2xx, {}, load.keepAlive.raw);
  assert.is(socketErrorCount(load.keepAlive), 0, load.keepAlive.raw);
  assert.equal(Object.keys(load.keepAlive.versions), ['v1.1.0'], 'the broken release never got a request');
  assert.is(states(), 'h1:ready h2:ready h3:ready', 'the drained server is ready again after the rollback');
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.1.0');
});

/** Blue-green through the fraisier command and fraises.yaml (load_balancer type: haproxy): blue = h1, green = h2, h3. */
function bgYaml(): string {
  return `ssh:
  config: ${env.sshConfig}
fraises:
  app:
    git_repo: ${env.appRepo}
    app_path: /srv/app
    environments:
      production:
        instances: [h1, h2, h3]
        supervisor_program: app
        deployment_strategy: blue_green
        blue_green_config:
          blue: [h1]
          green: [h2, h3]
          verify_command: 'test "$(curl -fsS --max-time 5 "$FRAISIER_IDLE_URL/")" = "$FRAISIER_VERSION"'
        health_check:
          url: http://localhost:8000/health
          expect: ok
          timeout: 2
          retries: 8
          retry_delay: 0.25
        load_balancer:
          type: haproxy
          socket: ${hap.socket}
          backend: app
`;
}

let bgDir: string;

test('blue-green (fraises.yaml, type: haproxy): the first deploy goes to blue and switches to it, green in maintenance', async () => {
  bgDir = mkdtempSync(join(tmpdir(), 'fraisier-haproxy-bg-'));
  writeFileSync(join(bgDir, 'fraises.yaml'), bgYaml());
  const r = await fraisier(bgDir, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'No live colour recorded yet: deploying v1.0.0 to blue (h1)');
  assert.is(states(), 'h1:ready h2:maint h3:maint');
  assert.equal(await sample(hap.port, 10), { '200 v1.0.0': 10 });
  const s = await fraisier(bgDir, 'status', 'app', 'production');
  assert.is(s.code, 0, s.out);
  assert.match(s.stdout, 'live colour: blue (h1)');
});

test('a blue-green deploy of v1.2.0 (switch to green) under both loads: zero non-2xx, zero socket errors; blue keeps v1.0.0', async () => {
  const traffic = startTraffic(hap.port);
  await sleep(500);
  const r = await fraisier(bgDir, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  await sleep(500);
  const load = await traffic.stop();
  console.log(`  [haproxy e2e] blue-green switch blue → green\n${loadLines('haproxy-lb: blue-green switch', load)}`);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /traffic switched from pool blue to pool green \(h2, h3\) in \d+ ms, no reload/);
  assert.equal(load.fresh.non2xx, {});
  assert.equal(load.fresh.socketErrors, {});
  assert.equal(load.keepAlive.non2xx, {}, load.keepAlive.raw);
  assert.is(socketErrorCount(load.keepAlive), 0, load.keepAlive.raw);
  assert.is(states(), 'h1:maint h2:ready h3:ready');
  assert.equal(await sample(hap.port, 20), { '200 v1.2.0': 20 });
  const [h1] = await allHosts(env);
  assert.is(h1!.serving, 'v1.0.0', 'blue keeps the previous release for an instant rollback');
  const s = await fraisier(bgDir, 'status', 'app', 'production');
  assert.match(s.stdout, 'live colour: green (h2, h3)');
});

test('a blue-green rollback (switch back to blue) under both loads: zero non-2xx, zero socket errors, no restart', async () => {
  const pids = await Promise.all(['h1', 'h2', 'h3'].map(async (h) => (await hostExec(env, h, 'supervisorctl pid app')).stdout.trim()));
  const traffic = startTraffic(hap.port);
  await sleep(500);
  const r = await fraisier(bgDir, 'rollback', 'app', 'production');
  await sleep(500);
  const load = await traffic.stop();
  console.log(`  [haproxy e2e] blue-green rollback green → blue\n${loadLines('haproxy-lb: blue-green rollback', load)}`);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'v1.0.0 is already live here (idle blue): health check only, no restart');
  assert.equal(load.fresh.non2xx, {});
  assert.equal(load.fresh.socketErrors, {});
  assert.equal(load.keepAlive.non2xx, {}, load.keepAlive.raw);
  assert.is(socketErrorCount(load.keepAlive), 0, load.keepAlive.raw);
  assert.is(states(), 'h1:ready h2:maint h3:maint');
  assert.equal(await sample(hap.port, 20), { '200 v1.0.0': 20 });
  assert.equal(
    await Promise.all(['h1', 'h2', 'h3'].map(async (h) => (await hostExec(env, h, 'supervisorctl pid app')).stdout.trim())),
    pids,
    'no host restarted',
  );
  const s = await fraisier(bgDir, 'status', 'app', 'production');
  assert.match(s.stdout, 'live colour: blue (h1)');
});

test('an admin socket that does not exist fails the preflight, naming it; nothing changes', async () => {
  const entries: LogEntry[] = [];
  const plugin = haproxyLb({ socket: join(dir, 'nope.sock') });
  const r = await new DeployApp(
    {
      name: 'app',
      state: { path: join(dir, 'state.db') },
      environments: {
        production: {
          provider: bareMetal({
            hosts: ['h1'],
            appPath: '/srv/app',
            source: { type: 'git', repo: env.appRepo },
            service: { type: 'supervisor', program: 'app' },
            ssh: { configFile: env.sshConfig },
          }),
          strategy: rolling({ batchSize: 1 }),
          plugins: [plugin],
        },
      },
    },
    dir,
  ).deploy('production', { version: 'v1.1.0' }, { sinks: [memorySink(entries)], handleSignals: false });
  assert.is(r.status, 'failed');
  assert.is(r.error!.code, 'E_PREFLIGHT');
  assert.match(r.error!.message, `no HAProxy admin socket at ${join(dir, 'nope.sock')}`);
  assert.is((await allHosts(env))[0]!.serving, 'v1.0.0');
});

test.run();
