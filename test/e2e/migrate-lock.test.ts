/**
 * End to end: `fraisier migrate` keeps the environment's lock for as long as its migration runs, even
 * when that is much longer than the lock's TTL (issue 9 §4). The lock TTL is made short
 * (`FRAISIER_LOCK_TTL=3s`); the migration, against the lab's real PostgreSQL, runs until the test opens a
 * gate, well past the TTL. Meanwhile a second `fraisier deploy` and a second `fraisier migrate` of the
 * same environment are refused with E_LOCKED (exit 3) and change nothing; the migration then completes,
 * the lock is free, and a deployment goes through.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { Locks } from '../../core/state/lock.js';
import { openStore } from '../../core/state/store.js';
import { freshDatabase, pgQuery, publicTables, recordedMigrations, stopOwnPostgres } from '../support/postgres.js';
import { allHosts, bin, lab, labYaml, resetHosts, run, workspace, type Run } from './helpers.js';

const TTL_MS = 3000;
let env: LabEnv;
let ws: string;
let url: string;

/** `fraisier <args>` with the short lock TTL (generous timeout: the machine may be loaded). */
const fraisier = (...args: string[]): Promise<Run> => run(process.execPath, [bin, ...args], { cwd: ws, env: { FRAISIER_LOCK_TTL: '3s' }, timeoutMs: 600_000 });
const openGate = () => pgQuery(url, 'insert into migration_gate values (true)');

/** The environment's lock as stored, and the state database's clock (read-only, from this process). */
async function storedLock(): Promise<{ acquiredAt: number; expiresAt: number; reason: string | null; now: number } | undefined> {
  const store = await openStore({ path: join(ws, '.fraisier', 'state.db'), readOnly: true });
  try {
    const info = await new Locks(store).get('app', 'production');
    return info && { acquiredAt: info.acquiredAt, expiresAt: info.expiresAt, reason: info.reason, now: await store.databaseNow() };
  } finally {
    await store.close();
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 300_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) assert.unreachable(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  url = await freshDatabase('e2e_miglock');
  process.env['APP_DATABASE_URL'] = url;
  ws = workspace(
    labYaml(env, {
      batch: 3,
      extraEnvs: `        database:
          type: postgresql
          url_env: APP_DATABASE_URL
          migrations_dir: ./migrations
`,
    }),
  );
  mkdirSync(join(ws, 'migrations'));
  await pgQuery(url, 'create table migration_gate (open boolean not null)');
  // Runs until the test opens the gate (each loop statement sees committed rows: READ COMMITTED).
  writeFileSync(
    join(ws, 'migrations', '001_slow.sql'),
    `do $$
begin
  while not exists (select 1 from migration_gate) loop
    perform pg_sleep(0.2);
  end loop;
end $$;
create table slow_done (id int);
`,
  );
});

test('a migration that outlasts the lock TTL keeps the lock: deploy and migrate are refused meanwhile; afterwards the lock is free', async () => {
  const migrating = fraisier('migrate', 'app', 'production', '--phase', 'prepare');
  try {
    // The migration is running once PostgreSQL shows its loop.
    await until('the migration to start', async () => {
      const rows = await pgQuery<{ n: number }>(
        url,
        "select count(*)::int as n from pg_stat_activity where query like '%migration_gate%' and pid <> pg_backend_pid() and state = 'active'",
      );
      return rows[0]!.n > 0;
    });
    // Let the lock live longer than three TTLs by the database's clock: only renewals keep it.
    const held = await until('the lock to outlast its TTL', async () => {
      const l = await storedLock();
      return l !== undefined && l.now - l.acquiredAt > 3 * TTL_MS && l;
    });
    assert.match(held.reason ?? '', 'migrate --phase prepare by');
    assert.ok(held.expiresAt - held.acquiredAt > 3 * TTL_MS, 'the expiry was pushed forward by renewals');
    assert.ok(held.expiresAt - held.now <= TTL_MS, 'the lock has the short TTL, so it outlived it only by being renewed');

    const deploy = await fraisier('deploy', 'app', 'production', '--version', 'v1.0.0');
    assert.is(deploy.code, 3, deploy.out);
    assert.match(deploy.stderr, 'fraise app/production is locked by');
    assert.match(deploy.stderr, 'migrate --phase prepare by');
    const again = await fraisier('migrate', 'app', 'production', '--phase', 'prepare');
    assert.is(again.code, 3, again.out);
    assert.match(again.stderr, 'fraise app/production is locked by');
    assert.equal(
      (await allHosts(env)).map((h) => h.current),
      [null, null, null],
      'the refused deploy changed no host',
    );
    assert.not.ok((await publicTables(url)).includes('slow_done'), 'the migration is still running');
  } finally {
    await openGate();
  }

  const m = await migrating;
  assert.is(m.code, 0, m.out);
  assert.match(m.stdout, 'Applied 1 prepare migration(s): 001_slow.sql');
  assert.not.match(m.out, 'lost the lock');
  assert.equal(await publicTables(url), ['fraisier_migrations', 'migration_gate', 'slow_done']);
  assert.equal(await recordedMigrations(url), ['001_slow.sql@(none)']);
  assert.is(await storedLock(), undefined, 'the lock was released');

  // The lock is free: a deployment goes through, and the history holds only it.
  const deploy = await fraisier('deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(deploy.code, 0, deploy.out);
  assert.equal(
    (await allHosts(env)).map((h) => `${h.current}/${h.serving}`),
    ['v1.0.0/v1.0.0', 'v1.0.0/v1.0.0', 'v1.0.0/v1.0.0'],
  );
  const history = JSON.parse((await fraisier('history', '--json')).stdout) as { toVersion: string; status: string }[];
  assert.equal(
    history.map((d) => `${d.toVersion} ${d.status}`),
    ['v1.0.0 succeeded'],
  );
  assert.equal(await recordedMigrations(url), ['001_slow.sql@(none)'], 'the deploy found nothing left to apply');
});

test.after(async () => {
  await openGate().catch(() => {});
  await stopOwnPostgres();
});

test.run();
