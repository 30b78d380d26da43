import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeClock } from '../../core/clock.js';
import { NotListeningError, http, runHealthPolicy, tcp } from '../../core/health.js';
import { LocalExecutor } from '../../core/exec/local.js';
import { FanoutLogger, memorySink, type LogEntry } from '../../core/log.js';
import type { DeployContext, HealthCheck, Target } from '../../core/types.js';

async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}

const target: Target = { name: 'local', kind: 'local' };
function ctx(entries: LogEntry[], clock = new FakeClock()): DeployContext {
  const exec = new LocalExecutor();
  return {
    fraise: 'api',
    environment: 'test',
    kind: 'deploy',
    version: 'v1',
    previousVersion: null,
    targets: [target],
    dryRun: false,
    force: false,
    log: new FanoutLogger([memorySink(entries)]),
    clock,
    signal: new AbortController().signal,
    states: new Map(),
    data: new Map(),
    traffic: null,
    executor: () => exec,
    time: () => {},
    checkAborted: () => {},
    fence: async () => {},
  };
}

function flaky(failures: number): HealthCheck & { calls: number } {
  const c = {
    name: 'flaky',
    calls: 0,
    async probe() {
      c.calls++;
      if (c.calls <= failures) throw new Error('Connection refused');
    },
  };
  return c;
}

test('passes at the first good attempt, printing each one, waiting retryDelay between', async () => {
  const entries: LogEntry[] = [];
  const clock = new FakeClock();
  const check = flaky(2);
  const r = await runHealthPolicy({ checks: [check], retries: 5, retryDelay: '3s' }, target, ctx(entries, clock));
  assert.is(r, undefined);
  assert.is(check.calls, 3);
  assert.equal(
    entries.map((e) => e.message),
    ['Attempt 1: FAILED (Connection refused)', 'Attempt 2: FAILED (Connection refused)', 'Attempt 3: OK', 'Health checks passed!'],
  );
  assert.equal(clock.sleeps, [3000, 3000]);
});

test('the first attempt goes out as soon as the restart returned: no wait before it unless initialDelay says so', async () => {
  const clock = new FakeClock();
  const waitedBefore: number[] = [];
  const check: HealthCheck = {
    name: 'first',
    async probe() {
      waitedBefore.push(clock.sleeps.reduce((a, b) => a + b, 0));
    },
  };
  assert.is(await runHealthPolicy({ checks: [check], retries: 3, retryDelay: '2s' }, target, ctx([], clock)), undefined);
  assert.equal(waitedBefore, [0]);
  const delayed = new FakeClock();
  const at: number[] = [];
  const later: HealthCheck = {
    name: 'later',
    async probe() {
      at.push(delayed.sleeps.reduce((a, b) => a + b, 0));
    },
  };
  await runHealthPolicy({ checks: [later], initialDelay: '1s' }, target, ctx([], delayed));
  assert.equal(at, [1000]);
});

test('gives up after retries, or earlier at maxConsecutiveFailures', async () => {
  const a = flaky(100);
  const r = await runHealthPolicy({ checks: [a], retries: 4, retryDelay: 10 }, target, ctx([]));
  assert.equal(r, { check: 'flaky', reason: 'Connection refused' });
  assert.is(a.calls, 4);
  const b = flaky(100);
  await runHealthPolicy({ checks: [b], retries: 10, retryDelay: 10, maxConsecutiveFailures: 2 }, target, ctx([]));
  assert.is(b.calls, 2);
});

/** Nothing listens for the first `refusals` probes (the service is starting), then it answers. */
function starting(refusals: number): HealthCheck & { calls: number } {
  const c = {
    name: 'starting',
    calls: 0,
    async probe() {
      c.calls++;
      if (c.calls <= refusals) throw new NotListeningError();
    },
  };
  return c;
}

test('nothing listening yet: looks again early within retryDelay and passes as the next attempt', async () => {
  const entries: LogEntry[] = [];
  const clock = new FakeClock();
  const check = starting(3);
  const r = await runHealthPolicy({ checks: [check], retries: 5, retryDelay: '2s' }, target, ctx(entries, clock));
  assert.is(r, undefined);
  assert.equal(
    entries.map((e) => e.message),
    ['Attempt 1: FAILED (Connection refused)', 'Attempt 2: OK', 'Health checks passed!'],
  );
  // attempt 1 refused, looks after 25 ms and 50 ms more refused, the look 50 ms later passes
  assert.equal(clock.sleeps, [25, 50, 50]);
  assert.is(check.calls, 4);
});

test('early looks never shorten the policy: a service that never listens fails after retries x retryDelay', async () => {
  const entries: LogEntry[] = [];
  const clock = new FakeClock();
  const check = starting(1000);
  const r = await runHealthPolicy({ checks: [check], retries: 3, retryDelay: '1s' }, target, ctx(entries, clock));
  assert.equal(r, { check: 'starting', reason: 'Connection refused' });
  assert.equal(
    entries.map((e) => e.message),
    ['Attempt 1: FAILED (Connection refused)', 'Attempt 2: FAILED (Connection refused)', 'Attempt 3: FAILED (Connection refused)'],
  );
  // each wait is still 1 s in all (25, then 50 ms apart 19 times, then 25: looks at most 50 ms apart),
  // between three counted attempts
  const wait = [25, ...Array<number>(19).fill(50), 25];
  assert.equal(clock.sleeps, [...wait, ...wait]);
});

test('a look that fails another way (the app answers, not healthy yet) waits out the rest of retryDelay', async () => {
  const entries: LogEntry[] = [];
  const clock = new FakeClock();
  let calls = 0;
  const check: HealthCheck = {
    name: 'warming',
    async probe() {
      calls++;
      if (calls === 1) throw new NotListeningError();
      if (calls <= 3) throw new Error('HTTP 503');
    },
  };
  const r = await runHealthPolicy({ checks: [check], retries: 5, retryDelay: '2s' }, target, ctx(entries, clock));
  assert.is(r, undefined);
  // attempt 1 refused; the look after 25 ms gets 503, so the rest (1975 ms) is waited; attempt 2 is 503;
  // a full retryDelay follows (503 is not "starting"); attempt 3 passes
  assert.equal(
    entries.map((e) => e.message),
    ['Attempt 1: FAILED (Connection refused)', 'Attempt 2: FAILED (HTTP 503)', 'Attempt 3: OK', 'Health checks passed!'],
  );
  assert.equal(clock.sleeps, [25, 1975, 2000]);
});

let server: Server;
let port: number;
test.before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/health') res.end('ok v9');
    else if (req.url === '/slow') setTimeout(() => res.end('late'), 2000);
    else {
      res.statusCode = 503;
      res.end('down');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
test.after(() => {
  server.closeAllConnections();
  server.close();
});

test('http: 2xx and body text pass; other statuses, wrong body, refused and slow fail with a reason', async () => {
  const c = ctx([]);
  await http(`http://127.0.0.1:${port}/health`).probe(target, c, 1000);
  await http({ url: `http://localhost:${port}/health`, expectBody: 'ok v9' }).probe(target, c, 1000);
  await rejects(() => http({ url: `http://127.0.0.1:${port}/health`, expectBody: 'ok v10' }).probe(target, c, 1000), /body does not contain/);
  await rejects(() => http(`http://127.0.0.1:${port}/other`).probe(target, c, 1000), /HTTP 503/);
  await rejects(() => http(`http://127.0.0.1:${port}/slow`).probe(target, c, 200), /timed out after 200 ms/);
  await rejects(() => http('http://127.0.0.1:1/health').probe(target, c, 1000), /Connection refused/);
  const refused = await http('http://127.0.0.1:1/health')
    .probe(target, c, 1000)
    .catch((e: unknown) => e);
  assert.ok(refused instanceof NotListeningError, 'a refused connection means "not listening yet"');
  const status = await http(`http://127.0.0.1:${port}/other`)
    .probe(target, c, 1000)
    .catch((e: unknown) => e);
  assert.not.ok(status instanceof NotListeningError, 'an HTTP error means the app answers');
});

test('tcp: open port passes, closed port fails', async () => {
  const c = ctx([]);
  await tcp({ port }).probe(target, c, 1000);
  await rejects(() => tcp({ port: 1 }).probe(target, c, 1000), /Connection refused/);
  assert.ok(
    (await tcp({ port: 1 })
      .probe(target, c, 1000)
      .catch((e: unknown) => e)) instanceof NotListeningError,
  );
});

test.run();
