/**
 * `fraisier cancel` below the CLI, on SQLite and PostgreSQL: the request lands on the lock row, the
 * running Deployer reads it with its lock renewal, stops after its current step, rolls back what it
 * touched and records `cancelled` with who asked; a takeover drops a request meant for the old holder;
 * a dead holder or a free lock records nothing; `status-all`'s progress (step, targets) is on the lock.
 */
import * as assert from 'uvu/assert';
import { hostname } from 'node:os';
import { test } from 'uvu';
import { requestCancel } from '../../core/cancel.js';
import { Deployer } from '../../core/deployer.js';
import { RecordingExecutor } from '../../core/exec/recording.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { Locks, type LockOwner } from '../../core/state/lock.js';
import type { StateStore } from '../../core/state/store.js';
import type { Provider, Strategy, Target } from '../../core/types.js';
import { each } from '../support/backends.js';

const gone: LockOwner = { user: 'carol', host: 'elsewhere', pid: 999_999 };

/** Two fake targets on v1; the strategy deploys the first, waits `waitMs` between batches, then the second. */
function twoTargets(store: StateStore, waitMs: number, logs: LogEntry[], signal?: AbortSignal) {
  const live = new Map<string, string>([
    ['box1', 'v1'],
    ['box2', 'v1'],
  ]);
  const targets: Target[] = [
    { name: 'box1', kind: 'fake' },
    { name: 'box2', kind: 'fake' },
  ];
  let waiting!: () => void;
  const reachedWait = new Promise<void>((r) => (waiting = r));
  const provider: Provider = {
    name: 'provider:fake',
    targets,
    open: async () => {},
    resolveVersion: async (ref) => ref ?? 'v2',
    currentRelease: async (t) => live.get(t.name) ?? null,
    releases: async (t) => [live.get(t.name)!],
    prepare: async () => {},
    activate: async (t, version) => {
      live.set(t.name, version);
    },
    finalize: async () => {},
    executor: (t) => new RecordingExecutor(t.name),
    close: async () => {},
  };
  const strategy: Strategy = {
    name: 'strategy:two-batches',
    run: async (ctx, runner) => {
      await runner.deployTarget(ctx.targets[0]!);
      waiting();
      await runner.sleep(waitMs);
      await runner.deployTarget(ctx.targets[1]!);
    },
  };
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy,
    store,
    sinks: [memorySink(logs)],
    handleSignals: false,
    lockTtlMs: 3000,
  });
  return { deployer, live, reachedWait, run: () => deployer.deploy({ version: 'v2', ...(signal ? { signal } : {}) }) };
}

each('a cancel request is seen with the lock renewal: box1 rolled back, box2 untouched, history says who', async (b) => {
  const store = await b.open();
  try {
    const logs: LogEntry[] = [];
    const d = twoTargets(store, 60_000, logs);
    const running = d.run();
    await d.reachedWait;
    const locks = new Locks(store);
    // the step is written without waiting for the store: read until it lands
    let held = await locks.get('api', 'production');
    for (let i = 0; i < 100 && !held?.step?.startsWith('waiting'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      held = await locks.get('api', 'production');
    }
    assert.ok(held?.step?.startsWith('waiting'), `the lock row says what the holder does: ${held?.step}`);
    assert.equal(held?.targets, ['box1', 'box2']);
    const asked = await requestCancel(store, 'api', 'production', { by: 'dave@ops:77', reason: 'wrong tag' });
    assert.is(asked.outcome, 'requested');
    assert.is(asked.lock?.cancel?.by, 'dave@ops:77');
    const second = await requestCancel(store, 'api', 'production', { by: 'erin@ops:78' });
    assert.is(second.lock?.cancel?.by, 'dave@ops:77', 'the first request stands');
    const result = await running;
    assert.is(result.status, 'cancelled');
    assert.is(result.error?.message, 'cancelled by dave@ops:77 (wrong tag)');
    assert.equal(Object.fromEntries(d.live), { box1: 'v1', box2: 'v1' });
    assert.equal(
      result.targets.map((t) => [t.name, t.status]),
      [
        ['box1', 'rolled_back'],
        ['box2', 'pending'],
      ],
    );
    const [row] = await store.history({ fraise: 'api', limit: 1 });
    assert.is(row?.status, 'cancelled');
    assert.is(row?.error, 'cancelled by dave@ops:77 (wrong tag)');
    assert.is(await locks.get('api', 'production'), undefined, 'lock released');
    assert.ok(logs.some((l) => l.message.startsWith('Cancelled by dave@ops:77 (wrong tag): stopping after the current step')));
    // a cancelled release is not a bad one: the chain is unchanged, v2 can be deployed again
    assert.is(await store.currentVersion('api', 'production'), null);
    const again = await twoTargets(store, 0, []).run();
    assert.is(again.status, 'succeeded');
  } finally {
    await store.close();
  }
});

each('nothing running, or a holder that is gone: nothing recorded; a takeover drops the old request', async (b) => {
  const store = await b.open();
  try {
    assert.is((await requestCancel(store, 'api', 'production', { by: 'dave@ops:77' })).outcome, 'not_running');
    const locks = new Locks(store, { ttlMs: 1000 });
    await locks.acquire('api', 'production', gone, 'deploy by carol');
    await new Promise((r) => setTimeout(r, 1300));
    const dead = await requestCancel(store, 'api', 'production', { by: 'dave@ops:77' });
    assert.is(dead.outcome, 'holder_dead');
    assert.match(dead.why ?? '', 'expired');
    assert.is((await locks.get('api', 'production'))?.cancel, undefined, 'no request recorded for a dead holder');
    // a request left for a holder that then died is not inherited by whoever takes the lock over
    await locks.requestCancel('api', 'production', 'dave@ops:77');
    const taken = await locks.acquire('api', 'production', { user: 'bob', host: 'laptop', pid: 42 });
    assert.ok(taken.tookOverFrom);
    assert.is((await locks.get('api', 'production'))?.cancel, undefined);
    await taken.release();
    // `fraisier migrate` holds it: not cancelled half-way, nothing recorded
    const me = await locks.acquire('api', 'production', { user: 'me', host: hostname(), pid: process.pid }, 'migrate --phase cleanup by me');
    const migrating = await requestCancel(store, 'api', 'production', { by: 'dave@ops:77' });
    assert.is(migrating.outcome, 'not_cancellable');
    assert.match(migrating.why ?? '', 'fraisier migrate holds the lock');
    assert.is((await locks.get('api', 'production'))?.cancel, undefined);
    await me.release();
  } finally {
    await store.close();
  }
});

each('an external AbortSignal (deployAll --fail-fast) cancels like fraisier cancel', async (b) => {
  const store = await b.open();
  try {
    const ac = new AbortController();
    const d = twoTargets(store, 60_000, [], ac.signal);
    const running = d.run();
    await d.reachedWait;
    ac.abort('cancelled: web failed (--fail-fast)');
    const result = await running;
    assert.is(result.status, 'cancelled');
    assert.is(result.error?.message, 'cancelled: web failed (--fail-fast)');
    assert.equal(Object.fromEntries(d.live), { box1: 'v1', box2: 'v1' });
  } finally {
    await store.close();
  }
});

test.run();
