/**
 * Fault: a host's network is cut (`ip link set eth0 down` in its namespace) while it activates, during a
 * real rolling deploy. The failure names the lost SSH connection (never an empty reason), the result
 * table never claims a release the host may not run, and every host ends on a working release.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import type { LabEnv } from '../../lab/lab.js';
import { allHosts, fraisier, lab, resetHosts, workspace } from '../helpers.js';
import { assertRecovered, background, clearMarkers, faultLine, setNetwork, slowActivateYaml, srvFile } from './host-faults.js';

let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  await clearMarkers(env);
  ws = workspace(slowActivateYaml(env));
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

test.after.each(async () => {
  await setNetwork('h2', 'up').catch(() => {});
  await clearMarkers(env);
});

test('network cut on h2 during its activation, restored while the deployer retries: h2 is rolled back too', async () => {
  const t0 = performance.now();
  writeFileSync(srvFile(env, 'h2', 'slow-activate'), '');
  const d = background(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  await d.waitForFile(srvFile(env, 'h2', 'activating'));
  await setNetwork('h2', 'down');
  await d.waitFor('lost the SSH connection to h2');
  await setNetwork('h2', 'up');
  const r = await d.done;
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /error\[E_UNREACHABLE\] lost the SSH connection to h2 during switch to v1\.1\.0 and restart: \S/);
  assert.not.match(r.out, /failed on h2: *\n/, 'never an empty reason');
  assert.match(r.out, /h2\s+rolled_back/);
  const { consistent, lock } = await assertRecovered(env, ws, ['v1.0.0', 'v1.0.0', 'v1.0.0'], 'rolled_back');
  const again = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(again.code, 0, again.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  faultLine('network cut on one host during activation, restored', 'rolled_back, h2 reconnected and rolled back; re-run ok', consistent, lock, t0);
});

test('network of h2 stays cut until the deployment ends: the table says unknown for h2, never a release', async () => {
  const t0 = performance.now();
  writeFileSync(srvFile(env, 'h2', 'slow-activate'), '');
  const d = background(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  await d.waitForFile(srvFile(env, 'h2', 'activating'));
  await setNetwork('h2', 'down');
  const r = await d.done;
  await setNetwork('h2', 'up');
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /lost the SSH connection to h2 during switch to v1\.2\.0 and restart: \S/);
  assert.match(r.out, /h2\s+rollback_failed\s+v1\.1\.0 → unknown/, 'h2 is reported unknown');
  assert.not.match(r.out, /h2\s+\S+\s+v1\.1\.0 → -/);
  assert.match(r.out, /h1\s+rolled_back/);
  const status = await fraisier(ws, 'status', 'app', 'production');
  assert.is(status.code, 0, status.out);
  // h2 finished its activation on its own while cut off: it runs the new release, healthy; the others were rolled back
  const hosts = await allHosts(env);
  assert.equal(
    hosts.map((h) => h.serving),
    ['v1.1.0', 'v1.2.0', 'v1.1.0'],
    'every host serves a working release',
  );
  const hist = JSON.parse((await fraisier(ws, 'history', '--json', '--limit', '1')).stdout);
  assert.is(hist[0].status, 'failed', 'not rolled_back: h2 could not be brought back');
  const all = JSON.parse((await fraisier(ws, 'status-all', '--json')).stdout);
  assert.is(all[0].lock, null, 'lock released');
  const again = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(again.code, 0, again.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  faultLine(
    'network cut on one host during activation, restored after the run',
    'failed, h2 reported unknown (it finished on v1.2.0); re-run ok',
    false,
    'released',
    t0,
  );
});

test.run();
