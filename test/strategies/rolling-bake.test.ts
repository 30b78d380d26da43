import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Analysis, AnalysisContext, AnalysisPhase, AnalysisStatus } from '../../core/analysis/types.js';
import { FakeClock } from '../../core/clock.js';
import { parseConfig } from '../../core/config/load.js';
import { Deployer } from '../../core/deployer.js';
import type { FraisierError } from '../../core/errors.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import { rolling } from '../../strategies/rolling.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';

/** An analysis that ends in `phase`, recording the pools it was given and how long it ran. */
function scripted(phase: AnalysisPhase, seen: { canary?: string[]; stable?: string[]; ms?: number; stopped?: boolean }) {
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
        ctx.log.warn(`analysis: error rate 20 % (max 1 %): ${phase === 'failed' ? 'FAIL' : 'PASS'}`);
        return status();
      },
      status,
      stop: async () => {
        seen.stopped = true;
      },
    };
  };
}

async function setup(phase: AnalysisPhase, seen: Parameters<typeof scripted>[1]) {
  const rec = recordedBareMetal({ hosts: ['h1', 'h2', 'h3'], appPath: '/srv/api', program: 'api' });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const deployer = () =>
    new Deployer({
      fraise: 'api',
      environment: 'production',
      provider: rec.provider,
      strategy: rolling({ batchSize: 2, bake: { duration: '2m', analysis: scripted(phase, seen) } }),
      health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
      store,
      clock: new FakeClock(),
      sinks: [memorySink(entries)],
      handleSignals: false,
    });
  // the hosts run v1.0.0; the history says so
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
  return { deployer: deployer(), store, entries, ...rec };
}

test('rolling bake: a failed verdict after the last batch rolls back every host', async () => {
  const seen: Parameters<typeof scripted>[1] = {};
  const { deployer, store, live, entries } = await setup('failed', seen);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back', `${JSON.stringify(r.error)}\n${entries.map((e) => `${e.target ?? '-'}: ${e.message}`).join('\n')}`);
  assert.match(r.error!.message, 'bake analysis failed: failed (1) > failure_limit (0)');
  assert.equal(seen, { canary: ['h1', 'h2', 'h3'], stable: [], ms: 120_000, stopped: true }, 'every host watched, no stable pool, for the bake duration');
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
  assert.is(await store.currentVersion('api', 'production'), 'v1.0.0');
  assert.ok(entries.some((e) => e.message === 'Baking v1.1.0 for 120000 ms: the analysis watches h1, h2, h3'));
});

test('rolling bake: a passing (or inconclusive) bake keeps the release', async () => {
  for (const phase of ['successful', 'inconclusive'] as const) {
    const seen: Parameters<typeof scripted>[1] = {};
    const { deployer, store, live, entries } = await setup(phase, seen);
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'succeeded', JSON.stringify(r.error));
    assert.equal([...live.values()], ['v1.1.0', 'v1.1.0', 'v1.1.0']);
    assert.is(await store.currentVersion('api', 'production'), 'v1.1.0');
    if (phase === 'inconclusive') assert.ok(entries.some((e) => e.level === 'warn' && e.message === 'bake analysis inconclusive: keeping v1.1.0'));
    else assert.ok(entries.some((e) => e.message === 'Bake passed: v1.1.0 kept'));
  }
});

test('rolling bake: a comparison with stable is E_CONFIG (a bake has no stable pool)', () => {
  try {
    rolling({
      bake: {
        duration: '1m',
        analysis: {
          checks: [
            { metric: 'error_rate', max: 1 },
            { metric: 'response_latency_p99', maxRatio: 1.2 },
          ],
        },
      },
    });
    assert.unreachable();
  } catch (err) {
    assert.is((err as FraisierError).code, 'E_CONFIG');
    assert.is((err as FraisierError).key, 'bake.analysis.checks[1]');
  }
});

const YAML = (rc: string, strategy = 'rolling') =>
  `fraises:\n  api:\n    environments:\n      production:\n        instances: [h1, h2]\n        app_path: /srv/api\n        git_repo: https://example.com/api.git\n        systemd_service: api.service\n        deployment_strategy: ${strategy}\n        rolling_config:\n${rc}`;

test('rolling_config.bake: the YAML becomes the bake duration and absolute checks; bad input names the key', () => {
  const env = parseConfig(
    YAML(
      '          batch_size: 2\n          bake:\n            duration: 2m\n            error_threshold: 1\n            latency_threshold: 500\n            analysis: { interval: 10s, min_samples: 30 }\n',
    ),
    'fraises.yaml',
    {},
  ).fraises['api']!.environments['production']!;
  assert.equal(env.strategy, {
    type: 'rolling',
    batchSize: 2,
    waitBetweenBatchesMs: 0,
    bake: {
      durationMs: 120_000,
      analysis: {
        checks: [
          { metric: 'error_rate', max: 1, minSamples: 30 },
          { metric: 'response_latency_p99', max: 500, minSamples: 30 },
        ],
        interval: 10_000,
      },
    },
  });
  const bad = (yaml: string) => {
    try {
      parseConfig(yaml, 'conf/fraises.yaml', {});
    } catch (e) {
      assert.is((e as FraisierError).code, 'E_CONFIG');
      return e as FraisierError;
    }
    throw new Error('expected E_CONFIG');
  };
  const metric = bad(YAML('          bake: { duration: 1m, metrics_to_monitor: [error_rate, disk] }\n'));
  assert.is(metric.key, 'fraises.api.environments.production.rolling_config.bake.metrics_to_monitor[1]');
  assert.match(metric.message, /^conf\/fraises\.yaml: .*unknown metric "disk"/);
  const noDuration = bad(YAML('          bake: { error_threshold: 1 }\n'));
  assert.match(noDuration.key ?? '', 'rolling_config.bake');
  const other = bad(YAML('          bake: { duration: 1m }\n', 'canary'));
  assert.match(other.message, 'set deployment_strategy: rolling');
});

test.run();
