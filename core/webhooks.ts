/**
 * Git push webhooks (`fraisier serve`): an HTTP server that checks each delivery's signature (GitHub,
 * Gitea, Bitbucket Cloud: HMAC-SHA256 of the raw body; GitLab: the shared token), reads the pushed branch
 * and exact commit, and queues a deployment of that commit, due now, for every matching route of the
 * `webhooks:` block. `fraisier worker` then runs it through the same lock and history as any deployment.
 * A delivery id already handled (a replay) queues nothing; every comparison with the secret is constant
 * time; the body is bounded.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Secret } from './secret.js';
import { Queue } from './state/queue.js';
import type { StateStore } from './state/store.js';

/** The forges whose push webhooks `serve` understands. */
export type WebhookProvider = 'github' | 'gitlab' | 'gitea' | 'bitbucket';

/** One `webhooks.routes:` entry. */
export interface WebhookRoute {
  /** Only pushes from this forge; absent: any. */
  provider?: WebhookProvider;
  /** Only pushes to this repository (`owner/name`, case-insensitive); absent: any. */
  repo?: string;
  /** The pushed branch (`main`). */
  branch: string;
  /** The fraise to deploy. */
  fraise: string;
  /** Its environment. */
  environment: string;
}

/** A push read from a payload: the repository, and each branch moved with its new commit. */
export interface Push {
  provider: WebhookProvider;
  repo: string | null;
  /** Who pushed, as the forge names them, or null. */
  pusher: string | null;
  branches: { branch: string; sha: string }[];
}

/** Options of {@link startWebhookServer}. */
export interface WebhookServerOptions {
  /** The shared secret (`webhooks.secret_env`). */
  secret: Secret;
  routes: readonly WebhookRoute[];
  /** The state store the queue and the delivery ids live in (opened for writing). */
  store: StateStore;
  /** Address to listen on. */
  host: string;
  /** Port; 0: a free one. */
  port: number;
  /** Largest body accepted, bytes (larger: 413). Default 1 MiB. */
  maxBody?: number;
  /** One line per delivery handled (without a newline). */
  log?: (line: string) => void;
}

/** A running server: its bound address, and how to stop it. */
export interface WebhookServer {
  /** `http://127.0.0.1:9000`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The default body limit: 1 MiB. */
export const MAX_WEBHOOK_BODY = 1024 * 1024;

/**
 * How long a delivery id is remembered to refuse its replay: 30 days, longer than any forge retries or
 * offers a manual redelivery (GitHub: 3 days). Older ids are deleted as new deliveries arrive, so the
 * table stays the size of a month of pushes.
 */
export const WEBHOOK_DELIVERY_RETENTION_MS = 30 * 86_400_000;

const ZERO_SHA = /^0+$/;

/** Which forge sent a request, from its event header (Gitea also sends GitHub's headers: it is looked at first). */
export function providerOf(headers: http.IncomingHttpHeaders): WebhookProvider | undefined {
  if (headers['x-gitea-event'] !== undefined) return 'gitea';
  if (headers['x-gitlab-event'] !== undefined) return 'gitlab';
  if (headers['x-github-event'] !== undefined) return 'github';
  if (headers['x-event-key'] !== undefined) return 'bitbucket';
  return undefined;
}

function equalConstantTime(a: string, b: string): boolean {
  // digests of equal length, so timingSafeEqual applies whatever the lengths given (and leaks none)
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a === b;
}

/** True when the request carries the right signature (or GitLab token) for `body`. */
export function verifySignature(provider: WebhookProvider, headers: http.IncomingHttpHeaders, body: Buffer, secret: Secret): boolean {
  const get = (n: string) => {
    const v = headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  if (provider === 'gitlab') {
    const token = get('x-gitlab-token');
    return token !== undefined && equalConstantTime(token, secret.reveal());
  }
  const hex = createHmac('sha256', secret.reveal()).update(body).digest('hex');
  if (provider === 'gitea') {
    const sig = get('x-gitea-signature');
    return sig !== undefined && equalConstantTime(sig.trim().toLowerCase(), hex);
  }
  const sig = get(provider === 'github' ? 'x-hub-signature-256' : 'x-hub-signature');
  return sig !== undefined && equalConstantTime(sig.trim().toLowerCase(), `sha256=${hex}`);
}

/** True when the request is a push (the other events are ignored). */
export function isPush(provider: WebhookProvider, headers: http.IncomingHttpHeaders): boolean {
  const event = String(
    headers[provider === 'gitea' ? 'x-gitea-event' : provider === 'gitlab' ? 'x-gitlab-event' : provider === 'github' ? 'x-github-event' : 'x-event-key'] ?? '',
  );
  return provider === 'gitlab' ? event === 'Push Hook' : provider === 'bitbucket' ? event === 'repo:push' : event === 'push';
}

/** The delivery id header of a forge's request. */
export function deliveryOf(provider: WebhookProvider, headers: http.IncomingHttpHeaders): string | undefined {
  const name = { github: 'x-github-delivery', gitlab: 'x-gitlab-event-uuid', gitea: 'x-gitea-delivery', bitbucket: 'x-request-uuid' }[provider];
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/**
 * Reads a push payload in the forge's format: GitHub and Gitea `ref` + `after`; GitLab `ref` +
 * `checkout_sha` (else `after`); Bitbucket `push.changes[].new` (`type: branch`, `name`, `target.hash`).
 * Tags and deleted branches yield no branch. Throws on a body that is not a JSON object.
 */
export function parsePush(provider: WebhookProvider, body: Buffer): Push {
  const data: unknown = JSON.parse(body.toString('utf8'));
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new Error('expected a JSON object');
  const p = data as Record<string, unknown>;
  const branches: Push['branches'] = [];
  const headBranch = (ref: unknown) => {
    const r = str(ref);
    return r?.startsWith('refs/heads/') ? r.slice('refs/heads/'.length) : null;
  };
  if (provider === 'bitbucket') {
    const changes = obj(p['push'])['changes'];
    for (const c of Array.isArray(changes) ? changes : []) {
      const n = obj(obj(c)['new']);
      const name = str(n['name']);
      const hash = str(obj(n['target'])['hash']);
      if (n['type'] === 'branch' && name && hash) branches.push({ branch: name, sha: hash });
    }
    const actor = obj(p['actor']);
    return { provider, repo: str(obj(p['repository'])['full_name']), pusher: str(actor['nickname']) ?? str(actor['display_name']), branches };
  }
  const branch = headBranch(p['ref']);
  const sha = provider === 'gitlab' ? (str(p['checkout_sha']) ?? str(p['after'])) : str(p['after']);
  if (branch && sha && !ZERO_SHA.test(sha)) branches.push({ branch, sha });
  if (provider === 'gitlab') {
    return { provider, repo: str(obj(p['project'])['path_with_namespace']), pusher: str(p['user_username']) ?? str(p['user_name']), branches };
  }
  const pusher = obj(p['pusher']);
  return {
    provider,
    repo: str(obj(p['repository'])['full_name']),
    pusher: str(pusher['name']) ?? str(pusher['login']) ?? str(pusher['username']),
    branches,
  };
}

/** The routes a pushed branch matches. */
export function matchRoutes(routes: readonly WebhookRoute[], push: Push, branch: string): WebhookRoute[] {
  return routes.filter(
    (r) =>
      r.branch === branch &&
      (r.provider === undefined || r.provider === push.provider) &&
      (r.repo === undefined || (push.repo !== null && r.repo.toLowerCase() === push.repo.toLowerCase())),
  );
}

/** What a delivery led to: the HTTP status and a one-line body. */
export interface WebhookOutcome {
  status: number;
  message: string;
  /** The queue ids it created. */
  queued: number[];
}

/**
 * Handles one delivery (its headers and raw body): checks it, and queues what its routes say. Order:
 * unknown sender → 400; bad signature → 401; not a push → 202 ignored; no delivery id → 400; a delivery
 * id already seen → 200 duplicate; unreadable payload → 400; no branch of the push routed → 202 ignored;
 * else each routed deployment is queued, due now → 202.
 */
export async function handleDelivery(
  headers: http.IncomingHttpHeaders,
  body: Buffer,
  options: Pick<WebhookServerOptions, 'secret' | 'routes' | 'store'>,
): Promise<WebhookOutcome> {
  const out = (status: number, message: string, queued: number[] = []): WebhookOutcome => ({ status, message, queued });
  const provider = providerOf(headers);
  if (!provider) return out(400, 'unknown sender: expected a GitHub, GitLab, Gitea or Bitbucket webhook');
  if (!verifySignature(provider, headers, body, options.secret)) {
    return out(401, provider === 'gitlab' ? 'invalid or missing X-Gitlab-Token' : 'invalid or missing signature');
  }
  if (!isPush(provider, headers)) return out(202, 'ignored: not a push event');
  const delivery = deliveryOf(provider, headers);
  if (!delivery) return out(400, 'missing delivery id header');
  let push: Push;
  try {
    push = parsePush(provider, body);
  } catch (err) {
    return out(400, `unreadable push payload: ${(err as Error).message}`);
  }
  const wanted = push.branches.flatMap((b) => matchRoutes(options.routes, push, b.branch).map((r) => ({ route: r, sha: b.sha, branch: b.branch })));
  const key = `${provider}:${delivery}`;
  const db = options.store.db;
  const inserted = await db
    .insertInto('webhook_deliveries')
    .values({ delivery: key, provider, received_at: options.store.now() })
    .onConflict((oc) => oc.column('delivery').doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return out(200, `duplicate: delivery ${delivery} was already handled`);
  await db
    .deleteFrom('webhook_deliveries')
    .where('received_at', '<', options.store.now() - WEBHOOK_DELIVERY_RETENTION_MS)
    .execute();
  if (wanted.length === 0) {
    const pushed = push.branches.map((b) => b.branch).join(', ') || 'no branch';
    return out(202, `ignored: no route for ${pushed}${push.repo ? ` of ${push.repo}` : ''}`);
  }
  const queue = new Queue(options.store);
  const ids: number[] = [];
  try {
    for (const w of wanted) {
      ids.push(
        await queue.add({
          fraise: w.route.fraise,
          environment: w.route.environment,
          version: w.sha,
          ref: w.branch,
          flags: {},
          requestedBy: `webhook:${provider}${push.pusher ? ` (${push.pusher})` : ''}`,
          dueAt: options.store.now(),
        }),
      );
    }
  } catch (err) {
    // let the forge's retry queue it: forget the delivery, cancel what was queued
    for (const id of ids) await queue.cancel(id);
    await db.deleteFrom('webhook_deliveries').where('delivery', '=', key).execute();
    throw err;
  }
  return out(202, `queued ${wanted.map((w, i) => `#${ids[i]} ${w.route.fraise}/${w.route.environment} ${w.sha} (${w.branch})`).join(', ')}`, ids);
}

/** Starts the webhook server; resolves once it listens. Only POST is accepted (else 405). */
export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const maxBody = options.maxBody ?? MAX_WEBHOOK_BODY;
  const log = options.log ?? (() => {});
  const server = http.createServer((req, res) => {
    const reply = (status: number, message: string) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`${message}\n`);
      const who = providerOf(req.headers);
      log(`${req.method} ${req.url} ${who ?? 'unknown sender'} ${(who && deliveryOf(who, req.headers)) ?? '-'}: ${status} ${message}`);
    };
    if (req.method !== 'POST') {
      reply(405, 'only POST');
      req.resume();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) {
      reply(413, `body larger than ${maxBody} bytes`);
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > maxBody) {
        over = true;
        reply(413, `body larger than ${maxBody} bytes`);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (over) return;
      handleDelivery(req.headers, Buffer.concat(chunks), options).then(
        (o) => reply(o.status, o.message),
        (err: unknown) => reply(500, `could not queue: ${(err as Error).message}`),
      );
    });
    req.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `--listen`: `host:port`, `:port` or a port alone (host 127.0.0.1); port 0: a free one. */
export function parseListen(v: string): { host: string; port: number } | undefined {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(v.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  return { host, port };
}
