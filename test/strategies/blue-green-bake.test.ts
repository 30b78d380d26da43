/**
 * Blue-green bake time, with recorded hosts, a fake clock, an in-memory traffic switch and a scripted
 * analysis: blue = h1, green = h2 and h3 (live, on v1.0.0).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Analysis, AnalysisContext, AnalysisPhase, AnalysisStatus } from '../../core/analysis/types.js';
import { FakeClock } from '../../core/clock.js';
import { parseConfig } from '../../core/config/load.js';
import { Deployer } from '../../core/deployer.js';
import type { FraisierError } from '../../core/errors.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import type { Plugin, Target, TrafficSwitch } from '../../core/types.js';
import { blueGreen } from '../../strategies/blue-green.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';

/** What the scripted analysis saw when it ran: its pools, its duration, the routing and the hosts' releases. */
type Seen = { canary?: string[]; stable?: string[]; ms?: number; pool?: string; releases?: string[]; pruned?: number; stopped?: boolean };

/**
 * An analysis that ends in `phase` (or, with `interrupt`, sends SIGINT and waits for the abort), recording
 * what it saw through `look`.
 */
function scripted(phase: AnalysisPhase, seen: Seen, look: () => Partial<Seen>, interrupt = false) {
  return (ctx: AnalysisContext): Analysis => {
    seen.canary = ctx.canary.map((t) => t.name);
    seen.stable = ctx.stable.map((t) => t.name);
    const status = (): AnalysisStatus => ({
      phase,
      rounds: [],
      counts: { successful: 0, failed: phase === 'failed' ? 1 : 0, inconclusive: 0, error: 0, consecutiveErrors: 0 },
      reason: phase === 'failed' ? 'failed (1) > failure_limit (0)' : null,
    });
    return {
      start: async () => {},
      measure: async () => status(),
      run: async (ms) => {
        seen.ms = ms;
        Object.assign(seen, look());
        if (interrupt) {
          process.emit('SIGINT', 'SIGINT');
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        }
        ctx.log.warn(`analysis: canary error rate 20.0 % (limit 1 %): ${phase === 'failed' ? 'FAIL' : 'PASS'}`);
        return status();
      },
      status,
      stop: async () => {
        seen.stopped = true;
      },
    };
  };
}

async function setup(phase: AnalysisPhase, seen: Seen, options: { interrupt?: boolean; live?: { pool: string; targets: string[] } | null } = {}) {
  const rec = recordedBareMetal({ hosts: ['h1', 'h2', 'h3'], appPath: '/srv/api', program: 'api' });
  let live = options.live === undefined ? { pool: 'green', targets: ['h2', 'h3'] } : options.live;
  const events: string[] = [];
  const traffic: Plugin & TrafficSwitch = {
    name: 'plugin:fake-traffic',
    apply(d) {
      d.useTraffic(traffic);
    },
    livePool: async () => live,
    async switchTo(pool: string, targets: readonly Target[]) {
      // the release h1 runs at each switch: the switch back comes before h1's rollback
      events.push(`switch ${pool} (h1 on ${rec.live.get('h1')})`);
      live = { pool, targets: targets.map((t) => t.name) };
    },
    addressOf: (t: Target) => `10.9.0.${t.name.slice(1)}:8000`,
  };
  const pruned = () => rec.log.filter((l) => l.command.label === 'remove old releases' && l.target !== 'h1').length;
  const look = (): Partial<Seen> => ({ pool: live?.pool ?? '', releases: [...rec.live.values()], pruned: pruned() });
  const store = await openStore({ path: ':memory:' });
  const id = await store.recordDeployment({
    fraise: 'api',
    environment: 'production',
    kind: 'deploy',
    strategy: 'strategy:blue-green',
    fromVersion: null,
    toVersion: 'v1.0.0',
    user: 'u',
    host: 'm',
  });
  await store.finishDeployment(id, { status: 'succeeded' });
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider: rec.provider,
    strategy: blueGreen({ blue: ['h1'], green: ['h2', 'h3'], bake: { duration: '2m', analysis: scripted(phase, seen, look, options.interrupt) } }),
    health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
    plugins: [traffic],
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: options.interrupt ?? false,
  });
  const output = () => entries.map((e) => `${e.target ?? '-'}: ${e.message}`).join('\n');
  return { ...rec, deployer, store, entries, events, output, pruned, live: () => live };
}

test('blue-green bake: a failed verdict switches back to the old colour first, then rolls the new colour back', async () => {
  const seen: Seen = {};
  const { deployer, store, entries, events, output, live, activations } = await setup('failed', seen);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back', `${JSON.stringify(r.error)}\n${output()}`);
  assert.is(r.error?.message, 'bake analysis failed: failed (1) > failure_limit (0)');
  assert.is(r.error?.step, 'bake');
  assert.equal(
    seen,
    { canary: ['h1'], stable: [], ms: 120_000, pool: 'blue', releases: ['v1.1.0', 'v1.0.0', 'v1.0.0'], pruned: 0, stopped: true },
    'the analysis watched the new colour for the bake, live, with green still on v1.0.0 and not pruned',
  );
  assert.equal(events, ['switch blue (h1 on v1.1.0)', 'switch green (h1 on v1.1.0)'], 'the switch back comes before the rollback of h1');
  assert.equal(live(), { pool: 'green', targets: ['h2', 'h3'] });
  assert.equal(activations(), ['h1:v1.1.0', 'h1:v1.0.0'], 'green never touched; h1 rolled back');
  assert.is(await store.currentVersion('api', 'production'), 'v1.0.0');
  const [row] = await store.history();
  assert.is(row!.status, 'rolled_back');
  assert.match(row!.error ?? '', 'bake analysis failed');
  assert.ok(
    entries.some((e) => e.level === 'warn' && /^Traffic switched back to green \(h2, h3, v1\.0\.0\) in \d+ ms after: bake analysis failed/.test(e.message)),
    output(),
  );
  assert.ok(entries.some((e) => e.message === 'Baking v1.1.0 for 120000 ms: the analysis watches h1'));
});

test('blue-green bake: a pass (or an inconclusive verdict) keeps the new colour; the old one is pruned only after the bake', async () => {
  for (const phase of ['successful', 'inconclusive'] as const) {
    const seen: Seen = {};
    const { deployer, store, entries, events, output, live, pruned } = await setup(phase, seen);
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${output()}`);
    assert.equal(events, ['switch blue (h1 on v1.1.0)'], 'one switch');
    assert.equal(live(), { pool: 'blue', targets: ['h1'] });
    assert.is(await store.currentVersion('api', 'production'), 'v1.1.0');
    assert.is(seen.pruned, 0, 'green not pruned during the bake');
    assert.ok(pruned() > 0, 'green pruned after it, as without a bake');
    if (phase === 'inconclusive')
      assert.ok(
        entries.some((e) => e.level === 'warn' && e.message === 'bake analysis inconclusive: keeping v1.1.0'),
        output(),
      );
    assert.ok(
      entries.some((e) => e.message === 'Bake of blue passed: green is retired'),
      output(),
    );
  }
});

test('blue-green bake: Ctrl-C during the bake switches back to the old colour and rolls back', async () => {
  const seen: Seen = {};
  const { deployer, store, events, output, live, activations } = await setup('successful', seen, { interrupt: true });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back', `${JSON.stringify(r.error)}\n${output()}`);
  assert.is(r.signal, 'SIGINT');
  assert.is(r.error?.code, 'E_ABORTED');
  assert.equal(events, ['switch blue (h1 on v1.1.0)', 'switch green (h1 on v1.1.0)']);
  assert.equal(live(), { pool: 'green', targets: ['h2', 'h3'] });
  assert.equal(activations(), ['h1:v1.1.0', 'h1:v1.0.0']);
  assert.is(await store.currentVersion('api', 'production'), 'v1.0.0');
  assert.ok(seen.stopped, 'the analysis was stopped');
});

test('blue-green bake: a first deployment (no live colour) that fails its bake is rolled back in place', async () => {
  const seen: Seen = {};
  const { deployer, events, entries, output } = await setup('failed', seen, { live: null });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back', output());
  assert.equal(events, ['switch blue (h1 on v1.1.0)'], 'no colour to switch back to');
  assert.ok(
    entries.some((e) => e.level === 'warn' && e.message.startsWith('no colour to switch back to (blue was the first live colour)')),
    output(),
  );
});

test('blue-green bake: a rollback does not bake; a comparison with stable is E_CONFIG', async () => {
  const seen: Seen = {};
  const { deployer, output, events } = await setup('successful', seen);
  assert.is((await deployer.deploy({ version: 'v1.1.0' })).status, 'succeeded', output());
  delete seen.ms;
  const r = await deployer.rollback();
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${output()}`);
  assert.equal(events, ['switch blue (h1 on v1.1.0)', 'switch green (h1 on v1.1.0)'], 'the rollback switches back to green');
  assert.is(seen.ms, undefined, 'no analysis during a rollback');
  try {
    blueGreen({ blue: ['h1'], green: ['h2'], bake: { duration: '1m', analysis: { checks: [{ metric: 'error_rate', maxIncrease: 1 }] } } });
    assert.unreachable();
  } catch (err) {
    assert.is((err as FraisierError).code, 'E_CONFIG');
    assert.is((err as FraisierError).key, 'bake.analysis.checks[0]');
    assert.match((err as FraisierError).message, /^blue-green: bake/);
  }
});

const YAML = (bake: string, strategy = 'blue_green') =>
  `fraises:\n  api:\n    environments:\n      production:\n        instances: [h1, h2]\n        app_path: /srv/api\n        git_repo: https://example.com/api.git\n        systemd_service: api.service\n        health_check_url: http://localhost:8000/health\n        deployment_strategy: ${strategy}\n        load_balancer: { type: nginx, upstream: api, file: /etc/nginx/api.conf, servers: { h1: "10.0.0.1:8000", h2: "10.0.0.2:8000" } }\n        blue_green_config:\n          blue: [h1]\n          green: [h2]\n${bake}`;

function bad(yaml: string): FraisierError {
  try {
    parseConfig(yaml, 'conf/fraises.yaml', {});
  } catch (e) {
    assert.is((e as FraisierError).code, 'E_CONFIG');
    return e as FraisierError;
  }
  throw new Error('expected E_CONFIG');
}

test('blue_green_config.bake: the YAML becomes the bake; bad input names the file and the key', () => {
  const env = parseConfig(
    YAML('          bake:\n            duration: 90s\n            error_threshold: 2\n            analysis: { interval: 5s, min_samples: 10 }\n'),
    'fraises.yaml',
    {},
  ).fraises['api']!.environments['production']!;
  assert.equal(env.strategy, {
    type: 'blue_green',
    blue: ['h1'],
    green: ['h2'],
    bake: {
      durationMs: 90_000,
      analysis: {
        checks: [
          { metric: 'error_rate', max: 2, minSamples: 10 },
          { metric: 'response_latency_p99', minSamples: 10 },
        ],
        interval: 5_000,
      },
    },
  });
  const metric = bad(YAML('          bake: { duration: 1m, metrics_to_monitor: [error_rate, disk] }\n'));
  assert.is(metric.key, 'fraises.api.environments.production.blue_green_config.bake.metrics_to_monitor[1]');
  assert.match(metric.message, /^conf\/fraises\.yaml: .*unknown metric "disk": expected one of error_rate, response_latency_p99, cpu_usage, memory_usage/);
  const duration = bad(YAML('          bake: { duration: soon }\n'));
  assert.match(duration.key ?? '', 'blue_green_config.bake.duration');
  assert.match(duration.message, /^conf\/fraises\.yaml: /);
  const rollingBake = bad(
    YAML('          bake: { duration: 1m }\n', 'rolling').replace(
      '        blue_green_config:\n          blue: [h1]\n          green: [h2]\n',
      '        blue_green_config:\n',
    ),
  );
  assert.match(rollingBake.message, 'set deployment_strategy: blue_green, or move it to rolling_config.bake');
});

test('the core never imports a strategy, provider or plugin (the strategies pass the default metric sources in)', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });
  const offenders = files('core').filter((f) => /(?:from|import\()\s*'(?:\.\.\/)+(?:plugins|strategies|providers)\//.test(readFileSync(f, 'utf8')));
  assert.equal(offenders, []);
});

test.run();
