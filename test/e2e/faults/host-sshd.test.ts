/**
 * Fault: sshd dies on one host. `status` reports every host with its own result (issue 8, bug 4: h1 and
 * h3 were blamed for h2); a deploy that loses h2's sshd mid-activation names the lost connection, rolls
 * h2 back once sshd is back, and a re-run succeeds.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import type { LabEnv } from '../../lab/lab.js';
import { allHosts, fraisier, lab, resetHosts, workspace } from '../helpers.js';
import { assertRecovered, background, clearMarkers, faultLine, killSshd, slowActivateYaml, srvFile, startSshd } from './host-faults.js';

let env: LabEnv;
let ws: string;
let sshdDown = false;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  await clearMarkers(env);
  ws = workspace(slowActivateYaml(env));
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

test.after.each(async () => {
  if (sshdDown) await startSshd(env, 'h2');
  sshdDown = false;
  await clearMarkers(env);
});

test("status with h2's sshd down: one row per host with its own result, exit 1", async () => {
  const t0 = performance.now();
  await killSshd(env, 'h2');
  sshdDown = true;
  const s = await fraisier(ws, 'status', 'app', 'production');
  assert.is(s.code, 1, s.out);
  const row = (h: string) => s.stdout.split('\n').find((l) => l.trim().startsWith(`${h} `)) ?? '';
  assert.match(row('h1'), /h1\s+v1\.0\.0\s+v1\.0\.0\s+ok$/);
  assert.match(row('h3'), /h3\s+v1\.0\.0\s+v1\.0\.0\s+ok$/);
  assert.match(row('h2'), /h2\s+unknown\s+-\s+unreachable: cannot connect to h2 /);
  assert.match(s.stdout, '1 of 3 target(s) unreachable: h2');
  const j = await fraisier(ws, 'status', 'app', 'production', '--json');
  assert.is(j.code, 1);
  const report = JSON.parse(j.stdout) as { targets: { name: string; reachable: boolean; current: string | null; error: string | null }[] };
  assert.equal(
    report.targets.map((t) => [t.name, t.reachable, t.current]),
    [
      ['h1', true, 'v1.0.0'],
      ['h2', false, null],
      ['h3', true, 'v1.0.0'],
    ],
  );
  assert.is(report.targets[0]!.error, null);
  assert.match(report.targets[1]!.error ?? '', 'cannot connect to h2');
  await startSshd(env, 'h2');
  sshdDown = false;
  const back = await fraisier(ws, 'status', 'app', 'production');
  assert.is(back.code, 0, back.out);
  faultLine('sshd down on one host: status', 'h2 its own row (unreachable), h1/h3 ok, exit 1', true, 'none taken', t0);
});

test('sshd killed on h2 during its activation, restarted: the failure names the lost connection, h2 is rolled back', async () => {
  const t0 = performance.now();
  writeFileSync(srvFile(env, 'h2', 'slow-activate'), '');
  const d = background(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  await d.waitForFile(srvFile(env, 'h2', 'activating'));
  await killSshd(env, 'h2');
  sshdDown = true;
  await d.waitFor('lost the SSH connection to h2');
  await startSshd(env, 'h2');
  sshdDown = false;
  const r = await d.done;
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /error\[E_UNREACHABLE\] lost the SSH connection to h2 during switch to v1\.1\.0 and restart: \S/);
  assert.not.match(r.out, /failed on h2: *\n/, 'never an empty reason');
  assert.match(r.out, /h2\s+rolled_back/);
  const { consistent, lock } = await assertRecovered(env, ws, ['v1.0.0', 'v1.0.0', 'v1.0.0'], 'rolled_back');
  await clearMarkers(env);
  const again = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(again.code, 0, again.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  faultLine('sshd killed on one host during activation, restarted', 'rolled_back, h2 reconnected and rolled back; re-run ok', consistent, lock, t0);
});

test.run();
