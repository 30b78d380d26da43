import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import { Locks } from '../../core/state/lock.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';
import { rolling, batches } from '../../strategies/rolling.js';

/** Three recorded hosts on v1.0.0; `unhealthy` hosts fail the exec health check. */
async function setup(opts: { hosts?: string[]; batchSize?: number; wait?: number; unhealthy?: string[]; rollback?: boolean } = {}) {
  const { provider, executors, live, log, activations } = recordedBareMetal({
    hosts: opts.hosts ?? ['h1', 'h2', 'h3'],
    appPath: '/srv/api',
    program: 'api',
    ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}),
  });
  const store = await openStore({ path: ':memory:' });
  const clock = new FakeClock();
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: rolling({ batchSize: opts.batchSize ?? 1, waitBetweenBatches: opts.wait ?? 0 }),
    health: { checks: [exec('health-probe')], retries: 3, retryDelay: '2s' },
    rollback: { enabled: opts.rollback ?? true },
    store,
    clock,
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  return { deployer, executors, live, store, clock, entries, log, activations };
}

test('batches splits in order', () => {
  assert.equal(batches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
});

test('a healthy rolling deploy switches every host, one at a time, and records the history', async () => {
  const { deployer, live, store, entries, activations } = await setup();
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded');
  assert.equal(activations(), ['h1:v1.1.0', 'h2:v1.1.0', 'h3:v1.1.0']);
  assert.equal([...live.values()], ['v1.1.0', 'v1.1.0', 'v1.1.0']);
  const [row] = await store.history();
  assert.is(row!.status, 'succeeded');
  assert.is(row!.toVersion, 'v1.1.0');
  const full = await store.deployment(row!.id);
  assert.equal(
    full!.targets.map((t) => t.status),
    ['succeeded', 'succeeded', 'succeeded'],
  );
  assert.ok(entries.some((e) => e.message === 'Deployment successful! (none) → v1.1.0'));
  assert.is(await new Locks(store).get('api', 'production'), undefined, 'lock released');
});

test('a failed health check on h2 rolls back h1 and h2 and never touches h3', async () => {
  const { deployer, live, store, log, entries, clock, activations } = await setup({ unhealthy: ['h2'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.is(activations().length, 4, 'two switches forward, two back');
  assert.equal(activations().slice(0, 2), ['h1:v1.1.0', 'h2:v1.1.0']);
  assert.equal(new Set(activations().slice(2)), new Set(['h1:v1.0.0', 'h2:v1.0.0']));
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
  assert.equal(
    log.filter((l) => l.target === 'h3').map((l) => l.command.label),
    ['preflight checks'],
    'h3: preflight only',
  );
  const h2Attempts = entries.filter((e) => e.target === 'h2' && /^Attempt \d: FAILED/.test(e.message));
  assert.is(h2Attempts.length, 3, 'three attempts');
  assert.equal(clock.sleeps.filter((s) => s === 2000).length >= 2, true, 'waited retryDelay between attempts');
  const full = await store.deployment(r.id!);
  assert.is(full!.status, 'rolled_back');
  assert.equal(Object.fromEntries(full!.targets.map((t) => [t.target, t.status])), { h1: 'rolled_back', h2: 'rolled_back', h3: 'untouched' });
});

test('with batches of 2, both hosts of the failing batch roll back; the next batch stays untouched', async () => {
  const { deployer, live, activations } = await setup({ hosts: ['h1', 'h2', 'h3', 'h4'], batchSize: 2, unhealthy: ['h1'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0', 'v1.0.0']);
  assert.equal(
    activations().filter((a) => a.startsWith('h3') || a.startsWith('h4')),
    [],
  );
});

test('waits between batches with the injected clock', async () => {
  const { deployer, clock } = await setup({ batchSize: 1, wait: 30_000 });
  await deployer.deploy({ version: 'v1.1.0' });
  assert.equal(clock.sleeps.filter((s) => s === 30_000).length, 2);
});

test('with rollback disabled the failing host stays on the new release and the deploy fails', async () => {
  const { deployer, live } = await setup({ unhealthy: ['h1'], rollback: false });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.is(live.get('h1'), 'v1.1.0');
  assert.is(live.get('h2'), 'v1.0.0');
});

test('a second deploy while the lock is held fails fast naming the holder', async () => {
  const { deployer, store, live } = await setup();
  await new Locks(store).acquire('api', 'production', { user: 'alice', host: 'laptop', pid: 4242 }, 'hotfix');
  try {
    await deployer.deploy({ version: 'v1.1.0' });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_LOCKED');
    assert.match((e as Error).message, 'alice@laptop:4242');
  }
  assert.is(live.get('h1'), 'v1.0.0');
});

test('a hook that throws in preDeploy stops the deployment before any host changes', async () => {
  const { deployer, store, activations } = await setup();
  deployer.hooks.preDeploy.tapPromise('test:fail', async () => {
    throw new Error('migration failed');
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.equal(activations(), []);
  assert.is((await store.history())[0]!.status, 'failed');
});

test('rollback taps all run even when one throws, and their errors are reported', async () => {
  const { deployer, entries } = await setup({ unhealthy: ['h1'] });
  const ran: string[] = [];
  deployer.hooks.rollback.tapPromise('a', async () => {
    ran.push('a');
    throw new Error('a broke');
  });
  deployer.hooks.rollback.tapPromise('b', async () => {
    ran.push('b');
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.equal(ran, ['a', 'b']);
  assert.is(r.status, 'failed');
  assert.ok(entries.some((e) => e.message.includes('rollback hook: a broke')));
});

test.run();
