/**
 * End to end: canary deployments through `fraisier deploy` (the CLI, fraises.yaml with `load_balancer:
 * type: haproxy`) on the lab's three hosts (one canary, two stable) behind a real HAProxy 2.6 (foreground,
 * started and stopped by pid by this test), whose weights the haproxy-lb plugin sets over the admin socket:
 * no reload. wrk (keep-alive) sends GET / through HAProxy for the whole of each deployment.
 * - a good release goes through 25 % then 50 %: the canary's share of requests, counted AT THE APP (each
 *   host's `http_requests_total{path="/"}` delta over the step), is within ±5 points of each step; after the
 *   promotion every host runs the new release and HAProxy's runtime weights are the configured ones again
 *   (an even split), every server ready;
 * - the 5xx release is aborted by the probe: the moment "all traffic back to the stable hosts" is printed,
 *   HAProxy gives the canary server no request (drain or weight 0, read back over the socket); then the
 *   canary host is back on its previous release, the stable hosts were not restarted, every server ready
 *   at its configured weight, the exit code and the history as with nginx-lb.
 * The analysis uses the default probe (Fraisier's own requests to each host): no monitoring system.
 * Traffic: loopback (wrk → HAProxy) and the lab's own addresses (HAProxy and the probe → the hosts' :8000).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isDrain, isMaint, parseServersState } from '../../plugins/haproxy-lb.js';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { allHosts, fraisier, fraisierLive, lab, resetHosts, workspace } from './helpers.js';
import { appCounters, type Haproxy, type KeepAliveResult, sleep, startHaproxy, startKeepAliveLoad } from './traffic.js';

let env: LabEnv;
let hap: Haproxy;
let ws: string;
const servers: Record<string, string> = {};
const CLI_MS = 600_000; // a canary deployment under load on a loaded 2-core machine takes minutes
const current = async () => (await allHosts(env)).map((h) => h.current);

/** HAProxy's view of the backend, read over the admin socket: `h1 ready 1/1` (state, runtime/configured weight). */
function servered(): string[] {
  return parseServersState(hap.cli('show servers state app')).map(
    (s) => `${s.name} ${isMaint(s) ? 'maint' : isDrain(s) ? 'drain' : 'ready'} ${s.weight}/${s.iweight}`,
  );
}

const snapshot = async () =>
  Object.fromEntries(await Promise.all(env.hosts.map(async (h) => [h.name, (await appCounters(h.address, env.appPort)).requests] as const)));
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/** The canary's (h1's) share in percent of the GET / answers between two snapshots, and the total. */
function canaryShare(a: Snapshot, b: Snapshot): { share: number; total: number } {
  let total = 0;
  for (const h of Object.keys(a)) total += b[h]! - a[h]!;
  return { share: total > 0 ? (100 * (b['h1']! - a['h1']!)) / total : Number.NaN, total };
}

const pids = async () => Promise.all(env.hosts.map(async (h) => (await hostExec(env, h.name, 'supervisorctl pid app')).stdout.trim()));

/** `fraisier <args>` in the workspace, `onLine` called with each output line as it is printed. */
const cli = (args: string[], onLine?: (line: string) => void) => fraisierLive(ws, args, onLine, CLI_MS);

/** The canary fraises.yaml behind the test HAProxy (`strategy`: the lines after `supervisor_program`). */
function yaml(strategy: string, lb = true): string {
  return `ssh:
  config: ${env.sshConfig}
fraises:
  app:
    git_repo: ${env.appRepo}
    branch: main
    app_path: /srv/app
    environments:
      production:
        instances: [h1, h2, h3]
        supervisor_program: app
${strategy}        health_check:
          url: http://localhost:8000/health
          expect: ok
          timeout: 2
          retries: 16
          retry_delay: 0.25
${
  lb
    ? `        load_balancer:
          type: haproxy
          socket: ${hap.socket}
          backend: app
`
    : ''
}`;
}

const canaryYaml = (schedule: string, analysis: string, sources = '') =>
  yaml(`        deployment_strategy: canary
        canary_config:
          canary_instances: 1
          batch_size: 2
          canary_error_threshold: 5
          metrics_to_monitor: [error_rate]
          analysis: { ${analysis} }
        traffic_shifting:
          enabled: true
          schedule: ${schedule}
${sources}`);

/** wrk through HAProxy: 8 keep-alive connections, a request every 20 ms each (fewer on a loaded machine). */
const load = () => startKeepAliveLoad(hap.port, '127.0.0.1', 8, 20, 1800);
const non2xx = (k: KeepAliveResult) => Object.values(k.non2xx).reduce((a, b) => a + b, 0);

test.before(async () => {
  env = await lab();
  for (const h of env.hosts) servers[h.name] = `${h.address}:${env.appPort}`;
  await resetHosts(env);
  hap = await startHaproxy('app', servers);
  // The first release on every host at once, before any traffic: no load balancer needed.
  ws = workspace(yaml('        deployment_strategy: rolling\n        rolling_config: { batch_size: 3 }\n', false));
  const r = await cli(['deploy', 'app', 'production', '--version', 'v1.0.0']);
  assert.is(r.code, 0, r.out);
  // HAProxy's own checks (inter 1s) see the apps up.
  for (let i = 0; !parseServersState(hap.cli('show servers state app')).every((s) => s.op === 2); i++) {
    if (i > 600) assert.unreachable(`HAProxy never saw every server up: ${hap.cli('show servers state app')}`);
    await sleep(100);
  }
});

test.after(async () => {
  await hap?.stop();
  if (env) await resetHosts(env);
});

test('a good release through haproxy-lb under load: 25 % then 50 % of the requests counted at the app (±5 points), then promoted with the configured weights back', async () => {
  writeFileSync(
    join(ws, 'fraises.yaml'),
    canaryYaml(
      '[{ percentage: 25, duration: 2s }, { percentage: 50, duration: 2s }, { percentage: 100 }]',
      // a loaded machine may answer few probes in a round: inconclusive rounds are tolerated, never a pass
      'interval: 1s, min_samples: 5, inconclusive_limit: 100',
    ),
  );
  const wrk = load();
  // Each step's window: from the line printed once its weights are set (HAProxy applies them at once, no
  // reload; 200 ms for the requests already sent) to the next step's announcement (printed before its weights change).
  const windows: { percent: number; from: Promise<Snapshot>; to?: Promise<Snapshot> }[] = [];
  const r = await cli(['deploy', 'app', 'production', '--version', 'v1.1.0'], (line) => {
    const applied = /canary (\d+)% of requests: weight/.exec(line);
    if (applied) windows.push({ percent: Number(applied[1]), from: sleep(200).then(snapshot) });
    else if (/Step \d+\/\d+:|Promoting v1\.1\.0/.test(line) && windows.length > 0 && !windows.at(-1)!.to) windows.at(-1)!.to = snapshot();
  });
  const k = await wrk.stop();
  assert.is(r.code, 0, r.out);
  const shares = await Promise.all(windows.map(async (w) => ({ percent: w.percent, ...canaryShare(await w.from, await w.to!) })));
  console.log(
    `  [canary-haproxy] canary share at the app: ${shares.map((s) => `${s.share.toFixed(1)} % for ${s.percent} % (${s.total} requests)`).join(', ')}; wrk: ${k.requests} requests, ${non2xx(k)} non-2xx`,
  );
  assert.equal(
    shares.map((s) => s.percent),
    [25, 50],
    r.out,
  );
  for (const s of shares) {
    assert.ok(s.total >= 50, `at least 50 requests in the ${s.percent} % step: ${s.total}`);
    assert.ok(Math.abs(s.share - s.percent) <= 5, `${s.share.toFixed(1)} % of the requests on the canary for ${s.percent} %`);
  }
  assert.match(r.out, /haproxy backend app: weights h1=2 h2=3 h3=3, no reload/, 'the 25 % weights (2 × 1 against 3 × 2), set over the socket');
  assert.equal(await current(), ['v1.1.0', 'v1.1.0', 'v1.1.0']);
  assert.equal(servered(), ['h1 ready 1/1', 'h2 ready 1/1', 'h3 ready 1/1'], 'every server ready at its configured weight: an even split');
  assert.is(non2xx(k), 0, `a good canary through HAProxy: no failed request (${JSON.stringify(k.non2xx)})`);
});

test('the 5xx release through haproxy-lb is aborted: no request to the canary server once traffic is back on stable, then the canary host rolled back', async () => {
  writeFileSync(
    join(ws, 'fraises.yaml'),
    canaryYaml(
      '[{ percentage: 25, duration: 60s }, { percentage: 100 }]',
      'interval: 1s, min_samples: 10, inconclusive_limit: 100',
      '        metrics_sources:\n          probe: { path: /, rate: 20 }\n',
    ),
  );
  const before = await pids();
  const wrk = load();
  let atBack = null as string[] | null;
  const r = await cli(['deploy', 'app', 'production', '--version', 'v3.0.0-errors'], (line) => {
    // Read back at once: the canary host's rollback (drain, restart, health check) comes after this line.
    if (atBack === null && line.includes('all traffic back to the stable hosts (h2, h3)')) atBack = servered();
  });
  const k = await wrk.stop();
  console.log(`  [canary-haproxy] 5xx release: wrk saw ${non2xx(k)} failed of ${k.requests} requests; HAProxy at the abort: ${JSON.stringify(atBack)}`);
  assert.is(r.code, 1, r.out);
  assert.match(r.out, 'canary analysis failed');
  assert.match(r.out, /analysis: canary error rate .*: FAIL/);
  assert.ok(atBack, r.out);
  const [h1, h2, h3] = atBack!;
  assert.match(h1!, /^h1 (drain \d+|ready 0)\/1$/, `the canary server takes no new request: ${h1}`);
  assert.match(h2!, /^h2 ready [1-9]\d*\/1$/);
  assert.match(h3!, /^h3 ready [1-9]\d*\/1$/);
  const backAt = r.out.indexOf('all traffic back to the stable hosts (h2, h3)');
  assert.ok(backAt >= 0 && r.out.indexOf('Rolling back h1') > backAt, `traffic back to stable, then h1 rolled back:\n${r.out}`);
  assert.equal(await current(), ['v1.1.0', 'v1.1.0', 'v1.1.0'], 'the canary is back on v1.1.0');
  const after = await pids();
  assert.equal(after.slice(1), before.slice(1), 'the stable hosts were not restarted');
  assert.equal(servered(), ['h1 ready 1/1', 'h2 ready 1/1', 'h3 ready 1/1'], 'every server ready at its configured weight after the rollback');
  const history = await fraisier(ws, 'history', '--fraise', 'app', '--env', 'production', '--json');
  const rows = JSON.parse(history.stdout) as { toVersion: string; status: string }[];
  assert.equal(`${rows[0]!.toVersion} ${rows[0]!.status}`, 'v3.0.0-errors rolled_back');
});

test.run();
