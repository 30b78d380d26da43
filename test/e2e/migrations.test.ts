/**
 * End to end: the `fraisier` command with a `database:` block and deployment hooks, against a real
 * PostgreSQL (test/support/postgres.ts) and the lab's three SSH hosts. What the database holds and what
 * each host runs, after deploys, a failed migration, a failed health check, the cleanup phase, an
 * explicit rollback, an unreachable database and failing hooks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { freshDatabase, pgQuery, publicTables, recordedMigrations, stopOwnPostgres } from '../support/postgres.js';
import { allHosts, fraisier, lab, labYaml, repoRoot, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;
let url: string;
let migrations: string;

const query = <T = Record<string, unknown>>(sql: string) => pgQuery<T>(url, sql);
const tables = () => publicTables(url);
const recorded = () => recordedMigrations(url);
const currents = async () => (await allHosts(env)).map((h) => `${h.current}/${h.serving}`);
const file = (name: string, sql: string) => writeFileSync(join(migrations, name), sql);

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  url = await freshDatabase('e2e_mig');
  process.env['APP_DATABASE_URL'] = url;
  ws = workspace(
    labYaml(env, {
      batch: 3,
      extraEnvs: `        database:
          type: postgresql
          url_env: APP_DATABASE_URL
          migrations_dir: ./migrations
      hooked:
        instances: [h1, h2, h3]
        supervisor_program: app
        rolling_config: { batch_size: 3 }
        health_check: { url: "http://localhost:8000/health", expect: "ok", timeout: 2, retries: 8, retry_delay: 0.25 }
        pre_deployment_hooks:
          - { name: gate, command: "test ! -e gate.closed || { echo 'gate is closed' >&2; exit 4; }", timeout: 10s, on_failure: abort }
        post_deployment_hooks:
          - { name: smoke, command: "test ! -e smoke.fails || exit 1", timeout: 10s, on_failure: rollback }
`,
    }),
  );
  migrations = join(ws, 'migrations');
  mkdirSync(migrations);
  file('001_users.sql', 'create table users (id serial primary key, name text not null);');
  file('001_users.down.sql', 'drop table users;');
});

test('deploy v1.0.0 then v1.1.0 with a new migration: the table exists and every host runs v1.1.0', async () => {
  const first = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(first.code, 0, first.out);
  file('002_posts.sql', 'create table posts (id serial primary key, author int references users);');
  file('002_posts.down.sql', 'drop table posts;');
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, 'applied migration 002_posts.sql');
  assert.equal(await tables(), ['fraisier_migrations', 'posts', 'users']);
  assert.equal(await recorded(), ['001_users.sql@v1.0.0', '002_posts.sql@v1.1.0']);
  assert.equal(await currents(), ['v1.1.0/v1.1.0', 'v1.1.0/v1.1.0', 'v1.1.0/v1.1.0']);
  const hist = JSON.parse((await fraisier(ws, 'history', '--json', '--limit', '1')).stdout);
  const show = await run(
    process.execPath,
    [
      '-e',
      `
    const { openStore } = await import(${JSON.stringify(join(repoRoot, 'dist/core/state/store.js'))});
    const s = await openStore({ path: ${JSON.stringify(join(ws, '.fraisier', 'state.db'))} });
    console.log(JSON.stringify((await s.deployment(${hist[0].id})).events.map((e) => e.message)));
    await s.close();`,
    ],
    { cwd: ws },
  );
  assert.match(show.stdout, 'applied migration 002_posts.sql', 'the history events name the migration');
});

test('a migration with a syntax error: file name and server message, nothing of it applied, no host changed', async () => {
  file('003_bad.sql', 'create table half (id int);\nCREATE TABLEE oops (id int);\n');
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.stderr, 'migration 003_bad.sql failed: line 2: syntax error at or near "TABLEE"');
  assert.equal(await tables(), ['fraisier_migrations', 'posts', 'users'], 'half (same file) rolled back');
  assert.equal(await recorded(), ['001_users.sql@v1.0.0', '002_posts.sql@v1.1.0']);
  assert.equal(await currents(), ['v1.1.0/v1.1.0', 'v1.1.0/v1.1.0', 'v1.1.0/v1.1.0']);
  for (const h of await allHosts(env)) assert.not.ok(h.releases.includes('v1.2.0'), 'no release uploaded');
  rmSync(join(migrations, '003_bad.sql'));
});

test('a health check failure (v2.0.0-broken): hosts rolled back, then the down files ran (table gone)', async () => {
  file('003_tags.sql', 'create table tags (post int references posts);');
  file('003_tags.down.sql', 'drop table tags;');
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v2.0.0-broken');
  assert.is(r.code, 1, r.out);
  assert.match(r.out, 'applied migration 003_tags.sql');
  assert.match(r.out, 'schema rolled back (deployment of v2.0.0-broken rolled back): ran 003_tags.down.sql');
  assert.equal(await tables(), ['fraisier_migrations', 'posts', 'users']);
  assert.equal(await recorded(), ['001_users.sql@v1.0.0', '002_posts.sql@v1.1.0']);
  assert.equal(await currents(), ['v1.1.0/v1.1.0', 'v1.1.0/v1.1.0', 'v1.1.0/v1.1.0']);
});

test('cleanup files wait for `fraisier migrate --phase cleanup`; its dry run changes nothing', async () => {
  file('004_drop_name.cleanup.sql', 'alter table users drop column name;');
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, 'cleanup migrations pending: 004_drop_name.cleanup.sql');
  const cols = async () =>
    (await query<{ c: string }>("select column_name as c from information_schema.columns where table_name = 'users' order by 1")).map((x) => x.c);
  assert.equal(await cols(), ['id', 'name']);
  const dry = await fraisier(ws, 'migrate', 'app', 'production', '--phase', 'cleanup', '--dry-run');
  assert.is(dry.code, 0, dry.out);
  assert.match(dry.stdout, 'Pending cleanup migration(s): 004_drop_name.cleanup.sql');
  assert.equal(await cols(), ['id', 'name']);
  const m = await fraisier(ws, 'migrate', 'app', 'production', '--phase', 'cleanup');
  assert.is(m.code, 0, m.out);
  assert.match(m.stdout, 'Applied 1 cleanup migration(s): 004_drop_name.cleanup.sql');
  assert.equal(await cols(), ['id']);
  assert.equal(await recorded(), ['001_users.sql@v1.0.0', '002_posts.sql@v1.1.0', '003_tags.sql@v1.2.0', '004_drop_name.cleanup.sql@v1.2.0']);
  const again = await fraisier(ws, 'migrate', 'app', 'production');
  assert.match(again.stdout, 'No pending cleanup migrations');
});

test('fraisier rollback: hosts go back; a migration without a down file leaves the schema and says which', async () => {
  const r = await fraisier(ws, 'rollback', 'app', 'production');
  assert.is(r.code, 0, r.out);
  assert.equal(await currents(), ['v1.1.0/v1.1.0', 'v1.1.0/v1.1.0', 'v1.1.0/v1.1.0']);
  assert.match(
    r.stderr,
    'schema NOT rolled back (rollback to v1.1.0): 004_drop_name.cleanup.sql has no down file, so this release is not automatically reversible',
  );
  assert.equal(await tables(), ['fraisier_migrations', 'posts', 'tags', 'users'], 'nothing reverted, not even 003 (it has a down file)');
});

test('an unreachable database: clear error, no host changed, the password printed nowhere', async () => {
  const u = new URL(url);
  u.port = '1';
  u.password = 'Very-Secret-Pw-77';
  process.env['APP_DATABASE_URL'] = u.toString();
  try {
    const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
    assert.is(r.code, 1, r.out);
    assert.match(r.stderr, 'cannot connect to the database at 127.0.0.1:1/');
    assert.not.match(r.out, 'Very-Secret-Pw-77');
    const hist = await fraisier(ws, 'history', '--json', '--limit', '1');
    assert.not.match(hist.stdout, 'Very-Secret-Pw-77');
    assert.equal(await currents(), ['v1.1.0/v1.1.0', 'v1.1.0/v1.1.0', 'v1.1.0/v1.1.0']);
  } finally {
    process.env['APP_DATABASE_URL'] = url;
  }
});

test('hooks from YAML: a failing pre hook (abort) changes no host; a failing post hook (rollback) rolls every host back', async () => {
  writeFileSync(join(ws, 'gate.closed'), '');
  const blocked = await fraisier(ws, 'deploy', 'app', 'hooked', '--version', 'v1.2.0');
  assert.is(blocked.code, 1, blocked.out);
  assert.match(blocked.stderr, 'pre-deployment hook gate failed: exited with status 4: gate is closed');
  assert.equal(await currents(), ['v1.1.0/v1.1.0', 'v1.1.0/v1.1.0', 'v1.1.0/v1.1.0']);
  rmSync(join(ws, 'gate.closed'));
  writeFileSync(join(ws, 'smoke.fails'), '');
  const smoke = await fraisier(ws, 'deploy', 'app', 'hooked', '--version', 'v1.2.0', '--json');
  assert.is(smoke.code, 1, smoke.out);
  assert.is(JSON.parse(smoke.stdout).status, 'rolled_back');
  assert.match(smoke.stderr, 'post-deployment hook smoke failed');
  assert.equal(await currents(), ['v1.1.0/v1.1.0', 'v1.1.0/v1.1.0', 'v1.1.0/v1.1.0']);
  rmSync(join(ws, 'smoke.fails'));
});

test('an unknown on_failure in fraises.yaml: exit 2 naming the file, the key and the allowed values', async () => {
  const dir = workspace(labYaml(env, { extraEnvs: '        post_deployment_hooks:\n          - { name: x, command: "true", on_failure: panic }\n' }));
  const r = await fraisier(dir, 'deploy', 'app', 'production');
  assert.is(r.code, 2, r.out);
  assert.match(
    r.stderr,
    'fraises.yaml: fraises.app.environments.production.post_deployment_hooks[0].on_failure: expected one of: abort, rollback, alert, ignore, got "panic"',
  );
});

test('deploy.ts: npx tsx deploy.ts production migrate --phase cleanup', async () => {
  writeFileSync(join(ws, 'package.json'), '{"type":"module"}');
  file('005_old.cleanup.sql', 'alter table posts drop column author;');
  writeFileSync(
    join(ws, 'deploy.ts'),
    `import { bareMetal, defineDeploy, psqlMigration, rolling } from ${JSON.stringify(join(repoRoot, 'index.ts'))};
export default defineDeploy({
  name: 'app',
  environments: {
    production: {
      provider: bareMetal({ hosts: ['h1'], appPath: '/srv/app', source: { type: 'git', repo: ${JSON.stringify(env.appRepo)} }, service: { type: 'supervisor', program: 'app' }, ssh: { configFile: ${JSON.stringify(env.sshConfig)} } }),
      strategy: rolling(),
      plugins: [psqlMigration({ dir: './migrations', urlEnv: 'APP_DATABASE_URL' })],
    },
  },
});
`,
  );
  const r = await run(join(repoRoot, 'node_modules', '.bin', 'tsx'), ['deploy.ts', 'production', 'migrate', '--phase', 'cleanup'], { cwd: ws });
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, 'Applied 1 cleanup migration(s): 005_old.cleanup.sql');
  const cols = (await query<{ c: string }>("select column_name as c from information_schema.columns where table_name = 'posts'")).map((x) => x.c);
  assert.equal(cols, ['id']);
});

test.after(async () => {
  await stopOwnPostgres();
});

test.run();
