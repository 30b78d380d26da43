/** The YAML of deployment notifications: `notifications:` in an environment block. */
import { Type } from '../core/typebox.js';
import { DurationSchema, NonEmptyString } from '../core/config/schema.js';
import { registry } from '../core/registry.js';

/** Events a notifier can send (plugins/notify.ts `NOTIFY_EVENTS`; repeated here so this file loads nothing else). */
const EVENTS = ['start', 'success', 'failure', 'rollback', 'cancel'] as const;
const TYPES = ['webhook', 'slack', 'discord'] as const;

/** One entry of `notifications:`. */
export const NotifierSchema = Type.Object(
  {
    /** `webhook` (JSON signed with HMAC-SHA256), `slack` (incoming webhook) or `discord` (webhook). */
    type: Type.Union(
      TYPES.map((t) => Type.Literal(t)),
      { expected: 'one of: webhook, slack, discord' },
    ),
    /** Where to POST: an http(s) URL; `${VAR}` keeps a token out of the file. */
    url: NonEmptyString('an http:// or https:// URL'),
    /** For `webhook`: the variable holding the HMAC-SHA256 signing key (never the key itself). */
    secret_env: Type.Optional(
      Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', expected: 'the name of an environment variable, e.g. FRAISIER_WEBHOOK_SECRET' }),
    ),
    /** The events sent. Default: all (start, success, failure, rollback, cancel). */
    events: Type.Optional(
      Type.Array(
        Type.Union(
          EVENTS.map((e) => Type.Literal(e)),
          { expected: 'one of: start, success, failure, rollback, cancel' },
        ),
        { minItems: 1, uniqueItems: true },
      ),
    ),
    /** Longest wait for one attempt. Default 5s. */
    timeout: Type.Optional(DurationSchema),
    /** Attempts after the first. Default 3. */
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, expected: 'a whole number from 0 to 10' })),
    /** Pause before the first retry, doubled each time. Default 500ms. */
    backoff: Type.Optional(DurationSchema),
    /** A name for the output. Default: the type and the URL's host. */
    name: Type.Optional(NonEmptyString()),
  },
  { additionalProperties: false },
);

/** One normalized notifier. */
export interface NormalizedNotifier {
  type: (typeof TYPES)[number];
  url: string;
  secretEnv?: string;
  events: (typeof EVENTS)[number][];
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  name?: string;
  /** Dotted key of the entry, e.g. `fraises.api.environments.production.notifications[0]`. */
  keyPath: string;
}

/** `notifications:` normalized. */
export interface NormalizedNotifications {
  notifiers: NormalizedNotifier[];
  /** Longest wait at the end of a deployment for what is in flight. Default 15000. */
  flushTimeoutMs: number;
}

declare module '../core/registry.js' {
  interface NormalizedEnvironment {
    /** `notifications:`: the environment's notifiers; absent when none is set. */
    notifications?: NormalizedNotifications;
  }
}

registry.registerPlugin({
  name: 'notify',
  field: 'notifications',
  keys: {
    notifications: Type.Optional(Type.Array(NotifierSchema, { minItems: 1, expected: 'a list of notifiers (type, url, ...)' })),
  },
  normalize(block, ctx): NormalizedNotifications | undefined {
    const list = block.notifications;
    if (list === undefined) return undefined;
    const notifiers = list.map((n, i): NormalizedNotifier => {
      let problem: string | null = null;
      try {
        const u = new URL(n.url);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') problem = `expected an http:// or https:// URL, got a ${u.protocol} URL`;
        else if (!u.hostname) problem = 'expected an http:// or https:// URL with a host';
      } catch {
        problem = 'expected an http:// or https:// URL';
      }
      if (problem) {
        throw ctx.error(ctx.at('notifications', i, 'url'), `${problem}: ${ctx.show(ctx.at('notifications', i, 'url'), n.url)}`, {
          hint: 'e.g. https://hooks.slack.com/services/${SLACK_WEBHOOK_PATH} or https://deploys.example.com/hook',
        });
      }
      if (n.type !== 'webhook' && n.secret_env !== undefined) {
        throw ctx.error(ctx.at('notifications', i, 'secret_env'), `only type: webhook is signed; ${n.type} authenticates by its URL`, {
          hint: 'remove secret_env, or keep the token in the URL through ${VAR}',
        });
      }
      // Slack and Discord URLs hold a token: never shown
      ctx.secret(n.url);
      return {
        type: n.type,
        url: n.url,
        ...(n.secret_env !== undefined ? { secretEnv: n.secret_env } : {}),
        events: n.events ?? [...EVENTS],
        timeoutMs: n.timeout !== undefined ? ctx.ms(n.timeout, ctx.at('notifications', i, 'timeout')) : 5000,
        retries: n.retries ?? 3,
        backoffMs: n.backoff !== undefined ? ctx.ms(n.backoff, ctx.at('notifications', i, 'backoff')) : 500,
        ...(n.name !== undefined ? { name: n.name } : {}),
        keyPath: ctx.dotted(ctx.at('notifications', i)),
      };
    });
    return { notifiers, flushTimeoutMs: 15_000 };
  },
});
