import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appliedMigrations, migrations } from '../../../core/state/migrations.js';
import { openStore } from '../../../core/state/store.js';
import type { StateStore } from '../../../core/state/store.js';
import { LiveHolderError, LockHeldError, LockLostError, Locks, ownerString, startRenewal } from '../../../core/state/lock.js';
import type { LockInfo, LockOwner } from '../../../core/state/lock.js';
import { each, postgresBackend, type Backend } from '../../support/backends.js';

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

async function setup(b: Backend, ttlMs = 1000): Promise<{ store: StateStore; locks: Locks; clock: { t: number } }> {
  const clock = { t: T0 };
  // the fake clock stands in for the database's: lock decisions are made by the database's clock only
  const store = await b.open({ now: () => clock.t, databaseClock: () => clock.t });
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

each('acquire, then a second acquire throws LockHeldError naming the holder', async (backend) => {
  const { store, locks } = await setup(backend);
  const h = await locks.acquire('api', 'production', alice, 'deploy v2');
  const expected: LockInfo = { fraise: 'api', environment: 'production', owner: alice, reason: 'deploy v2', acquiredAt: T0, expiresAt: T0 + 1000 };
  assert.equal(h.info, expected);
  assert.is(h.tookOverFrom, null);
  const err = await rejects(locks.acquire('api', 'production', bob), LockHeldError);
  assert.equal(err.holder, expected);
  assert.is(err.message, 'fraise api/production is locked by alice@box:1234 since 2026-03-01T12:00:00.000Z (expires 2026-03-01T12:00:01.000Z): deploy v2');
  // the same owner is not re-entrant either
  await rejects(locks.acquire('api', 'production', alice), LockHeldError);
  // other environments and fraises are independent
  await locks.acquire('api', 'staging', bob);
  await locks.acquire('worker', 'production', bob);
  assert.equal(
    (await locks.list()).map((l) => `${l.fraise}/${l.environment}:${l.owner.user}`),
    ['api/production:alice', 'api/staging:bob', 'worker/production:bob'],
  );
  assert.equal(await locks.get('api', 'production'), expected);
  assert.is(await locks.get('api', 'nope'), undefined);
  await store.close();
});

each('a lock is held until expiresAt, then taken over with tookOverFrom set', async (backend) => {
  const { store, locks, clock } = await setup(backend);
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

each('the same owner taking over its own expired lock still invalidates the old handle', async (backend) => {
  const { store, locks, clock } = await setup(backend);
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

each('forceRelease removes whoever holds it', async (backend) => {
  const { store, locks } = await setup(backend);
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

each("a deployer whose own clock runs 120 s ahead cannot take over a live lock: expiry is the database's clock", async (backend) => {
  const location = await backend.fresh();
  const honest = await openStore(backend.options(location));
  const ahead = await openStore(backend.options(location, () => Date.now() + 120_000));
  const behind = await openStore(backend.options(location, () => Date.now() - 120_000));
  const a = await new Locks(honest, { ttlMs: 60_000 }).acquire('api', 'production', alice, 'deploy v2');
  const err = await rejects(new Locks(ahead, { ttlMs: 60_000 }).acquire('api', 'production', bob, 'deploy v3'), LockHeldError);
  assert.equal(err.holder.owner, alice, 'the skewed deployer is told who holds it');
  // the skewed deployer's own lock is dated by the database too: the honest one cannot take it early
  await a.release();
  const b = await new Locks(behind, { ttlMs: 60_000 }).acquire('api', 'production', bob, 'deploy v3');
  const dbNow = await honest.databaseNow();
  assert.ok(Math.abs(b.info.acquiredAt - dbNow) < 60_000, "acquiredAt is the database's time, not the client's");
  await rejects(new Locks(honest, { ttlMs: 60_000 }).acquire('api', 'production', alice), LockHeldError);
  await b.renew();
  assert.ok(b.info.expiresAt > dbNow + 50_000 && b.info.expiresAt < dbNow + 120_000, "renewal moves the expiry by the database's clock");
  await b.release();
  for (const s of [honest, ahead, behind]) await s.close();
});

each('unlock refuses a live holder without force, removes it with force and says it was live', async (backend) => {
  const { store, locks, clock } = await setup(backend, 60_000);
  // a holder on another machine whose lock is not expired: renewed recently
  await locks.acquire('api', 'production', bob, 'deploy v2');
  const err = await rejects(locks.unlock('api', 'production'), LiveHolderError);
  assert.match(err.message, 'bob@laptop:42');
  assert.match(err.message, 'renewed recently');
  assert.equal((await locks.get('api', 'production'))?.owner, bob, 'nothing removed');
  const forced = await locks.unlock('api', 'production', { force: true });
  assert.equal(forced?.owner, bob);
  assert.match(forced?.live ?? '', 'renewed recently');
  assert.is(await locks.get('api', 'production'), undefined);
  // this very process holding it on this machine: alive whatever the expiry
  const me: LockOwner = { user: 'me', host: os.hostname(), pid: process.pid };
  await locks.acquire('api', 'production', me);
  clock.t += 120_000;
  assert.match((await rejects(locks.unlock('api', 'production'), LiveHolderError)).message, `pid ${process.pid}`);
  await locks.unlock('api', 'production', { force: true });
  // a dead pid on this machine, lock not expired: not alive, unlocked without force
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  await locks.acquire('api', 'production', { user: 'me', host: os.hostname(), pid: child.pid! });
  const removed = await locks.unlock('api', 'production');
  assert.is(removed?.live, null);
  // an expired lock of another machine: not alive
  await locks.acquire('api', 'production', bob);
  clock.t += 120_000;
  assert.is((await locks.unlock('api', 'production'))?.live, null);
  assert.is(await locks.unlock('api', 'production'), undefined, 'nothing to unlock');
  await store.close();
});

each('startRenewal keeps pushing the expiry and reports a lost lock', async (backend) => {
  const { store, locks, clock } = await setup(backend, 1000);
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

each("reapInterrupted marks the crashed holder's running deployment failed, not the new one", async (backend) => {
  const { store, locks, clock } = await setup(backend, 1000);
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
  assert.equal(
    d?.events.map((e) => e.level),
    ['warn'],
  );
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
  /** the pid of the expired holder the winner took over from, or null */
  tookOverPid?: number | null;
  error?: string;
}

/**
 * Starts `n` helper processes on a store (a SQLite file or a PostgreSQL URL); `round(environment, k)`
 * makes the first `k` of them (default all) try to take api/<environment> at the same moment (a start
 * time 300 ms ahead, after every process said it is ready) and returns their results.
 */
async function racers(location: string, n: number, when: 'open-first' | 'open-after-go') {
  const children = Array.from({ length: n }, () =>
    spawn(process.execPath, ['--import', 'tsx', path.join(here, 'lock-race-child.ts'), location, 'api', when], {
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
  assert.ok(
    ready.every((l) => l === 'ready'),
    `all ready: ${ready.join(' | ')}`,
  );
  return {
    async round(environment: string, k = n): Promise<RaceResult[]> {
      const startAt = Date.now() + 300;
      for (const c of children.slice(0, k)) c.stdin.write(`${environment} ${startAt}\n`);
      return (await Promise.all(readers.slice(0, k).map((next) => next()))).map((l) => JSON.parse(l) as RaceResult);
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

each('20 rounds of 2 to 8 processes racing for one lock, free or expired: exactly one winner each time', async (backend) => {
  const location = await backend.fresh();
  const store = await openStore(backend.options(location)); // created and migrated up front
  const locks = new Locks(store);
  // a store whose database clock runs two minutes late: the locks it takes are already expired, as a crashed deployer leaves them
  const past = await openStore(backend.options(location, undefined, () => Date.now() - 120_000));
  const dead: LockOwner = { user: 'ghost', host: 'gone', pid: 999_999 };
  const race = await racers(location, 8, 'open-first');
  try {
    for (let round = 0; round < 20; round++) {
      const k = 2 + (round % 7); // 2..8 processes
      const env = `race-${round}`;
      const expired = round % 2 === 1;
      if (expired) await new Locks(past, { ttlMs: 1000 }).acquire('api', env, dead, 'crashed');
      const results = await race.round(env, k);
      const what = `round ${round} (${k} processes, ${expired ? 'expired lock' : 'free lock'})`;
      assert.is(results.length, k);
      assert.equal(
        results.filter((r) => r.error !== undefined),
        [],
        `${what}: no process failed`,
      );
      const winners = results.filter((r) => r.won);
      assert.is(winners.length, 1, `${what}: exactly one winner`);
      const holder = await locks.get('api', env);
      assert.is(holder?.owner.pid, winners[0]!.pid, `${what}: the stored holder is the winner`);
      assert.is(winners[0]!.tookOverPid, expired ? dead.pid : null, `${what}: the winner names whom it took over from`);
      for (const r of results.filter((x) => !x.won)) assert.is(r.holderPid, winners[0]!.pid, `${what}: losers were told who holds it`);
    }
  } finally {
    await race.close();
  }
  await past.close();
  await store.close();
});

test('[sqlite] 8 processes create, migrate and lock a brand-new file at the same moment: all open, one wins', async () => {
  const file = path.join(tmp(), 'fresh', 'state.db');
  const race = await racers(file, 8, 'open-after-go');
  let results: RaceResult[];
  try {
    results = await race.round('production');
  } finally {
    await race.close();
  }
  assert.equal(
    results.filter((r) => r.error !== undefined),
    [],
    'no process failed',
  );
  assert.is(results.filter((r) => r.won).length, 1);
  const store = await openStore({ path: file });
  assert.equal(await appliedMigrations(store.db), Object.keys(migrations('sqlite')).sort());
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
  assert.is(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
  await store.close();
});

test('[postgres] 8 processes migrate and lock a brand-new database at the same moment: all open, one wins', async () => {
  const url = await postgresBackend.fresh();
  const race = await racers(url, 8, 'open-after-go');
  let results: RaceResult[];
  try {
    results = await race.round('production');
  } finally {
    await race.close();
  }
  assert.equal(
    results.filter((r) => r.error !== undefined),
    [],
    'no process failed',
  );
  assert.is(results.filter((r) => r.won).length, 1);
  const store = await openStore({ url });
  assert.equal(await appliedMigrations(store.db), Object.keys(migrations('sqlite')).sort());
  await store.close();
});

test.run();
