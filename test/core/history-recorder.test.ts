/**
 * The history while a deployment runs (issue 9 §4, HistoryRecorder): each target's row is written as soon
 * as that target is done, so `fraisier history`/`status-all` readers see the hosts done and the hosts left
 * before the deployment ends; the final rows still win (a target rolled back at the end is not shown as
 * succeeded).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StateStore } from '../../core/state/store.js';
import { recordedDeployer } from '../support/recorded-hosts.js';

const setup = (unhealthy: string[] = []) => recordedDeployer({ hosts: ['h1', 'h2', 'h3'], unhealthy });

/** The target rows of the one running deployment, as another reader of the store sees them. */
async function rowsNow(store: StateStore): Promise<Record<string, string>> {
  const [running] = await store.history({ fraise: 'api', environment: 'production', limit: 1 });
  const d = await store.deployment(running!.id);
  return Object.fromEntries(d!.targets.map((t) => [t.target, t.status]));
}

test('while h3 is being deployed, the history already has h1 and h2 as succeeded, and no row for h3', async () => {
  const { deployer, store } = await setup();
  let seen: Record<string, string> | undefined;
  deployer.hooks.beforeTarget.tapPromise('probe', async (t) => {
    if (t.name === 'h3') seen = await rowsNow(store);
  });
  const result = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(result.status, 'succeeded');
  assert.equal(seen, { h1: 'succeeded', h2: 'succeeded' });
  assert.equal(await rowsNow(store), { h1: 'succeeded', h2: 'succeeded', h3: 'succeeded' });
});

test('a target that failed shows as failed at once; at the end the final rows win (h1 rolled back, h2 rolled back, h3 untouched)', async () => {
  const { deployer, store } = await setup(['h2']);
  let afterH2: Record<string, string> | undefined;
  deployer.hooks.rollback.tapPromise('probe', async () => {
    afterH2 = await rowsNow(store);
  });
  const result = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(result.status, 'rolled_back');
  assert.equal(afterH2, { h1: 'succeeded', h2: 'failed' });
  assert.equal(await rowsNow(store), { h1: 'rolled_back', h2: 'rolled_back', h3: 'untouched' });
});

test.run();
