/**
 * LockSession (core/lock-session.ts) on a real SQLite store, with a manual clock that times both the
 * session's renewals and the database's clock: renewal every third of the TTL, a lock kept past its TTL
 * only by renewing, loss noticed by the renewal loop or by the fencing check, E_LOCKED for a held lock,
 * and the lock released when the work throws.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Clock } from '../../core/clock.js';
import type { FraisierError } from '../../core/errors.js';
import { LockSession, type LockSessionOptions } from '../../core/lock-session.js';
import { memorySink, FanoutLogger, type LogEntry } from '../../core/log.js';
import { LockHeldError, Locks, type LockOwner } from '../../core/state/lock.js';
import { openStore, type StateStore } from '../../core/state/store.js';

const T0 = Date.UTC(2026, 10, 1, 12, 0, 0);
const TTL = 3000;
const alice: LockOwner = { user: 'alice', host: 'box', pid: 1234 };
const bob: LockOwner = { user: 'bob', host: 'laptop', pid: 42 };

/** A clock whose sleeps resolve only when the test advances it. */
class ManualClock implements Clock {
  t = T0;
  #timers: { at: number; resolve: () => void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.#timers = this.#timers.filter((x) => x !== timer);
        reject(signal!.reason);
      };
      const timer = {
        at: this.t + ms,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#timers.push(timer);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  /** Timers waiting (the renewal loop's next tick, a fence's retry). */
  get pending(): number {
    return this.#timers.length;
  }
  advance(ms: number): void {
    this.t += ms;
    const due = this.#timers.filter((x) => x.at <= this.t);
    this.#timers = this.#timers.filter((x) => x.at > this.t);
    for (const x of due) x.resolve();
  }
}

/** Polls `cond` (the renewal runs asynchronously after `advance`); fails after `ms` of real time. */
async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.unreachable(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function setup(): Promise<{ store: StateStore; clock: ManualClock; log: LogEntry[]; lost: FraisierError[]; options: LockSessionOptions; locks: Locks }> {
  const clock = new ManualClock();
  const store = await openStore({ path: ':memory:', now: () => clock.t, databaseClock: () => clock.t });
  const log: LogEntry[] = [];
  const lost: FraisierError[] = [];
  const options: LockSessionOptions = {
    store,
    fraise: 'app',
    environment: 'production',
    owner: alice,
    reason: 'deploy by alice',
    log: new FanoutLogger([memorySink(log)]),
    ttlMs: TTL,
    clock,
    onLost: (e) => void lost.push(e),
  };
  return { store, clock, log, lost, options, locks: new Locks(store, { ttlMs: TTL }) };
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

test('renews every third of the TTL: the lock outlives its TTL while held, and nobody else can take it', async () => {
  const { store, clock, options, locks } = await setup();
  const session = await LockSession.acquire(options);
  assert.is((await locks.get('app', 'production'))!.expiresAt, T0 + TTL);
  for (let i = 1; i <= 10; i++) {
    clock.advance(1000);
    await until(`renewal ${i}`, async () => (await locks.get('app', 'production'))!.expiresAt === T0 + i * 1000 + TTL);
  }
  // 10 s held with a 3 s TTL: still ours.
  const other = await rejects(locks.acquire('app', 'production', bob));
  assert.instance(other, LockHeldError);
  await session.fence();
  assert.is(session.lost, false);
  await session.release();
  assert.is(await locks.get('app', 'production'), undefined);
  assert.is(clock.pending, 0, 'no renewal left running');
  await store.close();
});

test('without renewal the same lock is taken over after its TTL (what the renewal prevents)', async () => {
  const { store, clock, locks } = await setup();
  await locks.acquire('app', 'production', alice, 'migrate --phase cleanup by alice');
  clock.advance(TTL);
  const taken = await locks.acquire('app', 'production', bob);
  assert.is(taken.tookOverFrom?.owner.user, 'alice');
  await store.close();
});

test('a lock removed by someone else is noticed by the renewal loop: logged once, onLost called, fence rejects E_LOCKED', async () => {
  const { store, clock, log, lost, options, locks } = await setup();
  const session = await LockSession.acquire(options);
  await locks.forceRelease('app', 'production');
  clock.advance(1000);
  await until('the loss to be noticed', () => session.lost);
  assert.is(lost.length, 1);
  assert.is(lost[0]!.code, 'E_LOCKED');
  assert.match(lost[0]!.message, 'the deployment lock was lost while deploying (removed with unlock --force, or taken over)');
  assert.equal(
    log.filter((e) => e.level === 'error').map((e) => e.message),
    ['lost the deployment lock (removed with unlock --force, or taken over): stopping without touching any host again'],
  );
  const e = await rejects(session.fence());
  assert.is(e, lost[0]);
  assert.is(clock.pending, 0, 'the renewal loop stopped');
  // Someone else's lock is never deleted by our release.
  await locks.acquire('app', 'production', bob);
  await session.release();
  assert.is((await locks.get('app', 'production'))?.owner.user, 'bob');
  assert.is(lost.length, 1);
  await store.close();
});

test('the fencing check notices a takeover by itself, before the next renewal; a migration session words it so', async () => {
  const { store, log, lost, options, locks } = await setup();
  const session = await LockSession.acquire({ ...options, activity: 'migration', reason: 'migrate --phase cleanup by alice' });
  await locks.forceRelease('app', 'production');
  await locks.acquire('app', 'production', bob);
  const e = (await rejects(session.fence())) as FraisierError;
  assert.is(e.code, 'E_LOCKED');
  assert.is(e.message, 'the lock of app/production was lost (removed with unlock --force, or taken over): no further migration was run');
  assert.equal(
    log.map((x) => x.message),
    ['lost the lock of app/production (removed with unlock --force, or taken over): no further migration will run'],
  );
  assert.is(await rejects(session.fence()), e, 'the same error every time');
  assert.is(lost.length, 1);
  await session.release();
  await store.close();
});

test('a held lock: E_LOCKED naming the holder, with the hint of the activity; nothing acquired', async () => {
  const { store, options, locks } = await setup();
  await locks.acquire('app', 'production', bob, 'deploy v2 by bob');
  const d = (await rejects(LockSession.acquire(options))) as FraisierError;
  assert.is(d.code, 'E_LOCKED');
  assert.match(d.message, 'fraise app/production is locked by bob@laptop:42');
  assert.match(d.message, 'deploy v2 by bob');
  assert.is(d.hint, 'wait for it (--wait-lock), or if its owner is gone: fraisier unlock app production');
  const m = (await rejects(LockSession.acquire({ ...options, activity: 'migration' }))) as FraisierError;
  assert.is(m.hint, 'wait for the deployment to finish, or if its owner is gone: fraisier unlock app production');
  assert.is((await locks.get('app', 'production'))!.owner.user, 'bob');
  await store.close();
});

test('LockSession.with releases the lock and stops renewing when the work throws', async () => {
  const { store, clock, options, locks } = await setup();
  let during: string | undefined;
  const e = await rejects(
    LockSession.with(options, async (session) => {
      during = (await locks.get('app', 'production'))?.owner.user;
      await session.fence();
      throw new Error('migration 002 failed');
    }),
  );
  assert.is(e.message, 'migration 002 failed');
  assert.is(during, 'alice');
  assert.is(await locks.get('app', 'production'), undefined, 'released');
  assert.is(clock.pending, 0, 'no renewal left running');
  await locks.acquire('app', 'production', bob);
  await store.close();
});

test('a dry run takes no lock: fence resolves, nothing stored', async () => {
  const { store, options, locks } = await setup();
  const r = await LockSession.with({ ...options, dryRun: true }, async (session) => {
    assert.is(session.held, false);
    await session.fence();
    return locks.get('app', 'production');
  });
  assert.is(r, undefined);
  await store.close();
});

test.run();
