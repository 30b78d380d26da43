import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appliedMigrations } from '../../../core/state/migrations.js';
import { openStore } from '../../../core/state/store.js';
import type { StateStore } from '../../../core/state/store.js';
import { LockHeldError, LockLostError, Locks, ownerString, startRenewal } from '../../../core/state/lock.js';
import type { LockInfo, LockOwner } from '../../../core/state/lock.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const tmpDirs: string[] = [];
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-lock-'));
  tmpDirs.push(dir);
  return dir;
}
test.after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const alice: LockOwner = { user: 'alice', host: 'box', pid: 1234 };
const bob: LockOwner = { user: 'bob', host: 'laptop', pid: 42 };

async function setup(ttlMs = 1000): Promise<{ store: StateStore; locks: Locks; clock: { t: number } }> {
  const clock = { t: T0 };
  const store = await openStore({ path: ':memory:', now: () => clock.t });
  return { store, locks: new Locks(store, { ttlMs }), clock };
}

async function rejects<E extends Error>(p: Promise<unknown>, type: new (...a: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, type);
    return e as E;
  }
  assert.unreachable(`expected ${type.name}`);
  throw new Error('unreachable');
}

/** Polls `cond` every 5 ms; fails after `ms` (generous: the machine may be loaded). */
async function until(cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.unreachable('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('ownerString', () => {
  assert.is(ownerString(alice), 'alice@box:1234');
});

test('acquire, then a second acquire throws LockHeldError naming the holder', async () => {
  const { store, locks } = await setup();
  const h = await locks.acquire('api', 'production', alice, 'deploy v2');
  const expected: LockInfo = { fraise: 'api', environment: 'production', owner: alice, reason: 'deploy v2', acquiredAt: T0, expiresAt: T0 + 1000 };
  assert.equal(h.info, expected);
  assert.is(h.tookOverFrom, null);
  const err = await rejects(locks.acquire('api', 'production', bob), LockHeldError);
  assert.equal(err.holder, expected);
  assert.is(
    err.message,
    'fraise api/production is locked by alice@box:1234 since 2026-03-01T12:00:00.000Z (expires 2026-03-01T12:00:01.000Z): deploy v2',
  );
  // the same owner is not re-entrant either
  await rejects(locks.acquire('api', 'production', alice), LockHeldError);
  // other environments and fraises are independent
  await locks.acquire('api', 'staging', bob);
  await locks.acquire('worker', 'production', bob);
  assert.equal((await locks.list()).map((l) => `${l.fraise}/${l.environment}:${l.owner.user}`), [
    'api/production:alice',
    'api/staging:bob',
    'worker/production:bob',
  ]);
  assert.equal(await locks.get('api', 'production'), expected);
  assert.is(await locks.get('api', 'nope'), undefined);
  await store.close();
});

test('a lock is held until expiresAt, then taken over with tookOverFrom set', async () => {
  const { store, locks, clock } = await setup();
  const a = await locks.acquire('api', 'production', alice, 'deploy v2');
  clock.t = T0 + 999;
  await rejects(locks.acquire('api', 'production', bob), LockHeldError);
  clock.t = T0 + 1000; // expiresAt <= now: expired
  const b = await locks.acquire('api', 'production', bob, 'hotfix');
  assert.equal(b.tookOverFrom, { fraise: 'api', environment: 'production', owner: alice, reason: 'deploy v2', acquiredAt: T0, expiresAt: T0 + 1000 });
  assert.equal(b.info, { fraise: 'api', environment: 'production', owner: bob, reason: 'hotfix', acquiredAt: T0 + 1000, expiresAt: T0 + 2000 });
  assert.equal((await locks.get('api', 'production'))?.owner, bob);

  // alice's handle is dead: renew throws, release does nothing
  const lost = await rejects(a.renew(), LockLostError);
  assert.match(lost.message, /alice@box:1234/);
  await a.release();
  assert.equal((await locks.get('api', 'production'))?.owner, bob);

  // bob renews: expiry moves to now + ttl
  clock.t = T0 + 1500;
  await b.renew();
  assert.is(b.info.expiresAt, T0 + 2500);
  assert.is((await locks.get('api', 'production'))?.expiresAt, T0 + 2500);
  clock.t = T0 + 2400;
  await rejects(locks.acquire('api', 'production', alice), LockHeldError);

  // a plain acquisition after a release has no tookOverFrom
  await b.release();
  assert.is(await locks.get('api', 'production'), undefined);
  await rejects(b.renew(), LockLostError);
  const c = await locks.acquire('api', 'production', alice);
  assert.is(c.tookOverFrom, null);
  await store.close();
});

test('the same owner taking over its own expired lock still invalidates the old handle', async () => {
  const { store, locks, clock } = await setup();
  const first = await locks.acquire('api', 'production', alice);
  clock.t += 5000;
  const second = await locks.acquire('api', 'production', alice);
  assert.equal(second.tookOverFrom?.owner, alice);
  await rejects(first.renew(), LockLostError);
  await first.release();
  assert.ok(await locks.get('api', 'production'), 'old handle did not delete the new lock');
  await second.renew();
  await store.close();
});

test('forceRelease removes whoever holds it', async () => {
  const { store, locks } = await setup();
  const a = await locks.acquire('api', 'production', alice, 'stuck');
  const removed = await locks.forceRelease('api', 'production');
  assert.equal(removed?.owner, alice);
  assert.is(removed?.reason, 'stuck');
  assert.is(await locks.get('api', 'production'), undefined);
  assert.is(await locks.forceRelease('api', 'production'), undefined);
  await rejects(a.renew(), LockLostError);
  const b = await locks.acquire('api', 'production', bob);
  assert.is(b.tookOverFrom, null);
  await store.close();
});

test('startRenewal keeps pushing the expiry and reports a lost lock', async () => {
  const { store, locks, clock } = await setup(1000);
  const h = await locks.acquire('api', 'production', alice);
  const renewal = startRenewal(h, 10);
  clock.t = T0 + 700;
  await until(async () => (await locks.get('api', 'production'))?.expiresAt === T0 + 1700);
  assert.is(h.info.expiresAt, T0 + 1700);
  assert.is(renewal.lost, false);
  await locks.forceRelease('api', 'production');
  await until(async () => renewal.lost);
  assert.instance(renewal.lastError, LockLostError);
  renewal.stop();
  await store.close();
});

test('reapInterrupted marks the crashed holder\'s running deployment failed, not the new one', async () => {
  const { store, locks, clock } = await setup(1000);
  const base = { environment: 'production', kind: 'deploy' as const, strategy: 'rolling', fromVersion: 'v1', user: 'alice', host: 'box' };
  await locks.acquire('api', 'production', alice);
  const crashed = await store.recordDeployment({ ...base, fraise: 'api', toVersion: 'v2' });
  const otherEnv = await store.recordDeployment({ ...base, fraise: 'api', environment: 'staging', toVersion: 'v2' });
  clock.t += 1000; // alice's process died: the lock expired
  // while alice's lock is merely expired (not yet taken over), her deployment is already reapable
  const b = await locks.acquire('api', 'production', bob);
  assert.ok(b.tookOverFrom);
  clock.t += 5;
  const mine = await store.recordDeployment({ ...base, fraise: 'api', toVersion: 'v3', user: 'bob' });
  assert.is(await store.reapInterrupted('api', 'production'), 1);
  const d = await store.deployment(crashed);
  assert.is(d?.status, 'failed');
  assert.is(d?.error, 'interrupted');
  assert.is(d?.finishedAt, T0 + 1005);
  assert.is(d?.durationMs, null);
  assert.equal(d?.events.map((e) => e.level), ['warn']);
  assert.is((await store.deployment(mine))?.status, 'running');
  assert.is((await store.deployment(otherEnv))?.status, 'running');
  assert.is(await store.reapInterrupted('api', 'production'), 0);
  // with no lock at all, every running deployment of that place is interrupted
  assert.is(await store.reapInterrupted('api', 'staging'), 1);
  await store.close();
});

interface RaceResult {
  pid: number;
  won?: boolean;
  holderPid?: number;
  error?: string;
}

/**
 * Starts `n` helper processes; `round(environment)` makes them all try to take api/<environment> at the
 * same moment (a start time 300 ms ahead, after every process said it is ready) and returns their results.
 */
async function racers(file: string, n: number, when: 'open-first' | 'open-after-go') {
  const children = Array.from({ length: n }, () =>
    spawn(process.execPath, ['--import', 'tsx', path.join(here, 'lock-race-child.ts'), file, 'api', when], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const readers = children.map((c) => {
    const queue: string[] = [];
    const waiters: ((line: string) => void)[] = [];
    let buf = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = waiters.shift();
        if (w) w(line);
        else queue.push(line);
      }
    });
    c.on('exit', (code) => {
      for (const w of waiters.splice(0)) w(JSON.stringify({ pid: c.pid, error: `exited with ${code}` }));
    });
    return () => new Promise<string>((resolve) => (queue.length ? resolve(queue.shift()!) : waiters.push(resolve)));
  });
  const exited = Promise.all(children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.on('exit', () => resolve())))));
  const ready = await Promise.all(readers.map((next) => next()));
  assert.ok(ready.every((l) => l === 'ready'), `all ready: ${ready.join(' | ')}`);
  return {
    async round(environment: string): Promise<RaceResult[]> {
      const startAt = Date.now() + 300;
      for (const c of children) c.stdin.write(`${environment} ${startAt}\n`);
      return (await Promise.all(readers.map((next) => next()))).map((l) => JSON.parse(l) as RaceResult);
    },
    async close(): Promise<void> {
      for (const c of children) c.stdin.end();
      const timer = setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid);
      }, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

test('8 processes race for the same lock on one SQLite file: exactly one wins, 5 times', async () => {
  const file = path.join(tmp(), 'state.db');
  const store = await openStore({ path: file }); // created and migrated up front
  const locks = new Locks(store);
  const race = await racers(file, 8, 'open-first');
  try {
    for (let round = 0; round < 5; round++) {
      const env = `race-${round}`;
      const results = await race.round(env);
      assert.equal(results.filter((r) => r.error !== undefined), [], 'no process failed');
      const winners = results.filter((r) => r.won);
      assert.is(winners.length, 1, `round ${round}: exactly one winner`);
      const holder = await locks.get('api', env);
      assert.is(holder?.owner.pid, winners[0]!.pid, 'the stored holder is the winner');
      for (const r of results.filter((x) => !x.won)) assert.is(r.holderPid, winners[0]!.pid, 'losers were told who holds it');
    }
  } finally {
    await race.close();
  }
  await store.close();
});

test('8 processes create, migrate and lock a brand-new file at the same moment: all open, one wins', async () => {
  const file = path.join(tmp(), 'fresh', 'state.db');
  const race = await racers(file, 8, 'open-after-go');
  let results: RaceResult[];
  try {
    results = await race.round('production');
  } finally {
    await race.close();
  }
  assert.equal(results.filter((r) => r.error !== undefined), [], 'no process failed');
  assert.is(results.filter((r) => r.won).length, 1);
  const store = await openStore({ path: file });
  assert.equal(await appliedMigrations(store.db), ['0001_initial']);
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
  assert.is(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
  await store.close();
});

test.run();
