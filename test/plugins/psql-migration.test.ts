/**
 * psql-migration against a real PostgreSQL (test/support/postgres.ts) and recorded bare_metal hosts:
 * what the database holds and which release each host was switched to, for every path of a deployment.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore, type StateStore } from '../../core/state/store.js';
import { rolling } from '../../strategies/rolling.js';
import { psqlMigration, readMigrations, type PsqlMigrationOptions } from '../../plugins/psql-migration.js';
import { runMigrate } from '../../core/migrate.js';
import { Locks } from '../../core/state/lock.js';
import { freshDatabase, PG_PASSWORD, pgQuery, publicTables, recordedMigrations, stopOwnPostgres } from '../support/postgres.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';

const cleanup: string[] = [];

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-mig-'));
  cleanup.push(dir);
  for (const [name, sql] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), sql);
  }
  return dir;
}

const query = pgQuery;
const tables = publicTables;
const recorded = recordedMigrations;

async function setup(dir: string, url: string, opts: { unhealthy?: string[]; store?: StateStore; plugin?: Partial<PsqlMigrationOptions> } = {}) {
  process.env['TEST_DB_URL'] = url;
  const hosts = recordedBareMetal({ hosts: ['h1', 'h2'], appPath: '/srv/app', program: 'app', ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}) });
  const store = opts.store ?? (await openStore({ path: ':memory:' }));
  const entries: LogEntry[] = [];
  const plugin = psqlMigration({ dir, urlEnv: 'TEST_DB_URL', ...opts.plugin });
  const deployer = new Deployer({
    fraise: 'app',
    environment: 'production',
    provider: hosts.provider,
    strategy: rolling({ batchSize: 1 }),
    health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
    plugins: [plugin],
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  const text = () => entries.map((e) => `${e.level}: ${e.message}`).join('\n');
  return { deployer, hosts, store, entries, text, plugin };
}

const USERS = 'create table users (id serial primary key, name text not null);\n';

test('readMigrations: ordered by number; phases from the name; down files attached; bad names rejected with the file name', () => {
  const dir = migrationsDir({
    '10_late.sql': 'select 1;',
    '2_users.sql': USERS,
    '2_users.down.sql': 'drop table users;',
    '3_drop_old.cleanup.sql': 'select 1;',
    'README.md': 'not sql',
  });
  const files = readMigrations(dir);
  assert.equal(
    files.map((f) => [f.name, f.phase, f.down?.name ?? null]),
    [
      ['2_users.sql', 'prepare', '2_users.down.sql'],
      ['3_drop_old.cleanup.sql', 'cleanup', null],
      ['10_late.sql', 'prepare', null],
    ],
  );
  assert.match(files[0]!.checksum, /^[0-9a-f]{64}$/);
  writeFileSync(join(dir, 'users.sql'), 'select 1;');
  assert.throws(() => readMigrations(dir), /users\.sql: the file name does not follow the convention NNN_name\.sql/);
  rmSync(join(dir, 'users.sql'));
  writeFileSync(join(dir, '4_x.down.sql'), 'select 1;');
  assert.throws(() => readMigrations(dir), /4_x\.down\.sql: down file without its migration 4_x\.sql/);
});

test('schema first: a deploy applies the pending files in order, records them, then switches the hosts', async () => {
  const url = await freshDatabase('mig');
  const dir = migrationsDir({
    '001_users.sql': USERS,
    '001_users.down.sql': 'drop table users;',
    '002_posts.sql': 'create table posts (id int references users);',
  });
  const { deployer, hosts, text, entries } = await setup(dir, url);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', text());
  assert.equal(await tables(url), ['fraisier_migrations', 'posts', 'users']);
  assert.equal(await recorded(url), ['001_users.sql@v1.1.0', '002_posts.sql@v1.1.0']);
  const row = (await query(url, "select * from fraisier_migrations where name = '001_users.sql'"))[0]!;
  assert.is(row['down_name'], '001_users.down.sql');
  assert.match(String(row['checksum']), /^[0-9a-f]{64}$/);
  assert.ok(row['applied_at'] instanceof Date);
  assert.equal(hosts.activations(), ['h1:v1.1.0', 'h2:v1.1.0']);
  // migrations before any host was touched: the first log line about a host comes after the last migration
  const lastMigration = entries.findIndex((e) => e.message.startsWith('applied migration 002_posts.sql'));
  const firstHostLine = entries.findIndex((e) => e.target !== null);
  assert.ok(lastMigration >= 0 && firstHostLine > lastMigration, `migrations (${lastMigration}) before the first host line (${firstHostLine})`);
  assert.match(text(), 'applied migration 002_posts.sql');
  assert.match(text(), '(no down file: not reversible automatically)');
  // once only: a second deploy applies nothing
  const again = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(again.status, 'succeeded');
  assert.equal(await recorded(url), ['001_users.sql@v1.1.0', '002_posts.sql@v1.1.0']);
});

test("the applied migrations are in the deployment's history events", async () => {
  const url = await freshDatabase('mig');
  const dir = migrationsDir({ '001_users.sql': USERS });
  const { deployer, store } = await setup(dir, url);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  const full = await store.deployment(r.id!);
  assert.ok(
    full!.events.some((e) => e.message.startsWith('applied migration 001_users.sql')),
    JSON.stringify(full!.events),
  );
});

test('a failing migration aborts before any host changes: its transaction rolled back, earlier files of the run kept', async () => {
  const url = await freshDatabase('mig');
  const dir = migrationsDir({
    '001_users.sql': USERS,
    '002_bad.sql': 'create table t2 (id int);\n\nCREAT TABLE oops (id int);\n',
    '003_never.sql': 'create table never (id int);',
  });
  const { deployer, hosts, text } = await setup(dir, url);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, 'migration 002_bad.sql failed: line 3: syntax error at or near "CREAT"');
  assert.match(r.error!.message, 'its transaction was rolled back');
  assert.equal(hosts.activations(), [], 'no host switched');
  assert.equal(
    r.targets.map((t) => t.status),
    ['pending', 'pending'],
  );
  assert.equal(await tables(url), ['fraisier_migrations', 'users'], 't2 (same file, before the error) was rolled back; 003 never ran');
  assert.equal(await recorded(url), ['001_users.sql@v1.1.0']);
  assert.match(text(), 'applied before the failure, and kept: 001_users.sql');
});

test("a health check failure rolls the hosts back, then runs this deployment's down files in reverse order", async () => {
  const url = await freshDatabase('mig');
  const dir0 = migrationsDir({ '001_users.sql': USERS, '001_users.down.sql': 'drop table users;' });
  // applied by an earlier release (v1.0.0): must stay
  const silent = { info: () => {}, warn: () => {}, error: () => {} };
  process.env['TEST_DB_URL'] = url;
  await psqlMigration({ dir: dir0, urlEnv: 'TEST_DB_URL' }).migrate({
    fraise: 'app',
    environment: 'production',
    version: 'v1.0.0',
    phase: 'prepare',
    dryRun: false,
    log: silent,
  });
  const dir = migrationsDir({
    '001_users.sql': USERS,
    '001_users.down.sql': 'drop table users;',
    '002_posts.sql': 'create table posts (id int primary key, author int references users);',
    '002_posts.down.sql': 'drop table posts;',
    '003_tags.sql': 'create table tags (post int references posts);',
    '003_tags.down.sql': 'drop table tags;',
  });
  const { deployer, hosts, text } = await setup(dir, url, { unhealthy: ['h1'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back', text());
  assert.equal(hosts.activations(), ['h1:v1.1.0', 'h1:v1.0.0']);
  assert.equal(await tables(url), ['fraisier_migrations', 'users'], 'posts and tags dropped (tags first: it references posts)');
  assert.equal(await recorded(url), ['001_users.sql@v1.0.0']);
  assert.match(text(), 'schema rolled back (deployment of v1.1.0 rolled back): ran 003_tags.down.sql, 002_posts.down.sql');
});

test('a migration without a down file: the hosts are rolled back, the schema stays and the message names the file', async () => {
  const url = await freshDatabase('mig');
  const dir = migrationsDir({ '001_users.sql': USERS, '001_users.down.sql': 'drop table users;', '002_index.sql': 'create index on users (name);' });
  const { deployer, hosts, text } = await setup(dir, url, { unhealthy: ['h1'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back', text());
  assert.equal(hosts.activations(), ['h1:v1.1.0', 'h1:v1.0.0']);
  assert.equal(await tables(url), ['fraisier_migrations', 'users'], 'nothing reverted: not even 001, which has a down file');
  assert.equal(await recorded(url), ['001_users.sql@v1.1.0', '002_index.sql@v1.1.0']);
  assert.match(
    text(),
    'warn: schema NOT rolled back (deployment of v1.1.0 rolled back): 002_index.sql has no down file, so this release is not automatically reversible',
  );
});

test('an explicit rollback reverts the migrations of the releases rolled back, after the hosts are back', async () => {
  const url = await freshDatabase('mig');
  const store = await openStore({ path: ':memory:' });
  const dir = migrationsDir({ '001_users.sql': USERS, '001_users.down.sql': 'drop table users;' });
  // history: v1.0.0 live, then v1.1.0 (which applied 001)
  const id = await store.recordDeployment({
    fraise: 'app',
    environment: 'production',
    kind: 'deploy',
    strategy: 'rolling',
    fromVersion: null,
    toVersion: 'v1.0.0',
    user: 'u',
    host: 'h',
  });
  await store.finishDeployment(id, { status: 'succeeded', error: null });
  const { deployer, text } = await setup(dir, url, { store });
  assert.is((await deployer.deploy({ version: 'v1.1.0' })).status, 'succeeded');
  assert.equal(await tables(url), ['fraisier_migrations', 'users']);
  const r = await deployer.rollback();
  assert.is(r.status, 'succeeded', text());
  assert.is(r.toVersion, 'v1.0.0');
  assert.equal(await tables(url), ['fraisier_migrations']);
  assert.equal(await recorded(url), []);
  assert.match(text(), 'schema rolled back (rollback to v1.0.0): ran 001_users.down.sql');
});

test('a changed checksum of an applied file is an error naming the file; nothing runs, no host changes', async () => {
  const url = await freshDatabase('mig');
  const dir = migrationsDir({ '001_users.sql': USERS });
  const first = await setup(dir, url);
  assert.is((await first.deployer.deploy({ version: 'v1.1.0' })).status, 'succeeded');
  writeFileSync(join(dir, '001_users.sql'), USERS + 'create table sneaky (id int);\n');
  writeFileSync(join(dir, '002_more.sql'), 'create table more (id int);');
  const { deployer, hosts } = await setup(dir, url);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, /001_users\.sql was changed after it was applied \(recorded checksum [0-9a-f]{12}, file now [0-9a-f]{12}\)/);
  assert.equal(hosts.activations(), []);
  assert.equal(await tables(url), ['fraisier_migrations', 'users']);
});

test('dry run lists the pending migrations and changes nothing (not even the migrations table)', async () => {
  const url = await freshDatabase('mig');
  const dir = migrationsDir({ '001_users.sql': USERS, '002_posts.sql': 'create table posts (id int);', '003_old.cleanup.sql': 'select 1;' });
  const { deployer, text, hosts } = await setup(dir, url);
  for (const e of hosts.executors.values())
    e.replies.unshift({ match: /^git ls-remote/, result: { stdout: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\trefs/tags/v1.1.0\n' } });
  const r = await deployer.deploy({ version: 'v1.1.0', dryRun: true });
  assert.is(r.status, 'succeeded', text());
  assert.match(text(), '[dry-run] would apply 2 prepare migration(s): 001_users.sql, 002_posts.sql');
  assert.equal(await tables(url), []);
});

test('two deployers racing: the advisory lock serialises them, each file is applied exactly once', async () => {
  const url = await freshDatabase('mig');
  const files: Record<string, string> = {};
  for (let i = 1; i <= 5; i++) files[`00${i}_t${i}.sql`] = `create table t${i} (id int); select pg_sleep(0.05);`;
  const dir = migrationsDir(files);
  process.env['TEST_DB_URL'] = url;
  // Different environments sharing one database, so the Fraisier lock does not serialise them.
  const plugin = psqlMigration({ dir, urlEnv: 'TEST_DB_URL' });
  const entries: LogEntry[] = [];
  const log = { info: (m: string) => entries.push({ at: 0, level: 'info', target: null, message: m }), warn: () => {}, error: () => {} };
  const reports = await Promise.all([
    plugin.migrate({ fraise: 'app', environment: 'production', version: 'v1', phase: 'prepare', dryRun: false, log }),
    plugin.migrate({ fraise: 'app', environment: 'staging', version: 'v1', phase: 'prepare', dryRun: false, log }),
  ]);
  const applied = reports.flatMap((r) => r.applied).sort();
  assert.equal(applied, ['001_t1.sql', '002_t2.sql', '003_t3.sql', '004_t4.sql', '005_t5.sql'], 'each once, across both');
  assert.ok(
    reports.some((r) => r.applied.length === 0),
    'the second found nothing left to do',
  );
  assert.ok(
    entries.some((e) => e.message.includes('waiting for the migration lock')),
    'the second waited for the lock',
  );
  assert.equal((await recorded(url)).length, 5);
});

test('fraisier migrate waits for no deployment: a held environment lock is E_LOCKED and nothing is applied', async () => {
  const url = await freshDatabase('mig');
  process.env['TEST_DB_URL'] = url;
  const dir = migrationsDir({ '001_users.sql': USERS });
  const store = await openStore({ path: ':memory:' });
  await new Locks(store).acquire('app', 'production', { user: 'alice', host: 'laptop', pid: 1 }, 'deploying');
  const err = await runMigrate('app', 'production', [psqlMigration({ dir, urlEnv: 'TEST_DB_URL' })], store, { phase: 'prepare' }, { sinks: [] }).catch(
    (e: Error) => e,
  );
  assert.is((err as { code?: string }).code, 'E_LOCKED');
  assert.match((err as Error).message, 'alice@laptop');
  assert.equal(await tables(url), []);
});

test('fraisier migrate on an environment without migrations is a config error; it waits for no lock', async () => {
  const store = await openStore({ path: ':memory:' });
  const err = await runMigrate('app', 'production', [], store, {}, { sinks: [] }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.is((err as { code?: string }).code, 'E_CONFIG');
  assert.match((err as Error).message, 'app/production has no migrations configured');
});

test('cleanup files are not applied by a deploy, only by an explicit cleanup run, after the prepare ones', async () => {
  const url = await freshDatabase('mig');
  const dir = migrationsDir({
    '001_users.sql': 'create table users (id int, old_name text, name text);',
    '002_drop_old_name.cleanup.sql': 'alter table users drop column old_name;',
  });
  const { deployer, store, text } = await setup(dir, url);
  const plugin = psqlMigration({ dir, urlEnv: 'TEST_DB_URL' });
  const early = await runMigrate('app', 'production', [plugin], store, { phase: 'cleanup' }, { sinks: [] }).catch((e: Error) => e);
  assert.instance(early, Error);
  assert.match((early as Error).message, '001_users.sql not applied yet: deploy first');
  assert.is((await deployer.deploy({ version: 'v1.1.0' })).status, 'succeeded');
  const cols = async () =>
    (await query<{ c: string }>(url, "select column_name as c from information_schema.columns where table_name = 'users' order by ordinal_position")).map(
      (r) => r.c,
    );
  assert.equal(await cols(), ['id', 'old_name', 'name']);
  assert.match(text(), 'cleanup migrations pending: 002_drop_old_name.cleanup.sql');
  const dry = await runMigrate('app', 'production', [plugin], store, { phase: 'cleanup', dryRun: true }, { sinks: [] });
  assert.equal(dry[0]!.pending, ['002_drop_old_name.cleanup.sql']);
  assert.equal(await cols(), ['id', 'old_name', 'name']);
  const reports = await runMigrate('app', 'production', [plugin], store, { phase: 'cleanup' }, { sinks: [] });
  assert.equal(reports[0]!.applied, ['002_drop_old_name.cleanup.sql']);
  assert.equal(await cols(), ['id', 'name']);
  assert.equal(await recorded(url), ['001_users.sql@v1.1.0', '002_drop_old_name.cleanup.sql@v1.1.0'], 'recorded with the live release');
});

test('an unreachable database: a clear error, no host changed, the password never printed', async () => {
  const url = `postgres://app:${PG_PASSWORD}-x@127.0.0.1:1/app`;
  const dir = migrationsDir({ '001_users.sql': USERS });
  const { deployer, hosts, entries } = await setup(dir, url);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, 'cannot connect to the database at 127.0.0.1:1/app');
  assert.match(r.error!.message, 'ECONNREFUSED');
  assert.equal(hosts.activations(), []);
  const all = JSON.stringify(r) + JSON.stringify(entries);
  assert.not.match(all, `${PG_PASSWORD}-x`);
});

test("a wrong password: the server's message, without the password", async () => {
  const good = await freshDatabase('mig');
  const u = new URL(good);
  u.password = 'Wrong-Secret-123';
  const dir = migrationsDir({ '001_users.sql': USERS });
  const { deployer, entries } = await setup(dir, u.toString());
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, 'password authentication failed');
  assert.not.match(JSON.stringify(r) + JSON.stringify(entries), 'Wrong-Secret-123');
});

test('an unset URL variable is a config error naming the variable', async () => {
  const dir = migrationsDir({ '001_users.sql': USERS });
  const { deployer, hosts } = await setup(dir, 'x', { plugin: { urlEnv: 'NOPE_NOT_SET_DB_URL' } });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, 'the environment variable NOPE_NOT_SET_DB_URL is not set');
  assert.equal(hosts.activations(), []);
});

test.after(async () => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  await stopOwnPostgres();
});

test.run();
