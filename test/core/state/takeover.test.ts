/**
 * Locks with real deployer processes on a real store (SQLite file and PostgreSQL): a deployer killed
 * with SIGKILL leaves a lock that expires and is then taken over, with a warning naming the dead owner;
 * `waitLock` queues behind a live holder and gives up after its timeout naming the holder.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { FraisierError } from '../../../core/errors.js';
import type { LogEntry } from '../../../core/log.js';
import { Locks } from '../../../core/state/lock.js';
import { openStore } from '../../../core/state/store.js';
import { each } from '../../support/backends.js';
import { fakeDeployer } from '../../support/fake-deploy.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const TTL = 3000; // renewed every 1000 ms by the Deployer

interface Child {
  proc: ChildProcessWithoutNullStreams;
  /** Resolves with the next stdout line. */
  line(): Promise<string>;
  exited: Promise<number | null>;
}

function child(location: string, environment: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'deployer-child.ts'), location, environment, String(TTL)], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let buf = '';
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  proc.stderr.on('data', (d) => process.stderr.write(d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  void exited.then(() => {
    for (const w of waiters.splice(0)) w('(exited)');
  });
  return { proc, line: () => new Promise((r) => (lines.length ? r(lines.shift()!) : waiters.push(r))), exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const me = `${os.userInfo().username}@${os.hostname()}`;

each('a deployer killed with SIGKILL: its lock is renewed while it lives, expires, and is taken over with a warning naming it', async (b) => {
  const location = await b.fresh();
  const store = await openStore(b.options(location));
  const locks = new Locks(store);
  const dead = child(location, 'production');
  try {
    assert.is(await dead.line(), 'reached');
    const first = await locks.get('api', 'production');
    assert.is(first?.owner.pid, dead.proc.pid);
    assert.is(first?.reason, 'child deploy');
    // alive: renewed past its first expiry
    await sleep(TTL + 1000);
    const renewed = await locks.get('api', 'production');
    assert.is(renewed?.owner.pid, dead.proc.pid, 'still held by the live deployer after one TTL');
    assert.ok(renewed!.expiresAt > first!.expiresAt, 'the expiry moved forward');
    assert.ok(renewed!.expiresAt > Date.now(), 'not expired while its deployer lives');

    // without waiting: refused at once, naming the holder
    const log: LogEntry[] = [];
    const refused = fakeDeployer({ store, environment: 'production', sinks: [(e) => void log.push(e)], lockTtlMs: TTL });
    try {
      await refused.deployer.deploy({ version: 'v2' });
      assert.unreachable('expected E_LOCKED');
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_LOCKED');
      assert.match((e as Error).message, `locked by ${me}:${dead.proc.pid}`);
    }

    dead.proc.kill('SIGKILL');
    await dead.exited;
    const killedAt = Date.now();
    // the next deployer waits for the dead lock to expire, takes it over and says from whom
    const next = fakeDeployer({ store, environment: 'production', sinks: [(e) => void log.push(e)], lockTtlMs: TTL, lockPollMs: 200 });
    const result = await next.deployer.deploy({ version: 'v2', waitLock: '20s' });
    assert.is(result.status, 'succeeded');
    assert.ok(Date.now() - killedAt < TTL + 5000, 'taken over soon after expiry');
    const lines = log.map((e) => `${e.level}: ${e.message}`);
    assert.ok(
      lines.some((l) => l.startsWith(`info: Waiting for the lock of api/production: held by ${me}:${dead.proc.pid} (child deploy)`)),
      lines.join('\n'),
    );
    assert.ok(lines.includes(`warn: took over an expired lock from ${me}:${dead.proc.pid} (its deployer stopped without releasing it)`), lines.join('\n'));
    const history = await store.history({ fraise: 'api' });
    assert.equal(
      history.map((d) => [d.toVersion, d.status, d.error]),
      [
        ['v2', 'succeeded', null],
        ['v-child', 'failed', 'interrupted'],
      ],
    );
    assert.is(await locks.get('api', 'production'), undefined, 'released at the end');
  } finally {
    if (dead.proc.exitCode === null) dead.proc.kill('SIGKILL');
    await store.close();
  }
});

each('waitLock: gives up after its timeout naming the live holder; queues and then deploys once the holder finishes', async (b) => {
  const location = await b.fresh();
  const store = await openStore(b.options(location));
  const holder = child(location, 'staging');
  try {
    assert.is(await holder.line(), 'reached');
    const log: LogEntry[] = [];
    const sinks = [(e: LogEntry) => void log.push(e)];
    const t0 = Date.now();
    try {
      await fakeDeployer({ store, environment: 'staging', sinks, lockPollMs: 200 }).deployer.deploy({ version: 'v3', waitLock: 1500 });
      assert.unreachable('expected E_LOCKED');
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_LOCKED');
      const m = /^gave up after waiting (\d+\.\d) s for the lock: fraise api\/staging is locked by /.exec((e as Error).message);
      assert.ok(m, (e as Error).message);
      assert.ok(Number(m![1]) >= 1.5 && Number(m![1]) < 15, `waited about the timeout: ${(e as Error).message}`);
      assert.match((e as Error).message, `${me}:${holder.proc.pid}`);
      assert.match((e as Error).message, ': child deploy');
    }
    assert.ok(Date.now() - t0 >= 1500, 'waited the whole timeout');
    assert.is(log.filter((e) => e.message.startsWith('Waiting for the lock')).length, 1, 'said once whom it waits for');

    // queue behind the holder, then let it finish: the waiting deployment runs next
    const queued = fakeDeployer({ store, environment: 'staging', sinks, lockPollMs: 200 }).deployer.deploy({ version: 'v3', waitLock: '30s' });
    await sleep(600);
    holder.proc.stdin.write('finish\n');
    const childResult = JSON.parse(await holder.line()) as { status: string };
    assert.is(childResult.status, 'succeeded');
    const result = await queued;
    assert.is(result.status, 'succeeded');
    assert.equal(
      (await store.history({ fraise: 'api' })).map((d) => [d.toVersion, d.status]),
      [
        ['v3', 'succeeded'],
        ['v-child', 'succeeded'],
      ],
    );
    assert.ok(!log.some((e) => e.message.includes('took over')), 'a released lock is not a takeover');
  } finally {
    if (holder.proc.exitCode === null) holder.proc.kill('SIGKILL');
    await store.close();
  }
});

test.run();
