/**
 * `fraisier serve`'s webhook server, started in-process on 127.0.0.1 port 0 over a real state store
 * (SQLite and PostgreSQL): real signed push payloads in each forge's format (the HMAC computed here)
 * queue the pushed commit; a bad or missing signature, a replayed delivery, an oversized body, another
 * event or an unrouted branch queue nothing. Also the `webhooks:` block's validation and `serve`'s
 * refusals (no block, secret variable unset: exit 2 naming the key).
 */
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serve } from '../../core/commands/serve.js';
import type { CommandIo } from '../../core/commands/types.js';
import { parseConfig } from '../../core/config/load.js';
import { FraisierError } from '../../core/errors.js';
import { exitCodeFor } from '../../core/cli.js';
import { secret } from '../../core/secret.js';
import { Queue } from '../../core/state/queue.js';
import type { StateStore } from '../../core/state/store.js';
import { MAX_WEBHOOK_BODY, startWebhookServer, WEBHOOK_DELIVERY_RETENTION_MS, type WebhookRoute } from '../../core/webhooks.js';
import { each } from '../support/backends.js';

const SECRET = 'whsec-3f9a1c77b2';
const SHA = '9fceb02d0ae598e95dc970b74767f19372d61af8';
const ROUTES: WebhookRoute[] = [
  { branch: 'main', fraise: 'api', environment: 'production' },
  { provider: 'gitlab', repo: 'Acme/API', branch: 'release', fraise: 'api', environment: 'staging' },
];

const hmac = (body: string, key = SECRET) => createHmac('sha256', key).update(body).digest('hex');

/** A push of `branch` to `sha` as each forge sends it: headers (signed with `key`) and body. */
function push(
  provider: 'github' | 'gitlab' | 'gitea' | 'bitbucket',
  branch: string,
  sha = SHA,
  key = SECRET,
  delivery: string = randomUUID(),
): { body: string; headers: Record<string, string> } {
  if (provider === 'github') {
    const body = JSON.stringify({
      ref: `refs/heads/${branch}`,
      before: '0'.repeat(40),
      after: sha,
      repository: { full_name: 'acme/api' },
      pusher: { name: 'alice' },
    });
    return { body, headers: { 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': `sha256=${hmac(body, key)}` } };
  }
  if (provider === 'gitea') {
    const body = JSON.stringify({ ref: `refs/heads/${branch}`, after: sha, repository: { full_name: 'acme/api' }, pusher: { login: 'bob' } });
    // Gitea also sends GitHub's event header; its own wins
    return { body, headers: { 'x-gitea-event': 'push', 'x-github-event': 'push', 'x-gitea-delivery': delivery, 'x-gitea-signature': hmac(body, key) } };
  }
  if (provider === 'gitlab') {
    const body = JSON.stringify({
      object_kind: 'push',
      ref: `refs/heads/${branch}`,
      after: sha,
      checkout_sha: sha,
      user_username: 'carol',
      project: { path_with_namespace: 'acme/api' },
    });
    return { body, headers: { 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': delivery, 'x-gitlab-token': key } };
  }
  const body = JSON.stringify({
    actor: { nickname: 'dave' },
    repository: { full_name: 'acme/api' },
    push: { changes: [{ old: { type: 'branch', name: branch }, new: { type: 'branch', name: branch, target: { hash: sha } } }] },
  });
  return { body, headers: { 'x-event-key': 'repo:push', 'x-request-uuid': delivery, 'x-hub-signature': `sha256=${hmac(body, key)}` } };
}

/** POSTs with node:http (so an early 413 is read even while the body is still being sent). */
function post(url: string, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/hooks`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function withServer(store: StateStore, fn: (url: string) => Promise<void>, routes = ROUTES): Promise<void> {
  const server = await startWebhookServer({ secret: secret(SECRET), routes, store, host: '127.0.0.1', port: 0 });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(server.port > 0);
    await fn(server.url);
  } finally {
    await server.close();
  }
}

const queued = async (store: StateStore) =>
  (await new Queue(store).list({ all: true })).map((i) => [i.fraise, i.environment, i.version, i.ref, i.status, i.requestedBy]).reverse();

each('a signed push from each forge queues the pushed commit, due now, once', async (b) => {
  const store = await b.open();
  await withServer(store, async (url) => {
    for (const provider of ['github', 'gitlab', 'gitea', 'bitbucket'] as const) {
      const r = await post(url, push(provider, 'main').headers, push(provider, 'main').body);
      assert.is(r.status, 202, `${provider}: ${r.text}`);
      assert.match(r.text, `api/production ${SHA} (main)`);
    }
    // GitLab's route for release, only from acme/api (case-insensitive)
    const gl = push('gitlab', 'release', 'b'.repeat(40));
    assert.is((await post(url, gl.headers, gl.body)).status, 202);
  });
  assert.equal(await queued(store), [
    ['api', 'production', SHA, 'main', 'queued', 'webhook:github (alice)'],
    ['api', 'production', SHA, 'main', 'queued', 'webhook:gitlab (carol)'],
    ['api', 'production', SHA, 'main', 'queued', 'webhook:gitea (bob)'],
    ['api', 'production', SHA, 'main', 'queued', 'webhook:bitbucket (dave)'],
    ['api', 'staging', 'b'.repeat(40), 'release', 'queued', 'webhook:gitlab (carol)'],
  ]);
  const due = await new Queue(store).due(store.now());
  assert.is(due.length, 5, 'due now: the next worker pass runs them');
  await store.close();
});

each('a bad or missing signature (or token) is 401 and queues nothing', async (b) => {
  const store = await b.open();
  await withServer(store, async (url) => {
    for (const provider of ['github', 'gitlab', 'gitea', 'bitbucket'] as const) {
      const wrongKey = push(provider, 'main', SHA, 'not-the-secret');
      assert.is((await post(url, wrongKey.headers, wrongKey.body)).status, 401, `${provider}: wrong key`);
      // a body changed after signing
      const good = push(provider, 'main');
      if (provider !== 'gitlab') {
        const r = await post(url, good.headers, good.body.replace(SHA, 'c'.repeat(40)));
        assert.is(r.status, 401, `${provider}: tampered body`);
      }
      const unsigned = Object.fromEntries(
        Object.entries(good.headers).filter(([k]) => !['x-hub-signature-256', 'x-hub-signature', 'x-gitea-signature', 'x-gitlab-token'].includes(k)),
      );
      const r = await post(url, unsigned, good.body);
      assert.is(r.status, 401, `${provider}: unsigned`);
      assert.not.match(r.text, SECRET);
    }
  });
  assert.equal(await queued(store), []);
  await store.close();
});

each('a replayed delivery id is 200 duplicate and queues nothing the second time', async (b) => {
  const store = await b.open();
  await withServer(store, async (url) => {
    const p = push('github', 'main');
    assert.is((await post(url, p.headers, p.body)).status, 202);
    const again = await post(url, p.headers, p.body);
    assert.equal([again.status, again.text.trim()], [200, `duplicate: delivery ${p.headers['x-github-delivery']} was already handled`]);
  });
  assert.is((await queued(store)).length, 1);
  await store.close();
});

each('delivery ids older than the retention (30 days) are forgotten as new deliveries arrive; newer ones still refuse a replay', async (b) => {
  const store = await b.open();
  const now = store.now();
  await store.db
    .insertInto('webhook_deliveries')
    .values([
      { delivery: 'github:old', provider: 'github', received_at: now - WEBHOOK_DELIVERY_RETENTION_MS - 60_000 },
      { delivery: 'github:recent', provider: 'github', received_at: now - WEBHOOK_DELIVERY_RETENTION_MS + 3_600_000 },
    ])
    .execute();
  await withServer(store, async (url) => {
    const p = push('github', 'main');
    assert.is((await post(url, p.headers, p.body)).status, 202);
    const replay = push('github', 'main', SHA, SECRET, 'recent');
    assert.is((await post(url, replay.headers, replay.body)).status, 200, 'a delivery of 29 days ago is still a duplicate');
  });
  const ids = (await store.db.selectFrom('webhook_deliveries').select('delivery').orderBy('delivery').execute()).map((r) => r.delivery);
  assert.not.ok(ids.includes('github:old'), 'the 31-day-old id is gone');
  assert.ok(ids.includes('github:recent'));
  assert.is(ids.length, 2, `the recent id and the new delivery's: ${ids.join(', ')}`);
  await store.close();
});

each('other events, tags, deleted and unrouted branches are ignored (202); a body over 1 MiB is 413', async (b) => {
  const store = await b.open();
  await withServer(store, async (url) => {
    const other = push('github', 'main');
    const ping = await post(url, { ...other.headers, 'x-github-event': 'ping' }, other.body);
    assert.equal([ping.status, ping.text.trim()], [202, 'ignored: not a push event']);
    const unrouted = push('github', 'feature/x');
    const r = await post(url, unrouted.headers, unrouted.body);
    assert.equal([r.status, r.text.trim()], [202, 'ignored: no route for feature/x of acme/api']);
    // GitLab's release route is for acme/api only, and for GitLab only
    const gh = push('github', 'release');
    assert.is((await post(url, gh.headers, gh.body)).status, 202);
    const deleted = push('github', 'main', '0'.repeat(40));
    assert.match((await post(url, deleted.headers, deleted.body)).text, 'ignored: no route for no branch');
    const tagBody = JSON.stringify({ ref: 'refs/tags/v1.0.0', after: SHA, repository: { full_name: 'acme/api' } });
    const tag = await post(url, { ...push('github', 'main').headers, 'x-hub-signature-256': `sha256=${hmac(tagBody)}` }, tagBody);
    assert.is(tag.status, 202);
    const big = Buffer.alloc(MAX_WEBHOOK_BODY + 1, 'a');
    const tooLarge = await post(url, { ...push('github', 'main').headers, 'x-hub-signature-256': `sha256=${hmac(big.toString())}` }, big);
    assert.is(tooLarge.status, 413);
    const unknown = await post(url, {}, '{}');
    assert.is(unknown.status, 400);
  });
  assert.equal(await queued(store), []);
  await store.close();
});

const FILE = 'conf/fraises.yaml';
const MINIMAL = `fraises:\n  api:\n    environments:\n      production:\n        instances: [h1]\n        app_path: /srv/api\n        git_repo: https://example.com/api.git\n        systemd_service: api.service\n`;

function configError(text: string): FraisierError {
  try {
    parseConfig(text, FILE, {});
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_CONFIG');
    return err as FraisierError;
  }
  throw new Error('expected an E_CONFIG error');
}

test('webhooks: block: validated with the file, key and line', () => {
  const ok = parseConfig(
    `webhooks:\n  secret_env: HOOK_SECRET\n  routes:\n    - { provider: github, repo: acme/api, branch: main, fraise: api, environment: production }\n${MINIMAL}`,
    FILE,
    {},
  );
  assert.equal(ok.raw.webhooks?.routes[0]?.fraise, 'api');
  const cases: [string, RegExp][] = [
    [
      `webhooks:\n  secret_env: HOOK_SECRET\n  routes:\n    - { branch: main, fraise: web, environment: production }\n`,
      /webhooks\.routes\[0\]\.fraise.*no fraise "web"/,
    ],
    [
      `webhooks:\n  secret_env: HOOK_SECRET\n  routes:\n    - { branch: main, fraise: api, environment: prod }\n`,
      /webhooks\.routes\[0\]\.environment.*no environment "prod"/,
    ],
    [
      `webhooks:\n  secret_env: HOOK_SECRET\n  routes:\n    - { provider: svn, branch: main, fraise: api, environment: production }\n`,
      /webhooks\.routes\[0\]\.provider.*github, gitlab, gitea, bitbucket/,
    ],
    [
      `webhooks:\n  secret_env: "not a name"\n  routes:\n    - { branch: main, fraise: api, environment: production }\n`,
      /webhooks\.secret_env.*environment variable/,
    ],
    [`webhooks:\n  secret_env: HOOK_SECRET\n  routes: []\n`, /webhooks\.routes/],
  ];
  for (const [block, expected] of cases) {
    const err = configError(`${block}${MINIMAL}`);
    assert.match(err.message, expected, err.message);
    assert.match(err.message, /conf\/fraises\.yaml: .*\(line \d+\)/, `${err.message}: names the file and line`);
  }
});

function io(): CommandIo & { text: () => string } {
  let out = '';
  return { json: false, out: (t) => (out += t), err: (t) => (out += t), sinks: [], text: () => out };
}

test('serve refuses to start without a webhooks: block, or with its secret variable unset (exit 2, naming the key)', async () => {
  const run = async (text: string, listen = '127.0.0.1:0') => {
    const config = parseConfig(text, path.join('/nonexistent', 'fraises.yaml'), {});
    try {
      await serve.run({ frontEnd: 'fraisier', config, readStore: async () => assert.unreachable() as never }, { listen }, io());
    } catch (err) {
      return { code: exitCodeFor(err), message: (err as Error).message };
    }
    return assert.unreachable('serve should have refused') as never;
  };
  const none = await run(MINIMAL);
  assert.is(none.code, 2);
  assert.match(none.message, 'serve needs a top-level webhooks: block');
  delete process.env['FRAISIER_TEST_UNSET_SECRET'];
  const unset = await run(
    `webhooks:\n  secret_env: FRAISIER_TEST_UNSET_SECRET\n  routes:\n    - { branch: main, fraise: api, environment: production }\n${MINIMAL}`,
  );
  assert.is(unset.code, 2);
  assert.match(unset.message, 'webhooks.secret_env: the variable FRAISIER_TEST_UNSET_SECRET is not set');
  const badListen = await run(
    `webhooks:\n  secret_env: FRAISIER_TEST_UNSET_SECRET\n  routes:\n    - { branch: main, fraise: api, environment: production }\n${MINIMAL}`,
    'nowhere:port',
  );
  assert.is(badListen.code, 2);
  assert.match(badListen.message, '--listen: expected host:port or a port');
});

test.run();
