/**
 * Fault injection: the lock is lost to `unlock --force` mid-deploy. Deployer A waits 60 s between batches
 * (h1 already on v1.1.0); `unlock` without --force refuses (A's pid is alive on this machine);
 * `unlock --force` removes it with a warning; deployer B then deploys v1.2.0 to every host. A must touch
 * nothing afterwards: no rollback of h1, no further batch; the hosts keep B's release and B's app
 * processes (same supervisor pids); A records `lock_lost` and exits 3; a re-run succeeds.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../../lab/lab.js';
import { lab, labYaml, resetHosts, workspace } from '../helpers.js';
import { appPids, background, cli, consistentOn, faultLine, history, lockState } from './deployer-support.js';

let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(labYaml(env, { batch: 3 }));
  const r = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.0.0']);
  assert.is(r.code, 0, r.out);
  // A reads fraises.yaml: batches of one host with 60 s between them, so it is caught waiting after h1.
  // B and the re-run read fast.yaml (same directory, so the same state file): all hosts at once.
  writeFileSync(join(ws, 'fast.yaml'), labYaml(env, { batch: 3 }));
  writeFileSync(join(ws, 'fraises.yaml'), labYaml(env, { batch: 1 }).replace('batch_size: 1', 'batch_size: 1\n          wait_between_batches: 60'));
});

test('lock lost to unlock --force mid-deploy: the old deployer touches no host afterwards and records lock_lost', async () => {
  const started = performance.now();
  const a = background(ws, ['deploy', 'app', 'production', '--version', 'v1.1.0']);
  await a.waitFor(/Waiting/);

  const refused = await cli(ws, ['unlock', 'app', 'production']);
  assert.is(refused.code, 3, refused.out);
  assert.match(refused.out, `pid ${a.child.pid}) is still running on this machine`);
  assert.match(refused.out, '--force');
  assert.is((await lockState(ws)).pid, a.child.pid, 'nothing removed without --force');

  const forced = await cli(ws, ['unlock', 'app', 'production', '--force']);
  assert.is(forced.code, 0, forced.out);
  assert.match(forced.stderr, 'warn: unlocked a live deployment', forced.out);

  // B takes the free lock and deploys v1.2.0 everywhere (h1 from A's v1.1.0)
  const b = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.2.0'], { FRAISIER_CONFIG: 'fast.yaml' });
  assert.is(b.code, 0, b.out);
  const pidsAfterB = await appPids(env);

  const { code } = await a.exited;
  const out = a.out();
  assert.is(code, 3, out);
  assert.match(out, 'lost the deployment lock');
  assert.not.match(out, 'Rolling back', 'A rolled nothing back');
  assert.not.match(out, /\[h[23]\] switched/, 'A never reached h2 or h3');
  assert.ok(await consistentOn(env, 'v1.2.0'), "every host keeps B's release");
  assert.equal(await appPids(env), pidsAfterB, 'no app was restarted after B finished');

  const rows = await history(ws);
  const rowA = rows.find((r) => r.toVersion === 'v1.1.0')!;
  const rowB = rows.find((r) => r.toVersion === 'v1.2.0')!;
  assert.is(rowA.status, 'lock_lost', "A's history row is terminal and truthful");
  assert.is(rowB.status, 'succeeded');
  const lock = await lockState(ws);
  assert.is(lock.text, 'released');
  faultLine(
    'lock lost to unlock --force mid-deploy',
    'old deployer stopped (lock_lost, exit 3), touched nothing; new deployer succeeded',
    await consistentOn(env, 'v1.2.0'),
    lock.text,
    started,
  );

  const again = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.1.0'], { FRAISIER_CONFIG: 'fast.yaml' });
  assert.is(again.code, 0, again.out);
  assert.ok(await consistentOn(env, 'v1.1.0'), 're-run: every host on v1.1.0');
});

test.run();
