/**
 * Fault: the new release's app fails to start on one host only (h2's restart leaves it down), during a
 * real rolling deploy. h2 fails its health check with the reason, h1 and h2 are rolled back to the
 * working release, h3 is untouched, and a re-run succeeds once h2 is fixed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync, writeFileSync } from 'node:fs';
import type { LabEnv } from '../../lab/lab.js';
import { allHosts, fraisier, lab, labYaml, resetHosts, workspace } from '../helpers.js';
import { assertRecovered, faultLine, srvFile } from './host-faults.js';

let env: LabEnv;
let ws: string;

/** The lab's fraises.yaml, with a restart that leaves the app stopped on a host whose /srv/app-fails names the release. */
function yaml(): string {
  return labYaml(env, {
    restartCommand:
      'if [ "$(cat /srv/app-fails 2>/dev/null)" = "$(cat VERSION)" ]; then supervisorctl stop app; exit 0; fi; supervisorctl restart app | grep -q started',
    retries: 10,
    retryDelay: 0.5,
  });
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(yaml());
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

test.after(() => rmSync(srvFile(env, 'h2', 'app-fails'), { force: true }));

test('v1.1.0 does not start on h2 only: h2 fails its health check, h1 and h2 are rolled back, h3 untouched; re-run ok', async () => {
  const t0 = performance.now();
  writeFileSync(srvFile(env, 'h2', 'app-fails'), 'v1.1.0\n');
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /error\[E_HEALTH\] health check failed on h2: http http:\/\/localhost:8000\/health: \S/);
  assert.match(r.out, /h1\s+rolled_back\s+v1\.0\.0 → v1\.1\.0/);
  assert.match(r.out, /h2\s+rolled_back\s+v1\.0\.0 → v1\.1\.0/);
  assert.match(r.out, /h3\s+untouched\s+v1\.0\.0 → -/);
  const { consistent, lock } = await assertRecovered(env, ws, ['v1.0.0', 'v1.0.0', 'v1.0.0'], 'rolled_back');
  rmSync(srvFile(env, 'h2', 'app-fails'));
  const again = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(again.code, 0, again.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  faultLine('app fails to start on one host only', 'rolled_back (E_HEALTH on h2); re-run ok', consistent, lock, t0);
});

test.run();
