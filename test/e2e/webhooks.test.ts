/**
 * End to end (issue 12 §7) on the lab: `fraisier serve` (a child process on 127.0.0.1, a free port)
 * receives a signed GitHub push of the commit tagged v1.1.0; `fraisier worker --once` then deploys that
 * exact commit on the three hosts. A push with a bad signature is refused (401) and deploys nothing; a
 * replay of the good delivery queues nothing more; serve stops cleanly on SIGTERM.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, bin, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

const SECRET = `e2e-hook-${randomUUID()}`;
const childEnv = { FRAISIER_DATABASE_URL: '', FRAISIER_E2E_HOOK_SECRET: SECRET };
let env: LabEnv;
let ws: string;
let server: ChildProcess;
let serverOut = '';
let url = '';

// generous: the machine may be loaded
const fraisier = (...args: string[]) => run(process.execPath, [bin, ...args], { cwd: ws, env: childEnv, timeoutMs: 600_000 });

async function send(body: string, key: string, delivery: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${url}/hooks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': delivery,
      'x-hub-signature-256': `sha256=${createHmac('sha256', key).update(body).digest('hex')}`,
    },
    body,
  });
  return { status: r.status, text: await r.text() };
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(`webhooks:
  secret_env: FRAISIER_E2E_HOOK_SECRET
  routes:
    - { provider: github, repo: acme/app, branch: main, fraise: app, environment: production }
${labYaml(env, { batch: 3 })}`);
  server = spawn(process.execPath, [bin, 'serve', '--listen', '127.0.0.1:0'], {
    cwd: ws,
    env: { ...process.env, ...childEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (d) => (serverOut += d));
  server.stderr!.on('data', (d) => (serverOut += d));
  for (let i = 0; i < 1200 && !/Listening on (http:\S+)/.test(serverOut); i++) await new Promise((r) => setTimeout(r, 100));
  url = /Listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverOut)?.[1] ?? '';
  assert.ok(url, serverOut);
});

test.after(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
});

test('a signed GitHub push queues the pushed commit and worker --once deploys it; a bad signature deploys nothing; a replay queues nothing', async () => {
  const sha = execFileSync('git', ['-C', env.appRepo, 'rev-parse', 'v1.1.0^{commit}'], { encoding: 'utf8' }).trim();
  const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/app' }, pusher: { name: 'alice' } });

  const forged = await send(body, 'not-the-secret', randomUUID());
  assert.is(forged.status, 401, forged.text);
  assert.equal(JSON.parse((await fraisier('queue', '--all', '--json')).stdout), []);
  const idle = await fraisier('worker', '--once');
  assert.is(idle.code, 0, idle.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.current),
    [null, null, null],
    'the forged push deployed nothing',
  );

  const delivery = randomUUID();
  const good = await send(body, SECRET, delivery);
  assert.is(good.status, 202, good.text);
  assert.match(good.text, `app/production ${sha} (main)`);
  const replay = await send(body, SECRET, delivery);
  assert.is(replay.status, 200, replay.text);
  assert.match(replay.text, 'duplicate');
  const queued = JSON.parse((await fraisier('queue', '--json')).stdout);
  assert.equal(
    queued.map((i: { version: string; ref: string; requestedBy: string }) => [i.version, i.ref, i.requestedBy]),
    [[sha, 'main', 'webhook:github (alice)']],
  );

  const w = await fraisier('worker', '--once');
  assert.is(w.code, 0, w.out);
  assert.match(w.stdout, `queued by webhook:github (alice)`);
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.1.0', 'the hosts run the commit tagged v1.1.0');
  const history = JSON.parse((await fraisier('history', '--json')).stdout);
  assert.equal(
    history.map((d: { status: string }) => d.status),
    ['succeeded'],
  );
  assert.not.match(serverOut, SECRET, 'the secret is never printed');
});

test('serve stops cleanly on SIGTERM (exit 0)', async () => {
  const exited = new Promise<number | null>((resolve) => server.on('close', (code) => resolve(code)));
  server.kill('SIGTERM');
  assert.is(await exited, 0, serverOut);
  assert.match(serverOut, 'SIGTERM: stopping');
});

test.run();
