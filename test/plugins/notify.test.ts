/**
 * Notifications: a real HTTP receiver on 127.0.0.1 (port 0) gets each payload and checks its format
 * (generic webhook with its HMAC signature, Slack, Discord); deployments run against recorded
 * bare_metal hosts with a fake clock. Success, failure + rollback, a receiver answering 500, one that
 * never answers, secrets redacted, dry runs silent, and the YAML form's errors.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeClock } from '../../core/clock.js';
import { parseConfig } from '../../core/config/load.js';
import { Deployer } from '../../core/deployer.js';
import type { FraisierError } from '../../core/errors.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { registerSecret } from '../../core/secret.js';
import { openStore } from '../../core/state/store.js';
import type { Strategy } from '../../core/types.js';
import { canary } from '../../strategies/canary.js';
import { rolling } from '../../strategies/rolling.js';
import { notify, signature, type NotifierOptions } from '../../plugins/notify.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: a received payload, read field by field
  json: Record<string, any>;
}

/** A receiver: answers `status(n)` to the n-th request (default 200), or never for `hang`. */
async function receiver(status: (n: number) => number | 'hang' = () => 200) {
  const got: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const s = status(n++);
      got.push({ path: req.url ?? '', headers: req.headers, body, json: JSON.parse(body) as Received['json'] });
      if (s === 'hang') return;
      res.writeHead(s).end(s === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    got,
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Checks a generic webhook request's signature as a receiver would: HMAC over `timestamp.body`. */
function verified(r: Received, secret: string): boolean {
  const ts = String(r.headers['x-fraisier-timestamp']);
  const sig = String(r.headers['x-fraisier-signature']);
  const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${r.body}`).digest('hex')}`;
  return sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
}

async function setup(notifiers: NotifierOptions[], opts: { unhealthy?: string[]; flushTimeout?: number; strategy?: Strategy } = {}) {
  const hosts = recordedBareMetal({ hosts: ['h1', 'h2'], appPath: '/srv/app', program: 'app', ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}) });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'app',
    environment: 'production',
    provider: hosts.provider,
    strategy: opts.strategy ?? rolling({ batchSize: 1 }),
    health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
    plugins: [notify({ notifiers, sleep: async () => {}, ...(opts.flushTimeout !== undefined ? { flushTimeout: opts.flushTimeout } : {}) })],
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  const text = () => entries.map((e) => `${e.level}: ${e.message}`).join('\n');
  return { deployer, hosts, store, entries, text };
}

const SECRET = 'hmac-key-for-tests-0123';

test('a successful deploy sends start then success to a signed webhook, a Slack and a Discord webhook', async () => {
  const rx = await receiver();
  try {
    const { deployer, text } = await setup([
      { type: 'webhook', url: `${rx.url}/hook`, secret: SECRET },
      { type: 'slack', url: `${rx.url}/slack` },
      { type: 'discord', url: `${rx.url}/discord` },
    ]);
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'succeeded', text());
    assert.not.match(text(), 'not delivered');

    const hooks = rx.got.filter((g) => g.path === '/hook');
    assert.equal(
      hooks.map((h) => h.json['event']),
      ['start', 'success'],
    );
    for (const h of hooks) {
      assert.ok(verified(h, SECRET), `signature of ${h.json['event']}`);
      assert.is(h.headers['content-type'], 'application/json');
      assert.is(h.headers['x-fraisier-event'], h.json['event']);
      assert.ok(Math.abs(Number(h.headers['x-fraisier-timestamp']) - Date.now() / 1000) < 600, 'timestamp in Unix seconds');
    }
    const success = hooks[1]!.json;
    assert.is(success['source'], 'fraisier');
    assert.is(success['fraise'], 'app');
    assert.is(success['environment'], 'production');
    assert.is(success['version'], 'v1.1.0');
    assert.is(success['previousVersion'], null); // the first deployment in this history
    assert.is(success['status'], 'succeeded');
    assert.equal(
      (success['targets'] as { name: string; status: string }[]).map((t) => [t.name, t.status]),
      [
        ['h1', 'healthy'],
        ['h2', 'healthy'],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(success['timestamp'])));

    const slack = rx.got.filter((g) => g.path === '/slack');
    assert.is(slack.length, 2);
    for (const s of slack) {
      assert.type(s.json['text'], 'string');
      assert.ok(Array.isArray(s.json['blocks']) && s.json['blocks'].length > 0);
      for (const b of s.json['blocks']) assert.ok(['section', 'context'].includes(b.type), `block type ${b.type}`);
      assert.is(s.headers['x-fraisier-signature'], undefined);
    }
    assert.match(slack[1]!.json['text'], 'app v1.1.0 → production: succeeded');
    assert.is(slack[1]!.json['blocks'][0].text.type, 'mrkdwn');

    const discord = rx.got.filter((g) => g.path === '/discord');
    assert.is(discord.length, 2);
    const embed = discord[1]!.json['embeds'][0];
    assert.match(discord[1]!.json['content'], 'succeeded');
    assert.ok(discord[1]!.json['content'].length <= 2000);
    assert.ok(embed.title.length <= 256);
    assert.type(embed.color, 'number');
    assert.ok(embed.fields.every((f: { name: string; value: string }) => f.name.length > 0 && f.value.length > 0 && f.value.length <= 1024));
    assert.ok(!Number.isNaN(Date.parse(embed.timestamp)));
  } finally {
    await rx.close();
  }
});

test('a canary held for promote sends start only; success comes once, with the promotion', async () => {
  const rx = await receiver();
  try {
    const { deployer, text } = await setup([{ type: 'webhook', url: `${rx.url}/hook`, secret: SECRET }], { strategy: canary({ instances: 1, steps: [{}] }) });
    const held = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(held.status, 'canary', text());
    const events = () => rx.got.filter((g) => g.path === '/hook').map((h) => `${h.json['event']} ${h.json['version']}`);
    assert.equal(events(), ['start v1.1.0'], 'no success while the canary waits for promote (and start was delivered before the run ended)');
    const promoted = await deployer.deploy({ canary: 'complete' });
    assert.is(promoted.status, 'succeeded', text());
    assert.equal(events(), ['start v1.1.0', 'start v1.1.0', 'success v1.1.0']);
  } finally {
    await rx.close();
  }
});

test('a failing deploy sends failure then rollback, with the error and every host back', async () => {
  const rx = await receiver();
  try {
    const { deployer, text } = await setup([{ type: 'webhook', url: `${rx.url}/hook`, secret: SECRET }], { unhealthy: ['h2'] });
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'rolled_back', text());
    assert.equal(
      rx.got.map((g) => g.json['event']),
      ['start', 'failure', 'rollback'],
    );
    assert.ok(rx.got.every((g) => verified(g, SECRET)));
    const failure = rx.got[1]!.json;
    assert.is(failure['error'].code, 'E_HEALTH');
    assert.is(failure['status'], 'rolled_back');
    assert.equal(
      (failure['targets'] as { name: string; status: string }[]).map((t) => t.status),
      ['rolled_back', 'rolled_back'],
    );
  } finally {
    await rx.close();
  }
});

test('a receiver answering 500 is retried, then the deployment still succeeds with a warning', async () => {
  const rx = await receiver(() => 500);
  try {
    const { deployer, text, entries } = await setup([{ type: 'webhook', url: `${rx.url}/hook`, retries: 2 }]);
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'succeeded', text());
    // 3 attempts for start, 3 for success
    assert.equal(
      rx.got.map((g) => g.json['event']),
      ['start', 'start', 'start', 'success', 'success', 'success'],
    );
    const warns = entries.filter((e) => e.level === 'warn').map((e) => e.message);
    assert.ok(
      warns.some((w) => /notification webhook \(127\.0\.0\.1:\d+\) \(success\) not delivered: HTTP 500.*after 3 attempt/.test(w)),
      warns.join('\n'),
    );
  } finally {
    await rx.close();
  }
});

test('a 4xx is not retried; a receiver that never answers times out; neither fails the deployment', async () => {
  const bad = await receiver(() => 404);
  const hang = await receiver(() => 'hang');
  try {
    const { deployer, text } = await setup([
      { type: 'slack', url: `${bad.url}/x`, retries: 3 },
      { type: 'discord', url: `${hang.url}/y`, retries: 0, timeout: '200ms' },
    ]);
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'succeeded', text());
    assert.is(bad.got.length, 2, 'one attempt per event');
    assert.match(text(), /slack \(127\.0\.0\.1:\d+\) \(start\) not delivered: HTTP 404/);
    assert.match(text(), /discord \(127\.0\.0\.1:\d+\) \(success\) not delivered: no answer within 200 ms/);
  } finally {
    await bad.close();
    await hang.close();
  }
});

test('secrets are redacted in every payload; the webhook URL never appears in the output', async () => {
  const rx = await receiver();
  try {
    registerSecret('s3cr3t-db-password');
    const { deployer, hosts, text } = await setup([{ type: 'webhook', url: `${rx.url}/hook?token=tok-abcdef` }], { unhealthy: ['h1'] });
    // the failure message carries the secret: the probe's output names it
    for (const e of hosts.executors.values()) e.on(/^health-probe/, () => ({ code: 1, stderr: 'refused for s3cr3t-db-password' }));
    await deployer.deploy({ version: 'v1.1.0' });
    const failure = rx.got.find((g) => g.json['event'] === 'failure');
    assert.ok(failure, text());
    assert.not.match(failure!.body, 's3cr3t-db-password');
    assert.not.match(text(), 'tok-abcdef');
  } finally {
    await rx.close();
  }
});

test('a dry run sends nothing', async () => {
  const rx = await receiver();
  try {
    const { deployer } = await setup([{ type: 'webhook', url: `${rx.url}/hook` }]);
    const r = await deployer.deploy({ version: 'v1.1.0', dryRun: true });
    assert.is(r.dryRun, true);
    assert.is(rx.got.length, 0);
  } finally {
    await rx.close();
  }
});

test('Ctrl-C mid-deployment sends cancel (not failure) then rollback; a fraisier rollback sends rollback', async () => {
  const rx = await receiver();
  try {
    const hosts = recordedBareMetal({ hosts: ['h1', 'h2'], appPath: '/srv/app', program: 'app' });
    const store = await openStore({ path: ':memory:' });
    const entries: LogEntry[] = [];
    let interrupted = false;
    const deployer = new Deployer({
      fraise: 'app',
      environment: 'production',
      provider: hosts.provider,
      strategy: rolling({ batchSize: 1 }),
      health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
      plugins: [
        notify({ notifiers: [{ type: 'webhook', url: `${rx.url}/hook` }], sleep: async () => {} }),
        {
          name: 'test:ctrl-c-after-h1',
          apply(host) {
            host.hooks.afterTarget.tap('test', (t) => {
              if (t.name === 'h1' && !interrupted) {
                interrupted = true;
                process.emit('SIGINT'); // what the terminal sends; the deployer's handler stops after this step
              }
            });
          },
        },
      ],
      store,
      clock: new FakeClock(),
      sinks: [memorySink(entries)],
      handleSignals: true,
    });
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.signal, 'SIGINT', entries.map((e) => e.message).join('\n'));
    assert.equal(
      rx.got.map((g) => g.json['event']),
      ['start', 'cancel', 'rollback'],
    );
    assert.is(rx.got[1]!.json['error'].code, 'E_ABORTED');

    // two successful deploys, then an explicit rollback
    rx.got.length = 0;
    assert.is((await deployer.deploy({ version: 'v1.1.0' })).status, 'succeeded');
    assert.is((await deployer.deploy({ version: 'v1.2.0' })).status, 'succeeded');
    rx.got.length = 0;
    const back = await deployer.rollback({ to: 'v1.1.0' });
    assert.is(back.status, 'succeeded');
    assert.equal(
      rx.got.map((g) => [g.json['event'], g.json['kind'], g.json['version']]),
      [
        ['start', 'rollback', 'v1.1.0'],
        ['rollback', 'rollback', 'v1.1.0'],
      ],
    );
  } finally {
    await rx.close();
  }
});

test('signature() is HMAC-SHA256 over "timestamp.body", hex', () => {
  assert.is(signature('k', '1700000000', '{}'), `sha256=${createHmac('sha256', 'k').update('1700000000.{}').digest('hex')}`);
});

test('notify() refuses a non-http URL, an unknown event, a signed Slack notifier', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return `${(err as FraisierError).code} ${(err as Error).message}`;
    }
    return 'no error';
  };
  assert.match(
    code(() => notify({ notifiers: [{ type: 'webhook', url: 'ftp://x/y' }] })),
    /E_CONFIG .*notifiers\[0\]\.url: expected an http:\/\/ or https:\/\/ URL/,
  );
  assert.match(
    code(() => notify({ notifiers: [{ type: 'webhook', url: 'http://x/', events: ['done' as never] }] })),
    /unknown event "done"/,
  );
  assert.match(
    code(() => notify({ notifiers: [{ type: 'slack', url: 'https://x/', secret: 'k' }] })),
    /only a webhook is signed/,
  );
  assert.match(
    code(() => notify({ notifiers: [] })),
    /at least one notifier/,
  );
});

const yaml = (notifications: string) => `fraises:
  api:
    environments:
      production:
        instances: [h1]
        app_path: /srv/api
        git_repo: https://example.com/api.git
        systemd_service: api.service
        notifications:
${notifications}
`;

function configError(text: string): string {
  try {
    parseConfig(text, 'fraises.yaml', {});
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

test('YAML: notifications are normalized with their defaults', () => {
  const c = parseConfig(
    yaml(
      '          - type: webhook\n            url: https://deploys.example.com/hook\n            secret_env: HOOK_SECRET\n          - type: slack\n            url: https://hooks.slack.com/services/T/B/X\n            events: [failure, rollback]\n            timeout: 2s\n            retries: 1',
    ),
    'fraises.yaml',
    {},
  );
  const n = c.fraises['api']!.environments['production']!.notifications!;
  assert.is(n.notifiers.length, 2);
  assert.equal(n.notifiers[0], {
    type: 'webhook',
    url: 'https://deploys.example.com/hook',
    secretEnv: 'HOOK_SECRET',
    events: ['start', 'success', 'failure', 'rollback', 'cancel'],
    timeoutMs: 5000,
    retries: 3,
    backoffMs: 500,
    keyPath: 'fraises.api.environments.production.notifications[0]',
  });
  assert.equal(n.notifiers[1]!.events, ['failure', 'rollback']);
  assert.is(n.notifiers[1]!.timeoutMs, 2000);
});

test('YAML: a URL that is not http(s), a bad type, a secret_env on slack: clear errors with file, key and line', () => {
  assert.match(
    configError(yaml('          - type: webhook\n            url: ftp://example.com/hook')),
    /^fraises\.yaml: fraises\.api\.environments\.production\.notifications\[0\]\.url: expected an http:\/\/ or https:\/\/ URL, got a ftp: URL.*\(line 11\)/,
  );
  assert.match(configError(yaml('          - type: webhook\n            url: not a url')), /notifications\[0\]\.url: expected an http:\/\/ or https:\/\/ URL/);
  assert.match(
    configError(yaml('          - type: teams\n            url: https://x.example/')),
    /notifications\[0\]\.type: expected one of: webhook, slack, discord/,
  );
  assert.match(
    configError(yaml('          - type: slack\n            url: https://x.example/\n            secret_env: K')),
    /notifications\[0\]\.secret_env: only type: webhook is signed/,
  );
  assert.match(
    configError(yaml('          - type: slack\n            url: https://x.example/\n            events: [deployed]')),
    /notifications\[0\]\.events\[0\]: expected one of: start, success/,
  );
});

test.run();
