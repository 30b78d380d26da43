/**
 * End to end (issue 12 §1): `fraisier rollback` follows the chain of deployments on the lab's three hosts.
 * After v1.0.0 → v1.1.0 → v1.2.0, rollback gives v1.1.0, then v1.0.0, then E_USAGE (nothing before
 * v1.0.0, use --to); `status` and `history` agree. `rollback --to` a release whose health check fails
 * is rolled back again without `--force`, and succeeds with it (no health check).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, bin, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;

// generous: the machine may be loaded
const fraisier = (...args: string[]) => run(process.execPath, [bin, ...args], { cwd: ws, timeoutMs: 600_000 });

async function everyHost(version: string): Promise<void> {
  for (const h of await allHosts(env)) {
    assert.is(h.current, version);
    assert.is(h.serving, version);
  }
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  // all three hosts in one batch, so a failed release is on every host afterwards (for --to); 12 health
  // attempts 250 ms apart: with three test files at once on 2 cores the app can take over a second to
  // listen after its restart (3 attempts were not enough there)
  ws = workspace(labYaml(env, { batch: 3, retries: 12 }));
});

test('v1.0.0 → v1.1.0 → v1.2.0 with the fraisier command', async () => {
  for (const v of ['v1.0.0', 'v1.1.0', 'v1.2.0']) {
    const r = await fraisier('deploy', 'app', 'production', '--version', v);
    assert.is(r.code, 0, r.out);
  }
  await everyHost('v1.2.0');
});

test('rollback → v1.1.0 on every host, then rollback → v1.0.0 (never forward again)', async () => {
  const first = await fraisier('rollback', 'app', 'production');
  assert.is(first.code, 0, first.out);
  await everyHost('v1.1.0');
  const second = await fraisier('rollback', 'app', 'production');
  assert.is(second.code, 0, second.out);
  await everyHost('v1.0.0');
});

test('a third rollback: exit 2, nothing before v1.0.0, a hint to use --to; no host changes, nothing recorded', async () => {
  const before = await allHosts(env);
  const h0 = JSON.parse((await fraisier('history', '--json')).stdout).length;
  const r = await fraisier('rollback', 'app', 'production');
  assert.is(r.code, 2, r.out);
  assert.match(r.stderr, 'E_USAGE');
  assert.match(r.stderr, 'nothing before v1.0.0 to roll back to');
  assert.match(r.stderr, 'fraisier rollback app production --to VERSION');
  assert.equal(await allHosts(env), before);
  assert.is(JSON.parse((await fraisier('history', '--json')).stdout).length, h0);
});

test('status and history agree: v1.0.0 live, the chain in the history', async () => {
  const s = await fraisier('status', 'app', 'production', '--json');
  assert.is(s.code, 0, s.out);
  assert.equal(
    JSON.parse(s.stdout).targets.map((t: { current: string }) => t.current),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
  );
  const h = await fraisier('history', '--json');
  assert.is(h.code, 0, h.out);
  assert.equal(
    JSON.parse(h.stdout).map(
      (d: { kind: string; status: string; fromVersion: string | null; toVersion: string }) => `${d.kind} ${d.status} ${d.fromVersion} → ${d.toVersion}`,
    ),
    [
      'rollback succeeded v1.1.0 → v1.0.0',
      'rollback succeeded v1.2.0 → v1.1.0',
      'deploy succeeded v1.1.0 → v1.2.0',
      'deploy succeeded v1.0.0 → v1.1.0',
      'deploy succeeded null → v1.0.0',
    ],
  );
});

test('rollback --to a release failing its health check: rolled back again without --force (exit 1), done with --force (exit 0)', async () => {
  const broken = await fraisier('deploy', 'app', 'production', '--version', 'v2.0.0-broken');
  assert.is(broken.code, 1, broken.out);
  await everyHost('v1.0.0');
  const states = await allHosts(env);
  assert.ok(
    states.every((s) => s.releases.includes('v2.0.0-broken')),
    'the failed release stays on the hosts',
  );

  const plain = await fraisier('rollback', 'app', 'production', '--to', 'v2.0.0-broken');
  assert.is(plain.code, 1, plain.out);
  await everyHost('v1.0.0');

  const forced = await fraisier('rollback', 'app', 'production', '--to', 'v2.0.0-broken', '--force');
  assert.is(forced.code, 0, forced.out);
  assert.match(forced.stdout, '--force: no health checks');
  for (const h of await allHosts(env)) assert.is(h.current, 'v2.0.0-broken');
  const last = JSON.parse((await fraisier('history', '--json', '--limit', '3')).stdout);
  assert.equal(
    last.map((d: { kind: string; status: string; toVersion: string }) => `${d.kind} ${d.status} ${d.toVersion}`),
    ['rollback succeeded v2.0.0-broken', 'rollback rolled_back v2.0.0-broken', 'deploy rolled_back v2.0.0-broken'],
  );
});

test.run();
