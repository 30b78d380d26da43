/**
 * End to end: the canary strategy on the lab's three hosts behind a real nginx (foreground, started and
 * stopped by pid by this test). A good release goes through 25 % then 50 % of the requests (each step's
 * canary share measured through nginx, within ±5 points) and is promoted; the lab's 5xx release is judged
 * by the real analysis (the probe) and aborted: traffic back to stable first, the canary host back, the
 * stable hosts untouched. Then through the `fraisier` command: bad input (exit 2, nothing changed),
 * --canary-only, a plain deploy refused, status, --complete-rollout from a second process, rollback
 * during a canary, and Ctrl-C during the analysis.
 * Traffic: loopback (client → nginx) and the lab's own addresses (nginx → the hosts' :8000).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Analysis, AnalysisContext, AnalysisStatus } from '../../core/analysis/types.js';
import { nginxLb } from '../../plugins/nginx-lb.js';
import { probeSource } from '../../plugins/metrics/probe.js';
import { canary } from '../../strategies/canary.js';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, bin, fraisier, lab, resetHosts, workspace } from './helpers.js';
import { labApp, sleep, split, startNginx, type Nginx } from './traffic.js';

let env: LabEnv;
let ngx: Nginx;
const servers: Record<string, string> = {};
/** address → target name, to read nginx's $upstream_addr. */
const names: Record<string, string> = {};
const N = 400;
const current = async () => (await allHosts(env)).map((h) => h.current);

test.before(async () => {
  env = await lab();
  for (const h of env.hosts) {
    servers[h.name] = `${h.address}:${env.appPort}`;
    names[servers[h.name]!] = h.name;
  }
  await resetHosts(env);
  ngx = await startNginx('app', servers);
  const { deploy, entries } = labApp(env, ngx.dir);
  const r = await deploy('v1.0.0');
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
});

test.after(async () => {
  await ngx?.stop();
});

/**
 * An analysis that measures what users get at each step: N requests through nginx, counting the backend
 * that answered. It passes every step; the shares it saw are the test's result.
 */
function shareMeter(shares: number[]): (ctx: AnalysisContext) => Analysis {
  return (ctx) => {
    const status = (): AnalysisStatus => ({
      phase: 'running',
      rounds: [],
      counts: { successful: 0, failed: 0, inconclusive: 0, error: 0, consecutiveErrors: 0 },
      reason: null,
    });
    return {
      start: async () => {},
      measure: async () => status(),
      async run() {
        const s = await split(ngx.port, N, 'X-Fraisier-Upstream', false, names);
        assert.equal(s.failed, {}, `no failed request: ${JSON.stringify(s)}`);
        const onCanary = ctx.canary.reduce((n, t) => n + (s.by[t.name] ?? 0), 0);
        shares.push((100 * onCanary) / s.total);
        return status();
      },
      status,
      stop: async () => {},
    };
  };
}

test('a good release: the canary gets 25 % then 50 % of the requests (±5 points), then the fleet is promoted and split evenly', async () => {
  const shares: number[] = [];
  const plugin = nginxLb({ file: ngx.upstreamFile, servers, nginxArgs: ngx.args, upstream: 'app' });
  const strategy = canary({
    instances: ['h1'],
    steps: [
      { weight: 25, pause: '1s' },
      { weight: 50, pause: '1s' },
    ],
    analysis: shareMeter(shares),
  });
  const { deploy, entries } = labApp(env, ngx.dir, { plugins: [plugin], strategy });
  const r = await deploy('v1.1.0');
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  console.log(`  [canary e2e] canary share at 25 % and 50 %: ${shares.map((s) => s.toFixed(1)).join(' %, ')} %`);
  assert.is(shares.length, 2);
  assert.ok(Math.abs(shares[0]! - 25) <= 5, `step 1: ${shares[0]} % for 25 %`);
  assert.ok(Math.abs(shares[1]! - 50) <= 5, `step 2: ${shares[1]} % for 50 %`);
  assert.equal(await current(), ['v1.1.0', 'v1.1.0', 'v1.1.0']);
  assert.not.match(ngx.upstream(), 'weight=', 'an even split after the promotion');
  assert.not.match(ngx.upstream(), 'down', 'every server up');
});

test('the 5xx release is aborted by the probe: traffic back to stable first, the canary host back, the stable hosts untouched', async () => {
  const plugin = nginxLb({ file: ngx.upstreamFile, servers, nginxArgs: ngx.args, upstream: 'app' });
  const strategy = canary({
    instances: 1,
    steps: [{ weight: 50, pause: '20s' }],
    // a loaded machine may answer fewer probes than asked in a round: a few inconclusive rounds are allowed
    analysis: {
      checks: [{ metric: 'error_rate', max: 5, minSamples: 20 }],
      sources: [probeSource({ url: '/', rate: 20 })],
      interval: '3s',
      inconclusiveLimit: 4,
    },
  });
  const { deploy, entries } = labApp(env, ngx.dir, { plugins: [plugin], strategy });
  const r = await deploy('v3.0.0-errors');
  const lines = entries.map((e) => `${e.target ? `[${e.target}] ` : ''}${e.message}`);
  assert.is(r.status, 'rolled_back', lines.join('\n'));
  assert.match(r.error!.message, 'canary analysis failed');
  const verdict = lines.findIndex((l) => /^analysis: canary error rate .*: FAIL$/.test(l));
  const back = lines.findIndex((l) => l.startsWith('all traffic back to the stable hosts (h2, h3)'));
  const rolled = lines.findIndex((l) => l.startsWith('[h1] rolled back to v1.1.0'));
  assert.ok(
    verdict >= 0 && back > verdict && rolled > back,
    `verdict (${verdict}), traffic back (${back}), then h1 rolled back (${rolled}):\n${lines.join('\n')}`,
  );
  assert.equal(await current(), ['v1.1.0', 'v1.1.0', 'v1.1.0']);
  assert.equal(
    r.targets.map((t) => `${t.name} ${t.status}`),
    ['h1 rolled_back', 'h2 pending', 'h3 pending'],
  );
  assert.not.match(ngx.upstream(), 'down', 'every server up again');
});

/** The seed's canary YAML for the lab, behind the test nginx. */
function canaryYaml(extra = '', schedule = '- { percentage: 50, duration: 1s }\n            - { percentage: 100 }'): string {
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
        deployment_strategy: canary
        canary_config:
          canary_instances: 1
          canary_duration: 3s
          canary_error_threshold: 5
          metrics_to_monitor: [error_rate]
          analysis: { interval: 1s, min_samples: 1 }
${extra}        traffic_shifting:
          enabled: true
          schedule:
            ${schedule}
        health_check:
          url: http://localhost:8000/health
          expect: ok
          timeout: 2
          retries: 8
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

const CLI_MS = 300_000;

test('fraisier: bad canary YAML exits 2 naming the file and key, and changes nothing', async () => {
  const before = await current();
  const upstream = ngx.upstream();
  for (const [yaml, key, expected] of [
    [
      canaryYaml('', '- { percentage: 150, duration: 1s }\n            - { percentage: 100 }'),
      'traffic_shifting.schedule[0].percentage',
      'expected a whole percentage from 1 to 100, got 150',
    ],
    [canaryYaml('', '- { percentage: 50, duration: 1s }'), 'traffic_shifting.schedule[0].percentage', 'the schedule must end at 100'],
    [canaryYaml().replace('canary_instances: 1', 'canary_instances: 3'), 'canary_config.canary_instances', 'expected fewer than 3'],
    [
      canaryYaml().replace('metrics_to_monitor: [error_rate]', 'metrics_to_monitor: [error_rate, queue_depth]'),
      'canary_config.metrics_to_monitor[1]',
      'unknown metric "queue_depth"',
    ],
  ] as const) {
    const ws = workspace(yaml);
    const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, `fraises.yaml: fraises.app.environments.production.${key}`);
    assert.match(r.stderr, expected);
  }
  assert.equal(await current(), before, 'no host changed');
  assert.is(ngx.upstream(), upstream, 'nginx untouched');
});

test('fraisier: --canary-only, a plain deploy refused, status, --complete-rollout from a second process; then rollback during a canary', async () => {
  // A post-deployment hook: it runs once the canary completes (the promotion), never while it is held.
  const ws = workspace(canaryYaml('        post_deployment_hooks:\n          - { name: smoke, command: \'echo "$FRAISIER_VERSION" >> post-deploy.log\' }\n'));
  const postDeployed = () => (existsSync(join(ws, 'post-deploy.log')) ? readFileSync(join(ws, 'post-deploy.log'), 'utf8') : '');
  const only = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0', '--canary-only');
  assert.is(only.code, 0, only.out);
  assert.is(postDeployed(), '', `no post-deployment hook while the canary is held:\n${only.out}`);
  assert.match(only.out, /deploy app\/production canary in/);
  assert.equal(await current(), ['v1.2.0', 'v1.1.0', 'v1.1.0']);
  // weighted: max_fails=0 on every server while the traffic is shifted (docs/nginx.md, canary under keep-alive load)
  assert.match(ngx.upstream(), 'weight=2 max_fails=0; # h1', 'h1 weighted for 50 % against two stable hosts');

  const refused = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(refused.code, 2, refused.out);
  assert.match(refused.stderr, 'error[E_USAGE] a canary of v1.2.0 is open in app/production (on h1)');
  assert.match(refused.stderr, '--complete-rollout');
  assert.match(refused.stderr, 'fraisier rollback app production');

  const status = await fraisier(ws, 'status', 'app', 'production');
  assert.match(status.stdout, 'in canary: v1.2.0 on h1 (stable: v1.1.0), step 1, 50% of requests');
  assert.match(status.stdout, /error_rate: .*: PASS/);

  // A second process (another machine sharing the state store) completes the rollout.
  const done = await fraisier(ws, 'deploy', 'app', 'production', '--complete-rollout');
  assert.is(done.code, 0, done.out);
  assert.equal(await current(), ['v1.2.0', 'v1.2.0', 'v1.2.0']);
  assert.is(postDeployed(), 'v1.2.0\n', 'the post-deployment hook ran once, when the promotion completed');
  assert.not.match(ngx.upstream(), 'weight=');

  // Rollback during a canary: traffic to stable, then only the canary host goes back.
  const again = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0', '--canary-only');
  assert.is(again.code, 0, again.out);
  assert.equal(await current(), ['v1.1.0', 'v1.2.0', 'v1.2.0']);
  const rb = await fraisier(ws, 'rollback', 'app', 'production');
  assert.is(rb.code, 0, rb.out);
  assert.match(rb.out, 'all traffic back to the stable hosts (h2, h3)');
  assert.equal(await current(), ['v1.2.0', 'v1.2.0', 'v1.2.0']);
  assert.is(postDeployed(), 'v1.2.0\n', 'neither the held nor the removed canary of v1.1.0 ran it');
  assert.not.match(ngx.upstream(), 'weight=');
  assert.not.match(ngx.upstream(), 'down');
  const history = await fraisier(ws, 'history', '--fraise', 'app', '--env', 'production', '--json');
  const rows = JSON.parse(history.stdout) as { id: number; kind: string; toVersion: string; status: string }[];
  assert.equal(
    rows.slice(0, 4).map((d) => `${d.kind} ${d.toVersion} ${d.status}`),
    ['rollback v1.2.0 succeeded', 'deploy v1.1.0 rolled_back', 'deploy v1.2.0 succeeded', 'deploy v1.2.0 succeeded'],
  );
  // One deployment in full: the --canary-only run's every measurement and verdict, and its target.
  const one = await fraisier(ws, 'history', '--id', String(rows[3]!.id));
  assert.is(one.code, 0, one.out);
  assert.match(one.stdout, `Deployment #${rows[3]!.id}: app/production deploy v1.1.0 → v1.2.0: succeeded`);
  assert.match(one.stdout, /^h1 +v1\.1\.0 +v1\.2\.0 +succeeded/m);
  assert.match(one.stdout, /info +- +analysis: canary error rate .*: PASS$/m, one.stdout);
  const missing = await fraisier(ws, 'history', '--id', '999999');
  assert.is(missing.code, 2, missing.out);
  assert.match(missing.stderr, 'no deployment #999999 in the state store');
});

test('fraisier: Ctrl-C during the analysis sends traffic back to stable, rolls the canary back and releases the lock', async () => {
  const ws = workspace(canaryYaml('', '- { percentage: 25, duration: 120s }\n            - { percentage: 100 }'));
  const child = spawn(process.execPath, [bin, 'deploy', 'app', 'production', '--version', 'v1.1.0'], { cwd: ws, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (let i = 0; !out.includes('Step 1/1: 25%'); i++) {
    if (i > CLI_MS / 100 || child.exitCode !== null) assert.unreachable(`the canary step never started:\n${out}`);
    await sleep(100);
  }
  await sleep(1500); // the analysis is running
  child.kill('SIGINT');
  const code = await exited;
  assert.is(code, 130, out);
  assert.match(out, 'all traffic back to the stable hosts (h2, h3)');
  assert.ok(out.indexOf('all traffic back to the stable hosts') < out.indexOf('Rolling back h1'), out);
  assert.equal(await current(), ['v1.2.0', 'v1.2.0', 'v1.2.0']);
  assert.not.match(ngx.upstream(), 'weight=');
  const st = await fraisier(ws, 'status', 'app', 'production', '--json');
  const report = JSON.parse(st.stdout) as { lock: unknown; canary?: unknown };
  assert.is(report.lock, null, 'the lock is released');
  assert.is(report.canary, undefined, 'no canary left open');
});

test.run();
