/** The result table and `status` never claim a release a host may not run; one row per host with its own result. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatResult, formatStatus } from '../../core/report.js';
import type { DeployResult } from '../../core/types.js';

const target = (name: string, over: Partial<DeployResult['targets'][number]>): DeployResult['targets'][number] => ({
  name,
  status: 'healthy',
  fromVersion: 'v1.0.0',
  toVersion: 'v1.1.0',
  phases: {},
  error: null,
  ...over,
});

test('result table: an unreachable host whose rollback failed is "unknown", one read afterwards shows what it runs', () => {
  const r: DeployResult = {
    id: 1,
    fraise: 'app',
    environment: 'production',
    kind: 'deploy',
    status: 'failed',
    fromVersion: 'v1.0.0',
    toVersion: 'v1.1.0',
    durationMs: 1000,
    dryRun: false,
    error: { code: 'E_UNREACHABLE', message: 'lost the SSH connection to h2 during switch to v1.1.0 and restart: Keepalive timeout' },
    targets: [
      target('h1', { status: 'rolled_back' }),
      target('h2', { status: 'rollback_failed', toVersion: null, finalVersion: null }),
      target('h3', { status: 'rollback_failed', finalVersion: 'v1.1.0' }),
      target('h4', { status: 'rollback_failed', toVersion: null, finalVersion: 'v1.1.0' }),
      target('h5', { status: 'pending', toVersion: null }),
    ],
  };
  const lines = formatResult(r).split('\n');
  assert.match(lines.find((l) => l.startsWith('h1'))!, /rolled_back\s+v1\.0\.0 → v1\.1\.0/);
  assert.match(lines.find((l) => l.startsWith('h2'))!, /rollback_failed\s+v1\.0\.0 → unknown/);
  assert.match(lines.find((l) => l.startsWith('h3'))!, /v1\.0\.0 → v1\.1\.0\s/);
  assert.match(lines.find((l) => l.startsWith('h4'))!, /v1\.0\.0 → v1\.1\.0\s/);
  assert.match(lines.find((l) => l.startsWith('h5'))!, /untouched\s+v1\.0\.0 → -/);
});

test('status: one row per host; the unreachable one is unknown with its own error, the others ok', () => {
  const out = formatStatus({
    fraise: 'app',
    environment: 'production',
    version: 'v1.0.0',
    lock: null,
    targets: [
      { name: 'h1', reachable: true, current: 'v1.0.0', releases: ['v1.0.0'], error: null },
      { name: 'h2', reachable: false, current: null, releases: [], error: 'cannot connect to h2 (10.0.0.12:22): connect ECONNREFUSED' },
      { name: 'h3', reachable: true, current: 'v1.0.0', releases: ['v1.0.0'], error: null },
    ],
  });
  assert.match(out, /h1\s+v1\.0\.0\s+v1\.0\.0\s+ok\n/);
  assert.match(out, /h2\s+unknown\s+-\s+unreachable: cannot connect to h2 /);
  assert.match(out, /h3\s+v1\.0\.0\s+v1\.0\.0\s+ok\n/);
  assert.match(out, '1 of 3 target(s) unreachable: h2');
  assert.is(out.match(/cannot connect to h2/g)!.length, 1, 'only h2 is blamed');
});

test.run();
