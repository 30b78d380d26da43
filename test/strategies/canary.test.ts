import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Analysis, AnalysisContext, AnalysisPhase, AnalysisStatus, MetricResult } from '../../core/analysis/types.js';
import { FakeClock } from '../../core/clock.js';
import { parseConfig } from '../../core/config/load.js';
import { Deployer } from '../../core/deployer.js';
import { FraisierError } from '../../core/errors.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { registerSecret } from '../../core/secret.js';
import { Locks } from '../../core/state/lock.js';
import { openStore, type StateStore } from '../../core/state/store.js';
import type { Plugin, TrafficSwitch } from '../../core/types.js';
import { commandHook } from '../../plugins/hooks.js';
import { canary, canaryWeights, shareOf, type CanaryOptions } from '../../strategies/canary.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';

/** A traffic plugin that records every weight change (and the order against the log). */
function fakeTraffic(order: string[]) {
  const calls: Record<string, number>[] = [];
  const sw: TrafficSwitch = {
    name: 'plugin:fake-lb',
    livePool: async () => null,
    switchTo: async () => {},
    addressOf: () => null,
    setWeights: async (w) => {
      calls.push({ ...w });
      order.push(`weights ${JSON.stringify(w)}`);
    },
  };
  const plugin: Plugin = { name: 'plugin:fake-lb', apply: (host) => host.useTraffic(sw) };
  return { plugin, calls };
}

/** An analysis whose successive `run` calls end in the given phases, each with one round of one result (printed, as the engine does). */
function scriptedAnalysis(phases: AnalysisPhase[], events: string[]): (ctx: AnalysisContext) => Analysis {
  return (ctx) => {
    const rounds: AnalysisStatus['rounds'][number][] = [];
    let phase: AnalysisPhase = 'running';
    let runs = 0;
    const status = (): AnalysisStatus => ({
      phase,
      rounds,
      counts: { successful: 0, failed: 0, inconclusive: 0, error: 0, consecutiveErrors: 0 },
      reason: phase === 'failed' ? 'failed (1) > failure_limit (0)' : null,
    });
    return {
      start: async () => void events.push('analysis start'),
      measure: async () => status(),
      run: async () => {
        const p = phases[runs++] ?? 'successful';
        const result: MetricResult = {
          metric: 'error_rate',
          source: 'source:fake',
          phase: p === 'running' ? 'successful' : p,
          canary: { value: p === 'failed' ? 20 : 0.1, samples: 100 },
          stable: { value: 0.1, samples: 100 },
          message: `canary ${p === 'failed' ? 20 : 0.1} % vs stable 0.1 % (limit +0.5): ${p === 'failed' ? 'FAIL' : 'PASS'}`,
        };
        rounds.push({ at: 0, results: [result], phase: result.phase });
        ctx.log.info(`analysis: ${result.message}`);
        phase = p === 'successful' ? 'running' : p;
        return status();
      },
      status,
      stop: async () => void events.push('analysis stop'),
    };
  };
}

/** Three recorded hosts; the history says v1.0.0 is live. */
async function setup(
  opts: Partial<CanaryOptions> & { phases?: AnalysisPhase[]; traffic?: boolean; unhealthy?: string[]; store?: StateStore; plugins?: Plugin[] } = {},
) {
  const rec = recordedBareMetal({ hosts: ['h1', 'h2', 'h3'], appPath: '/srv/api', program: 'api', ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}) });
  const store = opts.store ?? (await openStore({ path: ':memory:' }));
  if (!opts.store) {
    const id = await store.recordDeployment({
      fraise: 'api',
      environment: 'production',
      kind: 'deploy',
      strategy: 'strategy:rolling',
      fromVersion: null,
      toVersion: 'v1.0.0',
      user: 'u',
      host: 'm',
    });
    await store.finishDeployment(id, { status: 'succeeded' });
  }
  const order: string[] = [];
  const traffic = fakeTraffic(order);
  const entries: LogEntry[] = [];
  const { phases, traffic: withTraffic, unhealthy: _u, store: _s, plugins: extra, ...options } = opts;
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider: rec.provider,
    strategy: canary({
      steps: [
        { weight: 10, pause: '1m' },
        { weight: 50, pause: '1m' },
      ],
      analysis: scriptedAnalysis(phases ?? [], order),
      ...options,
    }),
    health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
    plugins: [...(withTraffic === false ? [] : [traffic.plugin]), ...(extra ?? [])],
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries), (e) => order.push(`${e.target ?? '-'}: ${e.message}`)],
    handleSignals: false,
  });
  return { deployer, store, entries, order, weights: traffic.calls, ...rec };
}

test('canaryWeights gives the canary pool exactly its share, within the load balancer largest weight', () => {
  assert.equal(canaryWeights(10, 1, 2), { canary: 2, stable: 9 });
  assert.is(shareOf(canaryWeights(10, 1, 2), 1, 2), 10);
  assert.equal(canaryWeights(50, 1, 2), { canary: 2, stable: 1 });
  assert.equal(canaryWeights(25, 2, 2), { canary: 1, stable: 3 });
  assert.equal(canaryWeights(100, 1, 2), { canary: 1, stable: 0 });
  const w = canaryWeights(99, 1, 3);
  assert.ok(w.canary <= 256 && w.stable <= 256 && w.stable >= 1, JSON.stringify(w));
  assert.equal(w, { canary: 256, stable: 1 }, 'the closest to 99 % with weights up to 256');
  assert.equal(canaryWeights(98, 1, 9), { canary: 256, stable: 1 }, '96.6 %: as close as weights up to 256 get');
  for (let p = 1; p < 100; p++) {
    for (const [c, s] of [
      [1, 1],
      [1, 2],
      [2, 3],
      [3, 5],
    ] as const) {
      const x = canaryWeights(p, c, s);
      assert.ok(x.canary >= 1 && x.canary <= 256 && x.stable >= 1 && x.stable <= 256, `${p}% ${c}/${s}: ${JSON.stringify(x)}`);
      assert.ok(Math.abs(shareOf(x, c, s) - p) < 0.5, `${p}% ${c}/${s}: ${shareOf(x, c, s)}`);
    }
  }
});

test('a good canary: h1 first, traffic 10 % then 50 %, analysis at each step, then h2 and h3, then an even split', async () => {
  const { deployer, store, entries, weights, activations, live } = await setup();
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(activations(), ['h1:v1.1.0', 'h2:v1.1.0', 'h3:v1.1.0']);
  assert.equal([...live.values()], ['v1.1.0', 'v1.1.0', 'v1.1.0']);
  assert.equal(weights, [
    { h1: 0, h2: 1, h3: 1 },
    { h1: 2, h2: 9, h3: 9 },
    { h1: 2, h2: 1, h3: 1 },
    {}, // reset: every host at the load balancer's configured weight
  ]);
  assert.is(entries.filter((e) => /^analysis: canary 0.1 % vs stable 0.1 % \(limit \+0.5\): PASS$/.test(e.message)).length, 2);
  assert.is(await store.currentVersion('api', 'production'), 'v1.1.0');
  assert.is(await store.openCanary('api', 'production'), null, 'no canary left open');
});

test('the canary gets no request before step 1: weight 0 before its restart, step 1 weights only after its health checks', async () => {
  const { deployer, order, entries } = await setup();
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  const out = order.indexOf('weights {"h1":0,"h2":1,"h3":1}');
  const restarted = order.indexOf('h1: switched to v1.1.0 and restarted');
  const healthy = order.indexOf('h1: Health checks passed!');
  const step1 = order.indexOf('weights {"h1":2,"h2":9,"h3":9}');
  assert.ok(out >= 0 && out < restarted && restarted < healthy && healthy < step1, order.join('\n'));
  assert.equal(
    order.slice(out + 1, step1).filter((o) => o.startsWith('weights ')),
    [],
    'no other weight in between',
  );
  assert.ok(entries.some((e) => e.message === 'the canary hosts (h1) get no request until step 1 (10%)'));
});

test('a failed verdict: all traffic back to stable first, then h1 rolled back; h2 and h3 never touched', async () => {
  const { deployer, store, order, activations, live, log } = await setup({ phases: ['successful', 'failed'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, 'canary analysis failed: failed (1) > failure_limit (0)');
  assert.match(r.error!.message, /: error_rate: canary 20 % vs stable 0\.1 % \(limit \+0\.5\)$/, 'the failing metric and its numbers');
  const [row] = await store.history();
  assert.match(row!.error ?? '', 'error_rate: canary 20 % vs stable 0.1 % (limit +0.5)', 'the history names the metric too');
  assert.equal(activations(), ['h1:v1.1.0', 'h1:v1.0.0']);
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
  const back = order.lastIndexOf('weights {"h1":0,"h2":1,"h3":1}');
  const rolled = order.indexOf('h1: rolled back to v1.0.0');
  assert.ok(back > 0 && rolled > back, `traffic back (${back}) before the rollback (${rolled})`);
  assert.ok(order.indexOf('-: analysis: canary 20 % vs stable 0.1 % (limit +0.5): FAIL') < back, 'the failing verdict is printed');
  assert.ok(order.includes('analysis stop'));
  for (const h of ['h2', 'h3']) {
    assert.equal(
      log.filter((l) => l.target === h).map((l) => l.command.label),
      ['preflight checks'],
      `${h}: preflight only`,
    );
  }
  assert.is(await store.currentVersion('api', 'production'), 'v1.0.0');
  assert.is(await store.openCanary('api', 'production'), null);
});

test('an unhealthy canary host never gets weighted traffic and is rolled back', async () => {
  const { deployer, weights, live } = await setup({ unhealthy: ['h1'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  // Out of the traffic before its restart, and kept out when its health checks fail.
  assert.equal(weights, [
    { h1: 0, h2: 1, h3: 1 },
    { h1: 0, h2: 1, h3: 1 },
  ]);
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
});

test('--canary-only stops in canary; a plain deploy is refused; --complete-rollout continues from the record', async () => {
  const first = await setup({ duration: '2m' });
  const r = await first.deployer.deploy({ version: 'v1.1.0', canary: 'only' });
  assert.is(r.status, 'canary');
  assert.equal([...first.live.values()], ['v1.1.0', 'v1.0.0', 'v1.0.0']);
  assert.equal(first.weights, [
    { h1: 0, h2: 1, h3: 1 },
    { h1: 2, h2: 9, h3: 9 },
  ]);
  const open = await first.store.openCanary('api', 'production');
  assert.equal(
    { version: open?.version, stable: open?.stableVersion, hosts: open?.canaryHosts, step: open?.step, weight: open?.weight },
    { version: 'v1.1.0', stable: 'v1.0.0', hosts: ['h1'], step: 0, weight: 10 },
  );
  assert.equal(open!.verdicts, ['error_rate: canary 0.1 % vs stable 0.1 % (limit +0.5): PASS']);
  assert.is(await first.store.currentVersion('api', 'production'), 'v1.0.0', 'the canary release is not the live one');
  assert.is(await new Locks(first.store).get('api', 'production'), undefined, 'lock released');
  assert.ok(first.entries.some((e) => e.message.includes('Continue: fraisier promote api production')));

  try {
    await first.deployer.deploy({ version: 'v1.1.0' });
    assert.unreachable('a plain deploy during a canary must be refused');
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_USAGE');
    assert.match((err as FraisierError).message, 'a canary of v1.1.0 is open in api/production (on h1)');
    assert.match((err as FraisierError).hint!, '--complete-rollout');
    assert.match((err as FraisierError).hint!, 'fraisier rollback api production');
  }

  // Another machine sharing the store: its own provider and deployer.
  const second = await setup({ store: first.store });
  second.live.set('h1', 'v1.1.0');
  const done = await second.deployer.deploy({ canary: 'complete' });
  assert.is(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(second.activations(), ['h2:v1.1.0', 'h3:v1.1.0'], 'the canary host is taken over, not redeployed');
  assert.equal(second.weights, [
    { h1: 2, h2: 1, h3: 1 },
    {}, // reset: every host at the load balancer's configured weight
  ]);
  assert.is(await first.store.openCanary('api', 'production'), null);
  const rows = await first.store.history({ fraise: 'api', environment: 'production' });
  assert.equal(
    rows.map((d) => d.status),
    ['succeeded', 'succeeded', 'succeeded'],
    'the canary row is closed as promoted',
  );
  assert.is(await first.store.currentVersion('api', 'production'), 'v1.1.0');
});

test('a failure while completing the rollout sends traffic to stable and brings the canary host back too', async () => {
  const first = await setup({ duration: '2m' });
  assert.is((await first.deployer.deploy({ version: 'v1.1.0', canary: 'only' })).status, 'canary');
  const second = await setup({ store: first.store, phases: ['failed'] });
  second.live.set('h1', 'v1.1.0');
  const r = await second.deployer.deploy({ canary: 'complete' });
  assert.is(r.status, 'rolled_back');
  assert.equal(second.activations(), ['h1:v1.0.0']);
  assert.equal(second.weights[second.weights.length - 1], { h1: 0, h2: 1, h3: 1 });
  assert.is(await first.store.openCanary('api', 'production'), null);
  assert.equal(
    (await first.store.history({ fraise: 'api', environment: 'production' })).map((d) => d.status),
    ['rolled_back', 'rolled_back', 'succeeded'],
  );
  assert.is(await first.store.previousVersion('api', 'production'), null);
});

test('rollback during a canary: traffic to stable, then only the canary host goes back; the record is closed', async () => {
  const { deployer, store, order, activations, live, weights } = await setup({ duration: '2m' });
  assert.is((await deployer.deploy({ version: 'v1.1.0', canary: 'only' })).status, 'canary');
  const r = await deployer.rollback();
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.is(r.toVersion, 'v1.0.0');
  assert.equal(activations(), ['h1:v1.1.0', 'h1:v1.0.0']);
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
  assert.equal(weights.slice(2), [
    { h1: 0, h2: 1, h3: 1 },
    {}, // reset: every host at the load balancer's configured weight
  ]);
  assert.ok(order.lastIndexOf('weights {"h1":0,"h2":1,"h3":1}') < order.lastIndexOf('h1: Deploying') || !order.includes('h1: Deploying'));
  assert.is(await store.openCanary('api', 'production'), null);
  const rows = await store.history({ fraise: 'api', environment: 'production' });
  assert.equal(
    rows.map((d) => `${d.kind} ${d.toVersion} ${d.status}`),
    ['rollback v1.0.0 succeeded', 'deploy v1.1.0 rolled_back', 'deploy v1.0.0 succeeded'],
  );
});

test('a step without pause waits for promote; promote without an open canary is refused', async () => {
  const { deployer, store, live } = await setup({ steps: [{ weight: 25 }] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'canary');
  assert.equal([...live.values()], ['v1.1.0', 'v1.0.0', 'v1.0.0']);
  assert.is((await store.openCanary('api', 'production'))?.weight, 25);
  const p = await deployer.deploy({ canary: 'complete' });
  assert.is(p.status, 'succeeded');
  assert.equal([...live.values()], ['v1.1.0', 'v1.1.0', 'v1.1.0']);
  try {
    await deployer.deploy({ canary: 'complete' });
    assert.unreachable();
  } catch (err) {
    assert.is((err as FraisierError).code, 'E_USAGE');
    assert.match((err as FraisierError).message, 'no canary is open in api/production');
  }
});

/** Records which end-of-run hooks fired (postDeploy, held, rollback), with the run's status. */
function endHooks(events: string[]): Plugin {
  return {
    name: 'plugin:end-hooks',
    apply(host) {
      host.hooks.postDeploy.tapPromise('plugin:end-hooks', async (r) => void events.push(`postDeploy ${r.kind} ${r.toVersion} ${r.status}`));
      host.hooks.held.tapPromise('plugin:end-hooks', async (r) => void events.push(`held ${r.toVersion} ${r.status}`));
      host.hooks.rollback.tapPromise('plugin:end-hooks', async (ctx) => void events.push(`rollback ${ctx.version}`));
    },
  };
}

/** A real post-deploy command hook (what `hooks: post_deploy:` builds) appending the version it saw to a file. */
function postDeployHook(): { plugin: Plugin; ran: () => string | null } {
  const file = join(mkdtempSync(join(tmpdir(), 'fraisier-canary-post-')), 'post-deploy.log');
  const plugin = commandHook({ name: 'smoke', when: 'postDeploy', command: `echo "$FRAISIER_VERSION" >> '${file}'` });
  return { plugin, ran: () => (existsSync(file) ? readFileSync(file, 'utf8') : null) };
}

test('a canary held for promote is not complete: postDeploy (and a post-deploy hook) fires once, at the end of the promotion', async () => {
  const events: string[] = [];
  const post = postDeployHook();
  const { deployer } = await setup({ steps: [{ weight: 10, pause: '1m' }, { weight: 50 }], plugins: [endHooks(events), post.plugin] });
  const held = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(held.status, 'canary');
  assert.equal(events, ['held v1.1.0 canary'], 'only the held hook: the deployment waits for a human');
  assert.is(post.ran(), null, 'no post-deploy hook while the canary waits for promote');
  const promoted = await deployer.deploy({ canary: 'complete' });
  assert.is(promoted.status, 'succeeded', JSON.stringify(promoted.error));
  assert.equal(events, ['held v1.1.0 canary', 'postDeploy deploy v1.1.0 succeeded']);
  assert.is(post.ran(), 'v1.1.0\n', 'the post-deploy hook ran once, when the promotion completed');
});

test('--canary-only then rollback: no post-deploy hook for the canary; a failed verdict fires the rollback hook, never postDeploy', async () => {
  const events: string[] = [];
  const post = postDeployHook();
  const first = await setup({ duration: '2m', plugins: [endHooks(events), post.plugin] });
  assert.is((await first.deployer.deploy({ version: 'v1.1.0', canary: 'only' })).status, 'canary');
  assert.is((await first.deployer.rollback()).status, 'succeeded');
  assert.equal(events, ['held v1.1.0 canary', 'postDeploy rollback v1.0.0 succeeded']);
  assert.is(post.ran(), null, 'a post-deploy hook is for deployments, not for the rollback that removed the canary');

  events.length = 0;
  const second = await setup({ phases: ['failed'], plugins: [endHooks(events), post.plugin] });
  assert.is((await second.deployer.deploy({ version: 'v1.1.0' })).status, 'rolled_back');
  assert.equal(events, ['rollback v1.1.0']);
  assert.is(post.ran(), null);
});

test('without a traffic plugin the canary gets its natural share, said once', async () => {
  const { deployer, entries, activations } = await setup({ traffic: false });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded');
  assert.equal(activations(), ['h1:v1.1.0', 'h2:v1.1.0', 'h3:v1.1.0']);
  assert.is(entries.filter((e) => e.message.includes('natural share of requests, 33% (1 of 3 hosts)')).length, 1);
});

test('an inconclusive analysis does not promote: the deployment stops in canary', async () => {
  const { deployer, live, store } = await setup({ phases: ['inconclusive'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'canary');
  assert.equal([...live.values()], ['v1.1.0', 'v1.0.0', 'v1.0.0']);
  assert.ok(await store.openCanary('api', 'production'));
});

test('bad SDK options are E_CONFIG naming the option', () => {
  const err = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return e as FraisierError;
    }
    throw new Error('expected an error');
  };
  assert.is(err(() => canary({ steps: [{ weight: 0, pause: '1m' }] })).key, 'steps[0].weight');
  assert.is(err(() => canary({ steps: [{ weight: 101 }] })).key, 'steps[0].weight');
  assert.is(err(() => canary({ instances: 0 })).key, 'instances');
});

const ENV = (extra: string, strategy = 'canary') =>
  `fraises:\n  api:\n    environments:\n      production:\n${`instances: [h1, h2, h3]\napp_path: /srv/api\ngit_repo: https://example.com/api.git\nsystemd_service: api.service\ndeployment_strategy: ${strategy}\n${extra}`
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => `        ${l}`)
    .join('\n')}\n`;
const LB = 'load_balancer:\n  type: nginx\n  file: /etc/nginx/fraisier/api.conf\n  servers: { h1: 10.0.0.1:8000, h2: 10.0.0.2:8000, h3: 10.0.0.3:8000 }';
const SEED = `canary_config:\n  canary_instances: 1\n  canary_duration: 5m\n  canary_error_threshold: 1\n  canary_latency_threshold: 500\n  metrics_to_monitor: [error_rate, response_latency_p99, cpu_usage, memory_usage]\ntraffic_shifting:\n  enabled: true\n  schedule:\n    - { percentage: 10, duration: 5m }\n    - { percentage: 50, duration: 10m }\n    - { percentage: 100 }\n${LB}`;

test("the seed's YAML: canary_config and traffic_shifting become the steps and the checks", () => {
  const env = parseConfig(ENV(SEED), 'fraises.yaml', {}).fraises['api']!.environments['production']!;
  assert.equal(env.strategy, {
    type: 'canary',
    instances: 1,
    durationMs: 300_000,
    steps: [
      { weight: 10, pause: 300_000 },
      { weight: 50, pause: 600_000 },
    ],
    batchSize: 1,
    analysis: {
      checks: [{ metric: 'error_rate', max: 1 }, { metric: 'response_latency_p99', max: 500 }, { metric: 'cpu_usage' }, { metric: 'memory_usage' }],
    },
  });
  const plain = parseConfig(ENV('canary_config: { canary_instances: [h2], canary_duration: 30s }'), 'fraises.yaml', {}).fraises['api']!.environments[
    'production'
  ]!;
  assert.equal(plain.strategy, {
    type: 'canary',
    instances: ['h2'],
    durationMs: 30_000,
    steps: [{ pause: 30_000 }],
    batchSize: 1,
    analysis: { checks: [{ metric: 'error_rate' }, { metric: 'response_latency_p99' }] },
  });
});

test('bad canary YAML names the file, the key and what was expected', () => {
  const bad = (yaml: string, strategy = 'canary') => {
    try {
      parseConfig(ENV(yaml, strategy), 'conf/fraises.yaml', {});
    } catch (e) {
      assert.is((e as FraisierError).code, 'E_CONFIG');
      return e as FraisierError;
    }
    throw new Error('expected E_CONFIG');
  };
  const pct = bad(SEED.replace('percentage: 10,', 'percentage: 120,'));
  assert.is(pct.key, 'fraises.api.environments.production.traffic_shifting.schedule[0].percentage');
  assert.match(pct.message, /^conf\/fraises\.yaml: .*expected a whole percentage from 1 to 100, got 120/);
  const zero = bad(SEED.replace('percentage: 10,', 'percentage: 0,'));
  assert.match(zero.message, 'expected a whole percentage from 1 to 100, got 0');
  const end = bad(SEED.replace('- { percentage: 100 }', '- { percentage: 90 }'));
  assert.is(end.key, 'fraises.api.environments.production.traffic_shifting.schedule[2].percentage');
  assert.match(end.message, 'the schedule must end at 100 (the full rollout), got 90');
  const many = bad(SEED.replace('canary_instances: 1', 'canary_instances: 3'));
  assert.is(many.key, 'fraises.api.environments.production.canary_config.canary_instances');
  assert.match(many.message, 'leaves no stable host: expected fewer than 3');
  const all = bad(SEED.replace('canary_instances: 1', 'canary_instances: [h1, h2, h3]'));
  assert.match(all.message, 'every instance is a canary');
  const metric = bad(SEED.replace('cpu_usage,', 'cpu_usage, disk_usage,'));
  assert.is(metric.key, 'fraises.api.environments.production.canary_config.metrics_to_monitor[3]');
  assert.match(metric.message, 'unknown metric "disk_usage": expected one of error_rate, response_latency_p99, cpu_usage, memory_usage');
  const nolb = bad(SEED.replace(LB, ''));
  assert.match(nolb.message, 'needs a load_balancer');
  const unselected = bad(SEED, 'rolling');
  assert.match(unselected.message, 'set deployment_strategy: canary');
});

// --- gates ---------------------------------------------------------------------------------------

/** A local HTTP gate on 127.0.0.1:0 answering the given statuses in turn (then 200); records the bodies. */
async function httpGate(statuses: number[]) {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(JSON.parse(body) as Record<string, unknown>);
      const status = statuses.shift() ?? 200;
      res.writeHead(status).end(status === 200 ? 'go' : 'change freeze until 18:00');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/gate`, bodies, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('gate before_step: a non-zero exit halts before the traffic increase, with its output; promote continues past it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gate-'));
  const envFile = join(dir, 'env');
  const gate = `echo "$FRAISIER_FRAISE $FRAISIER_ENVIRONMENT $FRAISIER_VERSION $FRAISIER_STEP $FRAISIER_WEIGHT" >> ${envFile}; [ "$FRAISIER_STEP" != 2 ] || { echo "error budget spent"; exit 3; }`;
  const { deployer, store, entries, weights, live, order } = await setup({ gates: { beforeStep: gate } });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'canary');
  assert.equal(
    weights,
    [
      { h1: 0, h2: 1, h3: 1 },
      { h1: 2, h2: 9, h3: 9 },
    ],
    'the canary stays at 10 %',
  );
  assert.equal([...live.values()], ['v1.1.0', 'v1.0.0', 'v1.0.0']);
  assert.ok(
    entries.some((e) => e.level === 'warn' && e.message.startsWith('gate before_step halted the canary before step 2 (50%) (exit 3: error budget spent)')),
    entries.map((e) => e.message).join('\n'),
  );
  assert.equal(readFileSync(envFile, 'utf8').trim().split('\n'), ['api production v1.1.0 1 10', 'api production v1.1.0 2 50']);
  const open = await store.openCanary('api', 'production');
  assert.equal({ step: open?.step, weight: open?.weight }, { step: 0, weight: 10 });

  const p = await deployer.deploy({ canary: 'complete' });
  assert.is(p.status, 'succeeded', JSON.stringify(p.error));
  assert.equal([...live.values()], ['v1.1.0', 'v1.1.0', 'v1.1.0']);
  assert.equal(weights.slice(2), [
    { h1: 2, h2: 1, h3: 1 },
    {}, // reset: every host at the load balancer's configured weight
  ]);
  assert.ok(order.includes('-: gate before_step: approved by fraisier promote'));
  assert.is(readFileSync(envFile, 'utf8').trim().split('\n').length, 2, 'the approved gate is not asked again');
  assert.is(await store.currentVersion('api', 'production'), 'v1.1.0');
});

test('gate before_step halting the first step leaves the canary without traffic', async () => {
  const { deployer, weights, store } = await setup({ gates: { beforeStep: 'exit 1' } });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'canary');
  assert.equal(weights, [{ h1: 0, h2: 1, h3: 1 }]);
  const open = await store.openCanary('api', 'production');
  assert.equal({ step: open?.step, weight: open?.weight }, { step: -1, weight: 0 });
});

test('gate confirm_promotion (URL): a non-2xx answer halts before the promotion; rollback aborts and runs on_rollback', async () => {
  const http = await httpGate([503]);
  const dir = mkdtempSync(join(tmpdir(), 'gate-'));
  const marker = join(dir, 'rolled-back');
  try {
    const { deployer, store, entries, live, log, weights } = await setup({
      gates: { confirmPromotion: http.url, onRollback: `echo "$FRAISIER_VERSION $FRAISIER_STEP" > ${marker}` },
    });
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'canary');
    assert.equal([...live.values()], ['v1.1.0', 'v1.0.0', 'v1.0.0']);
    assert.ok(entries.some((e) => e.message.startsWith('gate confirm_promotion halted the canary before the promotion (HTTP 503: change freeze until 18:00)')));
    assert.equal(http.bodies, [{ gate: 'confirm_promotion', fraise: 'api', environment: 'production', version: 'v1.1.0', step: 2, weight: 50 }]);
    for (const h of ['h2', 'h3'])
      assert.equal(
        log.filter((l) => l.target === h).map((l) => l.command.label),
        ['preflight checks'],
        `${h} untouched`,
      );
    assert.ok(!existsSync(marker), 'on_rollback does not run on a halt');

    const back = await deployer.rollback();
    assert.is(back.status, 'succeeded', JSON.stringify(back.error));
    assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
    assert.equal(weights.at(-2), { h1: 0, h2: 1, h3: 1 });
    assert.is(readFileSync(marker, 'utf8').trim(), 'v1.1.0 2');
    assert.is(await store.openCanary('api', 'production'), null);
  } finally {
    await http.close();
  }
});

test('gate confirm_promotion (URL) answering 2xx lets the promotion go on', async () => {
  const http = await httpGate([]);
  try {
    const { deployer, live } = await setup({ gates: { confirmPromotion: http.url } });
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'succeeded', JSON.stringify(r.error));
    assert.equal([...live.values()], ['v1.1.0', 'v1.1.0', 'v1.1.0']);
    assert.is(http.bodies.length, 1);
  } finally {
    await http.close();
  }
});

test('gate on_rollback runs after a failed verdict sent traffic back; its failure only warns; a gate output is redacted', async () => {
  registerSecret('s3cr3t-gate-token');
  const { deployer, entries, order, live } = await setup({
    phases: ['failed'],
    gates: { onRollback: 'echo "paging with s3cr3t-gate-token"; exit 1' },
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
  const warn = entries.find((e) => e.message.startsWith('gate on_rollback failed'));
  assert.ok(warn, entries.map((e) => e.message).join('\n'));
  assert.is(warn!.level, 'warn');
  assert.is(warn!.message, 'gate on_rollback failed (exit 1: paging with [REDACTED]); the rollback goes on');
  assert.ok(order.lastIndexOf('weights {"h1":0,"h2":1,"h3":1}') < order.indexOf(`-: ${warn!.message}`), 'after the traffic went back');
});

test('a gate that takes longer than its timeout halts', async () => {
  const { deployer, entries } = await setup({ gates: { confirmPromotion: 'sleep 10', timeout: '300ms' } });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'canary');
  assert.ok(entries.some((e) => e.message.startsWith('gate confirm_promotion halted the canary before the promotion (timed out after 300 ms)')));
});

test('a bad gate is E_CONFIG naming the key, in the SDK and in the YAML', () => {
  const err = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return e as FraisierError;
    }
    throw new Error('expected an error');
  };
  const sdk = err(() => canary({ gates: { beforeStep: 'ftp://example.com/gate' } }));
  assert.is(sdk.code, 'E_CONFIG');
  assert.is(sdk.key, 'gates.beforeStep');
  assert.is(err(() => canary({ gates: { onRollback: '  ' } })).key, 'gates.onRollback');
  const yaml = err(() =>
    parseConfig(
      ENV(`${SEED}\n`.replace('canary_config:\n', 'canary_config:\n  gates: { confirm_promotion: "ftp://u:pw@example.com/x" }\n')),
      'conf/fraises.yaml',
      {},
    ),
  );
  assert.is(yaml.code, 'E_CONFIG');
  assert.is(yaml.key, 'fraises.api.environments.production.canary_config.gates.confirm_promotion');
  assert.match(yaml.message, /^conf\/fraises\.yaml: .*expected a command or an http\(s\) URL/);
  assert.not.match(yaml.message, ':pw@');
  const num = err(() => parseConfig(ENV(SEED.replace('canary_config:\n', 'canary_config:\n  gates: { before_step: 42 }\n')), 'conf/fraises.yaml', {}));
  assert.is(num.code, 'E_CONFIG');
  assert.match(num.key ?? '', 'gates.before_step');
  const ok = parseConfig(
    ENV(
      SEED.replace(
        'canary_config:\n',
        'canary_config:\n  gates: { before_step: ./check-slo.sh, confirm_promotion: "https://ci.example.com/approve", timeout: 10s }\n',
      ),
    ),
    'fraises.yaml',
    {},
  ).fraises['api']!.environments['production']!;
  assert.equal((ok.strategy as { gates?: unknown }).gates, {
    beforeStep: './check-slo.sh',
    confirmPromotion: 'https://ci.example.com/approve',
    timeout: 10_000,
  });
});

test.run();
