/**
 * Fault injection: two deployers with skewed clocks on one PostgreSQL store. Deployer B's clock runs
 * 120 s behind (the lock it takes would look expired by anyone's clock if the deployer's clock dated it);
 * deployer A's runs 120 s ahead (it would see any lock as expired). Lock expiry is decided by the
 * database's clock, so A is refused (exit 3, naming B) while B deploys, and only B deploys.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import type { LabEnv } from '../../lab/lab.js';
import { freshDatabase } from '../../support/postgres.js';
import { lab, labYaml, resetHosts, workspace } from '../helpers.js';
import { background, cli, consistentOn, faultLine, history, lockState } from './deployer-support.js';

const skewPreload = ['--import', fileURLToPath(new URL('./skew-clock.mjs', import.meta.url))];
let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  const url = await freshDatabase('skew');
  ws = workspace(`state:\n  url: ${url}\n` + labYaml(env, { batch: 1 }).replace('batch_size: 1', 'batch_size: 1\n          wait_between_batches: 6'));
  const r = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.0.0']);
  assert.is(r.code, 0, r.out);
});

test('a deployer 120 s ahead cannot take over the live lock of a deployer 120 s behind: only one deploys', async () => {
  const started = performance.now();
  const behind = background(ws, ['deploy', 'app', 'production', '--version', 'v1.1.0'], {
    nodeArgs: skewPreload,
    env: { FRAISIER_TEST_CLOCK_SKEW_MS: '-120000' },
  });
  await behind.waitFor(/Waiting/);

  const honest = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.2.0']);
  const aheadSkewed = background(ws, ['deploy', 'app', 'production', '--version', 'v1.2.0'], {
    nodeArgs: skewPreload,
    env: { FRAISIER_TEST_CLOCK_SKEW_MS: '120000' },
  });
  const { code: aheadCode } = await aheadSkewed.exited;
  assert.is(aheadCode, 3, aheadSkewed.out());
  assert.match(aheadSkewed.out(), `is locked by`);
  assert.match(aheadSkewed.out(), `:${behind.child.pid} since`);
  assert.not.match(aheadSkewed.out(), 'took over');
  assert.is(honest.code, 3, `a deployer with the right clock is refused too: ${honest.out}`);

  const { code } = await behind.exited;
  assert.is(code, 0, behind.out());
  assert.ok(await consistentOn(env, 'v1.1.0'), "every host on the holder's release");
  const rows = await history(ws);
  assert.equal(
    rows.map((r) => `${r.toVersion}:${r.status}`),
    ['v1.1.0:succeeded', 'v1.0.0:succeeded'],
    'the refused deployers recorded nothing',
  );
  const lock = await lockState(ws);
  assert.is(lock.text, 'released');
  faultLine(
    'two deployers with clocks skewed ±120 s on one PostgreSQL store',
    'the one ahead refused (exit 3); only the holder deployed',
    await consistentOn(env, 'v1.1.0'),
    lock.text,
    started,
  );

  const again = background(ws, ['deploy', 'app', 'production', '--version', 'v1.2.0'], {
    nodeArgs: skewPreload,
    env: { FRAISIER_TEST_CLOCK_SKEW_MS: '120000' },
  });
  assert.is((await again.exited).code, 0, again.out());
  assert.ok(await consistentOn(env, 'v1.2.0'), 're-run by the skewed deployer: every host on v1.2.0');
});

test.run();
