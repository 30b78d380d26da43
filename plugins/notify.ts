/**
 * Deployment notifications: a generic JSON webhook signed with HMAC-SHA256, a Slack incoming webhook,
 * a Discord webhook. Sent on start, success, failure, rollback and cancel, in the background, with a
 * timeout and retries with backoff; a notifier that cannot deliver only warns, it never fails a
 * deployment. fraises.yaml's `notifications:` becomes these; in a deploy.ts, `notify({...})`. See
 * docs/notifications.md.
 */
import { createHmac } from 'node:crypto';
import type { NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { registry, type BuildContext } from '../core/registry.js';
import { redact, registerSecret, Secret } from '../core/secret.js';
import type { DeployContext, DeployResult, Plugin, PluginHost } from '../core/types.js';

/** What a notification is about. */
export type NotifyEvent = 'start' | 'success' | 'failure' | 'rollback' | 'cancel';

/** Every event, in the order a deployment can send them. */
export const NOTIFY_EVENTS: readonly NotifyEvent[] = ['start', 'success', 'failure', 'rollback', 'cancel'];

/** The formats a notifier can send. */
export const NOTIFY_TYPES = ['webhook', 'slack', 'discord'] as const;

/** One notification, before it is put in a format. Every string in it is redacted before it is sent. */
export interface Notification {
  event: NotifyEvent;
  /** `deploy` or `rollback` (a `fraisier rollback`). */
  kind: 'deploy' | 'rollback';
  fraise: string;
  environment: string;
  /** The release being put out (empty when it could not be resolved). */
  version: string;
  /** The release live before, or null. */
  previousVersion: string | null;
  /** The deployment's outcome, once known (`succeeded`, `failed`, `rolled_back`). */
  status?: string;
  /** Milliseconds the deployment took, once finished. */
  durationMs?: number;
  /** Why it failed. */
  error?: { code: string; message: string; target?: string };
  /** Every target and where it stands. */
  targets?: { name: string; status: string; version: string | null }[];
  /** When it happened (ISO 8601). */
  timestamp: string;
}

/** Options of one notifier. */
export interface NotifierOptions {
  /** `webhook` (JSON, signed), `slack` (incoming webhook) or `discord` (webhook). */
  type: (typeof NOTIFY_TYPES)[number];
  /** Where to POST: an http:// or https:// URL. It is treated as a secret (Slack and Discord URLs hold a token). */
  url: string | Secret;
  /**
   * For `webhook`: the HMAC-SHA256 key. Every request then carries `X-Fraisier-Timestamp` (Unix seconds)
   * and `X-Fraisier-Signature: sha256=<hex of HMAC(secret, timestamp + "." + body)>`. Unsigned when absent.
   */
  secret?: string | Secret;
  /** The events sent. Default: all of them. */
  events?: readonly NotifyEvent[];
  /** Longest wait for one attempt. Default `'5s'`. */
  timeout?: Duration;
  /** Attempts after the first one, on a network error, a timeout, a 429 or a 5xx. Default 3. */
  retries?: number;
  /** Pause before the first retry, doubled before each next one. Default `'500ms'`. */
  backoff?: Duration;
  /** A name for the output (`slack #deploys`). Default: the type and the URL's host. */
  name?: string;
}

/** Options of {@link notify}: one notifier, or several. */
export interface NotifyOptions {
  /** The notifiers; each gets every event it asks for. */
  notifiers: readonly NotifierOptions[];
  /**
   * Longest wait, at the end of a deployment, for the notifications still in flight (the lock is held
   * meanwhile); what is not delivered by then is given up with a warning. Default `'15s'`.
   */
  flushTimeout?: Duration;
  /** The HTTP client (tests inject one). Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** The pause between retries (tests inject one). Default: a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** The clock of the timestamps (tests inject one). Default `Date.now`. */
  now?: () => number;
}

/** One HTTP request, as built (tests assert it). */
export interface NotifyRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

const TITLES: Record<NotifyEvent, string> = {
  start: 'started',
  success: 'succeeded',
  failure: 'failed',
  rollback: 'rolled back',
  cancel: 'cancelled',
};
const COLOURS: Record<NotifyEvent, number> = { start: 0x3498db, success: 0x2ecc71, failure: 0xe74c3c, rollback: 0xe67e22, cancel: 0x95a5a6 };
const EMOJI: Record<NotifyEvent, string> = {
  start: ':rocket:',
  success: ':white_check_mark:',
  failure: ':x:',
  rollback: ':leftwards_arrow_with_hook:',
  cancel: ':no_entry_sign:',
};

/** Every string of a value passed through `redact`. */
function redactDeep<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? redact(v) : v))) as T;
}

/** One line a human reads: `api 1.2.0 → production: succeeded (was 1.1.0, 42s)`. */
export function summaryLine(n: Notification): string {
  const what = n.kind === 'rollback' ? `rollback of ${n.fraise} to ${n.version || '?'}` : `${n.fraise} ${n.version || '?'}`;
  const extra = [n.previousVersion ? `was ${n.previousVersion}` : null, n.durationMs !== undefined ? `${Math.round(n.durationMs / 1000)}s` : null].filter(
    Boolean,
  );
  return `${what} → ${n.environment}: ${TITLES[n.event]}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}${n.error ? `: ${n.error.message}` : ''}`;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** The generic webhook's body: the notification as JSON, with `source: "fraisier"`. */
export function webhookPayload(n: Notification): Record<string, unknown> {
  return { source: 'fraisier', ...redactDeep(n), summary: redact(summaryLine(n)) };
}

/** A Slack incoming-webhook body: `text` (the fallback) and `blocks` (a section and a context line). */
export function slackPayload(n: Notification): Record<string, unknown> {
  const r = redactDeep(n);
  const text = redact(`${EMOJI[n.event]} ${summaryLine(n)}`);
  const fields = [
    `*Fraise:* ${r.fraise}`,
    `*Environment:* ${r.environment}`,
    `*Version:* ${r.version || '?'}`,
    ...(r.previousVersion ? [`*Previous:* ${r.previousVersion}`] : []),
  ];
  return {
    text: truncate(text, 3000),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: truncate(text, 3000) } },
      { type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: truncate(f, 2000) })) },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `fraisier · ${n.event} · ${r.timestamp}` }] },
    ],
  };
}

/** A Discord webhook body: `content` and one embed (title, colour, fields, timestamp), within Discord's limits. */
export function discordPayload(n: Notification): Record<string, unknown> {
  const r = redactDeep(n);
  const fields = [
    { name: 'Fraise', value: r.fraise, inline: true },
    { name: 'Environment', value: r.environment, inline: true },
    { name: 'Version', value: r.version || '?', inline: true },
    ...(r.previousVersion ? [{ name: 'Previous', value: r.previousVersion, inline: true }] : []),
    ...(r.error ? [{ name: 'Error', value: truncate(r.error.message, 1024), inline: false }] : []),
  ];
  return {
    content: truncate(redact(summaryLine(n)), 2000),
    embeds: [
      {
        title: truncate(`${r.fraise} → ${r.environment}: ${TITLES[n.event]}`, 256),
        description: truncate(redact(summaryLine(n)), 4096),
        color: COLOURS[n.event],
        fields,
        timestamp: r.timestamp,
        footer: { text: 'fraisier' },
      },
    ],
  };
}

/** `http:` or `https:` with a host; else the problem. */
export function notifyUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected an http:// or https:// URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `expected an http:// or https:// URL, got a ${u.protocol} URL`;
  if (!u.hostname) return 'expected an http:// or https:// URL with a host';
  return null;
}

/** `sha256=<hex>` of HMAC-SHA256(secret, `${timestamp}.${body}`): what `X-Fraisier-Signature` carries. */
export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

function reveal(v: string | Secret | undefined): string | undefined {
  return v instanceof Secret ? v.reveal() : v;
}

/** The request a notifier sends for a notification. */
export function buildRequest(options: NotifierOptions, n: Notification, nowMs: number): NotifyRequest {
  const url = reveal(options.url)!;
  const payload = options.type === 'slack' ? slackPayload(n) : options.type === 'discord' ? discordPayload(n) : webhookPayload(n);
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'fraisier' };
  if (options.type === 'webhook') {
    const timestamp = String(Math.floor(nowMs / 1000));
    headers['x-fraisier-event'] = n.event;
    headers['x-fraisier-timestamp'] = timestamp;
    const secret = reveal(options.secret);
    if (secret) headers['x-fraisier-signature'] = signature(secret, timestamp, body);
  }
  return { url, headers, body };
}

/** What the output calls a notifier: its name, or its type and the URL's host (never the URL's path, which may hold a token). */
function labelOf(o: NotifierOptions): string {
  if (o.name) return o.name;
  try {
    return `${o.type} (${new URL(reveal(o.url)!).host})`;
  } catch {
    return o.type;
  }
}

/** Checks one notifier's options; throws E_CONFIG naming the key. */
function checkNotifier(o: NotifierOptions, i: number): void {
  const key = `notifiers[${i}]`;
  if (!o || !NOTIFY_TYPES.includes(o.type)) {
    throw new FraisierError('E_CONFIG', `notify: ${key}.type must be one of ${NOTIFY_TYPES.join(', ')}, got ${JSON.stringify(o?.type)}`, {
      key: `${key}.type`,
    });
  }
  const url = reveal(o.url);
  const problem = typeof url === 'string' ? notifyUrlProblem(url) : 'expected an http:// or https:// URL';
  if (problem) throw new FraisierError('E_CONFIG', redact(`notify: ${key}.url: ${problem}`), { key: `${key}.url` });
  for (const e of o.events ?? []) {
    if (!NOTIFY_EVENTS.includes(e)) {
      throw new FraisierError('E_CONFIG', `notify: ${key}.events: unknown event ${JSON.stringify(e)}; expected ${NOTIFY_EVENTS.join(', ')}`, {
        key: `${key}.events`,
      });
    }
  }
  if (o.retries !== undefined && !(Number.isInteger(o.retries) && o.retries >= 0)) {
    throw new FraisierError('E_CONFIG', `notify: ${key}.retries: expected a whole number >= 0, got ${JSON.stringify(o.retries)}`, { key: `${key}.retries` });
  }
  if (o.type !== 'webhook' && o.secret !== undefined) {
    throw new FraisierError('E_CONFIG', `notify: ${key}.secret: only a webhook is signed (Slack and Discord authenticate by their URL)`, {
      key: `${key}.secret`,
    });
  }
}

/**
 * Sends one request with a timeout per attempt and retries with backoff (on a network error, a timeout,
 * a 429 or a 5xx). Resolves with null when delivered, else with the last problem. Never rejects.
 */
export async function deliver(
  req: NotifyRequest,
  policy: { timeoutMs: number; retries: number; backoffMs: number },
  io: { fetch: typeof fetch; sleep: (ms: number) => Promise<void> },
): Promise<string | null> {
  let problem = 'not sent';
  for (let attempt = 0; attempt <= policy.retries; attempt++) {
    if (attempt > 0) await io.sleep(policy.backoffMs * 2 ** (attempt - 1));
    try {
      const res = await io.fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(policy.timeoutMs) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return null;
      problem = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
      if (res.status !== 429 && res.status < 500) return problem; // a 4xx will not get better
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      problem =
        e.name === 'TimeoutError' || e.name === 'AbortError'
          ? `no answer within ${policy.timeoutMs} ms`
          : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
    }
  }
  return `${problem} (after ${policy.retries + 1} attempt(s))`;
}

/** Which events a finished deployment sends: failure, then rollback or cancel as they apply. */
function failureEvents(err: Error, ctx: DeployContext): NotifyEvent[] {
  const code = (err as { code?: string }).code;
  if (code === 'E_ABORTED') return ['cancel', ...(anyRolledBack(ctx) ? (['rollback'] as const) : [])];
  return ['failure', ...(anyRolledBack(ctx) ? (['rollback'] as const) : [])];
}

function anyRolledBack(ctx: DeployContext): boolean {
  return [...ctx.states.values()].some((s) => s.status === 'rolled_back' || s.rolledBackTo !== undefined);
}

/**
 * The notifications plugin: taps `preDeploy` (start), `postDeploy` (success, or rollback for a
 * `fraisier rollback`), `held` (a canary stopped for a human: nothing sent, `start` awaited), `rollback`
 * (failure or cancel, then rollback when hosts went back) and `failed` (failure, when no rollback ran). Sends in the background; waits for what is in flight at the end of a
 * deployment, at most `flushTimeout`. A notifier that cannot deliver warns; it never fails a deployment.
 * Dry runs send nothing.
 */
export function notify(options: NotifyOptions): Plugin {
  if (!options || !Array.isArray(options.notifiers) || options.notifiers.length === 0) {
    throw new FraisierError('E_CONFIG', 'notify: give at least one notifier (notifiers: [{ type, url }])', { key: 'notifiers' });
  }
  options.notifiers.forEach(checkNotifier);
  for (const o of options.notifiers) {
    registerSecret(reveal(o.url)!);
    const s = reveal(o.secret);
    if (s) registerSecret(s);
  }
  const flushMs = toMs(options.flushTimeout ?? '15s', 'flushTimeout');
  const io = {
    fetch: options.fetch ?? globalThis.fetch,
    sleep: options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))),
  };
  const now = options.now ?? Date.now;
  const notifiers = options.notifiers.map((o) => ({
    options: o,
    label: labelOf(o),
    events: new Set(o.events ?? NOTIFY_EVENTS),
    policy: { timeoutMs: toMs(o.timeout ?? '5s', 'timeout'), retries: o.retries ?? 3, backoffMs: toMs(o.backoff ?? '500ms', 'backoff') },
  }));

  return {
    name: 'plugin:notify',
    apply(host: PluginHost) {
      /** Per notifier, the chain of its sends: one at a time, in order (start before success). */
      let queues: Promise<void>[] = notifiers.map(() => Promise.resolve());
      /** The final event of this run was sent (the failed hook then sends nothing more). */
      let finished = false;

      const send = (event: NotifyEvent, n: Omit<Notification, 'event' | 'timestamp'>, log: Logger) => {
        const notification: Notification = { ...n, event, timestamp: new Date(now()).toISOString() };
        notifiers.forEach((x, i) => {
          if (!x.events.has(event)) return;
          queues[i] = queues[i]!.then(async () => {
            const problem = await deliver(buildRequest(x.options, notification, now()), x.policy, io);
            if (problem) log.warn(redact(`notification ${x.label} (${event}) not delivered: ${problem}; the deployment goes on`));
          }).catch(() => {});
        });
      };
      /** Waits for what is in flight, at most `flushTimeout`. */
      const flush = async (log: Logger) => {
        let timer: NodeJS.Timeout | undefined;
        const all = Promise.all(queues).then(() => true);
        const late = new Promise<false>((r) => {
          timer = setTimeout(() => r(false), flushMs);
        });
        const done = await Promise.race([all, late]);
        clearTimeout(timer);
        if (!done) log.warn(`notifications still in flight after ${flushMs} ms: given up`);
      };
      const fromCtx = (ctx: DeployContext): Omit<Notification, 'event' | 'timestamp'> => ({
        kind: ctx.kind,
        fraise: ctx.fraise,
        environment: ctx.environment,
        version: ctx.version,
        previousVersion: ctx.previousVersion,
        targets: [...ctx.states.values()].map((s) => ({ name: s.target.name, status: s.status, version: s.toVersion ?? s.fromVersion })),
      });

      host.hooks.preDeploy.tap({ name: 'plugin:notify', stage: -1000 }, (ctx) => {
        queues = notifiers.map(() => Promise.resolve());
        finished = false;
        if (ctx.dryRun) return;
        send('start', { ...fromCtx(ctx), targets: [] }, ctx.log); // in the background: the hosts are not kept waiting
      });
      // Last of the postDeploy taps: sent only when every other step passed.
      host.hooks.postDeploy.tapPromise({ name: 'plugin:notify', stage: 1000 }, async (result: DeployResult) => {
        if (result.dryRun) return;
        finished = true;
        send(
          result.kind === 'rollback' ? 'rollback' : 'success',
          {
            kind: result.kind,
            fraise: result.fraise,
            environment: result.environment,
            version: result.toVersion,
            previousVersion: result.fromVersion,
            status: result.status,
            durationMs: result.durationMs,
            targets: result.targets.map((t) => ({ name: t.name, status: t.status, version: t.toVersion ?? t.fromVersion })),
          },
          host.log,
        );
        await flush(host.log);
      });
      // A canary held for promote/rollback: no event of its own (success comes with the promotion), but
      // `start` may still be in flight: awaited here, as at the end of any deployment.
      host.hooks.held.tapPromise('plugin:notify', async (result: DeployResult) => {
        if (result.dryRun) return;
        await flush(host.log);
      });
      host.hooks.rollback.tapPromise('plugin:notify', async (ctx, err) => {
        if (ctx.dryRun) return;
        finished = true;
        const e = err as Error & { code?: string; target?: string };
        const n = {
          ...fromCtx(ctx),
          status: anyRolledBack(ctx) ? 'rolled_back' : 'failed',
          error: { code: e.code ?? 'E_COMMAND', message: e.message, ...(e.target ? { target: e.target } : {}) },
        };
        for (const event of failureEvents(err, ctx)) send(event, n, ctx.log);
        await flush(ctx.log);
      });
      // When no rollback ran (the lock was lost): best effort, not awaited (the hook is synchronous).
      host.hooks.failed.tap('plugin:notify', (err, ctx) => {
        if (finished || ctx.dryRun) return;
        finished = true;
        const e = err as Error & { code?: string };
        send(
          e.code === 'E_ABORTED' ? 'cancel' : 'failure',
          { ...fromCtx(ctx), status: 'failed', error: { code: e.code ?? 'E_COMMAND', message: e.message } },
          ctx.log,
        );
      });
    },
  };
}

registry.registerPlugin('notify', ({ env }: BuildContext<NormalizedEnvironment>) => {
  const n = env.notifications!;
  return notify({
    notifiers: n.notifiers.map((x) => ({
      type: x.type,
      url: new Secret(x.url, `${x.keyPath}.url`),
      ...(x.secretEnv !== undefined ? { secret: new Secret(secretFromEnv(x.secretEnv, x.keyPath), x.secretEnv) } : {}),
      events: x.events,
      timeout: x.timeoutMs,
      retries: x.retries,
      backoff: x.backoffMs,
      ...(x.name !== undefined ? { name: x.name } : {}),
    })),
    flushTimeout: n.flushTimeoutMs,
  });
});

/** The HMAC key from its variable; an E_CONFIG naming the key when the variable is unset. */
function secretFromEnv(name: string, keyPath: string): string {
  const v = process.env[name];
  if (!v) {
    throw new FraisierError('E_CONFIG', `${keyPath}.secret_env: the variable ${name} (the webhook's signing key) is not set`, {
      key: `${keyPath}.secret_env`,
      hint: `export ${name}=... before deploying, or remove secret_env to send unsigned`,
    });
  }
  return v;
}
