/**
 * `rollback` through the real Deployer over recorded hosts (issue 12 §1): a plain rollback follows the
 * chain of deployments backwards and never goes forward again; `--force` skips the health checks, and
 * without it a rollback to a release that fails its health check is rolled back again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FraisierError } from '../../core/errors.js';
import { Locks } from '../../core/state/lock.js';
import { recordedDeployer } from '../support/recorded-hosts.js';

/** Hosts in `unhealthy` fail the health check while they run v1.1.0. */
const setup = (unhealthy: string[] = []) => recordedDeployer({ hosts: ['h1', 'h2'], unhealthy });

/** Records succeeded deploys of `versions` (the recorded hosts resolve every ref to v1.1.0) and puts every host on the last. */
async function deployed(ctx: Awaited<ReturnType<typeof setup>>, versions: string[]): Promise<void> {
  let from: string | null = null;
  for (const v of versions) {
    const id = await ctx.store.recordDeployment({
      fraise: 'api',
      environment: 'production',
      kind: 'deploy',
      strategy: 'rolling',
      fromVersion: from,
      toVersion: v,
      user: 'u',
      host: 'h',
    });
    await ctx.store.finishDeployment(id, { status: 'succeeded' });
    from = v;
  }
  for (const h of ctx.live.keys()) ctx.live.set(h, versions.at(-1)!);
}

test('v1 → v2 → v3: rollback gives v2, then v1, then E_USAGE naming v1 with a hint to use --to; nothing changes on the third', async () => {
  const ctx = await setup();
  const { deployer, live, store, activations } = ctx;
  await deployed(ctx, ['v1.0.0', 'v1.1.0', 'v1.2.0']);
  const first = await deployer.rollback();
  assert.is(first.status, 'succeeded');
  assert.equal([...live.values()], ['v1.1.0', 'v1.1.0']);
  const second = await deployer.rollback();
  assert.is(second.status, 'succeeded');
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0'], 'the second rollback goes further back, not forward to v1.2.0');
  const before = activations().length;
  try {
    await deployer.rollback();
    assert.unreachable('a third rollback has nothing to go back to');
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_USAGE');
    assert.match((err as FraisierError).message, 'nothing before v1.0.0 to roll back to');
    assert.match((err as FraisierError).hint ?? '', 'fraisier rollback api production --to VERSION');
  }
  assert.is(activations().length, before, 'no host touched');
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0']);
  assert.equal(
    (await store.history()).map((d) => [d.kind, d.status, d.fromVersion, d.toVersion]),
    [
      ['rollback', 'succeeded', 'v1.1.0', 'v1.0.0'],
      ['rollback', 'succeeded', 'v1.2.0', 'v1.1.0'],
      ['deploy', 'succeeded', 'v1.1.0', 'v1.2.0'],
      ['deploy', 'succeeded', 'v1.0.0', 'v1.1.0'],
      ['deploy', 'succeeded', null, 'v1.0.0'],
    ],
  );
  assert.is(await new Locks(store).get('api', 'production'), undefined);
});

test('rollback --to a release failing its health check, without --force: rolled back again to the live release, exit status rolled_back', async () => {
  const ctx = await setup(['h1']);
  const { deployer, live } = ctx;
  await deployed(ctx, ['v1.0.0', 'v1.2.0']);
  const r = await deployer.rollback({ to: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.equal([...live.values()], ['v1.2.0', 'v1.2.0']);
});

test('rollback --force --to the same failing release: no health check, succeeds, every host on it', async () => {
  const ctx = await setup(['h1']);
  const { deployer, live, activations, entries } = ctx;
  await deployed(ctx, ['v1.0.0', 'v1.2.0']);
  const r = await deployer.rollback({ to: 'v1.1.0', force: true });
  assert.is(r.status, 'succeeded');
  assert.equal([...live.values()], ['v1.1.0', 'v1.1.0']);
  assert.equal(activations().slice(-2), ['h1:v1.1.0', 'h2:v1.1.0']);
  assert.ok(
    entries.some((e) => e.message.includes('--force: no health checks')),
    'says the health checks are skipped',
  );
});

test.run();
