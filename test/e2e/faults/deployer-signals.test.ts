/**
 * Fault injection: the deployer is signalled mid-batch during a real rolling deploy on the lab.
 * - SIGTERM (systemd, CI runners, `timeout`) and SIGHUP (a closed terminal) get Ctrl-C's path: stop after
 *   the current step, roll back what was touched, record the outcome, release the lock, exit 128 + n.
 * - SIGKILL cannot be handled: the lock stays until `unlock` (the holder's pid is dead on this machine, so
 *   no --force is needed) or its expiry; the next deployment marks the killed one `failed: interrupted`;
 *   a host left on the failing release goes back to the last release known good, never to itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../../lab/lab.js';
import { allHosts, lab, labYaml, resetHosts, workspace } from '../helpers.js';
import { background, cli, consistentOn, faultLine, history, lockState } from './deployer-support.js';

let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(labYaml(env, { batch: 1 }));
  const r = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.0.0']);
  assert.is(r.code, 0, r.out);
});

for (const [sig, code] of [
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  test(`${sig} mid-batch: h1 and h2 rolled back to v1.0.0, history rolled_back, lock released, exit ${code}; a re-run succeeds`, async () => {
    const started = performance.now();
    const d = background(ws, ['deploy', 'app', 'production', '--version', 'v1.1.0']);
    await d.waitFor(/\[h2\] switched to v1\.1\.0/);
    d.child.kill(sig);
    const { code: exit } = await d.exited;
    const out = d.out();
    assert.is(exit, code, out);
    assert.match(out, `Interrupted (${sig})`);
    assert.match(out, 'rolled back to v1.0.0');
    const hosts = await allHosts(env);
    assert.equal(
      hosts.map((h) => h.serving),
      ['v1.0.0', 'v1.0.0', 'v1.0.0'],
      'every host serves the old release',
    );
    assert.equal(
      hosts.map((h) => h.current),
      ['v1.0.0', 'v1.0.0', 'v1.0.0'],
    );
    const lock = await lockState(ws);
    assert.is(lock.text, 'released');
    const [row] = await history(ws);
    assert.is(row!.status, 'rolled_back', 'the history row is terminal and truthful');
    assert.match(row!.error ?? '', `interrupted (${sig})`);
    faultLine(`${sig} of the deployer mid-batch`, `rolled back h1, h2 to v1.0.0, exit ${exit}`, await consistentOn(env, 'v1.0.0'), lock.text, started);

    const again = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.1.0']);
    assert.is(again.code, 0, again.out);
    assert.ok(await consistentOn(env, 'v1.1.0'), 're-run: every host on v1.1.0');
    const back = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.0.0']);
    assert.is(back.code, 0, back.out);
  });
}

test('SIGKILL mid-batch on a failing release: unlock without --force (holder dead), the run is marked interrupted, the re-run puts h1 back on v1.0.0, not on the broken release', async () => {
  const started = performance.now();
  const d = background(ws, ['deploy', 'app', 'production', '--version', 'v2.0.0-broken']);
  await d.waitFor(/\[h1\] Attempt \d: FAILED \(HTTP 500\)/);
  d.child.kill('SIGKILL');
  const { signal } = await d.exited;
  assert.is(signal, 'SIGKILL');
  const h1 = (await allHosts(env))[0]!;
  assert.is(h1.current, 'v2.0.0-broken', 'the killed deployer left h1 on the broken release');
  const held = await lockState(ws);
  assert.is(held.pid, d.child.pid, 'the dead deployer still holds the lock');
  assert.is((await history(ws))[0]!.status, 'running');

  // its pid is dead on this machine: unlock needs no --force
  const unlock = await cli(ws, ['unlock', 'app', 'production']);
  assert.is(unlock.code, 0, unlock.out);
  assert.not.match(unlock.out, 'warn:');
  const lock = await lockState(ws);
  assert.is(lock.text, 'released');

  // the same broken release again: h1 fails, and goes back to v1.0.0 (known good), not to v2.0.0-broken
  const rerun = await cli(ws, ['deploy', 'app', 'production', '--version', 'v2.0.0-broken']);
  assert.is(rerun.code, 1, rerun.out);
  assert.match(rerun.out, 'rolling back to v1.0.0, the last release that deployed successfully');
  assert.match(rerun.out, 'rolled back to v1.0.0');
  const hosts = await allHosts(env);
  assert.equal(
    hosts.map((h) => h.serving),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
    'every host serves a working release',
  );
  const [rolled, killed] = await history(ws);
  assert.is(rolled!.status, 'rolled_back');
  assert.is(killed!.status, 'failed', 'the killed run is terminal');
  assert.is(killed!.error, 'interrupted');
  faultLine(
    'SIGKILL of the deployer mid-batch',
    'h1 left on the broken release; lock freed by unlock (holder dead); re-run rolled h1 back to v1.0.0',
    await consistentOn(env, 'v1.0.0'),
    `${lock.text} (after unlock)`,
    started,
  );

  const again = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.1.0']);
  assert.is(again.code, 0, again.out);
  assert.ok(await consistentOn(env, 'v1.1.0'), 're-run: every host on v1.1.0');
});

test.run();
