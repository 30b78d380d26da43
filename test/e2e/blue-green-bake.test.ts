/**
 * End to end: blue-green with bake time, through the real `fraisier` command and a real nginx (started
 * and stopped by this test) in front of the lab: blue = h1, green = h2 and h3. After the switch the
 * probe (fraisier's own requests to each host of the new colour) watches it for the bake; the 5xx release
 * (v3.0.0-errors, 500 on 20 % of requests) is switched back during the bake, a good one is kept.
 * Traffic: loopback (client → nginx) and the lab's own namespace addresses (nginx, probe → hosts' :8000).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, fraisier, lab, resetHosts, workspace } from './helpers.js';
import { sample, startNginx, type Nginx } from './traffic.js';

let env: LabEnv;
let ngx: Nginx;
let ws: string;
let servers: Record<string, string>;

function yaml(servers: Record<string, string>): string {
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
          bake:
            duration: 5s
            metrics_to_monitor: [error_rate]
            error_threshold: 5
            # a loaded machine may answer fewer probes than asked in a round: a few inconclusive rounds are allowed
            analysis: { interval: 1s, min_samples: 10, inconclusive_limit: 4 }
        metrics_sources:
          probe: { path: /, rate: 20 }
        health_check:
          url: http://localhost:8000/health
          expect: ok
          timeout: 2
          retries: 12
          retry_delay: 0.25
        load_balancer:
          type: nginx
          upstream: app
          file: ${ngx.upstreamFile}
          nginx_args: [${ngx.args.join(', ')}]
          servers: { ${Object.entries(servers)
            .map(([h, a]) => `${h}: "${a}"`)
            .join(', ')} }
`;
}

test.before(async () => {
  env = await lab();
  servers = Object.fromEntries(env.hosts.map((h) => [h.name, `${h.address}:${env.appPort}`]));
  await resetHosts(env);
  ngx = await startNginx('app', servers);
  ws = workspace(yaml(servers));
});

test.after(async () => {
  await ngx?.stop();
});

test('a good release is baked and kept: traffic on the new colour, the old one still on its release', async () => {
  const first = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(first.code, 0, first.out);
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'Baking v1.1.0 for 5000 ms: the analysis watches h2, h3');
  assert.match(r.out, 'Bake of green passed: blue is retired');
  assert.not.match(r.out, 'switched back');
  assert.match(ngx.upstream(), '"pool":"green"');
  assert.equal(await sample(ngx.port, 20), { '200 v1.1.0': 20 });
  const [h1, h2, h3] = await allHosts(env);
  assert.is(h1!.serving, 'v1.0.0', 'blue keeps the previous release');
  assert.is(h2!.current, 'v1.1.0');
  assert.is(h3!.current, 'v1.1.0');
});

test('the 5xx release fails its bake: traffic switched back to green at once, blue rolled back, recorded as rolled back', async () => {
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v3.0.0-errors');
  assert.is(r.code, 1, r.out);
  assert.match(r.out, 'Traffic switched to blue');
  assert.match(r.out, /canary error rate \d+\.\d % \(max 5\.0 %\): FAIL/);
  assert.match(r.out, /Traffic switched back to green \(h2, h3, v1\.1\.0\) in \d+ ms after: bake analysis failed: failed \(1\) > failure_limit \(0\)/);
  console.log(`  [blue-green-bake e2e] failed bake → traffic back on green in ${/Traffic switched back to green \S+ \S+ \S+ in (\d+) ms/.exec(r.out)?.[1]} ms`);
  assert.match(ngx.upstream(), '"pool":"green"');
  assert.equal(await sample(ngx.port, 20), { '200 v1.1.0': 20 }, 'every request on the old colour');
  const [h1, h2, h3] = await allHosts(env);
  assert.is(h1!.current, 'v1.0.0', 'blue back on its previous release');
  assert.is(h1!.serving, 'v1.0.0');
  assert.is(h2!.current, 'v1.1.0', 'green untouched');
  assert.is(h3!.current, 'v1.1.0', 'green untouched');
  const history = await fraisier(ws, 'history', '--fraise', 'app', '--env', 'production', '--json');
  assert.is(history.code, 0, history.out);
  const [last] = JSON.parse(history.stdout) as { toVersion: string; status: string; error: string | null }[];
  assert.equal([last!.toVersion, last!.status], ['v3.0.0-errors', 'rolled_back']);
  assert.match(last!.error ?? '', 'bake analysis failed: failed (1) > failure_limit (0)');
  const status = await fraisier(ws, 'status', 'app', 'production');
  assert.match(status.stdout, 'live colour: green (h2, h3)');
});

test('bad bake input exits 2 naming the file and the key, and changes no host', async () => {
  const before = await allHosts(env);
  const upstream = ngx.upstream();
  for (const [from, to, key, expected] of [
    ['duration: 5s', 'duration: soon', 'blue_green_config.bake.duration', 'a duration'],
    ['metrics_to_monitor: [error_rate]', 'metrics_to_monitor: [error_rate, disk]', 'blue_green_config.bake.metrics_to_monitor[1]', 'unknown metric "disk"'],
  ] as const) {
    const bad = workspace(yaml(servers).replace(from, to));
    const r = await fraisier(bad, 'deploy', 'app', 'production', '--version', 'v1.2.0');
    assert.is(r.code, 2, r.out);
    assert.match(r.out, 'fraises.yaml');
    assert.match(r.out, `fraises.app.environments.production.${key}`);
    assert.match(r.out, expected);
  }
  assert.equal(await allHosts(env), before, 'no host changed');
  assert.is(ngx.upstream(), upstream, 'nginx untouched');
});

test.run();
