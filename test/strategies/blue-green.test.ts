import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import type { Plugin, Target, TrafficSwitch } from '../../core/types.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';
import { blueGreen, type BlueGreenOptions, type VerifyInfo } from '../../strategies/blue-green.js';

/** A traffic switch that remembers the live pool and every switch, in memory. */
function fakeTraffic(initial: { pool: string; targets: string[] } | null, options: { failSwitch?: boolean } = {}) {
  const switches: string[] = [];
  const events: string[] = [];
  let live = initial;
  const plugin: Plugin & TrafficSwitch = {
    name: 'plugin:fake-traffic',
    apply(d) {
      d.useTraffic(plugin);
      d.hooks.afterTarget.tap('fake', (t) => void events.push(`healthy ${t.name}`));
    },
    async livePool() {
      return live;
    },
    async switchTo(pool: string, targets: readonly Target[]) {
      if (options.failSwitch) throw new Error('nginx -t rejected the upstream');
      events.push(`switch ${pool}`);
      switches.push(pool);
      live = { pool, targets: targets.map((t) => t.name) };
    },
    addressOf: (t: Target) => `10.9.0.${t.name.slice(1)}:8000`,
  };
  return { plugin, switches, events, live: () => live };
}

async function setup(
  opts: {
    live?: { pool: string; targets: string[] } | null;
    unhealthy?: string[];
    traffic?: boolean;
    failSwitch?: boolean;
    bg?: Partial<BlueGreenOptions>;
  } = {},
) {
  const { provider, live, activations } = recordedBareMetal({
    hosts: ['h1', 'h2', 'h3'],
    appPath: '/srv/api',
    program: 'api',
    ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}),
  });
  const traffic = fakeTraffic(opts.live === undefined ? { pool: 'green', targets: ['h2', 'h3'] } : opts.live, { failSwitch: opts.failSwitch ?? false });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: blueGreen({ blue: ['h1'], green: ['h2', 'h3'], ...opts.bg }),
    health: { checks: [exec('health-probe')], retries: 2, retryDelay: '1s' },
    plugins: opts.traffic === false ? [] : [traffic.plugin],
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  return { deployer, live, activations, traffic, entries, store };
}

test('deploys to the idle colour only, then verifies, then switches once; the live colour is never touched', async () => {
  const seen: VerifyInfo[] = [];
  const { deployer, activations, traffic, live } = await setup({
    bg: {
      verify: async (info) => {
        traffic.events.push('verify');
        seen.push(info);
      },
    },
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(activations(), ['h1:v1.1.0'], 'only blue (idle) was activated');
  assert.equal(
    [...live.entries()],
    [
      ['h1', 'v1.1.0'],
      ['h2', 'v1.0.0'],
      ['h3', 'v1.0.0'],
    ],
  );
  assert.equal(traffic.events, ['healthy h1', 'verify', 'switch blue'], 'health, then verification, then the switch');
  assert.equal(traffic.live(), { pool: 'blue', targets: ['h1'] });
  assert.is(seen[0]!.colour, 'blue');
  assert.equal(seen[0]!.urls, ['http://10.9.0.1:8000']);
  assert.is(seen[0]!.version, 'v1.1.0');
  assert.equal(
    r.targets.map((t) => t.status),
    ['healthy', 'pending', 'pending'],
  );
  assert.ok(typeof r.targets[0]!.phases['switch'] === 'number', 'switch time recorded on the idle targets');
});

test('no live colour recorded: the first deploy goes to blue and switches to it', async () => {
  const { deployer, activations, traffic, entries } = await setup({ live: null });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(activations(), ['h1:v1.1.0']);
  assert.equal(traffic.switches, ['blue']);
  assert.ok(entries.some((e) => /No live colour recorded yet/.test(e.message)));
});

test('an idle colour that fails its health check: no switch, the idle colour is rolled back, live untouched', async () => {
  const { deployer, activations, traffic, live } = await setup({ live: { pool: 'blue', targets: ['h1'] }, unhealthy: ['h3'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.is(r.error!.code, 'E_HEALTH');
  assert.equal(traffic.switches, [], 'no switch');
  assert.equal(traffic.live(), { pool: 'blue', targets: ['h1'] });
  assert.ok(!activations().some((a) => a.startsWith('h1:')), 'blue (live) never touched');
  assert.equal(live.get('h2'), 'v1.0.0');
  assert.equal(live.get('h3'), 'v1.0.0');
});

test('a failing verification: no switch, and the idle colour goes back to its release', async () => {
  const { deployer, traffic, live } = await setup({
    bg: {
      verify: async () => {
        throw new Error('e2e: GET /orders returned 500');
      },
    },
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, 'verification of blue failed: e2e: GET /orders returned 500');
  assert.equal(traffic.switches, []);
  assert.equal(live.get('h1'), 'v1.0.0');
});

test('a verification command gets the idle URLs and colour; a non-zero exit stops the switch', async () => {
  const { deployer, traffic, entries } = await setup({
    bg: { verify: 'echo "checking $FRAISIER_IDLE_COLOUR at $FRAISIER_IDLE_URLS for $FRAISIER_VERSION"; exit 7' },
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, /verification command failed \(exit 7\)/);
  assert.ok(
    entries.some((e) => e.message === 'verify: checking blue at http://10.9.0.1:8000 for v1.1.0'),
    entries.map((e) => e.message).join('\n'),
  );
  assert.equal(traffic.switches, []);
});

test('a verification command past its timeout is killed with what it started, and nothing is switched', async () => {
  const pidFile = join(mkdtempSync(join(tmpdir(), 'fraisier-bg-')), 'child.pid');
  const { deployer, traffic } = await setup({ bg: { verify: `sleep 30 & echo $! > ${pidFile}; sleep 30`, verifyTimeout: '300ms' } });
  const started = Date.now();
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.ok(Date.now() - started < 10_000, 'did not wait for the command');
  const child = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(child > 0);
  await new Promise((res) => setTimeout(res, 100));
  // Gone, or a zombie waiting for its reaper: either way it no longer runs.
  const state = existsSync(`/proc/${child}/stat`) ? readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]![0] : 'gone';
  assert.ok(state === 'gone' || state === 'Z', `the process the command started in the background is not running (state ${state})`);
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, /timed out after 300 ms/);
  assert.equal(traffic.switches, []);
});

test('an idle colour already on the release is only health-checked (no restart) before the switch: the instant rollback path', async () => {
  const { deployer, activations, traffic, live } = await setup();
  live.set('h1', 'v1.1.0');
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(activations(), [], 'no switch of current, no restart');
  assert.equal(traffic.switches, ['blue']);
  assert.equal(r.targets[0]!.toVersion, 'v1.1.0');
});

test('a switch that fails leaves the live colour as it was and rolls the idle colour back', async () => {
  const { deployer, traffic, live } = await setup({ failSwitch: true });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, 'nginx -t rejected');
  assert.equal(traffic.live(), { pool: 'green', targets: ['h2', 'h3'] });
  assert.equal(live.get('h1'), 'v1.0.0');
});

test('without a traffic plugin, or with colours that do not split the targets: a clear error, no host changed', async () => {
  const a = await setup({ traffic: false });
  const r = await a.deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, 'blue-green needs a traffic plugin');
  assert.equal(a.activations(), []);
  const b = await setup({ bg: { green: ['h2'] } });
  const r2 = await b.deployer.deploy({ version: 'v1.1.0' });
  assert.match(r2.error!.message, 'in no colour: h3');
  assert.equal(b.activations(), []);
  assert.throws(() => blueGreen({ blue: ['h1'], green: ['h1'] }), /h1 cannot be both blue and green/);
  assert.throws(() => blueGreen({ blue: [], green: ['h1'] }), /blue must list at least one target/);
});

test.run();
