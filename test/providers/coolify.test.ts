/**
 * The Coolify provider through the real Deployer and rolling(), against the Coolify simulator
 * (test/support/coolify-sim.ts, a local HTTP server that behaves like Coolify v4.3 per the contract).
 * Every quirk of the contract is switched on in its own test.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { type FraisierError, formatError } from '../../core/errors.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { redactedJson, secret } from '../../core/secret.js';
import { openStore, type StateStore } from '../../core/state/store.js';
import type { Plugin, Provider, Strategy } from '../../core/types.js';
import { rolling } from '../../strategies/rolling.js';
import { CoolifyError, coolify, coolifyCalls, failureClass, parseCoolifyVersion, versionAtLeast, type CoolifyOptions } from '../../providers/coolify.js';
import { startCoolifySim, type CoolifySim, type SimOptions } from '../support/coolify-sim.js';

const TOKEN = '1|sim-root-token';

interface Setup {
  sim: CoolifySim;
  deployer: Deployer;
  store: StateStore;
  entries: LogEntry[];
  clock: FakeClock;
  /** The errors the `failed` hook saw (the real error objects, with their failure class). */
  failures: Error[];
  provider: ReturnType<typeof coolify>;
}

const running: CoolifySim[] = [];

async function setup(
  opts: {
    apps?: Record<string, string>;
    sim?: SimOptions;
    provider?: Partial<CoolifyOptions>;
    token?: string;
    strategy?: Strategy;
    handleSignals?: boolean;
    rollbackEnabled?: boolean;
    prepareSim?: (sim: CoolifySim) => void;
  } = {},
): Promise<Setup> {
  const sim = await startCoolifySim(opts.apps ?? { 'app-a': 'v1', 'app-b': 'v1' }, opts.sim);
  running.push(sim);
  opts.prepareSim?.(sim);
  const clock = new FakeClock();
  const provider = coolify({
    url: sim.url,
    applications: [...sim.apps.keys()],
    token: secret(opts.token ?? TOKEN, 'COOLIFY_TOKEN'),
    pollInterval: '2s',
    timeout: '10m',
    clock,
    ...opts.provider,
  });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const failures: Error[] = [];
  const spy: Plugin = { name: 'plugin:spy', apply: (d) => d.hooks.failed.tap('spy', (err) => void failures.push(err)) };
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: opts.strategy ?? rolling({ batchSize: 1, waitBetweenBatches: 0 }),
    store,
    clock,
    sinks: [memorySink(entries)],
    plugins: [spy],
    handleSignals: opts.handleSignals ?? false,
    ...(opts.rollbackEnabled === false ? { rollback: { enabled: false } } : {}),
  });
  return { sim, deployer, store, entries, clock, failures, provider };
}

test.after.each(async () => {
  while (running.length) await running.pop()!.stop();
});

const text = (entries: LogEntry[]) => entries.map((e) => `${e.level} ${e.target ?? '-'} ${e.message}`).join('\n');

test('rolling over two applications: each is PATCHed, deployed with POST, polled to finished; history and versions agree', async () => {
  const { sim, deployer, store, entries } = await setup();
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'succeeded', text(entries));
  assert.equal(
    r.targets.map((t) => [t.name, t.fromVersion, t.toVersion, t.status]),
    [
      ['app-a', 'v1', 'v2', 'healthy'],
      ['app-b', 'v1', 'v2', 'healthy'],
    ],
  );
  for (const uuid of ['app-a', 'app-b']) {
    assert.is(sim.setting(uuid), 'v2');
    assert.is(sim.apps.get(uuid)!.running, 'v2');
  }
  const h = (await store.history())[0]!;
  assert.is(h.status, 'succeeded');
  assert.is(h.fromVersion, 'v1');
  assert.is(h.toVersion, 'v2');
  // the contract's flow, in order, per app; GET /deploy never (405 since v4.2); force left out
  const muts = sim.mutations().map((q) => `${q.method} ${q.path} ${JSON.stringify(q.query)} ${JSON.stringify(q.body ?? null)}`);
  assert.equal(muts, [
    'PATCH /api/v1/applications/app-a {} {"git_commit_sha":"v2"}',
    'POST /api/v1/deploy {"uuid":"app-a"} null',
    'PATCH /api/v1/applications/app-b {} {"git_commit_sha":"v2"}',
    'POST /api/v1/deploy {"uuid":"app-b"} null',
  ]);
  assert.ok(!sim.requests.some((q) => q.method === 'GET' && q.path === '/api/v1/deploy'));
  assert.is(sim.deployments.length, 2);
  assert.ok(sim.deployments.every((d) => d.status === 'finished'));
  // app-a was done (finished, healthy) before app-b was touched
  const firstB = sim.requests.findIndex((q) => q.path.includes('app-b') && q.method === 'PATCH');
  const aDone = sim.requests.findIndex(
    (q) => q.method === 'GET' && q.path === '/api/v1/applications/app-a' && sim.requests.indexOf(q) > sim.requests.findIndex((x) => x.method === 'POST'),
  );
  assert.ok(aDone > 0 && aDone < firstB, 'app-a confirmed running before app-b starts');
});

test('every request carries the bearer token and JSON headers; the token is never printed (logs, --json, errors)', async () => {
  const { sim, deployer, entries, failures } = await setup({ prepareSim: (s) => s.failing.add('v2') });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back');
  assert.ok(sim.requests.every((q) => q.authorization === `Bearer ${TOKEN}`));
  const everything = [text(entries), JSON.stringify(r), redactedJson(r), ...failures.map((f) => `${formatError(f)} ${JSON.stringify(f)} ${f.stack}`)].join(
    '\n',
  );
  assert.not.ok(everything.includes('sim-root-token'), 'token leaked');
});

test('a failed deployment on the second application: both are rolled back to v1 (setting and running), history says rolled_back', async () => {
  const { sim, deployer, store, failures, entries } = await setup({ prepareSim: (s) => s.failing.add('v2') });
  // app-a deploys fine: make only app-b fail by failing v2 after the first deployment finished
  sim.failing.delete('v2');
  sim.onRequest = (q) => {
    if (q.method === 'PATCH' && q.path.endsWith('/app-b')) sim.failing.add('v2');
    if (q.method === 'PATCH' && q.path.endsWith('/app-a') && sim.failing.has('v2')) sim.failing.delete('v2');
  };
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back', text(entries));
  assert.is(r.error?.code, 'E_COMMAND');
  assert.match(r.error!.message, /Coolify deployment .* of app-b \(v2\) failed/);
  for (const uuid of ['app-a', 'app-b']) {
    assert.is(sim.setting(uuid), 'v1', `${uuid} setting`);
    assert.is(sim.apps.get(uuid)!.running, 'v1', `${uuid} running`);
  }
  assert.equal(
    r.targets.map((t) => t.status),
    ['rolled_back', 'rolled_back'],
  );
  assert.is((await store.history())[0]!.status, 'rolled_back');
  assert.is(failureClass(failures[0]), 'availability', 'a failed deployment is an availability failure');
  assert.ok(failures[0] instanceof CoolifyError);
});

test('the first application fails: the second is never touched, the first is rolled back', async () => {
  const { sim, deployer } = await setup({ prepareSim: (s) => s.failing.add('v2') });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back');
  assert.equal(
    r.targets.map((t) => t.status),
    ['rolled_back', 'pending'],
  );
  assert.not.ok(
    sim.requests.some((q) => q.method !== 'GET' && q.path.includes('app-b')),
    'app-b untouched',
  );
  assert.is(sim.apps.get('app-a')!.running, 'v1');
  assert.is(sim.setting('app-a'), 'v1');
});

test('rolling across three applications, the second fails: the first two rolled back to v1, the third never touched', async () => {
  const { sim, deployer, store, entries } = await setup({ apps: { 'app-a': 'v1', 'app-b': 'v1', 'app-c': 'v1' } });
  // only app-b's deployment of v2 fails
  sim.onRequest = (q) => {
    if (q.method === 'PATCH' && q.path.endsWith('/app-b')) sim.failing.add('v2');
    if (q.method === 'PATCH' && !q.path.endsWith('/app-b')) sim.failing.delete('v2');
  };
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back', text(entries));
  assert.equal(
    r.targets.map((t) => [t.name, t.status]),
    [
      ['app-a', 'rolled_back'],
      ['app-b', 'rolled_back'],
      ['app-c', 'pending'],
    ],
  );
  for (const uuid of ['app-a', 'app-b', 'app-c']) {
    assert.is(sim.setting(uuid), 'v1', `${uuid} setting`);
    assert.is(sim.apps.get(uuid)!.running, 'v1', `${uuid} running`);
  }
  assert.not.ok(
    sim.requests.some((q) => q.method !== 'GET' && q.path.includes('app-c')),
    'app-c untouched',
  );
  assert.is((await store.history())[0]!.status, 'rolled_back');
});

test('quirk: "already queued for this commit" with a uuid never stored: the real deployment is found by listing the app\'s deployments', async () => {
  const { sim, deployer, entries } = await setup({ apps: { 'app-a': 'v1' } });
  sim.quirks.alreadyQueued = 1;
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'succeeded', text(entries));
  assert.ok(
    sim.requests.some((q) => q.method === 'GET' && q.path === '/api/v1/deployments/applications/app-a'),
    'listed the deployments ({count, deployments})',
  );
  const real = sim.deployments[0]!;
  assert.is(real.status, 'finished');
  // never polled the fake uuid: only the real one
  const polled = new Set(sim.requests.filter((q) => /^\/api\/v1\/deployments\/[0-9a-f-]{36}$/.test(q.path)).map((q) => q.path));
  assert.equal([...polled], [`/api/v1/deployments/${real.deployment_uuid}`]);
  assert.is(sim.apps.get('app-a')!.running, 'v2');
});

test('quirk: 429 with Retry-After is waited out and retried (bounded); past the retries it is an availability failure', async () => {
  const { sim, deployer, clock, entries } = await setup({ apps: { 'app-a': 'v1' } });
  sim.quirks.rateLimited = 2;
  sim.quirks.retryAfter = 7;
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'succeeded', text(entries));
  assert.is(clock.sleeps.filter((s) => s === 7000).length, 2, 'waited Retry-After twice');
  assert.is(sim.requests.filter((q) => q.status === 429).length, 2);

  const second = await setup({ apps: { 'app-a': 'v1' }, provider: { maxRetries: 2 } });
  second.sim.quirks.rateLimited = 3;
  const r2 = await second.deployer.deploy({ version: 'v2' });
  assert.is(r2.status, 'failed');
  assert.match(r2.error!.message, /429/);
  assert.match(r2.error!.message, /after 2 retries/);
  assert.is(second.sim.requests.filter((q) => q.status === 429).length, 3, 'stops after the bounded retries');
  assert.is(failureClass(second.failures[0]), 'availability');
  assert.is(second.sim.setting('app-a'), 'v1', 'nothing changed');
});

test('quirk: a full deploy queue (429 from /deploy) is retried after Retry-After, capped at maxRetryWait', async () => {
  const { sim, deployer, clock, entries } = await setup({ apps: { 'app-a': 'v1' }, sim: { queueLimit: 1 }, provider: { maxRetryWait: '5s' } });
  // a deployment of another app fills the queue until it is polled twice
  const other = sim.addApp('other', 'v1');
  sim.deployments.push({
    id: 999,
    deployment_uuid: 'busy',
    application_uuid: other.uuid,
    commit: 'v1',
    status: 'in_progress',
    polls: 0,
    force_rebuild: false,
    rollback: false,
    created_at: '',
    updated_at: '',
  });
  let fulls = 0;
  sim.onRequest = (q) => {
    if (q.method === 'POST' && q.path === '/api/v1/deploy' && ++fulls === 2) sim.deployments.find((d) => d.deployment_uuid === 'busy')!.status = 'finished';
  };
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'succeeded', text(entries));
  const full = sim.requests.filter((q) => q.status === 429);
  assert.is(full.length, 1);
  assert.ok(clock.sleeps.includes(5000), 'Retry-After 60 capped to 5 s');
  assert.match(text(entries), /Deployment queue is full/);
});

test('quirk: 200 from /deploy without a deployment_uuid (a service, a silent refusal) is a failure, never success', async () => {
  const { sim, deployer, failures } = await setup({ apps: { 'app-a': 'v1' } });
  sim.quirks.noDeploymentUuid = true;
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, /queued no deployment/);
  assert.match(r.error!.message, /Service app-app-a started/);
  assert.is(failureClass(failures[0]), 'configuration');
  assert.is(sim.setting('app-a'), 'v1', 'setting restored');
  // even with automatic rollback off, the provider puts the setting back itself: nothing was queued
  const off = await setup({ apps: { 'app-a': 'v1' }, rollbackEnabled: false });
  off.sim.quirks.noDeploymentUuid = true;
  const r2 = await off.deployer.deploy({ version: 'v2' });
  assert.is(r2.status, 'failed');
  assert.is(off.sim.setting('app-a'), 'v1');
  assert.equal(
    off.sim.mutations().map((q) => q.body ?? null),
    [{ git_commit_sha: 'v2' }, null, { git_commit_sha: 'v1' }],
  );
});

test('quirk: cancelled-by-user in Coolify fails the target (class cancelled) and rolls it back', async () => {
  const { sim, deployer, failures } = await setup({ apps: { 'app-a': 'v1' } });
  sim.quirks.cancelledByUser = true;
  const r = await deployer.deploy({ version: 'v2' });
  assert.match(r.error!.message, /cancelled in Coolify \(cancelled-by-user\)/);
  assert.is(failureClass(failures[0]), 'cancelled');
  sim.quirks.cancelledByUser = false;
  assert.is(sim.setting('app-a'), 'v1');
});

test('quirk: a 5xx while polling a deployment is retried (GET is idempotent)', async () => {
  const { sim, deployer, entries } = await setup({ apps: { 'app-a': 'v1' } });
  sim.quirks.deploymentRead500 = 2;
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'succeeded', text(entries));
  assert.is(sim.requests.filter((q) => q.status === 500).length, 2);
});

test('401: an unknown token fails before anything changes, with an actionable message (configuration)', async () => {
  const { sim, deployer, failures, entries } = await setup({ token: '9|wrong-token-value' });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'failed');
  assert.is(r.error!.code, 'E_CONFIG');
  assert.match(r.error!.message, /Coolify answered 401 .*Unauthenticated/);
  assert.is(failureClass(failures[0]), 'configuration');
  assert.match(formatError(failures[0]), /API tokens/);
  assert.is(sim.mutations().length, 0);
  assert.not.ok(text(entries).includes('wrong-token-value'));
});

test("403: a token without the deploy ability gives the server's message, and the version setting is put back", async () => {
  const { sim, deployer, failures } = await setup({ apps: { 'app-a': 'v1' }, sim: { tokens: { [TOKEN]: ['read', 'write'] } } });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, /Missing required permissions: deploy/);
  assert.match(formatError(failures[0]), /give the token the deploy ability/);
  assert.is(failureClass(failures[0]), 'configuration');
  assert.is(sim.setting('app-a'), 'v1');
  assert.is(sim.deployments.length, 0, 'no deployment queued');
});

test('404: an unknown application UUID names it, with a hint (configuration), nothing changes', async () => {
  const sim = await startCoolifySim({ 'app-a': 'v1' });
  running.push(sim);
  const provider = coolify({ url: sim.url, applications: ['app-a', 'nope'], token: secret(TOKEN), clock: new FakeClock() });
  const entries: LogEntry[] = [];
  const failures: Error[] = [];
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: rolling({ batchSize: 1 }),
    store: await openStore({ path: ':memory:' }),
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
    plugins: [{ name: 'plugin:spy', apply: (d) => d.hooks.failed.tap('spy', (e) => void failures.push(e)) }],
  });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, /404 while reading application nope: Application not found/);
  assert.match(formatError(failures[0]), /check the application UUID nope/);
  assert.is(failureClass(failures[0]), 'configuration');
  assert.is(sim.mutations().length, 0);
});

test('Ctrl-C while polling: the Coolify deployment is cancelled and the previous version restored', async () => {
  const { sim, deployer, entries } = await setup({ apps: { 'app-a': 'v1' }, handleSignals: true, sim: { inProgressPolls: 5 } });
  let polls = 0;
  sim.onRequest = (q) => {
    if (q.method === 'GET' && /^\/api\/v1\/deployments\/[0-9a-f-]{36}$/.test(q.path) && ++polls === 2) process.emit('SIGINT', 'SIGINT');
  };
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.signal, 'SIGINT');
  assert.is(r.status, 'rolled_back', text(entries));
  const first = sim.deployments[0]!;
  assert.is(first.commit, 'v2');
  assert.is(first.status, 'cancelled-by-user');
  assert.ok(sim.requests.some((q) => q.method === 'POST' && q.path === `/api/v1/deployments/${first.deployment_uuid}/cancel`));
  assert.is(sim.setting('app-a'), 'v1');
  assert.is(sim.apps.get('app-a')!.running, 'v1');
  assert.is(sim.deployments[1]!.commit, 'v1', 'the previous version redeployed');
});

test('Ctrl-C while POST /deploy is in flight: the request is not cut off; the deployment it queued is cancelled and v1 restored', async () => {
  const { sim, deployer, entries } = await setup({ apps: { 'app-a': 'v1' }, handleSignals: true });
  sim.onRequest = (q) => {
    if (q.method === 'POST' && q.path === '/api/v1/deploy' && sim.deployments.length === 0) process.emit('SIGINT', 'SIGINT');
  };
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.signal, 'SIGINT');
  assert.is(r.status, 'rolled_back', text(entries));
  assert.is(sim.deployments[0]!.commit, 'v2');
  assert.is(sim.deployments[0]!.status, 'cancelled-by-user');
  assert.is(sim.apps.get('app-a')!.running, 'v1');
  assert.is(sim.setting('app-a'), 'v1');
});

test('quirk: cancel answers 500 (before v4.3.7) but cancelled: the status is read again, and the rollback goes on', async () => {
  const { sim, deployer, entries } = await setup({ apps: { 'app-a': 'v1' }, handleSignals: true, sim: { inProgressPolls: 5 } });
  sim.quirks.cancel500 = true;
  let polls = 0;
  sim.onRequest = (q) => {
    if (q.method === 'GET' && /^\/api\/v1\/deployments\/[0-9a-f-]{36}$/.test(q.path) && ++polls === 2) process.emit('SIGINT', 'SIGINT');
  };
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back', text(entries));
  assert.match(text(entries), /cancel of Coolify deployment .* answered 500; its status is now cancelled-by-user/);
  assert.is(sim.apps.get('app-a')!.running, 'v1');
});

test('dry run: prints the exact HTTP calls (token redacted) and sends nothing that changes state', async () => {
  const { sim, deployer, entries } = await setup();
  const r = await deployer.deploy({ version: 'v2', dryRun: true });
  assert.is(r.status, 'succeeded');
  assert.is(sim.mutations().length, 0, 'no PATCH or POST sent');
  const out = text(entries);
  assert.match(out, /would send: PATCH \/api\/v1\/applications\/app-a \{"git_commit_sha":"v2"\} \(Authorization: Bearer \[REDACTED\]\)/);
  assert.match(out, /would send: POST \/api\/v1\/deploy\?uuid=app-a/);
  assert.match(out, /would send: POST \/api\/v1\/deploy\?uuid=app-b/);
  assert.not.ok(out.includes('sim-root-token'));
  assert.is(sim.setting('app-a'), 'v1');
});

test('forceRebuild sends force=true; docker-image apps get docker_registry_image_tag', async () => {
  const sim = await startCoolifySim({});
  running.push(sim);
  sim.addApp('img', 'v1', { build_pack: 'dockerimage' });
  const provider = coolify({ url: sim.url, applications: 'img', token: secret(TOKEN), forceRebuild: true, clock: new FakeClock() });
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: rolling(),
    store: await openStore({ path: ':memory:' }),
    clock: new FakeClock(),
    sinks: [],
    handleSignals: false,
  });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'succeeded');
  assert.equal(
    sim.mutations().map((q) => [q.method, q.path, q.query, q.body ?? null]),
    [
      ['PATCH', '/api/v1/applications/img', {}, { docker_registry_image_tag: 'v2' }],
      ['POST', '/api/v1/deploy', { uuid: 'img', force: 'true' }, null],
    ],
  );
  assert.is(sim.apps.get('img')!.docker_registry_image_tag, 'v2');
  assert.is(sim.apps.get('img')!.git_commit_sha, 'HEAD', 'git field untouched');
});

test('the application must report running:healthy after finished: running:unhealthy fails health (availability) and rolls back', async () => {
  const { sim, deployer, failures } = await setup({ apps: { 'app-a': 'v1' }, prepareSim: (s) => s.unhealthy.add('v2') });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back');
  assert.is(r.error!.code, 'E_HEALTH');
  assert.match(r.error!.message, /running:unhealthy/);
  assert.is(failureClass(failures[0]), 'availability');
  assert.is(sim.apps.get('app-a')!.running, 'v1');
  assert.is(sim.apps.get('app-a')!.status, 'running:healthy');
});

test('without a healthcheck, running: is enough', async () => {
  const sim = await startCoolifySim({});
  running.push(sim);
  sim.addApp('nohc', 'v1', { health_check_enabled: false, status: 'running:unknown' });
  const provider = coolify({ url: sim.url, applications: 'nohc', token: secret(TOKEN), clock: new FakeClock() });
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: rolling(),
    store: await openStore({ path: ':memory:' }),
    clock: new FakeClock(),
    sinks: [],
    handleSignals: false,
  });
  assert.is((await deployer.deploy({ version: 'v2' })).status, 'succeeded');
});

test('healthPath: Fraisier probes <fqdn><healthPath> after Coolify says healthy; a failing probe rolls back', async () => {
  const ok = await setup({ apps: { 'app-a': 'v1' }, provider: { healthPath: '/health' } });
  const r1 = await ok.deployer.deploy({ version: 'v2' });
  assert.is(r1.status, 'succeeded', text(ok.entries));
  assert.match(text(ok.entries), /GET http:\/\/127\.0\.0\.1:\d+\/sim-app\/app-a\/health: 200/);

  const bad = await setup({ apps: { 'app-a': 'v1' }, provider: { healthPath: '/health' }, prepareSim: (s) => s.badHealth.add('v2') });
  const r2 = await bad.deployer.deploy({ version: 'v2' });
  assert.is(r2.status, 'rolled_back', text(bad.entries));
  assert.is(r2.error!.code, 'E_HEALTH');
  assert.match(r2.error!.message, /GET http:\/\/127\.0\.0\.1:\d+\/sim-app\/app-a\/health: HTTP 500/);
  assert.is(failureClass(bad.failures[0]), 'availability');
  assert.is(bad.sim.apps.get('app-a')!.running, 'v1');
});

test('useRollbackEndpoint on v4.3: a failed deployment is rolled back with POST /applications/{uuid}/rollback', async () => {
  const { sim, deployer, entries } = await setup({ apps: { 'app-a': 'v1' }, provider: { useRollbackEndpoint: true }, prepareSim: (s) => s.failing.add('v2') });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back', text(entries));
  const rb = sim.requests.find((q) => q.path === '/api/v1/applications/app-a/rollback');
  assert.ok(rb, 'rollback endpoint used');
  assert.equal(rb!.body, { commit: 'v1' });
  assert.is(sim.deployments[1]!.rollback, true);
  assert.is(sim.apps.get('app-a')!.running, 'v1');
  assert.is(sim.setting('app-a'), 'v1');
});

test('beta.474 server: GET /version says so; no rollback endpoint there, so a rollback redeploys (with POST /deploy)', async () => {
  const { sim, deployer, entries, provider } = await setup({
    apps: { 'app-a': 'v1' },
    sim: { version: '4.0.0-beta.474' },
    provider: { useRollbackEndpoint: true },
    prepareSim: (s) => s.failing.add('v2'),
  });
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'rolled_back', text(entries));
  assert.is(provider.serverVersion?.beta, 474);
  assert.match(text(entries), /Coolify 4\.0\.0-beta\.474 has no rollback endpoint/);
  assert.not.ok(sim.requests.some((q) => q.path.endsWith('/rollback')));
  assert.equal(
    sim.requests.filter((q) => q.path === '/api/v1/deploy').map((q) => q.method),
    ['POST', 'POST'],
  );
  assert.is(sim.apps.get('app-a')!.running, 'v1');
});

test('fraisier rollback (kind rollback) puts the previous version back on every application', async () => {
  const { sim, deployer } = await setup();
  assert.is((await deployer.deploy({ version: 'v2' })).status, 'succeeded');
  const r = await deployer.rollback({ to: 'v1' });
  assert.is(r.status, 'succeeded');
  for (const uuid of ['app-a', 'app-b']) assert.is(sim.apps.get(uuid)!.running, 'v1');
});

test("status reads each application's version and the finished deployments as releases", async () => {
  const { deployer } = await setup();
  await deployer.deploy({ version: 'v2' });
  const s = await deployer.status();
  assert.equal(
    s.targets.map((t) => [t.name, t.current, t.releases]),
    [
      ['app-a', 'v2', ['v2']],
      ['app-b', 'v2', ['v2']],
    ],
  );
});

test('a deployment without --version is refused before anything changes', async () => {
  const { sim, deployer } = await setup();
  const r = await deployer.deploy({});
  assert.is(r.status, 'failed');
  assert.is(r.error!.code, 'E_VERSION');
  assert.is(sim.mutations().length, 0);
});

test('a deployment that never ends is cancelled at the timeout (availability)', async () => {
  const { sim, deployer, failures } = await setup({
    apps: { 'app-a': 'v1' },
    sim: { inProgressPolls: 1000 },
    provider: { timeout: '30s', pollInterval: '5s' },
  });
  const r = await deployer.deploy({ version: 'v2' });
  assert.match(r.error!.message, /did not finish within 30 s/);
  assert.is(failureClass(failures[0]), 'availability');
  assert.is(sim.deployments[0]!.status, 'cancelled-by-user');
});

test('the requests, as data: exact method, path, query and body; state-changing ones marked', () => {
  assert.equal(coolifyCalls.setVersion('ab c', 'git_commit_sha', 'v2'), {
    method: 'PATCH',
    path: '/applications/ab%20c',
    body: { git_commit_sha: 'v2' },
    mutating: true,
    what: 'setting git_commit_sha of ab c to v2',
  });
  assert.equal(coolifyCalls.deploy('abc', false), { method: 'POST', path: '/deploy', query: { uuid: 'abc' }, mutating: true, what: 'deploying abc' });
  assert.equal(coolifyCalls.deploy('abc', true).query, { uuid: 'abc', force: 'true' });
  assert.equal(coolifyCalls.rollback('abc', 'v1'), {
    method: 'POST',
    path: '/applications/abc/rollback',
    body: { commit: 'v1' },
    mutating: true,
    what: 'rolling abc back to v1',
  });
  assert.equal(coolifyCalls.cancel('d-1'), { method: 'POST', path: '/deployments/d-1/cancel', mutating: true, what: 'cancelling deployment d-1' });
  assert.equal(coolifyCalls.listDeployments('abc', 10), {
    method: 'GET',
    path: '/deployments/applications/abc',
    query: { skip: '0', take: '10' },
    mutating: false,
    what: 'listing the deployments of abc',
  });
  assert.equal(coolifyCalls.readDeployment('d-1'), { method: 'GET', path: '/deployments/d-1', mutating: false, what: 'reading deployment d-1' });
  assert.equal(coolifyCalls.version(), { method: 'GET', path: '/version', mutating: false, what: 'reading its version' });
  assert.equal(parseCoolifyVersion('v4.0.0-beta.474'), { raw: 'v4.0.0-beta.474', major: 4, minor: 0, patch: 0, beta: 474 });
  assert.ok(versionAtLeast(parseCoolifyVersion('4.3.10'), 4, 3));
  assert.not.ok(versionAtLeast(parseCoolifyVersion('4.2.9'), 4, 3));
  assert.not.ok(versionAtLeast(parseCoolifyVersion('4.3.0-beta.1'), 4, 3));
  assert.ok(versionAtLeast(parseCoolifyVersion('5.0.0'), 4, 3));
  assert.is(parseCoolifyVersion('<html>'), null);
});

test('a network failure (Coolify down) is an availability failure naming the URL', async () => {
  const { sim, deployer, failures } = await setup({ apps: { 'app-a': 'v1' } });
  await sim.stop();
  const r = await deployer.deploy({ version: 'v2' });
  assert.is(r.status, 'failed');
  assert.is(r.error!.code, 'E_UNREACHABLE');
  assert.match(r.error!.message, /cannot reach Coolify at http:\/\/127\.0\.0\.1:\d+ while reading its version/);
  assert.is(failureClass(failures[0]), 'availability');
});

test('pacing: the client waits for the per-minute budget instead of running into the rate limit (no 429)', async () => {
  for (const pace of [true, false]) {
    const clock = new FakeClock();
    const sim = await startCoolifySim({ a1: 'v1', a2: 'v1', a3: 'v1' }, { rateLimit: 10, now: () => clock.now() });
    running.push(sim);
    const provider = coolify({
      url: sim.url,
      applications: ['a1', 'a2', 'a3'],
      token: secret(TOKEN),
      clock,
      maxRequestsPerMinute: pace ? 10 : 0,
      maxRetries: 0,
    });
    const deployer = new Deployer({
      fraise: 'api',
      environment: 'production',
      provider,
      strategy: rolling({ batchSize: 1 }),
      store: await openStore({ path: ':memory:' }),
      clock,
      sinks: [],
      handleSignals: false,
    });
    const r = await deployer.deploy({ version: 'v2' });
    const limited = sim.requests.filter((q) => q.status === 429).length;
    if (pace) {
      assert.is(r.status, 'succeeded', r.error?.message);
      assert.is(limited, 0, 'never hit the rate limit');
      assert.ok(sim.requests.length > 20, `needs more than two minutes of budget (${sim.requests.length} requests)`);
      assert.ok(provider.stats.paced > 0);
      assert.is(provider.stats.requests, sim.requests.length);
    } else {
      assert.ok(limited > 0, 'without pacing the same deployment runs into 429');
    }
  }
});

test('options are checked: https except localhost, applications, token from COOLIFY_TOKEN (thrown by check(), when the environment is used)', async () => {
  const err = (fn: () => Provider) => {
    // Building never throws for bad options (a deploy script still loads); check() and open() throw.
    const p = fn();
    try {
      p.check!();
    } catch (e) {
      return e as FraisierError;
    }
    throw new Error('expected an error');
  };
  const e1 = err(() => coolify({ url: 'http://coolify.example.com', applications: 'a', token: secret('x') }));
  assert.is(e1.code, 'E_CONFIG');
  assert.is(e1.key, 'url');
  assert.match(e1.message, /https/);
  coolify({ url: 'http://localhost:8000', applications: 'a', token: secret('x') });
  coolify({ url: 'https://coolify.example.com/api/v1', applications: ['a', 'b'], token: secret('x') });
  assert.is(err(() => coolify({ url: 'https://c.example', applications: [], token: secret('x') })).key, 'applications');
  assert.is(err(() => coolify({ url: 'https://c.example', applications: ['a b'], token: secret('x') })).key, 'applications');
  const saved = process.env.COOLIFY_TOKEN;
  delete process.env.COOLIFY_TOKEN;
  try {
    const e = err(() => coolify({ url: 'https://c.example', applications: 'a' }));
    assert.is(e.key, 'token');
    assert.match(e.message, /COOLIFY_TOKEN is not set/);
    // open() throws the same error: nothing is sent
    const broken = coolify({ url: 'https://c.example', applications: 'a' });
    const opened = await broken.open({ log: { info() {}, warn() {}, error() {} } as never, dryRun: false, signal: new AbortController().signal }).then(
      () => null,
      (x: FraisierError) => x,
    );
    assert.is(opened?.key, 'token');
    process.env.COOLIFY_TOKEN = 'from-env-token';
    const p = coolify({ url: 'https://c.example', applications: 'a' });
    assert.not.ok(JSON.stringify(p).includes('from-env-token'));
  } finally {
    if (saved === undefined) delete process.env.COOLIFY_TOKEN;
    else process.env.COOLIFY_TOKEN = saved;
  }
});

test.run();
