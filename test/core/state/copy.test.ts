/**
 * `fraisier state migrate --to <url>`: a SQLite history copied into a new PostgreSQL database, ids,
 * targets and events included; refused into a database that already has a history, or while a
 * deployment holds a lock.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runFraisierCli } from '../../../core/cli.js';
import { Locks } from '../../../core/state/lock.js';
import { openStore } from '../../../core/state/store.js';
import { freshDatabase } from '../../support/postgres.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-copy-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
const config = path.join(dir, 'fraises.yaml');
fs.writeFileSync(
  config,
  `state:\n  path: state.db\nfraises:\n  api:\n    git_repo: /tmp/nowhere.git\n    app_path: /srv/api\n    environments:\n      production:\n        instances: [h1]\n        supervisor_program: api\n`,
);

test('state migrate copies every deployment, target and event, keeping ids; new ids continue after them', async () => {
  let t = Date.UTC(2026, 0, 1);
  const sqlite = await openStore({ path: path.join(dir, 'state.db'), now: () => t });
  const base = { fraise: 'api', environment: 'production', kind: 'deploy' as const, strategy: 'rolling', user: 'alice', host: 'box' };
  for (let i = 1; i <= 30; i++) {
    const id = await sqlite.recordDeployment({ ...base, fromVersion: i > 1 ? `v${i - 1}` : null, toVersion: `v${i}` });
    await sqlite.recordTarget(id, {
      target: 'h1',
      fromVersion: null,
      toVersion: `v${i}`,
      status: 'succeeded',
      phases: { prepare: 100 + i, activate: 5 },
      error: null,
    });
    await sqlite.recordEvent(id, { level: 'info', target: 'h1', message: `deployed v${i}` });
    t += 60_000;
    await sqlite.finishDeployment(id, { status: i % 7 === 0 ? 'rolled_back' : 'succeeded', ...(i % 7 === 0 ? { error: 'health' } : {}) });
  }
  const expected = await sqlite.history({ limit: 100 });
  const expectedOne = await sqlite.deployment(expected[3]!.id);
  const expectedStats = await sqlite.stats({ days: 100_000 });
  await sqlite.close();

  const url = await freshDatabase('copy');
  assert.is(await runFraisierCli(['state', 'migrate', '--to', url, '-c', config]), 0);
  const pg = await openStore({ url });
  assert.equal(await pg.history({ limit: 100 }), expected);
  assert.equal(await pg.deployment(expected[3]!.id), expectedOne);
  assert.equal(await pg.stats({ days: 100_000 }), expectedStats);
  assert.is(await pg.currentVersion('api', 'production'), 'v30');
  const next = await pg.recordDeployment({ ...base, fromVersion: 'v30', toVersion: 'v31' });
  assert.is(next, 31, 'ids continue after the copied ones');
  await pg.close();

  // a second copy into a database with a history is refused (exit 2), and adds nothing
  assert.is(await runFraisierCli(['state', 'migrate', '--to', url, '-c', config]), 2);
  const again = await openStore({ url });
  assert.is((await again.history({ limit: 1000 })).length, 31);
  await again.close();
});

test('state migrate is refused while a deployment holds a lock (exit 3), and with an unreachable target (exit 2)', async () => {
  const sqlite = await openStore({ path: path.join(dir, 'state.db') });
  const h = await new Locks(sqlite).acquire('api', 'production', { user: 'bob', host: 'ci', pid: 77 }, 'deploy by bob');
  const url = await freshDatabase('copy_locked');
  assert.is(await runFraisierCli(['state', 'migrate', '--to', url, '-c', config]), 3);
  const pg = await openStore({ url });
  assert.equal(await pg.history(), [], 'nothing copied');
  await pg.close();
  await h.release();
  await sqlite.close();
  assert.is(await runFraisierCli(['state', 'migrate', '--to', 'postgres://u:hunter2@127.0.0.1:1/x', '-c', config]), 2);
});

test.run();
