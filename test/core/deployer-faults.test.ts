/**
 * The deployer under faults, with recorded hosts: a signal mid-deployment, a host left on a failing
 * release, a rollback without a history, a lock lost mid-way (fencing).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { FraisierError } from '../../core/errors.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { Locks } from '../../core/state/lock.js';
import { openStore, type StateStore } from '../../core/state/store.js';
import type { Strategy } from '../../core/types.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';
import { rolling } from '../../strategies/rolling.js';

async function setup(opts: { unhealthy?: string[]; strategy?: Strategy; handleSignals?: boolean; store?: StateStore } = {}) {
  const { provider, live, log, activations } = recordedBareMetal({
    hosts: ['h1', 'h2', 'h3'],
    appPath: '/srv/api',
    program: 'api',
    ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}),
  });
  const store = opts.store ?? (await openStore({ path: ':memory:' }));
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: opts.strategy ?? rolling({ batchSize: 1, waitBetweenBatches: 0 }),
    health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: opts.handleSignals ?? false,
  });
  return { deployer, live, store, entries, log, activations };
}

async function recordHistory(store: StateStore, rows: [string, 'succeeded' | 'failed'][]): Promise<void> {
  for (const [version, status] of rows) {
    const id = await store.recordDeployment({
      fraise: 'api',
      environment: 'production',
      kind: 'deploy',
      strategy: 'rolling',
      fromVersion: null,
      toVersion: version,
      user: 'u',
      host: 'h',
    });
    await store.finishDeployment(id, { status });
  }
}

for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) {
  test(`${sig} mid-deployment: stops, rolls back what was touched, records rolled_back, releases the lock, names the signal`, async () => {
    // a strategy that deploys h1, then receives the signal before h2
    const strategy: Strategy = {
      name: 'strategy:signal-after-first',
      run: async (ctx, runner) => {
        await runner.deployTarget(ctx.targets[0]!);
        process.emit(sig, sig);
        for (const t of ctx.targets.slice(1)) await runner.deployTarget(t);
      },
    };
    const { deployer, live, store, entries } = await setup({ strategy, handleSignals: true });
    await recordHistory(store, [['v1.0.0', 'succeeded']]);
    const before = process.listenerCount(sig);
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'rolled_back');
    assert.is(r.signal, sig);
    assert.is(r.error?.code, 'E_ABORTED');
    assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
    assert.ok(
      entries.some((e) => e.message.startsWith(`Interrupted (${sig})`)),
      'says which signal stopped it',
    );
    assert.is((await store.history())[0]!.status, 'rolled_back');
    assert.is(await new Locks(store).get('api', 'production'), undefined, 'lock released');
    assert.is(process.listenerCount(sig), before, 'handler removed afterwards');
  });
}

test('a host left on the failing release is rolled back to the last release known good, not to itself', async () => {
  const { deployer, live, store, activations, entries } = await setup({ unhealthy: ['h1'] });
  // v1.0.0 deployed; an interrupted v1.1.0 left h1 on v1.1.0
  await recordHistory(store, [
    ['v1.0.0', 'succeeded'],
    ['v1.1.0', 'failed'],
  ]);
  live.set('h1', 'v1.1.0');
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.equal(activations(), ['h1:v1.1.0', 'h1:v1.0.0']);
  assert.is(live.get('h1'), 'v1.0.0', 'h1 is back on a working release');
  assert.ok(entries.some((e) => e.target === 'h1' && e.message.includes('rolling back to v1.0.0, the last release that deployed successfully')));
  const full = await store.deployment(r.id!);
  assert.is(full!.targets.find((t) => t.target === 'h1')!.status, 'rolled_back');
});

test('a host on a release that never deployed successfully goes back to the last known-good one', async () => {
  const { deployer, live, store, activations } = await setup({ unhealthy: ['h1'] });
  await recordHistory(store, [
    ['v1.0.0', 'succeeded'],
    ['v0.9.9-broken', 'failed'],
  ]);
  live.set('h1', 'v0.9.9-broken');
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.equal(activations(), ['h1:v1.1.0', 'h1:v1.0.0']);
});

test('rollback without a history asks for --to: E_USAGE, nothing recorded, no host touched, no lock left', async () => {
  const { deployer, store, activations } = await setup();
  try {
    await deployer.rollback();
    assert.unreachable('should ask for --to');
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_USAGE');
    assert.match((err as FraisierError).message, 'no earlier release of api in production ever deployed successfully');
    assert.match((err as FraisierError).hint ?? '', '--to VERSION');
  }
  assert.equal(activations(), []);
  assert.equal(await store.history(), []);
  assert.is(await new Locks(store).get('api', 'production'), undefined);
  // with --to it goes ahead
  assert.is((await deployer.rollback({ to: 'v1.0.0' })).status, 'succeeded');
});

test('a lock lost mid-deployment (unlock --force): no further command on any host, no rollback, lock_lost recorded', async () => {
  let store!: StateStore;
  let commandsAtUnlock = -1;
  let log!: { length: number };
  const strategy: Strategy = {
    name: 'strategy:unlocked-after-first',
    run: async (ctx, runner) => {
      await runner.deployTarget(ctx.targets[0]!);
      await new Locks(store).unlock('api', 'production', { force: true });
      commandsAtUnlock = log.length;
      for (const t of ctx.targets.slice(1)) await runner.deployTarget(t);
    },
  };
  const s = await setup({ strategy });
  store = s.store;
  log = s.log;
  await recordHistory(store, [['v1.0.0', 'succeeded']]);
  const r = await s.deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'lock_lost');
  assert.is(r.error?.code, 'E_LOCKED');
  assert.equal(s.activations(), ['h1:v1.1.0'], 'h1 not rolled back, h2 and h3 never activated');
  assert.ok(commandsAtUnlock > 0);
  assert.is(s.log.length, commandsAtUnlock, 'no command on any host after the lock was lost');
  const row = (await store.history())[0]!;
  assert.is(row.status, 'lock_lost');
  assert.match(row.error ?? '', 'lock was lost');
  const full = await store.deployment(row.id);
  assert.equal(Object.fromEntries(full!.targets.map((t) => [t.target, t.status])), { h1: 'succeeded', h2: 'untouched', h3: 'untouched' });
});

test.run();
