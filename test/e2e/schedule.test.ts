/**
 * End to end (issue 12 §3) on the lab: `deploy --scheduled` resolves the release when it is queued and
 * `worker --once` deploys exactly that release once it is due, even though the branch moved in between,
 * while an item not yet due stays queued; `queue` lists and `queue cancel` removes; two workers racing
 * over one PostgreSQL store run an item once; a freeze refuses a deploy (exit 2, the next allowed time)
 * and holds a due item back; a malformed or past `--scheduled` time is exit 2 with nothing queued; a
 * long-running worker stops cleanly on SIGTERM.
 */
import { execFileSync, spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../lab/lab.js';
import { freshDatabase } from '../support/postgres.js';
import { allHosts, bin, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;
const BRANCH = `sched-e2e-${process.pid}`;
// the freeze of the `frozen` environment ends (exclusive) at the start of the day after FREEZE_TO
const FREEZE_TO = new Date(Date.now() + 20 * 86_400_000).toISOString().slice(0, 10);

// generous: the machine may be loaded
const fraisier = (...args: string[]) => run(process.execPath, [bin, ...args], { cwd: ws, env: { FRAISIER_DATABASE_URL: '' }, timeoutMs: 600_000 });
const git = (...args: string[]) => execFileSync('git', ['-C', env.appRepo, ...args], { encoding: 'utf8' }).trim();

/** Waits until an item queued with `dueAt` (ISO) is due. */
async function untilDue(dueAt: string): Promise<void> {
  const ms = Date.parse(dueAt) - Date.now() + 100;
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  git('branch', '-f', BRANCH, 'v1.0.0^{commit}');
  ws = workspace(
    labYaml(env, {
      batch: 3,
      extraEnvs: `      frozen:
        provider: bare_metal
        instances: [h1, h2, h3]
        supervisor_program: app
        freeze:
          - { from: 2020-01-01, to: ${FREEZE_TO}, reason: e2e freeze }
`,
    }),
  );
});

test.after(() => {
  git('branch', '-D', BRANCH);
});

test('a malformed or past --scheduled time: exit 2 saying what is expected, nothing queued', async () => {
  const bad = await fraisier('deploy', 'app', 'production', '--scheduled', 'tomorrow');
  assert.is(bad.code, 2, bad.out);
  assert.match(bad.stderr, 'error[E_USAGE] --scheduled "tomorrow": not a time Fraisier understands');
  assert.match(bad.stderr, '"+30m"');
  const past = await fraisier('deploy', 'app', 'production', '--scheduled', '2020-01-01T00:00:00Z');
  assert.is(past.code, 2, past.out);
  assert.match(past.stderr, 'is in the past');
  const q = await fraisier('queue', '--all', '--json');
  assert.is(q.code, 0, q.out);
  assert.equal(JSON.parse(q.stdout), []);
});

test('deploy --scheduled +2s resolves the branch now; worker --once deploys that release when due (the branch moved since); a later item waits; queue cancel removes it', async () => {
  const soon = await fraisier('deploy', 'app', 'production', '--version', BRANCH, '--scheduled', '+2s', '--json');
  assert.is(soon.code, 0, soon.out);
  const a = JSON.parse(soon.stdout);
  assert.is(a.version, 'v1.0.0', 'the branch resolved when queued (its commit is tagged v1.0.0)');
  assert.is(a.ref, BRANCH);
  const later = await fraisier('deploy', 'app', 'production', '--version', 'v1.2.0', '--scheduled', '+1h');
  assert.is(later.code, 0, later.out);
  const laterId = Number(/Queued #(\d+):/.exec(later.stdout)?.[1]);
  assert.match(later.stdout, `app/production v1.2.0, due `);
  // the branch moves on after the deploy was approved
  git('branch', '-f', BRANCH, 'v1.1.0^{commit}');

  const listed = await fraisier('queue');
  assert.is(listed.code, 0, listed.out);
  assert.match(listed.stdout, /ID\s+FRAISE\s+ENV\s+VERSION\s+DUE\s+STATUS\s+REQUESTED BY/);
  assert.match(listed.stdout, new RegExp(`${a.id}\\s+app\\s+production\\s+v1\\.0\\.0\\s.*queued\\s+${a.requestedBy}`));
  assert.match(listed.stdout, new RegExp(`${laterId}\\s+app\\s+production\\s+v1\\.2\\.0\\s.*queued`));
  assert.equal(
    (await allHosts(env)).map((h) => h.current),
    [null, null, null],
    'queueing changed no host',
  );

  await untilDue(a.dueAt);
  const w = await fraisier('worker', '--once');
  assert.is(w.code, 0, w.out);
  assert.match(w.stdout, `Running #${a.id}: app/production v1.0.0, queued by ${a.requestedBy}`);
  assert.not.match(w.stdout, `Running #${laterId}`);
  for (const h of await allHosts(env)) {
    assert.is(h.current, 'v1.0.0');
    assert.is(h.serving, 'v1.0.0');
  }
  const history = JSON.parse((await fraisier('history', '--json')).stdout);
  assert.equal(
    history.map((d: { kind: string; status: string; toVersion: string }) => `${d.kind} ${d.status} ${d.toVersion}`),
    ['deploy succeeded v1.0.0'],
  );

  const cancel = await fraisier('queue', 'cancel', String(laterId));
  assert.is(cancel.code, 0, cancel.out);
  assert.match(cancel.stdout, `Cancelled #${laterId}: app/production v1.2.0`);
  const again = await fraisier('queue', 'cancel', String(a.id));
  assert.is(again.code, 2, again.out);
  assert.match(again.stderr, `#${a.id} (app/production v1.0.0) is succeeded, not queued`);
  assert.match((await fraisier('queue')).stdout, 'No scheduled deployments.');
  const all = JSON.parse((await fraisier('queue', '--all', '--json')).stdout);
  assert.equal(
    all.map((i: { id: number; status: string; deploymentId: number | null }) => [i.id, i.status, i.deploymentId]),
    [
      [laterId, 'cancelled', null],
      [a.id, 'succeeded', history[0].id],
    ],
  );
  // nothing due any more: the worker runs nothing
  const idle = await fraisier('worker', '--once');
  assert.is(idle.code, 0, idle.out);
  assert.match(idle.stdout, 'Nothing to run');
});

test('a freeze: deploy refused (exit 2, E_WINDOW, the next allowed time), no host changed; a scheduled item waits in the queue', async () => {
  const before = await allHosts(env);
  const r = await fraisier('deploy', 'app', 'frozen', '--version', 'v1.2.0');
  assert.is(r.code, 2, r.out);
  const next = new Date(Date.parse(`${FREEZE_TO}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  assert.match(
    r.stderr,
    `error[E_WINDOW] deploy of app to frozen refused: inside a freeze (e2e freeze) until ${next} 00:00 UTC; next allowed time: ${next} 00:00 UTC`,
  );
  assert.match(r.stderr, '--force');
  assert.equal(await allHosts(env), before);

  const s = await fraisier('deploy', 'app', 'frozen', '--version', 'v1.2.0', '--scheduled', '+1s', '--json');
  assert.is(s.code, 0, s.out);
  const item = JSON.parse(s.stdout);
  assert.match(item.note, `waits: inside a freeze (e2e freeze)`);
  await untilDue(item.dueAt);
  const w = await fraisier('worker', '--once');
  assert.is(w.code, 0, w.out);
  assert.match(w.stdout, `#${item.id} app/frozen v1.2.0: waits: inside a freeze (e2e freeze) until ${next} 00:00 UTC; runs from ${next} 00:00 UTC`);
  assert.match(w.stdout, 'Nothing to run (1 due item(s) wait for their deploy window)');
  assert.equal(await allHosts(env), before);
  const q = await fraisier('queue');
  assert.match(q.stdout, new RegExp(`${item.id}\\s+app\\s+frozen\\s+v1\\.2\\.0\\s.*queued.*waits: inside a freeze`));
  assert.is((await fraisier('queue', 'cancel', String(item.id))).code, 0);
});

test('two workers race for one item over PostgreSQL: exactly one runs it', async () => {
  const url = await freshDatabase('sched');
  const pg = (...args: string[]) => run(process.execPath, [bin, ...args], { cwd: ws, env: { FRAISIER_DATABASE_URL: url }, timeoutMs: 600_000 });
  const s = await pg('deploy', 'app', 'production', '--version', 'v1.1.0', '--scheduled', '+1s', '--json');
  assert.is(s.code, 0, s.out);
  const item = JSON.parse(s.stdout);
  await untilDue(item.dueAt);
  const [w1, w2] = await Promise.all([pg('worker', '--once'), pg('worker', '--once')]);
  assert.is(w1.code, 0, w1.out);
  assert.is(w2.code, 0, w2.out);
  const ran = [w1, w2].filter((w) => w.stdout.includes(`Running #${item.id}:`));
  assert.is(ran.length, 1, `${w1.out}\n---\n${w2.out}`);
  assert.is([w1, w2].filter((w) => w.stdout.includes('Nothing to run')).length, 1);
  const history = JSON.parse((await pg('history', '--json')).stdout);
  assert.equal(
    history.map((d: { status: string; toVersion: string }) => `${d.status} ${d.toVersion}`),
    ['succeeded v1.1.0'],
  );
  for (const h of await allHosts(env)) assert.is(h.current, 'v1.1.0');
});

test('fraisier worker runs until SIGTERM, then stops cleanly (exit 0)', async () => {
  const child = spawn(process.execPath, [bin, 'worker', '--poll', '1s'], {
    cwd: ws,
    env: { ...process.env, FRAISIER_DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  for (let i = 0; i < 1200 && !out.includes('watching the queue'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(out, 'watching the queue every 1s');
  child.kill('SIGTERM');
  assert.is(await exited, 0, out);
  assert.match(out, 'SIGTERM: stopping');
  assert.match(out, 'Worker stopped');
});

test.run();
