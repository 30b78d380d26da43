/**
 * Fault: the disk is full on one host (a small tmpfs over /srv/app inside its mount namespace). The error
 * says so, naming the host and the path (not git's "could not set remote.origin.url" and a hint about
 * pushing), and every host ends on a working release.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../../lab/lab.js';
import { allHosts, fraisier, lab, labYaml, resetHosts, workspace } from '../helpers.js';
import { assertRecovered, faultLine, fillDisk, restoreDisk } from './host-faults.js';

let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(labYaml(env));
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

test.after.each(async () => {
  for (const h of ['h1', 'h2']) await restoreDisk(env, h).catch(() => {});
});

test('disk full on h2: its prepare fails with "no space left on device on h2", h1 is rolled back, a re-run succeeds', async () => {
  const t0 = performance.now();
  await fillDisk(env, 'h2');
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /error\[E_COMMAND\] no space left on device on h2 under \/srv\/app\S* while preparing release v1\.1\.0/);
  assert.not.match(r.out, 'was it pushed');
  assert.match(r.out, /h1\s+rolled_back/);
  assert.match(r.out, /h3\s+untouched/);
  const { consistent, lock } = await assertRecovered(env, ws, ['v1.0.0', 'v1.0.0', 'v1.0.0'], 'rolled_back');
  await restoreDisk(env, 'h2');
  const again = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(again.code, 0, again.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  faultLine('disk full on one host (h2, prepare)', 'rolled_back, "no space left on device on h2"; re-run ok', consistent, lock, t0);
});

test('disk full on h1 while the ref is fetched there: the error names the disk, nothing changes on any host', async () => {
  const t0 = performance.now();
  await fillDisk(env, 'h1');
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(r.code, 1, r.out);
  // the tag is resolved from the refs h1's preflight listed (read-only); h1's prepare then fetches it
  assert.match(r.out, /no space left on device on h1 under \/srv\/app\S* while preparing release v1\.2\.0/);
  assert.not.match(r.out, 'was it pushed');
  assert.not.match(r.out, 'remote.origin.url');
  const { consistent, lock } = await assertRecovered(env, ws, ['v1.1.0', 'v1.1.0', 'v1.1.0'], 'failed');
  await restoreDisk(env, 'h1');
  const again = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(again.code, 0, again.out);
  faultLine('disk full on one host (h1, git fetch)', 'failed before any change, "no space left on device on h1"; re-run ok', consistent, lock, t0);
});

test.run();
