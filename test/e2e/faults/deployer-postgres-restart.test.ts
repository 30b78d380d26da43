/**
 * Fault injection: the PostgreSQL state server restarts mid-deploy (every connection cut). A private
 * server of this test's own, so no other test's database is disturbed. The deployer's next fencing
 * check retries until the server is back (its lock, durable, is still its own), the deploy finishes,
 * and its outcome is recorded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../../lab/lab.js';
import { pgQuery, startPostgres, type PgServer } from '../../support/postgres.js';
import { lab, labYaml, resetHosts, workspace } from '../helpers.js';
import { background, cli, consistentOn, faultLine, history, lockState } from './deployer-support.js';

let env: LabEnv;
let ws: string;
let server: PgServer;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  server = await startPostgres();
  await pgQuery(server.url, 'CREATE DATABASE restart_e2e');
  const url = new URL(server.url);
  url.pathname = '/restart_e2e';
  ws = workspace(`state:\n  url: ${url}\n` + labYaml(env, { batch: 1 }).replace('batch_size: 1', 'batch_size: 1\n          wait_between_batches: 4'));
  const r = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.0.0']);
  assert.is(r.code, 0, r.out);
});

test.after(async () => {
  await server?.stop();
});

test('PostgreSQL restarted mid-deploy: the deploy goes on once it is back, succeeds, is recorded, releases the lock', async () => {
  const started = performance.now();
  const d = background(ws, ['deploy', 'app', 'production', '--version', 'v1.1.0']);
  await d.waitFor(/Waiting/);
  await server.restart();
  const { code } = await d.exited;
  assert.is(code, 0, d.out());
  assert.ok(await consistentOn(env, 'v1.1.0'), 'every host on v1.1.0');
  const [row] = await history(ws);
  assert.is(row!.toVersion, 'v1.1.0');
  assert.is(row!.status, 'succeeded', 'the history row is terminal and truthful');
  const lock = await lockState(ws);
  assert.is(lock.text, 'released');
  faultLine(
    'PostgreSQL state server restarted mid-deploy',
    'deploy continued once the server was back; succeeded',
    await consistentOn(env, 'v1.1.0'),
    lock.text,
    started,
  );

  const again = await cli(ws, ['deploy', 'app', 'production', '--version', 'v1.0.0']);
  assert.is(again.code, 0, again.out);
  assert.ok(await consistentOn(env, 'v1.0.0'), 're-run: every host on v1.0.0');
});

test.run();
