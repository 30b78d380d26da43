/**
 * The `fraisier` command with a PostgreSQL state store against the lab: deploy and history through
 * FRAISIER_DATABASE_URL, status-all showing a lock's owner, reason, age and expiry, `--wait-lock`
 * giving up with exit 3 naming the holder, unlock, and a bad or unreachable database URL (exit 2, the
 * password never printed, no host changed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { Locks } from '../../core/state/lock.js';
import { openStore } from '../../core/state/store.js';
import { PG_PASSWORD, freshDatabase } from '../support/postgres.js';
import { allHosts, bin, HUMAN_DURATION, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
let url: string;
let ws: string;

/** `fraisier <args>` in the workspace with FRAISIER_DATABASE_URL set (and FRAISIER_STATE unset). */
function cli(dir: string, envVars: NodeJS.ProcessEnv, ...args: string[]) {
  return run(process.execPath, [bin, ...args], { cwd: dir, env: { FRAISIER_STATE: '', ...envVars } });
}

async function snapshot(): Promise<string[]> {
  return Promise.all(
    env.hosts.map(async (h) => (await hostExec(env, h.name, 'readlink /srv/app/current; ls -1a /srv/app/releases; supervisorctl pid app')).stdout),
  );
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  url = await freshDatabase('e2e');
  ws = workspace(labYaml(env, { batch: 3 }));
});

test('FRAISIER_DATABASE_URL: the deployment is recorded in PostgreSQL, not in a SQLite file', async () => {
  const r = await cli(ws, { FRAISIER_DATABASE_URL: url }, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
  assert.not.match(r.out, PG_PASSWORD);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
  );
  const store = await openStore({ url });
  const rows = await store.history();
  await store.close();
  assert.equal(
    rows.map((d) => [d.fraise, d.environment, d.toVersion, d.status]),
    [['app', 'production', 'v1.0.0', 'succeeded']],
  );
  const hist = await cli(ws, { FRAISIER_DATABASE_URL: url }, 'history', '--json');
  assert.is(hist.code, 0, hist.out);
  assert.is(JSON.parse(hist.stdout)[0].toVersion, 'v1.0.0');
  // without the variable, the workspace's own (empty) SQLite file is used
  const local = await cli(ws, {}, 'history', '--json');
  assert.equal(JSON.parse(local.stdout), []);
});

test('state.url wins over FRAISIER_DATABASE_URL; status-all shows the lock; --wait-lock gives up with exit 3; unlock clears it', async () => {
  const dir = workspace(`state:\n  url: ${url}\n${labYaml(env, { batch: 3 })}`);
  const other = await freshDatabase('e2e_other');
  const store = await openStore({ url });
  await new Locks(store).acquire('app', 'production', { user: 'alice', host: 'laptop', pid: 4242 }, 'hotfix in progress');
  await store.close();
  const all = await cli(dir, { FRAISIER_DATABASE_URL: other }, 'status-all');
  assert.is(all.code, 0, all.out);
  assert.match(all.stdout, /FRAISE\s+ENV\s+VERSION\s+LOCKED BY\s+REASON\s+AGE\s+EXPIRES/);
  assert.match(
    all.stdout,
    new RegExp(String.raw`app\s+production\s+v1\.0\.0\s+alice@laptop:4242\s+hotfix in progress\s+${HUMAN_DURATION}\s+in ${HUMAN_DURATION}`),
  );
  const j = JSON.parse((await cli(dir, { FRAISIER_DATABASE_URL: other }, 'status-all', '--json')).stdout);
  assert.is(j[0].lock.owner, 'alice@laptop:4242');
  assert.is(j[0].lock.reason, 'hotfix in progress');
  assert.is(j[0].lock.expired, false);

  const before = await snapshot();
  const t0 = Date.now();
  const r = await cli(dir, {}, 'deploy', 'app', 'production', '--version', 'v1.1.0', '--wait-lock=2');
  assert.is(r.code, 3, r.out);
  assert.ok(Date.now() - t0 >= 2000, 'waited');
  assert.match(r.stdout, 'Waiting for the lock of app/production: held by alice@laptop:4242 (hotfix in progress)');
  assert.match(r.stderr, /error\[E_LOCKED\] gave up after waiting \d+\.\d s for the lock: fraise app\/production is locked by alice@laptop:4242/);
  assert.equal(await snapshot(), before, 'no host changed');

  // renewed recently (not expired): its holder may be alive, so a plain unlock refuses and changes nothing
  const refused = await cli(dir, {}, 'unlock', 'app', 'production');
  assert.is(refused.code, 3, refused.out);
  assert.match(refused.stderr, 'alice@laptop:4242');
  const u = await cli(dir, {}, 'unlock', 'app', 'production', '--force');
  assert.is(u.code, 0, u.out);
  assert.match(u.stderr, 'warn: unlocked a live deployment');
  assert.match(u.stdout, 'Removed lock of app/production (locked by alice@laptop:4242');
  const after = JSON.parse((await cli(dir, {}, 'status-all', '--json')).stdout);
  assert.is(after[0].lock, null);
  const d = await cli(dir, {}, 'deploy', 'app', 'production', '--version', 'v1.1.0', '--wait-lock');
  assert.is(d.code, 0, d.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
});

test('an unreachable database URL: exit 2, the URL shown with *** for its password, no host changed', async () => {
  const bad = 'postgres://deploy:hunter2-secret@127.0.0.1:1/fraisier';
  const before = await snapshot();
  for (const [dir, vars] of [
    [workspace(`state:\n  url: ${bad}\n${labYaml(env)}`), {}],
    [ws, { FRAISIER_DATABASE_URL: bad }],
  ] as const) {
    for (const args of [['deploy', 'app', 'production', '--version', 'v1.2.0'], ['history'], ['status-all']]) {
      const r = await cli(dir, vars, ...args);
      assert.is(r.code, 2, `${args.join(' ')}: ${r.out}`);
      assert.match(r.stderr, 'error[E_STATE] cannot connect to the state database postgres://deploy:***@127.0.0.1:1/fraisier: connect ECONNREFUSED');
      assert.not.match(r.out, 'hunter2');
    }
  }
  assert.equal(await snapshot(), before, 'no host changed');
});

test('a malformed FRAISIER_DATABASE_URL is bad input too, with the password hidden', async () => {
  const r = await cli(ws, { FRAISIER_DATABASE_URL: 'mysql://root:hunter2-secret@db/x' }, 'history');
  assert.is(r.code, 2, r.out);
  assert.match(r.stderr, 'invalid state database URL mysql://root:***@db/x: the scheme is "mysql", not postgres or postgresql');
  assert.not.match(r.out, 'hunter2');
});

test.run();
