/**
 * The worker's pass over the queue with a fake clock and a recording app (no hosts): the due item runs
 * with the release resolved when it was queued, through `DeployApp.deploy` (so the lock and history of a
 * manual deploy), signals left to the worker; an item outside its deploy window stays queued with a note
 * until the window opens; `--force` items ignore the windows; a vanished environment fails the item;
 * a dry run claims nothing.
 */
import { spawnSync } from 'node:child_process';
import { hostname, userInfo } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DeployApp } from '../../../core/app.js';
import type { CommandIo } from '../../../core/commands/types.js';
import type { DeployOptions } from '../../../core/deployer.js';
import type { RuntimeOptions } from '../../../core/app.js';
import { formatQueue, workerPass } from '../../../core/scheduler.js';
import { Queue, type NewQueueItem } from '../../../core/state/queue.js';
import { openStore } from '../../../core/state/store.js';
import type { DeployWindowPolicy } from '../../../core/windows.js';

const at = (iso: string) => Date.parse(iso);
// office hours in Paris; Friday 27 March 2026 17:30 Paris is 16:30Z, the next opening Monday 07:00Z (summer time)
const OFFICE: DeployWindowPolicy = { windows: [{ days: [1, 2, 3, 4, 5], start: 540, end: 1020, timezone: 'Europe/Paris' }], freeze: [] };

function recordingApp(windows?: DeployWindowPolicy) {
  const calls: { env: string; options: DeployOptions; runtime: RuntimeOptions }[] = [];
  const app = {
    name: 'api',
    environments: ['production'],
    deployWindows: () => windows,
    async deploy(env: string, options: DeployOptions, runtime: RuntimeOptions) {
      calls.push({ env, options, runtime });
      const id = await runtime.store!.recordDeployment({
        fraise: 'api',
        environment: env,
        kind: 'deploy',
        strategy: 'rolling',
        fromVersion: null,
        toVersion: options.version!,
        user: 'w',
        host: 'h',
      });
      await runtime.store!.finishDeployment(id, { status: 'succeeded' });
      return { id, status: 'succeeded', error: null };
    },
  };
  return { app: app as unknown as DeployApp, calls };
}

function io(): CommandIo & { text: () => string } {
  let out = '';
  return { json: false, out: (t) => (out += t), err: (t) => (out += t), sinks: [], text: () => out };
}

const item = (o: Partial<NewQueueItem> = {}): NewQueueItem => ({
  fraise: 'api',
  environment: 'production',
  version: 'abc1234',
  ref: 'main',
  flags: {},
  requestedBy: 'alice@laptop',
  dueAt: at('2026-03-27T16:00:00Z'),
  ...o,
});

test('a due item outside its window waits with a note; it runs once the window opens, with the queued release', async () => {
  let now = at('2026-03-27T16:30:00Z');
  const store = await openStore({ path: ':memory:', now: () => now });
  const q = new Queue(store);
  const id = await q.add(item());
  const notYet = await q.add(item({ dueAt: at('2026-03-30T09:00:00Z'), version: 'later' }));
  const { app, calls } = recordingApp(OFFICE);
  const w = io();
  const opts = { waitLockMs: 5000, workerId: 'w@h:1', stop: () => false, now: () => now, appOf: async () => app };

  const first = await workerPass(undefined, store, w, opts);
  assert.equal([first.ran, first.waiting], [[], 1]);
  assert.is(calls.length, 0);
  assert.is((await q.get(id))?.status, 'queued');
  assert.is((await q.get(id))?.note, 'waits: outside every deploy window; runs from 2026-03-30 09:00 Europe/Paris');
  assert.match(w.text(), `#${id} api/production abc1234: waits: outside every deploy window`);
  // a second look prints nothing new
  const before = w.text();
  await workerPass(undefined, store, w, opts);
  assert.is(w.text(), before);

  now = at('2026-03-30T07:00:00Z'); // Monday 09:00 Paris
  const second = await workerPass(undefined, store, w, opts);
  assert.equal(second.ran, [{ id, status: 'succeeded', deploymentId: 1 }]);
  assert.is(calls.length, 1);
  assert.equal(calls[0]!.options, { version: 'abc1234', force: false, waitLock: 5000, reason: `scheduled deploy #${id} (queued by alice@laptop)` });
  assert.is(calls[0]!.runtime.handleSignals, false, 'the worker, not the deployer, handles SIGTERM');
  const done = await q.get(id);
  assert.equal([done?.status, done?.deploymentId, done?.claimedBy, done?.note], ['succeeded', 1, 'w@h:1', null]);
  assert.is((await q.get(notYet))?.status, 'queued', 'not due yet');
  // the history row of the run says which queue item it was
  const run = await store.deployment(1);
  assert.equal(
    run?.events.map((e) => e.message),
    [`queue item #${id}, queued by alice@laptop, run by worker w@h:1`],
  );
  await store.close();
});

test('--force items ignore the windows; a vanished environment fails its item; a dry run claims nothing', async () => {
  const now = at('2026-03-28T12:00:00Z'); // Saturday
  const store = await openStore({ path: ':memory:', now: () => now });
  const q = new Queue(store);
  const forced = await q.add(item({ flags: { force: true, waitLockMs: 1000 } }));
  const gone = await q.add(item({ environment: 'staging' }));
  const { app, calls } = recordingApp(OFFICE);
  const w = io();
  const opts = { waitLockMs: 5000, workerId: 'w', stop: () => false, now: () => now, appOf: async () => app };

  const dry = await workerPass(undefined, store, w, { ...opts, dryRun: true });
  assert.equal(dry.wouldRun, [forced, gone]);
  assert.is(calls.length, 0);
  assert.equal(
    (await q.list()).map((i) => i.status),
    ['queued', 'queued'],
  );
  assert.match(w.text(), `Would run #${gone}: api/staging abc1234 (it would fail: fraise api has no environment staging any more) (dry run)`);

  const pass = await workerPass(undefined, store, w, opts);
  assert.equal(pass.ran, [
    { id: forced, status: 'succeeded', deploymentId: 1 },
    { id: gone, status: 'failed', deploymentId: null },
  ]);
  assert.equal([calls[0]!.options.force, calls[0]!.options.waitLock], [true, 1000]);
  assert.equal([(await q.get(gone))?.status, (await q.get(gone))?.error], ['failed', 'fraise api has no environment staging any more']);
  await store.close();
});

test('stop(): no item is claimed once the worker is stopping', async () => {
  const store = await openStore({ path: ':memory:' });
  const q = new Queue(store);
  await q.add(item({ dueAt: 0 }));
  const { app, calls } = recordingApp();
  const pass = await workerPass(undefined, store, io(), { waitLockMs: 0, workerId: 'w', stop: () => true, appOf: async () => app });
  assert.equal(pass.ran, []);
  assert.is(calls.length, 0);
  assert.equal(
    (await q.list()).map((i) => i.status),
    ['queued'],
  );
  await store.close();
});

test("an item left running by a worker of this machine that is gone is marked failed; a live or remote worker's item is left running", async () => {
  const store = await openStore({ path: ':memory:' });
  const q = new Queue(store);
  const dead = spawnSync('true').pid!; // a pid that has just exited
  const me = `${userInfo().username}@${hostname()}`;
  const gone = await q.add(item({ dueAt: 0, version: 'gone111' }));
  const live = await q.add(item({ dueAt: 0, version: 'live222' }));
  const remote = await q.add(item({ dueAt: 0, version: 'remote3' }));
  await q.claim(gone, `${me}:${dead}`);
  await q.claim(live, `${me}:${process.pid}`);
  await q.claim(remote, `bob@another-machine-${hostname()}:${dead}`);
  assert.match(formatQueue(await q.list(), 0), /no longer running: the next worker pass marks it failed/);
  const { app, calls } = recordingApp();
  const out = io();
  const pass = await workerPass(undefined, store, out, { waitLockMs: 0, workerId: 'w', stop: () => false, appOf: async () => app });
  assert.equal(pass.ran, []);
  assert.is(calls.length, 0);
  const byVersion = Object.fromEntries((await q.list({ all: true })).map((i) => [i.version, i]));
  assert.is(byVersion['gone111']!.status, 'failed');
  assert.match(byVersion['gone111']!.error!, `abandoned: worker ${me}:${dead} stopped before finishing it (pid ${dead} is no longer running)`);
  assert.match(out.text(), `#${gone} api/production gone111: abandoned`);
  assert.is(byVersion['live222']!.status, 'running');
  assert.is(byVersion['remote3']!.status, 'running');
  await store.close();
});

test.run();
