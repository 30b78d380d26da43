/**
 * End to end: `notifications:` in fraises.yaml, with the `fraisier` command deploying to the lab. A
 * receiver on 127.0.0.1 (port 0) checks each payload and the webhook's HMAC signature: a deployment
 * sends start then success (a Slack receiver answering 500 only costs a warning), a broken release
 * sends start, failure, then rollback.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, fraisier, lab, labYaml, resetHosts, workspace } from './helpers.js';

interface Got {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let env: LabEnv;
let ws: string;
let server: Server;
const got: Got[] = [];
const SECRET = 'e2e-hook-signing-key';

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(req.url === '/slack' ? 500 : 200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env['FRAISIER_E2E_HOOK_SECRET'] = SECRET;
  ws = workspace(
    labYaml(env, {
      retries: 6,
      extraEnvs: `        notifications:
          - type: webhook
            url: ${base}/hook
            secret_env: FRAISIER_E2E_HOOK_SECRET
          - type: slack
            url: ${base}/slack
            retries: 1
            backoff: 100ms
`,
    }),
  );
});

test.after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A webhook payload, read field by field. */
// biome-ignore lint/suspicious/noExplicitAny: a received payload
type Payload = Record<string, any>;

/** The webhook's requests, each checked as a receiver would: signature over `timestamp.body`. */
function hooks(): Payload[] {
  return got
    .filter((g) => g.path === '/hook')
    .map((g) => {
      const ts = String(g.headers['x-fraisier-timestamp']);
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${g.body}`).digest('hex')}`;
      assert.is(g.headers['x-fraisier-signature'], expected, 'signature');
      return JSON.parse(g.body) as Payload;
    });
}

test('a deployment sends start then success; a Slack receiver answering 500 is a warning, not a failure', async () => {
  got.length = 0;
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.current),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
  );
  const events = hooks();
  assert.equal(
    events.map((e) => e['event']),
    ['start', 'success'],
  );
  assert.is(events[1]!['version'], 'v1.0.0');
  assert.is(events[1]!['status'], 'succeeded');
  assert.equal(
    events[1]!['targets'].map((t: { name: string }) => t.name),
    ['h1', 'h2', 'h3'],
  );
  // Slack got each event twice (1 retry), in its own format, and the output warns
  const slack = got.filter((g) => g.path === '/slack').map((g) => JSON.parse(g.body) as { text: string; blocks: unknown[] });
  assert.is(slack.length, 4);
  assert.ok(slack.every((s) => typeof s.text === 'string' && Array.isArray(s.blocks)));
  assert.match(r.out, /notification slack \(127\.0\.0\.1:\d+\) \(success\) not delivered: HTTP 500/);
});

test('a broken release sends start, failure (with the health error), then rollback', async () => {
  got.length = 0;
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v2.0.0-broken');
  assert.is(r.code, 1, r.out);
  assert.equal(
    (await allHosts(env)).map((h) => h.current),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
  );
  const events = hooks();
  assert.equal(
    events.map((e) => e['event']),
    ['start', 'failure', 'rollback'],
  );
  assert.is(events[1]!['error'].code, 'E_HEALTH');
  assert.is(events[1]!['version'], 'v2.0.0-broken');
  assert.is(events[1]!['previousVersion'], 'v1.0.0');
});

test.run();
