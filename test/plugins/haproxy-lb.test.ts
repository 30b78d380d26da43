import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { RecordingExecutor } from '../../core/exec/recording.js';
import { openStore } from '../../core/state/store.js';
import { activated, recordedBareMetal } from '../support/recorded-hosts.js';
import { rolling } from '../../strategies/rolling.js';
import { blueGreen } from '../../strategies/blue-green.js';
import { haproxyLb, parsePoolFile, parseServersState, type HaproxyLbOptions } from '../../plugins/haproxy-lb.js';
import { haproxyLbScripts } from '../../plugins/haproxy-lb.scripts.js';
import { shC } from '../support/shellcheck.js';

const SOCKET = '/run/haproxy/admin.sock';
const HEADER =
  '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n';
/** Whole commands the plugin runs on the HAProxy host (the scripts themselves: test/plugins/scripts.test.ts). */
const runtime = (apiLine: string) => shC(haproxyLbScripts['RUNTIME']!, 'fraisier-haproxy', 'socat', SOCKET, apiLine);
const READ_POOL = shC(haproxyLbScripts['READ']!, 'fraisier-haproxy', '/run/haproxy/fraisier-app.pool');
const ADMIN = { ready: 0, drain: 8, maint: 1 } as const;

/** `show servers state app` as HAProxy 2.6 prints it, for the given admin states. */
function statesText(admin: Record<string, keyof typeof ADMIN>): string {
  return (
    HEADER +
    Object.entries(admin)
      .map(([name, a], i) => `3 app ${i + 1} ${name} 10.200.0.1${i + 1} 2 ${ADMIN[a]} 1 1 5 1 0 2 0 0 0 0 - 8000 - 0 0 - - 0`)
      .join('\n') +
    '\n\n'
  );
}

/** The runtime-API line of a recorded haproxy command (the script's third positional parameter), or null. */
const line = (l: RecordingExecutor['log'][number]) =>
  l.command.label?.startsWith('haproxy: ') && !l.command.label.startsWith('haproxy: wait') ? String(l.command.steps[0]![6]) : null;

async function setup(
  opts: { unhealthy?: string[]; blueGreen?: boolean; admin?: Record<string, keyof typeof ADMIN>; pool?: string; haproxy?: Partial<HaproxyLbOptions> } = {},
) {
  const { provider, live, log, executors } = recordedBareMetal({
    hosts: ['h1', 'h2', 'h3'],
    appPath: '/srv/app',
    program: 'app',
    ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}),
  });
  const lb = new RecordingExecutor('lb', { log });
  lb.on((t) => t.includes('show cli level'), { stdout: 'admin\n\n' });
  lb.on((t) => t.includes('show servers state'), { stdout: statesText(opts.admin ?? { h1: 'ready', h2: 'ready', h3: 'ready' }) });
  lb.on((t) => t.includes('cat "$1"'), { stdout: opts.pool ?? '' });
  lb.on((t) => t.includes('show stat'), { stdout: 'drained\n' });
  const plugin = haproxyLb({ socket: SOCKET, connect: async () => lb, ...opts.haproxy });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'app',
    environment: 'production',
    provider,
    strategy: opts.blueGreen ? blueGreen({ blue: ['h1'], green: ['h2', 'h3'] }) : rolling({ batchSize: 1 }),
    health: { checks: [exec('health-probe')], retries: 2, retryDelay: '1s' },
    plugins: [plugin],
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  return { deployer, plugin, lb, log, live, entries, executors };
}

/** The story of a deployment: every runtime-API line, pool file write, and host switch, in order. */
function story(log: RecordingExecutor['log']): string[] {
  const out: string[] = [];
  for (const l of log) {
    const label = l.command.label ?? '';
    if (l.target === 'lb' && label.startsWith('haproxy: wait')) out.push(label.slice('haproxy: '.length));
    else if (l.target === 'lb' && label.startsWith('write ')) out.push(`write ${l.command.steps[0]![5]}`);
    else if (l.target === 'lb' && line(l) !== null) out.push(line(l)!);
    else if (activated(l, '/srv/app')) out.push(`${l.target}:${activated(l, '/srv/app')}`);
  }
  return out;
}

const PREFLIGHT = ['show cli level', 'show servers state app'];

test('parseServersState and parsePoolFile read what HAProxy 2.6 and the plugin write', () => {
  assert.equal(parseServersState(statesText({ h1: 'ready', h2: 'drain', h3: 'maint' })), [
    { name: 'h1', address: '10.200.0.11:8000', op: 2, admin: 0, weight: 1, iweight: 1 },
    { name: 'h2', address: '10.200.0.12:8000', op: 2, admin: 8, weight: 1, iweight: 1 },
    { name: 'h3', address: '10.200.0.13:8000', op: 2, admin: 1, weight: 1, iweight: 1 },
  ]);
  assert.equal(parsePoolFile('{"pool":"green","targets":["h2","h3"]}\n'), { pool: 'green', targets: ['h2', 'h3'] });
  assert.is(parsePoolFile(''), null);
  assert.is(parsePoolFile('garbage'), null);
});

test('bad options are refused with the key: relative socket, names with shell or CLI metacharacters', () => {
  assert.throws(() => haproxyLb({ socket: 'admin.sock' }), /socket must be an absolute path/);
  assert.throws(() => haproxyLb({ socket: '/run/a b.sock' }), /socket must be an absolute path/);
  assert.throws(() => haproxyLb({ socket: SOCKET, backend: 'app; shutdown sessions' }), /invalid backend/);
  assert.throws(() => haproxyLb({ socket: SOCKET, servers: { h1: 'a/b' } }), /invalid server of h1/);
  assert.throws(() => haproxyLb({ socket: SOCKET, socat: 'socat; rm -rf /' }), /invalid socat binary/);
});

test('a 3-host rolling deploy drains each server, waits for its sessions, switches it, then sets it ready: no reload', async () => {
  const { deployer, lb, log, entries } = await setup();
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(story(log), [
    ...PREFLIGHT,
    'set server app/h1 state drain',
    'wait for app/h1 to drain',
    'h1:v1.1.0',
    'set server app/h1 state ready',
    'wait for app/h1 to be up',
    'set server app/h2 state drain',
    'wait for app/h2 to drain',
    'h2:v1.1.0',
    'set server app/h2 state ready',
    'wait for app/h2 to be up',
    'set server app/h3 state drain',
    'wait for app/h3 to drain',
    'h3:v1.1.0',
    'set server app/h3 state ready',
    'wait for app/h3 to be up',
  ]);
  // the exact command: a fixed script, the values as positional parameters
  const wait = (script: string, srv: string) => shC(haproxyLbScripts[script]!, 'fraisier-haproxy', 'socat', SOCKET, 'app', srv, '10000');
  assert.equal(lb.commands.slice(0, 8), [
    runtime('show cli level'),
    runtime('show servers state app'),
    READ_POOL,
    runtime('set server app/h1 state drain'),
    wait('WAIT_DRAINED', 'h1'),
    runtime('set server app/h1 state ready'),
    wait('WAIT_UP', 'h1'),
    runtime('set server app/h2 state drain'),
  ]);
  assert.ok(!lb.commands.some((c) => /reload|HUP/.test(c)));
  assert.ok(lb.closed, 'connection closed after the deployment');
  assert.ok(
    r.targets.every((t) => typeof t.phases['drain'] === 'number'),
    'drain time recorded per target',
  );
  assert.ok(entries.some((e) => e.target === 'h2' && /app\/h2: drained in \d+ ms \(no reload\)/.test(e.message)));
});

test('a drain that times out warns and goes on', async () => {
  const { deployer, lb, entries } = await setup({ haproxy: { drainTimeout: '2s' } });
  lb.replies.unshift({ match: (t) => t.includes('show stat'), result: { stdout: 'timeout 3\n' }, times: 1 });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded');
  assert.ok(entries.some((e) => e.level === 'warn' && e.message.includes('3 session(s) still open after 2000 ms (drainTimeout)')));
  assert.ok(lb.commands.includes(shC(haproxyLbScripts['WAIT_DRAINED']!, 'fraisier-haproxy', 'socat', SOCKET, 'app', 'h1', '2000')));
});

test('a failed health check: the drained server is set ready again by the rollback; the others are untouched', async () => {
  const { deployer, log } = await setup({ unhealthy: ['h2'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  const s = story(log).filter((x) => x.startsWith('set'));
  assert.equal(s, ['set server app/h1 state drain', 'set server app/h1 state ready', 'set server app/h2 state drain', 'set server app/h2 state ready']);
  assert.ok(!story(log).some((x) => x.startsWith('h3')));
});

test('HAProxy refusing a command fails the target with its answer', async () => {
  const { deployer, lb, live } = await setup();
  lb.replies.unshift({ match: (t) => t.includes('state drain'), result: { stdout: 'No such server.\n\n' } });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is.not(r.status, 'succeeded');
  assert.is(r.error!.target, 'h1');
  assert.match(r.error!.message, 'HAProxy refused to drain app/h1: No such server.');
  assert.equal([...live.values()], ['v1.0.0', 'v1.0.0', 'v1.0.0']);
});

test('preflight: a target without a server in the backend, or a socket below level admin, fails with E_PREFLIGHT and changes nothing', async () => {
  const a = await setup({ admin: { h1: 'ready', h2: 'ready' } });
  const r = await a.deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.error!.code, 'E_PREFLIGHT');
  assert.match(r.error!.message, 'backend app has no server h3 (for h3; it has h1, h2); nothing was changed');
  assert.equal(story(a.log), PREFLIGHT);
  const b = await setup();
  b.lb.replies.unshift({ match: (t) => t.includes('show cli level'), result: { stdout: 'operator\n' } });
  const r2 = await b.deployer.deploy({ version: 'v1.1.0' });
  assert.is(r2.error!.code, 'E_PREFLIGHT');
  assert.match(r2.error!.message, 'is at level operator: changing servers needs level admin');
  const c = await setup();
  c.lb.replies.unshift({
    match: (t) => t.includes('show servers state'),
    result: { code: 3, stderr: `no HAProxy admin socket at ${SOCKET} (is HAProxy running?)` },
  });
  const r3 = await c.deployer.deploy({ version: 'v1.1.0' });
  assert.is(r3.error!.code, 'E_PREFLIGHT');
  assert.match(r3.error!.message, `no HAProxy admin socket at ${SOCKET}`);
});

test('blue-green: the first deploy goes to blue, then one runtime call routes to it (ready first, then maint) and the pool is recorded', async () => {
  const { deployer, log, lb } = await setup({ blueGreen: true });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(story(log), [
    ...PREFLIGHT,
    'set server app/h1 state drain',
    'wait for app/h1 to drain',
    'h1:v1.1.0',
    'set server app/h1 state ready',
    'wait for app/h1 to be up',
    'set server app/h1 state ready; set server app/h2 state maint; set server app/h3 state maint',
    'write {"pool":"blue","targets":["h1"],"all":["h1","h2","h3"]}',
  ]);
  assert.is(
    lb.commands.at(-1),
    shC(haproxyLbScripts['WRITE']!, 'fraisier-haproxy', '/run/haproxy/fraisier-app.pool', '{"pool":"blue","targets":["h1"],"all":["h1","h2","h3"]}'),
    'recorded next to the socket',
  );
});

test('blue-green: with blue live, green (idle: no drain) is deployed and the switch readies green before blue goes to maintenance', async () => {
  const { deployer, log } = await setup({ blueGreen: true, admin: { h1: 'ready', h2: 'maint', h3: 'maint' }, pool: '{"pool":"blue","targets":["h1"]}' });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  const s = story(log).slice(PREFLIGHT.length);
  assert.equal(
    s.filter((x) => !x.startsWith('h')),
    [
      'set server app/h2 state ready; set server app/h3 state ready; set server app/h1 state maint',
      'write {"pool":"green","targets":["h2","h3"],"all":["h1","h2","h3"]}',
    ],
  );
  assert.equal(s.filter((x) => x.startsWith('h')).sort(), ['h2:v1.1.0', 'h3:v1.1.0']);
});

test('livePool: the recorded pool when the servers agree; null after an HAProxy restart (every server in service); an error when they disagree', async () => {
  const lbWith = (admin: Record<string, keyof typeof ADMIN>, pool: string) => {
    const lb = new RecordingExecutor('lb');
    lb.on((t) => t.includes('show servers state'), { stdout: statesText(admin) });
    lb.on((t) => t.includes('cat "$1"'), { stdout: pool });
    return haproxyLb({ socket: SOCKET, backend: 'app', connect: async () => lb });
  };
  const green = '{"pool":"green","targets":["h2","h3"]}';
  assert.equal(await lbWith({ h1: 'maint', h2: 'ready', h3: 'drain' }, green).livePool(null), { pool: 'green', targets: ['h2', 'h3'] });
  assert.is(await lbWith({ h1: 'ready', h2: 'ready', h3: 'ready' }, green).livePool(null), null);
  // a server of the backend outside the environment (recorded in `all`) does not count
  const withAll = '{"pool":"green","targets":["h2","h3"],"all":["h1","h2","h3"]}';
  assert.equal(await lbWith({ h1: 'maint', h2: 'ready', h3: 'ready', web9: 'ready' }, withAll).livePool(null), { pool: 'green', targets: ['h2', 'h3'] });
  try {
    await lbWith({ h1: 'ready', h2: 'maint', h3: 'maint' }, green).livePool(null);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, 'backend app has h2, h3 in maintenance, but /run/haproxy/fraisier-app.pool records pool green (h2, h3)');
  }
});

test("a dry run reads the level, the servers' states and the pool for real, then only prints the runtime commands", async () => {
  const { deployer, lb, entries, executors } = await setup();
  for (const e of executors.values())
    e.replies.unshift({ match: /^git ls-remote/, result: { stdout: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\trefs/tags/v1.1.0\n' } });
  const r = await deployer.deploy({ version: 'v1.1.0', dryRun: true });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(lb.commands.length, 3, lb.commands.join('\n'));
  assert.equal(lb.commands, [runtime('show cli level'), runtime('show servers state app'), READ_POOL]);
  assert.ok(lb.closed, 'no connection kept open');
  const planned = entries.filter((e) => e.message.startsWith('[dry-run] lb:')).map((e) => e.message);
  assert.ok(
    planned.some((m) => m.includes("'set server app/h1 state drain'")),
    planned.join('\n'),
  );
  assert.ok(
    planned.some((m) => m.includes("'set server app/h3 state ready'")),
    planned.join('\n'),
  );
});

test('setWeights: one runtime call, ready + weight first, then drain for 0; out-of-range, all-zero or unknown weights change nothing', async () => {
  const lb = new RecordingExecutor('lb');
  lb.on((t) => t.includes('show servers state'), { stdout: statesText({ h1: 'ready', h2: 'ready', h3: 'ready' }) });
  const plugin = haproxyLb({ socket: SOCKET, backend: 'app', connect: async () => lb });
  await plugin.setWeights({ h1: 0, h2: 95, h3: 5 });
  assert.equal(lb.commands, [
    runtime('show servers state app'),
    READ_POOL,
    runtime('set server app/h2 state ready; set weight app/h2 95; set server app/h3 state ready; set weight app/h3 5; set server app/h1 state drain'),
  ]);
  assert.ok(lb.closed, 'opened and closed its own connection');
  lb.closed = false;
  const changes = () => lb.commands.filter((c) => c.includes('set ')).length;
  for (const bad of [{ h1: 257 }, { h1: 1.5 }, { h1: -1 }]) {
    try {
      await plugin.setWeights(bad);
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, 'must be an integer from 0 to 256');
    }
  }
  try {
    await plugin.setWeights({ h1: 0, h2: 0 });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, 'would have weight 0');
  }
  try {
    await plugin.setWeights({ h1: 1, web9: 1 });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, 'weight for unknown target(s) web9 (backend app has h1, h2, h3)');
  }
  assert.is(changes(), 1, 'nothing else changed');
});

test('setWeights: a server not listed is drained; {} sets every server ready at its configured weight', async () => {
  const lb = new RecordingExecutor('lb');
  lb.on((t) => t.includes('show servers state'), { stdout: statesText({ h1: 'ready', h2: 'ready', h3: 'ready' }) });
  const plugin = haproxyLb({ socket: SOCKET, backend: 'app', connect: async () => lb });
  await plugin.setWeights({ h3: 3 });
  await plugin.setWeights({});
  assert.equal(
    lb.log.map(line).filter((l) => l?.startsWith('set')),
    [
      'set server app/h3 state ready; set weight app/h3 3; set server app/h1 state drain; set server app/h2 state drain',
      'set server app/h1 state ready; set weight app/h1 100%; set server app/h2 state ready; set weight app/h2 100%; set server app/h3 state ready; set weight app/h3 100%',
    ],
  );
});

test('setWeights during a deployment uses its connection (no extra reads); the blue-green switch afterwards routes by pool', async () => {
  const { deployer, plugin, log } = await setup({
    blueGreen: true,
    admin: { h1: 'ready', h2: 'maint', h3: 'maint' },
    pool: '{"pool":"blue","targets":["h1"]}',
  });
  // A plugin tapping after haproxy-lb sets weights inside the deployment (as a canary strategy would), before the switch.
  deployer.hooks.preDeploy.tapPromise('test', async (ctx) => {
    await plugin.setWeights({ h1: 7 }, ctx);
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', JSON.stringify(r.error));
  assert.equal(
    story(log).filter((x) => x.startsWith('set')),
    ['set server app/h1 state ready; set weight app/h1 7', 'set server app/h2 state ready; set server app/h3 state ready; set server app/h1 state maint'],
  );
});

test('a server setWeights took out (weight 0) comes back up after its restart with weight 0, until the next setWeights; the rollback puts it back to 100%', async () => {
  const { deployer, plugin, log } = await setup({ unhealthy: ['h2'] });
  // as the canary strategy does before its canary hosts restart
  deployer.hooks.preDeploy.tapPromise('test', async (ctx) => {
    await plugin.setWeights({ h1: 0, h2: 1, h3: 1 }, ctx);
  });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  const sets = story(log).filter((x) => x.startsWith('set') || /^h\d:/.test(x));
  assert.equal(sets.slice(0, 4), [
    'set server app/h2 state ready; set weight app/h2 1; set server app/h3 state ready; set weight app/h3 1; set server app/h1 state drain',
    'set server app/h1 state drain',
    'h1:v1.1.0',
    'set weight app/h1 0; set server app/h1 state ready',
  ]);
  assert.match(sets.at(-1)!, 'set weight app/h1 100%', 'the rollback resets the weight it set to 0');
});

test.run();
