/**
 * The typebox schemas of the envelope of `fraises.yaml`: the file (`plugins`, `state`, `ssh`, `fraises`),
 * a fraise, and the keys of an environment block that the core owns (`provider`, `deployment_strategy`,
 * the health check, `rollback_config`). Every other key of an environment belongs to a registered
 * provider, strategy or plugin, which contributes its own schema fragment (see core/registry.ts); the
 * loader (`load.ts`) composes them. Every object is closed (`additionalProperties: false`) so that a
 * typo is an error, not a silently ignored key.
 *
 * Schemas may carry an `expected` annotation: the human phrase the loader prints in
 * `expected <phrase>, got <value>` when the generic description of the schema would be unclear.
 */
import { Type } from '../typebox.js';
import type { Static } from '@sinclair/typebox';

/** Names of fraises and environments: a letter or digit, then letters, digits, `_` or `-`. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]*$';

/** Health check kinds. */
export const HEALTH_CHECK_TYPES = ['http', 'tcp', 'exec'] as const;

const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)\\s*$';

/**
 * A duration: a bare number means seconds; a string carries its unit (`"500ms"`, `"30s"`, `"2m"`, `"1h"`).
 */
export const DurationSchema = Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
  expected: 'a duration: a number of seconds, or a string such as "500ms", "30s" or "2m"',
});

export const NonEmptyString = (expected?: string) => Type.String({ minLength: 1, ...(expected ? { expected } : {}) });

/** `health_check:` — the original Fraisier's grouped form of the flat `health_check_*` keys. */
export const HealthCheckSchema = Type.Object(
  {
    /** `http`, `tcp` or `exec`; inferred from the keys present when absent. */
    type: Type.Optional(Type.Union(HEALTH_CHECK_TYPES.map((t) => Type.Literal(t)))),
    /** URL probed by an http check. */
    url: Type.Optional(NonEmptyString()),
    /** Timeout of one probe. Default 5s. */
    timeout: Type.Optional(DurationSchema),
    /** Probes before the check fails. Default 3. */
    retries: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Text the http response body must contain. */
    expect: Type.Optional(Type.String()),
    /** Pause between probes. Default 2s. */
    retry_delay: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

/** `rollback_config:` — when and how a failed deployment is rolled back. */
export const RollbackConfigSchema = Type.Object(
  {
    /** Default true. */
    enabled: Type.Optional(Type.Boolean()),
    /** Default true. */
    rollback_on_health_check_failure: Type.Optional(Type.Boolean()),
    /** Health probes per host; takes precedence over every other `retries`. */
    health_check_retries: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Pause between probes; takes precedence over `health_check.retry_delay`. */
    retry_delay: Type.Optional(DurationSchema),
    /** Failed hosts tolerated in a row before the deployment stops. */
    max_consecutive_failures: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Time allowed for the rollback itself. Default 300s. */
    rollback_timeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

/** One `deploy_windows:` entry: `{ days: [mon-fri], start: "09:00", end: "17:00", timezone: Europe/Paris }`. */
export const DeployWindowSchema = Type.Object(
  {
    /** Day names or ranges (`mon-fri`, `sat`); default every day. */
    days: Type.Optional(Type.Array(NonEmptyString(), { expected: 'a list of day names or ranges such as [mon-fri, sun]' })),
    /** Local time the window opens, `"HH:MM"`. */
    start: NonEmptyString('a time of day "HH:MM" (quote it in YAML)'),
    /** Local time it closes, `"HH:MM"`; earlier than start: past midnight. */
    end: NonEmptyString('a time of day "HH:MM" (quote it in YAML)'),
    /** IANA time zone of start and end; default UTC. */
    timezone: Type.Optional(NonEmptyString('an IANA time zone such as Europe/Paris, or UTC')),
  },
  { additionalProperties: false },
);

/** One `freeze:` entry: `{ from: 2026-12-20, to: 2027-01-02, reason: end of year }`. */
export const FreezeSchema = Type.Object(
  {
    /** First day (or instant) of the freeze. */
    from: NonEmptyString('a date such as 2026-12-20, or an ISO time'),
    /** Last day of the freeze (inclusive), or the instant it ends. */
    to: NonEmptyString('a date such as 2027-01-02, or an ISO time'),
    /** Shown to whoever is refused. */
    reason: Type.Optional(Type.String()),
    /** Time zone of dates and times written without an offset; default UTC. */
    timezone: Type.Optional(NonEmptyString('an IANA time zone such as Europe/Paris, or UTC')),
  },
  { additionalProperties: false },
);

/** Keys of an environment block owned by the core: the envelope every provider shares. */
export const ENVELOPE_KEYS = {
  /** The provider's registered name; default: the default provider. */
  provider: Type.Optional(NonEmptyString()),
  /** The strategy's registered name; default: the default strategy. */
  deployment_strategy: Type.Optional(NonEmptyString()),
  health_check_type: Type.Optional(Type.Union(HEALTH_CHECK_TYPES.map((t) => Type.Literal(t)))),
  health_check_url: Type.Optional(NonEmptyString()),
  health_check_timeout: Type.Optional(DurationSchema),
  health_check_expect: Type.Optional(Type.String()),
  health_check_port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  health_check_command: Type.Optional(NonEmptyString()),
  health_check: Type.Optional(HealthCheckSchema),
  rollback_config: Type.Optional(RollbackConfigSchema),
  /** Allowed deploy times; outside all of them a deploy is refused unless `--force` (docs/scheduling.md). */
  deploy_windows: Type.Optional(Type.Array(DeployWindowSchema)),
  /** Periods when deploys are refused unless `--force` (docs/scheduling.md). */
  freeze: Type.Optional(Type.Array(FreezeSchema)),
  /** `multi_provider`: the environment is served by the providers of `providers:` (see docs/multi-provider.md). Default `single`. */
  deployment_mode: Type.Optional(Type.Union([Type.Literal('single'), Type.Literal('multi_provider')])),
  /**
   * With `deployment_mode: multi_provider`: the providers, each `{name, type, priority, ...that provider's
   * own keys, and optionally its own deployment_strategy and health check}`. Each entry is checked
   * against its provider's keys (see {@link multiProviderEntrySchema}).
   */
  providers: Type.Optional(
    Type.Array(Type.Object({}), { minItems: 1, expected: 'a non-empty list of providers, each {name, type, priority, ...its own keys}' }),
  ),
  /** With `deployment_mode: multi_provider`: `failover` (default: one provider at a time, by priority) or `all` (every one in parallel). */
  multi_provider_mode: Type.Optional(Type.Union([Type.Literal('failover'), Type.Literal('all')])),
  /** With `multi_provider_mode: all`: `rollback_all` (default) or `keep_others` (roll back only the provider that failed). */
  on_failure: Type.Optional(Type.Union([Type.Literal('rollback_all'), Type.Literal('keep_others')])),
};

/** Envelope keys that belong to a multi-provider environment, never to one of its `providers:` entries. */
export const MULTI_PROVIDER_KEYS = ['deployment_mode', 'providers', 'multi_provider_mode', 'on_failure'] as const;

/** Keys of a `providers:` entry owned by the core; the entry's provider (`type`) adds its own. */
export const PROVIDER_ENTRY_KEYS = {
  /** Unique in the environment: what `--provider`, `status` and the history call it. */
  name: Type.String({ pattern: NAME_PATTERN, expected: 'a name: letters, digits, "_" or "-", starting with a letter or digit' }),
  /** The registered provider name: `bare_metal`, `coolify`, or one a package registers. */
  type: NonEmptyString(),
  /** Failover order, 1 first; unique in failover mode. Default: the entry's position (1, 2, ...). */
  priority: Type.Optional(Type.Integer({ minimum: 1 })),
};

const EnvelopeSchema = Type.Object(ENVELOPE_KEYS);
/** The envelope part of an environment block, as written. */
export type EnvelopeConfig = Static<typeof EnvelopeSchema>;

/**
 * `deployment_slo:` — objectives over the deployment history (docs/slo.md), at the top of the file (every
 * fraise) or in a fraise (overrides key by key). Rates are percentages (`"99%"`); `latency_p99` a duration.
 */
export const SloSchema = Type.Object(
  {
    /** Least share of deployments that succeed, e.g. `"99%"`. */
    success_rate: Type.Optional(Type.Union([Type.String(), Type.Number()], { expected: 'a percentage such as "99%"' })),
    /** Most share of deployments that end in error without a clean rollback, e.g. `"1%"`. */
    error_rate_max: Type.Optional(Type.Union([Type.String(), Type.Number()], { expected: 'a percentage such as "1%"' })),
    /** Longest 99th-percentile deployment duration, e.g. `"10m"`. */
    latency_p99: Type.Optional(Type.Union([Type.String(), Type.Number()], { expected: 'a duration such as "90s" or "10m"' })),
    /** Most share of deployments rolled back automatically, e.g. `"5%"`. */
    rollback_rate: Type.Optional(Type.Union([Type.String(), Type.Number()], { expected: 'a percentage such as "5%"' })),
  },
  { additionalProperties: false },
);

/** Keys of a fraise block owned by the core (providers add their `fraiseKeys`, defaults of every environment). */
export const FRAISE_KEYS = {
  /** Free text (e.g. `api`, `worker`). */
  type: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  /** The fraise's deployment SLO; overrides the top-level one key by key. */
  deployment_slo: Type.Optional(SloSchema),
};

/** `state:` — where the deployment history and locks live. */
export const StateSchema = Type.Object(
  {
    /** SQLite file, relative to the config file. Exclusive with `url`. */
    path: Type.Optional(NonEmptyString()),
    /**
     * PostgreSQL database shared by every deployer: `postgres://user:${PGPASSWORD}@host:5432/db`.
     * Wins over `$FRAISIER_DATABASE_URL`. Exclusive with `path`.
     */
    url: Type.Optional(NonEmptyString('a PostgreSQL URL such as postgres://user:password@host:5432/database')),
  },
  { additionalProperties: false },
);

/** One `webhooks.routes:` entry: which pushes queue a deployment of which fraise and environment. */
export const WebhookRouteSchema = Type.Object(
  {
    /** Only pushes from this forge: `github`, `gitlab`, `gitea` or `bitbucket`. Default: any. */
    provider: Type.Optional(
      Type.Union([Type.Literal('github'), Type.Literal('gitlab'), Type.Literal('gitea'), Type.Literal('bitbucket')], {
        expected: 'one of github, gitlab, gitea, bitbucket',
      }),
    ),
    /** Only pushes to this repository (`owner/name`, compared case-insensitively). Default: any. */
    repo: Type.Optional(NonEmptyString('a repository such as owner/name')),
    /** The pushed branch (`main`, not `refs/heads/main`). */
    branch: NonEmptyString('a branch name such as main'),
    /** The fraise to deploy. */
    fraise: NonEmptyString('the name of a fraise of this file'),
    /** Its environment to deploy to. */
    environment: NonEmptyString('the name of an environment of that fraise'),
  },
  { additionalProperties: false },
);

/** `webhooks:` — `fraisier serve`: git push webhooks that queue deployments of the pushed commit. */
export const WebhooksSchema = Type.Object(
  {
    /** The environment variable holding the shared secret (HMAC key, or GitLab token). Read when `serve` starts. */
    secret_env: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', expected: 'the name of an environment variable such as FRAISIER_WEBHOOK_SECRET' }),
    /** Which pushes deploy what. */
    routes: Type.Array(WebhookRouteSchema, { minItems: 1, expected: 'a list of {provider, repo, branch, fraise, environment}' }),
  },
  { additionalProperties: false },
);

/** `ssh:` — connection defaults for every host. */
export const SshSchema = Type.Object(
  {
    /** OpenSSH client config file to read host aliases from. */
    config: Type.Optional(NonEmptyString()),
    /** known_hosts file used to verify host keys. */
    known_hosts: Type.Optional(NonEmptyString()),
    /** Refuse unknown host keys. */
    strict_host_key_checking: Type.Optional(Type.Boolean()),
    /** Seconds allowed to connect. */
    connect_timeout: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

/** `plugins:` — packages and local files imported before validation; they register their YAML names. */
export const PluginsSchema = Type.Array(NonEmptyString(), {
  expected: 'a list of npm package names or paths of .ts/.js files relative to the config file',
});

/** A validated, interpolated `fraises.yaml` (the owners' keys of each environment are not typed here). */
export interface FraisesFile {
  plugins?: string[];
  state?: Static<typeof StateSchema>;
  ssh?: Static<typeof SshSchema>;
  deployment_slo?: Static<typeof SloSchema>;
  webhooks?: Static<typeof WebhooksSchema>;
  fraises: Record<string, FraiseConfig>;
}
/** One validated fraise block, as written (with its providers' fraise-level defaults). */
export interface FraiseConfig {
  type?: string;
  description?: string;
  deployment_slo?: Static<typeof SloSchema>;
  environments: Record<string, EnvironmentConfig>;
  [key: string]: unknown;
}
/** One validated environment block, as written. */
export type EnvironmentConfig = EnvelopeConfig & Record<string, any>;
