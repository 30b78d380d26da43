/**
 * Ctrl-C during a deployment: the deployer stops after the current step, rolls back what it touched,
 * records the outcome and releases the lock.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import type { LabEnv } from '../lab/lab.js';
import { PG_PASSWORD, freshDatabase } from '../support/postgres.js';
import { allHosts, bin, fraisier, lab, labYaml, resetHosts, workspace } from './helpers.js';

let env: LabEnv;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  const first = workspace(labYaml(env, { batch: 3 }));
  const r = await fraisier(first, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

for (const store of ['sqlite', 'postgres'] as const) {
  test(`[${store}] SIGINT while waiting between batches rolls back the first host and releases the lock`, async () => {
    const state = store === 'postgres' ? `state:\n  url: ${await freshDatabase('interrupt')}\n` : '';
    const ws = workspace(state + labYaml(env).replace('batch_size: 1', 'batch_size: 1\n          wait_between_batches: 60'));
    const child = spawn(process.execPath, [bin, 'deploy', 'app', 'production', '--version', 'v1.1.0'], { cwd: ws, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const code = await new Promise<number | null>((resolve) => {
      const onData = (d: Buffer) => {
        out += d;
        if (out.includes('Waiting') && !out.includes('SENT')) {
          out += 'SENT';
          child.kill('SIGINT');
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('close', resolve);
    });
    assert.is(code, 130, `Ctrl-C exits 128 + 2 once the cleanup is done: ${out}`);
    assert.match(out, 'Interrupted (SIGINT)');
    assert.match(out, 'rolled back to v1.0.0');
    assert.equal(
      (await allHosts(env)).map((h) => h.serving),
      ['v1.0.0', 'v1.0.0', 'v1.0.0'],
    );
    const all = await fraisier(ws, 'status-all', '--json');
    assert.is(JSON.parse(all.stdout)[0].lock, null, 'lock released');
    const hist = JSON.parse((await fraisier(ws, 'history', '--json', '--limit', '1')).stdout);
    assert.is(hist[0].status, 'rolled_back');
    const everything = JSON.parse((await fraisier(ws, 'history', '--json')).stdout) as unknown[];
    assert.is(everything.length, 1, "recorded in this workspace's own store");
    assert.not.match(out, PG_PASSWORD, 'the database password is never printed');
  });
}

test.run();
