import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStore } from '../../../core/state/store.js';
import type { NewDeployment } from '../../../core/state/store.js';
import { appliedMigrations, migrateToLatest, migrations } from '../../../core/state/migrations.js';
import { each } from '../../support/backends.js';

const DAY = 86_400_000;
const tmpDirs: string[] = [];
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-state-'));
  tmpDirs.push(dir);
  return dir;
}

/** A settable clock. */
function fakeClock(start: number): { now: () => number; set(t: number): void; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    set: (v) => {
      t = v;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

function dep(over: Partial<NewDeployment> = {}): NewDeployment {
  return {
    fraise: 'api',
    environment: 'production',
    kind: 'deploy',
    strategy: 'rolling',
    fromVersion: null,
    toVersion: 'v1',
    user: 'alice',
    host: 'box',
    ...over,
  };
}

const mode = (p: string): number => fs.statSync(p).mode & 0o777;

test.after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

test('[sqlite] creates the directory 0700 and the file 0600, WAL included', async () => {
  const root = tmp();
  const file = path.join(root, 'nested', 'state', 'fraisier.db');
  const store = await openStore({ path: file });
  await store.recordDeployment(dep());
  assert.is(mode(path.dirname(file)), 0o700);
  assert.is(mode(path.join(root, 'nested')), 0o700);
  assert.is(mode(file), 0o600);
  assert.ok(fs.existsSync(`${file}-wal`), 'WAL journal in use');
  assert.is(mode(`${file}-wal`), 0o600);
  const jm = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
  assert.is(jm.rows[0]?.journal_mode, 'wal');
  const bt = await sql<{ timeout: number }>`pragma busy_timeout`.execute(store.db);
  assert.is(bt.rows[0]?.timeout, 5000);
  await store.close();
});

test('[sqlite] narrows an existing world-readable file to 0600 and leaves an existing directory alone', async () => {
  const root = tmp();
  fs.chmodSync(root, 0o755);
  const file = path.join(root, 'state.db');
  fs.writeFileSync(file, '');
  fs.chmodSync(file, 0o644);
  const store = await openStore({ path: file });
  assert.is(mode(file), 0o600);
  assert.is(mode(root), 0o755);
  await store.close();
});

each('migrations are idempotent on reopen and data survives', async (b) => {
  const location = await b.fresh();
  const s1 = await openStore(b.options(location));
  assert.equal(await appliedMigrations(s1.db), Object.keys(migrations('sqlite')).sort());
  const id = await s1.recordDeployment(dep({ toVersion: 'v7' }));
  await s1.close();

  const s2 = await openStore(b.options(location));
  assert.equal(await appliedMigrations(s2.db), Object.keys(migrations('sqlite')).sort());
  assert.equal(await migrateToLatest(s2.db, b.name), [], 'nothing left to run');
  assert.is((await s2.deployment(id))?.toVersion, 'v7');
  const tables = await s2.db.introspection.getTables();
  assert.equal(tables.map((t) => t.name).sort(), [
    'canaries',
    'deployments',
    'events',
    'fraisier_migration',
    'fraisier_migration_lock',
    'locks',
    'queue',
    'targets',
    'webhook_deliveries',
  ]);
  await s2.close();
});

each('indexes exist', async (b) => {
  const store = await b.open();
  assert.equal(await b.indexes(store), [
    'canaries_fraise_environment_state',
    'deployments_fraise_environment_id',
    'deployments_started_at',
    'events_deployment_id',
    'queue_status_due_at',
    'targets_deployment_id_target',
  ]);
  await store.close();
});

each('the canary record: saved open, updated, found open, closed promoted or aborted with its deployment row', async (b) => {
  const store = await b.open();
  const id = await store.recordDeployment(dep({ toVersion: 'v2' }));
  await store.finishDeployment(id, { status: 'canary' });
  assert.is(await store.openCanary('api', 'production'), null);
  const rec = {
    deploymentId: id,
    fraise: 'api',
    environment: 'production',
    version: 'v2',
    stableVersion: 'v1',
    canaryHosts: ['h1'],
    step: 0,
    weight: 10,
    verdicts: ['a'],
  };
  await store.saveCanary(rec);
  await store.saveCanary({ ...rec, step: 1, weight: 50, verdicts: ['a', 'b'] });
  const open = await store.openCanary('api', 'production');
  assert.equal({ ...open, startedAt: 0, updatedAt: 0 }, { ...rec, step: 1, weight: 50, verdicts: ['a', 'b'], state: 'open', startedAt: 0, updatedAt: 0 });
  assert.is(await store.currentVersion('api', 'production'), null, 'a deployment in canary is not the live release');
  await store.closeCanary('api', 'production', 'promoted');
  assert.is(await store.openCanary('api', 'production'), null);
  assert.is((await store.canary(id))?.state, 'promoted');
  assert.is((await store.deployment(id))?.status, 'succeeded');
  assert.is(await store.currentVersion('api', 'production'), 'v2');

  const id2 = await store.recordDeployment(dep({ toVersion: 'v3' }));
  await store.finishDeployment(id2, { status: 'canary' });
  await store.saveCanary({ ...rec, deploymentId: id2, version: 'v3', stableVersion: 'v2' });
  await store.closeCanary('api', 'production', 'aborted');
  assert.is((await store.deployment(id2))?.status, 'rolled_back');
  assert.is(await store.currentVersion('api', 'production'), 'v2');
  await store.close();
});

each('recordDeployment / finishDeployment: running, then status, finishedAt and duration from the clock', async (b) => {
  const clock = fakeClock(1_000_000);
  const store = await b.open({ now: clock.now });
  const id = await store.recordDeployment(dep({ fromVersion: 'v0', toVersion: 'v1' }));
  let d = await store.deployment(id);
  assert.is(d?.status, 'running');
  assert.is(d?.startedAt, 1_000_000);
  assert.is(d?.finishedAt, null);
  assert.is(d?.durationMs, null);
  assert.is(d?.fromVersion, 'v0');
  clock.advance(4321);
  await store.finishDeployment(id, { status: 'failed', error: 'health check failed on web-2' });
  d = await store.deployment(id);
  assert.is(d?.status, 'failed');
  assert.is(d?.finishedAt, 1_004_321);
  assert.is(d?.durationMs, 4321);
  assert.is(typeof d?.durationMs, 'number');
  assert.is(d?.error, 'health check failed on web-2');
  try {
    await store.finishDeployment(9999, { status: 'succeeded' });
    assert.unreachable('should throw for an unknown id');
  } catch (e) {
    assert.match((e as Error).message, /no deployment with id 9999/);
  }
  assert.is(await store.deployment(9999), undefined);
  await store.close();
});

each('history: newest first, filtered by fraise and environment, limited (default 20)', async (b) => {
  const store = await b.open();
  const ids: Record<string, number[]> = {};
  for (let i = 0; i < 25; i++) {
    const fraise = i % 2 === 0 ? 'api' : 'worker';
    const environment = i % 3 === 0 ? 'staging' : 'production';
    const id = await store.recordDeployment(dep({ fraise, environment, toVersion: `v${i}` }));
    const list = ids[`${fraise}/${environment}`] ?? [];
    ids[`${fraise}/${environment}`] = list;
    list.push(id);
  }
  const all = await store.history();
  assert.is(all.length, 20);
  assert.is(all[0]?.toVersion, 'v24');
  assert.ok(
    all.every((d, i) => i === 0 || all[i - 1]!.id > d.id),
    'strictly decreasing ids',
  );

  const api = await store.history({ fraise: 'api', limit: 100 });
  assert.is(api.length, 13);
  assert.ok(api.every((d) => d.fraise === 'api'));

  const apiStaging = await store.history({ fraise: 'api', environment: 'staging', limit: 100 });
  assert.equal(
    apiStaging.map((d) => d.id),
    [...ids['api/staging']!].reverse(),
  );

  const top3 = await store.history({ environment: 'production', limit: 3 });
  assert.equal(
    top3.map((d) => d.toVersion),
    ['v23', 'v22', 'v20'],
  );
  await store.close();
});

each('targets: phases round-trip as numbers, upsert by (deployment, target); events in order', async (b) => {
  const clock = fakeClock(5000);
  const store = await b.open({ now: clock.now });
  const id = await store.recordDeployment(dep());
  const other = await store.recordDeployment(dep({ toVersion: 'v2' }));
  await store.recordTarget(id, {
    target: 'web-1',
    fromVersion: 'v0',
    toVersion: 'v1',
    status: 'failed',
    phases: { prepare: 812, activate: 95 },
    error: 'boom',
  });
  await store.recordTarget(id, { target: 'web-2', fromVersion: 'v0', toVersion: null, status: 'untouched', phases: {}, error: null });
  // same target again: replaces, stays in place
  await store.recordTarget(id, {
    target: 'web-1',
    fromVersion: 'v0',
    toVersion: 'v0',
    status: 'rolled_back',
    phases: { prepare: 812, activate: 95, health: 410, rollback: 300 },
    error: 'health: 503',
  });
  await store.recordTarget(other, { target: 'web-1', fromVersion: 'v1', toVersion: 'v2', status: 'succeeded', phases: { prepare: 1 }, error: null });
  await store.recordEvent(id, { level: 'info', message: 'starting' });
  clock.advance(10);
  await store.recordEvent(id, { level: 'error', target: 'web-1', message: 'health check failed' });

  const d = await store.deployment(id);
  assert.equal(d?.targets, [
    {
      target: 'web-1',
      fromVersion: 'v0',
      toVersion: 'v0',
      status: 'rolled_back',
      phases: { prepare: 812, activate: 95, health: 410, rollback: 300 },
      error: 'health: 503',
    },
    { target: 'web-2', fromVersion: 'v0', toVersion: null, status: 'untouched', phases: {}, error: null },
  ]);
  assert.equal(
    d?.events.map(({ id: _id, ...e }) => e),
    [
      { deploymentId: id, at: 5000, level: 'info', target: null, message: 'starting' },
      { deploymentId: id, at: 5010, level: 'error', target: 'web-1', message: 'health check failed' },
    ],
  );
  assert.equal(
    (await store.deployment(other))?.targets.map((t) => t.status),
    ['succeeded'],
  );
  await store.close();
});

each('currentVersion / previousVersion follow succeeded deployments of either kind', async (b) => {
  const store = await b.open();
  const run = async (toVersion: string, status: 'succeeded' | 'failed' | 'rolled_back', over: Partial<NewDeployment> = {}) => {
    const id = await store.recordDeployment(dep({ toVersion, ...over }));
    await store.finishDeployment(id, { status });
  };
  assert.is(await store.currentVersion('api', 'production'), null);
  assert.is(await store.previousVersion('api', 'production'), null);
  await run('v1', 'succeeded');
  assert.is(await store.currentVersion('api', 'production'), 'v1');
  assert.is(await store.previousVersion('api', 'production'), null);
  await run('v2', 'succeeded');
  await run('v2', 'succeeded'); // redeploy of the same version
  await run('v3', 'failed');
  await run('v4', 'rolled_back');
  await store.recordDeployment(dep({ toVersion: 'v5' })); // still running
  await run('v9', 'succeeded', { environment: 'staging' });
  await run('v9', 'succeeded', { fraise: 'worker' });
  assert.is(await store.currentVersion('api', 'production'), 'v2');
  assert.is(await store.previousVersion('api', 'production'), 'v1');
  // a rollback to v1 makes v1 current; v2 was rolled back from, so nothing is before v1 (issue 12 §1:
  // a second rollback never goes forward again)
  await run('v1', 'succeeded', { kind: 'rollback', fromVersion: 'v2' });
  assert.is(await store.currentVersion('api', 'production'), 'v1');
  assert.is(await store.previousVersion('api', 'production'), null);
  assert.is(await store.currentVersion('api', 'staging'), 'v9');
  assert.is(await store.previousVersion('api', 'staging'), null);
  await store.close();
});

each('previousVersion follows the chain: v1 → v2 → v3, rollback gives v2, then v1, then nothing', async (b) => {
  const store = await b.open();
  const run = async (toVersion: string, status: 'succeeded' | 'failed' | 'rolled_back', over: Partial<NewDeployment> = {}) => {
    const id = await store.recordDeployment(dep({ toVersion, ...over }));
    await store.finishDeployment(id, { status });
  };
  const rollback = (to: string, from: string, status: 'succeeded' | 'rolled_back' = 'succeeded') => run(to, status, { kind: 'rollback', fromVersion: from });
  const prev = () => store.previousVersion('api', 'production');
  await run('v1', 'succeeded');
  await run('v2', 'succeeded');
  await run('v3', 'succeeded');
  assert.is(await prev(), 'v2');
  await rollback('v2', 'v3');
  assert.is(await store.currentVersion('api', 'production'), 'v2');
  assert.is(await prev(), 'v1');
  await rollback('v1', 'v2');
  assert.is(await store.currentVersion('api', 'production'), 'v1');
  assert.is(await prev(), null);
  assert.equal(await store.releaseChain('api', 'production'), { stack: ['v1'], rolledBack: ['v3', 'v2'], previous: null });

  // a failed rollback changes nothing
  await run('v4', 'succeeded');
  await rollback('v1', 'v4', 'rolled_back');
  assert.is(await prev(), 'v1');
  // a deploy that was rolled back is never picked, even once another release followed it
  await run('v5', 'rolled_back');
  await run('v6', 'succeeded');
  assert.is(await prev(), 'v4');
  await rollback('v4', 'v6');
  assert.is(await prev(), 'v1');
  // a release rolled back from is picked again only after a later deploy of it succeeded
  await run('v6', 'succeeded');
  await run('v7', 'succeeded');
  assert.is(await prev(), 'v6');
  // a rollback --to a release outside the chain takes the live one's place
  await rollback('v0', 'v7');
  assert.is(await store.currentVersion('api', 'production'), 'v0');
  assert.is(await prev(), 'v6');
  // other environments have their own chain
  assert.is(await store.previousVersion('api', 'staging'), null);
  await store.close();
});

each('stats: counts, rates, mean and nearest-rank p95 on a known data set', async (b) => {
  const T0 = Date.UTC(2026, 0, 1);
  const clock = fakeClock(T0);
  const store = await b.open({ now: clock.now });
  const finished = async (over: Partial<NewDeployment>, ms: number, status: 'succeeded' | 'failed' | 'rolled_back' | 'cancelled') => {
    const id = await store.recordDeployment(dep(over));
    clock.advance(ms);
    await store.finishDeployment(id, { status });
    clock.advance(1000);
  };
  // 40 days ago: outside the default 30-day window
  await finished({}, 99_999, 'failed');
  clock.set(T0 + 40 * DAY);
  // 20 'api' deploys, durations 100..2000 ms in a shuffled order; 16 succeeded, 2 failed, 2 rolled back
  const durations = [700, 1900, 100, 1300, 2000, 400, 1100, 300, 1600, 800, 200, 1500, 900, 1800, 500, 1200, 600, 1700, 1000, 1400];
  const statuses = durations.map((_, i) => (i === 3 || i === 8 ? 'failed' : i === 5 || i === 13 ? 'rolled_back' : 'succeeded'));
  for (let i = 0; i < durations.length; i++) await finished({ toVersion: `v${i}` }, durations[i]!, statuses[i] as 'succeeded');
  // not counted: a rollback, one still running, and one a person cancelled
  await finished({ kind: 'rollback' }, 50_000, 'succeeded');
  await finished({ toVersion: 'cancelled' }, 60_000, 'cancelled');
  await store.recordDeployment(dep({ toVersion: 'running' }));
  // another fraise, in another environment
  await finished({ fraise: 'worker', environment: 'staging' }, 3000, 'succeeded');
  await finished({ fraise: 'worker', environment: 'staging' }, 5000, 'rolled_back');

  const stats = await store.stats();
  assert.equal(stats, [
    {
      fraise: 'api',
      total: 20,
      succeeded: 16,
      failed: 2,
      rolledBack: 2,
      successRate: 0.8,
      rollbackRate: 0.1,
      meanMs: 1050,
      p95Ms: 1900, // ceil(0.95 * 20) = 19th smallest
    },
    { fraise: 'worker', total: 2, succeeded: 1, failed: 0, rolledBack: 1, successRate: 0.5, rollbackRate: 0.5, meanMs: 4000, p95Ms: 5000 },
  ]);
  assert.equal(
    (await store.stats({ fraise: 'worker' })).map((s) => s.fraise),
    ['worker'],
  );
  const wide = await store.stats({ fraise: 'api', days: 60 });
  assert.is(wide[0]?.total, 21);
  assert.is(wide[0]?.failed, 3);
  assert.is(wide[0]?.p95Ms, 2000); // ceil(0.95 * 21) = 20th smallest of 100..2000, 99999
  assert.equal(await store.stats({ fraise: 'nope' }), []);
  await store.close();
});

each('stats: p95 of a single deployment is that deployment; mean null when no duration', async (b) => {
  const clock = fakeClock(10_000);
  const store = await b.open({ now: clock.now });
  const id = await store.recordDeployment(dep());
  clock.advance(777);
  await store.finishDeployment(id, { status: 'succeeded' });
  await store.recordDeployment(dep({ fraise: 'etl' }));
  clock.advance(10);
  assert.is(await store.reapInterrupted('etl', 'production'), 1);
  const stats = await store.stats();
  assert.equal(
    stats.map((s) => [s.fraise, s.total, s.failed, s.meanMs, s.p95Ms]),
    [
      ['api', 1, 0, 777, 777],
      ['etl', 1, 1, null, null],
    ],
  );
  await store.close();
});

test.run();
