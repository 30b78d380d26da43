/**
 * The plugin API (issue 9 §3): what a plugin's `apply(host)` gets is a PluginHost (hooks, log,
 * useTraffic, read-only history, names), never the Deployer; its history reads the environment's real
 * history; and `FRAISIER_LOCK_TTL`, the lock TTL of the CLI front ends.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lockTtlFromEnv } from '../../core/app.js';
import { Deployer } from '../../core/deployer.js';
import { FraisierError } from '../../core/errors.js';
import { RecordingExecutor } from '../../core/exec/recording.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import type { DeploymentSummary, Plugin, PluginHost, Provider, Strategy, Target, TrafficSwitch } from '../../core/types.js';

const box: Target = { name: 'box1', kind: 'fake' };

function provider(): Provider {
  let live: string | null = null;
  return {
    name: 'provider:fake',
    targets: [box],
    open: async () => {},
    resolveVersion: async (ref) => ref ?? 'v1',
    currentRelease: async () => live,
    releases: async () => (live ? [live] : []),
    prepare: async () => {},
    activate: async (_t, version) => {
      live = version;
    },
    finalize: async () => {},
    executor: () => new RecordingExecutor('box1'),
    close: async () => {},
  };
}

const oneByOne: Strategy = {
  name: 'strategy:one-by-one',
  run: async (ctx, runner) => {
    for (const t of ctx.targets) await runner.deployTarget(t);
  },
};

const traffic = (name: string): TrafficSwitch => ({ name, livePool: async () => null, switchTo: async () => {}, addressOf: () => null });

test('apply gets a PluginHost, not the Deployer: names, hooks, log, useTraffic, history; no options, no store', async () => {
  const store = await openStore({ path: ':memory:' });
  let got: PluginHost | undefined;
  const plugin: Plugin = {
    name: 'plugin:probe',
    apply: (host) => {
      got = host;
    },
  };
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider: provider(),
    strategy: oneByOne,
    store,
    plugins: [plugin],
    sinks: [],
    handleSignals: false,
  });
  assert.ok(got);
  assert.is.not(got as unknown, deployer as unknown);
  assert.equal(Object.keys(got!).sort(), ['environment', 'fraise', 'history', 'hooks', 'log', 'useTraffic']);
  assert.is(got!.fraise, 'api');
  assert.is(got!.environment, 'production');
  assert.is(got!.hooks, deployer.hooks);
  assert.ok(Object.isFrozen(got), 'a plugin cannot swap the hooks or the log');
  const lb = traffic('plugin:lb');
  got!.useTraffic(lb);
  assert.is(deployer.traffic, lb);
  try {
    got!.useTraffic(traffic('plugin:other'));
    assert.unreachable('a second traffic switch must be refused');
  } catch (e) {
    assert.instance(e, FraisierError);
    assert.is((e as FraisierError).code, 'E_CONFIG');
    assert.match((e as FraisierError).message, 'two traffic plugins switch pools: plugin:lb and plugin:other');
  }
  await store.close();
});

test("host.history reads this environment's history, newest first; host.log lines become the deployment's events", async () => {
  const store = await openStore({ path: ':memory:' });
  const seen: { recent: DeploymentSummary[]; current: string | null; succeeded: string[] }[] = [];
  const plugin: Plugin = {
    name: 'plugin:history',
    apply(host) {
      // v2 fails its health check once activated; the rollback's check (the target back on v1) passes.
      host.hooks.healthCheck.tapPromise('plugin:history', async (t, ctx) =>
        ctx.version === 'v2' && ctx.states.get(t.name)?.status === 'activated' ? { check: 'probe', reason: 'v2 is broken' } : undefined,
      );
      host.hooks.postDeploy.tapPromise('plugin:history', async () => {
        seen.push({ recent: await host.history.recent(), current: await host.history.currentVersion(), succeeded: await host.history.succeededVersions() });
        host.log.info('history read by the plugin');
      });
    },
  };
  const log: LogEntry[] = [];
  const make = (environment: string) =>
    new Deployer({
      fraise: 'api',
      environment,
      provider: provider(),
      strategy: oneByOne,
      store,
      plugins: [plugin],
      sinks: [memorySink(log)],
      handleSignals: false,
    });
  // Another environment's deployments are not this one's history.
  assert.is((await make('staging').deploy({ version: 'v9' })).status, 'succeeded');
  const production = make('production');
  assert.is((await production.deploy({ version: 'v1' })).status, 'succeeded');
  assert.is((await production.deploy({ version: 'v2' })).status, 'rolled_back');
  const r3 = await production.deploy({ version: 'v3' });
  assert.is(r3.status, 'succeeded');
  const last = seen.at(-1)!;
  assert.equal(
    last.recent.map((d) => `${d.kind} ${d.toVersion} ${d.status}`),
    ['deploy v3 running', 'deploy v2 rolled_back', 'deploy v1 succeeded'],
  );
  assert.is(last.current, 'v1', 'v3 is still running while postDeploy runs');
  assert.equal(last.succeeded, ['v1']);
  const events = (await store.deployment(r3.id!))!.events.map((e) => e.message);
  assert.ok(events.includes('history read by the plugin'), events.join('\n'));
  await store.close();
});

test('FRAISIER_LOCK_TTL: a duration or milliseconds; unset is the default; anything else is E_CONFIG naming the variable', () => {
  assert.is(lockTtlFromEnv({}), undefined);
  assert.is(lockTtlFromEnv({ FRAISIER_LOCK_TTL: '' }), undefined);
  assert.is(lockTtlFromEnv({ FRAISIER_LOCK_TTL: '3s' }), 3000);
  assert.is(lockTtlFromEnv({ FRAISIER_LOCK_TTL: '2m' }), 120_000);
  assert.is(lockTtlFromEnv({ FRAISIER_LOCK_TTL: '2500' }), 2500);
  for (const bad of ['soon', '500ms', '0', '-5s', '3 days']) {
    try {
      lockTtlFromEnv({ FRAISIER_LOCK_TTL: bad });
      assert.unreachable(`${bad} must be refused`);
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_CONFIG');
      assert.is((e as FraisierError).key, 'FRAISIER_LOCK_TTL');
      assert.match(
        (e as FraisierError).message,
        `environment variable FRAISIER_LOCK_TTL: expected a duration of at least 1s such as 90s or 2m (or milliseconds), got ${JSON.stringify(bad)}`,
      );
    }
  }
});

test.run();
