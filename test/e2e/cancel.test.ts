/**
 * `fraisier cancel` from a second process while a rolling deployment waits between batches: the
 * deployer sees the request with its lock renewal (a 3 s lock TTL: renewed every second), rolls the
 * first host back, releases the lock, and the history says who cancelled. The same over a PostgreSQL
 * store from another working directory. A deployer killed with SIGKILL: `cancel` says it is gone and
 * offers `unlock`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import type { LabEnv } from '../lab/lab.js';
import { PG_PASSWORD, freshDatabase } from '../support/postgres.js';
import { allHosts, bin, fraisier, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
const TTL = { FRAISIER_LOCK_TTL: '3s' };

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  const first = workspace(labYaml(env, { batch: 3 }));
  const r = await fraisier(first, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

/** A rolling deploy of v1.1.0 that waits 60 s after its first host; resolves once it waits. */
function slowDeploy(ws: string): { child: ChildProcess; waiting: Promise<void>; done: Promise<{ code: number | null; out: string }> } {
  const child = spawn(process.execPath, [bin, 'deploy', 'app', 'production', '--version', 'v1.1.0'], {
    cwd: ws,
    env: { ...process.env, ...TTL, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let onWaiting!: () => void;
  const waiting = new Promise<void>((r) => (onWaiting = r));
  const onData = (d: Buffer) => {
    out += d;
    if (out.includes('Waiting')) onWaiting();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on('close', (code) => resolve({ code, out })));
  return { child, waiting: Promise.race([waiting, done.then((d) => Promise.reject(new Error(`deploy ended before waiting: ${d.out}`)))]), done };
}

const slowYaml = (state: string) => state + labYaml(env).replace('batch_size: 1', 'batch_size: 1\n          wait_between_batches: 60');

for (const store of ['sqlite', 'postgres'] as const) {
  test(`[${store}] cancel from a second process mid-batch: back on v1.0.0, lock released, history says who cancelled`, async () => {
    const state = store === 'postgres' ? `state:\n  url: ${await freshDatabase('cancel')}\n` : '';
    const ws = workspace(slowYaml(state));
    // sqlite: the same working directory (the same state file); postgres: another directory, the same database
    const other = store === 'postgres' ? workspace(slowYaml(state)) : ws;
    const d = slowDeploy(ws);
    await d.waiting;

    const active = await fraisier(other, 'status-all');
    assert.is(active.code, 0, active.out);
    assert.match(active.stdout, 'Active deployments:');
    assert.match(active.stdout, /app\/production: deploy v1\.0\.0 → v1\.1\.0 by \S+@\S+:\d+, running for/);
    assert.match(active.stdout, 'step: waiting');
    assert.match(active.stdout, 'done: h1 (succeeded)');
    assert.match(active.stdout, 'left: h2, h3');

    const c = await run(process.execPath, [bin, 'cancel', 'app', 'production', '--reason', 'wrong tag'], { cwd: other });
    assert.is(c.code, 0, c.out);
    assert.match(c.stdout, /Asked the deployment of app\/production held by \S+ \(now: waiting[^)]*\) to stop: cancelled by \S+@\S+:\d+ \(wrong tag\)/);

    const { code, out } = await d.done;
    assert.is(code, 1, `a cancelled deployment exits 1: ${out}`);
    assert.match(out, /Cancelled by \S+@\S+:\d+ \(wrong tag\): stopping after the current step/);
    assert.match(out, 'rolled back to v1.0.0');
    assert.equal(
      (await allHosts(env)).map((h) => h.serving),
      ['v1.0.0', 'v1.0.0', 'v1.0.0'],
    );
    const all = JSON.parse((await fraisier(other, 'status-all', '--json')).stdout);
    assert.is(all[0].lock, null, 'lock released');
    const hist = JSON.parse((await fraisier(other, 'history', '--json', '--limit', '1')).stdout);
    assert.is(hist[0].status, 'cancelled');
    assert.match(hist[0].error, /^cancelled by \S+@\S+:\d+ \(wrong tag\)$/);
    assert.match((await fraisier(other, 'history', '--limit', '1')).stdout, /cancelled by \S+@\S+:\d+ \(wrong tag\)/);

    const again = await fraisier(other, 'cancel', 'app', 'production');
    assert.is(again.code, 1, 'nothing runs now: exit 1');
    assert.match(again.stdout, 'Nothing to cancel: no deployment of app/production is running');
    assert.not.match(out + c.out, PG_PASSWORD, 'the database password is never printed');
  });
}

test('a deployer killed with SIGKILL: cancel says it is gone, records nothing, and offers unlock', async () => {
  const ws = workspace(slowYaml(''));
  const d = slowDeploy(ws);
  await d.waiting;
  d.child.kill('SIGKILL');
  await d.done;
  const c = await fraisier(ws, 'cancel', 'app', 'production');
  assert.is(c.code, 3, c.out);
  assert.match(c.stderr, /held by \S+:\d+ is not running any more: its deployer \(pid \d+\) is no longer running on this machine/);
  assert.match(c.stderr, 'fraisier unlock app production');
  const j = JSON.parse((await fraisier(ws, 'cancel', 'app', 'production', '--json')).stdout);
  assert.is(j.outcome, 'holder_dead');
  assert.is(j.lock.cancel, undefined, 'no request recorded');
  const u = await fraisier(ws, 'unlock', 'app', 'production');
  assert.is(u.code, 0, u.out);
  // put the lab back on v1.0.0 for whoever runs next (all hosts at once)
  const back = await fraisier(workspace(labYaml(env, { batch: 3 })), 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(back.code, 0, back.out);
});

test.run();
