/**
 * The typebox schemas of `fraises.yaml`. Every object is closed (`additionalProperties: false`) so that a
 * typo is an error, not a silently ignored key. The loader (`load.ts`) validates against
 * {@link FraisesFileSchema} after `${VAR}` interpolation, then runs the checks a schema cannot express
 * (exactly one service key, exactly one source, health check completeness) and normalizes.
 *
 * Schemas may carry an `expected` annotation: the human phrase the loader prints in
 * `expected <phrase>, got <value>` when the generic description of the schema would be unclear.
 */
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';

/** Names of fraises and environments: a letter or digit, then letters, digits, `_` or `-`. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]*$';

/** Providers this version can deploy with. */
export const KNOWN_PROVIDERS = ['bare_metal'] as const;

/** Provider names that are recognized but have no implementation (or fields) yet. */
export const PLANNED_PROVIDERS = ['coolify'] as const;

/** Deployment strategies this version knows. */
export const KNOWN_STRATEGIES = ['rolling', 'blue_green'] as const;

/** Health check kinds. */
export const HEALTH_CHECK_TYPES = ['http', 'tcp', 'exec'] as const;

const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)\\s*$';

/**
 * A duration: a bare number means seconds; a string carries its unit (`"500ms"`, `"30s"`, `"2m"`, `"1h"`).
 */
export const DurationSchema = Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
  expected: 'a duration: a number of seconds, or a string such as "500ms", "30s" or "2m"',
});

const NonEmptyString = (expected?: string) => Type.String({ minLength: 1, ...(expected ? { expected } : {}) });

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

/** `rolling_config:` — how the rolling strategy batches hosts. */
export const RollingConfigSchema = Type.Object(
  {
    /** Hosts deployed at once. Default 1. */
    batch_size: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Pause between batches. Default 0. */
    wait_between_batches: Type.Optional(DurationSchema),
    /** Health probes per host (overridden by `rollback_config.health_check_retries`). */
    health_check_retries: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Roll back when a host fails its health check (overridden by the `rollback_config` key). */
    rollback_on_health_check_failure: Type.Optional(Type.Boolean()),
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

/** `load_balancer:` — traffic in front of the instances (the nginx-lb or the haproxy-lb plugin). */
export const LoadBalancerSchema = Type.Object(
  {
    /** `nginx` (nginx-lb: a generated upstream file and reloads) or `haproxy` (haproxy-lb: the runtime API, no reload). */
    type: Type.Union([Type.Literal('nginx'), Type.Literal('haproxy')], { expected: '"nginx" or "haproxy"' }),
    /** nginx: the upstream file Fraisier owns and rewrites (absolute path); include it from your nginx config. Required for nginx. */
    file: Type.Optional(NonEmptyString()),
    /**
     * nginx: backend address of each instance, e.g. `h1: 10.0.0.11:8000` (required).
     * haproxy: HAProxy server name of each instance, when it is not the instance's name (optional).
     */
    servers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), NonEmptyString(), { expected: 'a mapping of instance names to host:port addresses (nginx) or server names (haproxy)' })),
    /** haproxy: the admin socket (`stats socket <path> level admin`). Required for haproxy. */
    socket: Type.Optional(NonEmptyString()),
    /** haproxy: the backend holding the instances' servers. Default: the fraise name. */
    backend: Type.Optional(NonEmptyString()),
    /** haproxy: socat binary. Default `socat`. */
    socat: Type.Optional(NonEmptyString()),
    /** haproxy: where the live blue-green pool is recorded. Default: next to the socket. */
    pool_file: Type.Optional(NonEmptyString()),
    /** nginx: `passive` (default, no reload while a host restarts) or `reload` (mark down + reload, two per host). */
    drain: Type.Optional(Type.Union([Type.Literal('passive'), Type.Literal('reload')], { expected: '"passive" or "reload"' })),
    /** nginx: `max_fails` on every server line. Default 0 with drain: passive. */
    max_fails: Type.Optional(Type.Integer({ minimum: 0, expected: 'a non-negative integer' })),
    /** nginx: `fail_timeout` on every server line (whole seconds). */
    fail_timeout: Type.Optional(DurationSchema),
    /** Upstream name. Default: the fraise name. */
    upstream: Type.Optional(NonEmptyString()),
    /** SSH host running nginx. Default: this machine. */
    host: Type.Optional(NonEmptyString()),
    /** nginx binary. Default `nginx`. */
    nginx: Type.Optional(NonEmptyString()),
    /** Extra arguments for `nginx -t` (e.g. `-p`, `-c`). */
    nginx_args: Type.Optional(Type.Array(NonEmptyString())),
    /** nginx master pid file. Default: read from `nginx -T`. */
    pid_file: Type.Optional(NonEmptyString()),
    /** Longest wait for in-flight requests after draining a host. Default 5s (nginx, drain: reload), 10s (haproxy). */
    drain_timeout: Type.Optional(DurationSchema),
    /**
     * Blue-green written as two environments, `<name>_blue` and `<name>_green`: the colour this
     * environment is. The pair becomes one blue-green environment `<name>`.
     */
    target: Type.Optional(Type.Union([Type.Literal('blue'), Type.Literal('green')])),
  },
  { additionalProperties: false },
);

const HostList = Type.Array(NonEmptyString(), { minItems: 1, uniqueItems: true, expected: 'a non-empty list of distinct host names' });

/** `blue_green_config:` — the two colours of a blue-green environment and the check before the switch. */
export const BlueGreenConfigSchema = Type.Object(
  {
    /** Instances of the blue colour (with `deployment_strategy: blue_green`). */
    blue: Type.Optional(HostList),
    /** Instances of the green colour. */
    green: Type.Optional(HostList),
    /**
     * Run on the deploying machine after the idle colour passed its health checks, before the switch;
     * gets FRAISIER_IDLE_URL, FRAISIER_IDLE_URLS, FRAISIER_IDLE_COLOUR, FRAISIER_VERSION. Non-zero: no switch.
     */
    verify_command: Type.Optional(NonEmptyString()),
    /** Longest the verification may run. Default 5m. */
    verify_timeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

/** How a deployment hook reacts to its own failure (a non-zero exit, a missing command, its timeout). */
export const HOOK_ON_FAILURE = ['abort', 'rollback', 'alert', 'ignore'] as const;

/** What a deployment hook runs. */
export const HOOK_TYPES = ['command', 'script', 'database'] as const;

/** `database:` — the psql-migration plugin: SQL migrations applied before the hosts change. */
export const DatabaseSchema = Type.Object(
  {
    /** Only `postgresql` today. */
    type: Type.Literal('postgresql', { expected: '"postgresql"' }),
    /** Environment variable holding the connection URL. Default `DATABASE_URL`. */
    url_env: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', expected: 'an environment variable name, e.g. DATABASE_URL' })),
    /** Directory of the migration files on the deploying machine, relative to the config file. */
    migrations_dir: NonEmptyString(),
    /** Table recording applied migrations. Default `fraisier_migrations`. */
    table: Type.Optional(Type.String({ pattern: '^(?:[a-z_][a-z0-9_]*\\.)?[a-z_][a-z0-9_]*$', expected: 'a lower-case table name, optionally schema.table' })),
    /** Longest wait for another deployer's migration lock. Default 5m. */
    lock_timeout: Type.Optional(DurationSchema),
    /** Longest wait to connect. Default 10s. */
    connect_timeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

/** One entry of `pre_deployment_hooks:` / `post_deployment_hooks:`. */
export const HookSchema = Type.Object(
  {
    /** Shown in the output and the history. */
    name: NonEmptyString(),
    /** `command` (default): shell text; `script`: a file to run; `database`: a command that gets the database URL. */
    type: Type.Optional(Type.Union(HOOK_TYPES.map((t) => Type.Literal(t)))),
    /** The shell command, or the script's path for `type: script` (relative to the config file). */
    command: NonEmptyString(),
    /** Killed (its whole process group) after this long. Default 5m. */
    timeout: Type.Optional(DurationSchema),
    /** What a failure does. Default `abort` for pre hooks, `alert` for post hooks. */
    on_failure: Type.Optional(Type.Union(HOOK_ON_FAILURE.map((t) => Type.Literal(t)))),
  },
  { additionalProperties: false },
);

/** One environment of a fraise (`fraises.<name>.environments.<env>`), before merging fraise-level defaults. */
export const EnvironmentSchema = Type.Object(
  {
    /** Default `bare_metal`; the only provider implemented. */
    provider: Type.Optional(NonEmptyString()),
    /** SSH hosts (names from the ssh config or `user@host`). */
    instances: Type.Array(NonEmptyString(), { minItems: 1, uniqueItems: true, expected: 'a non-empty list of distinct host names' }),
    /** Absolute directory on the hosts; required here or at fraise level. */
    app_path: Type.Optional(NonEmptyString()),
    /** Git repository to deploy; overrides the fraise-level one. Exclusive with `artifact_dir`. */
    git_repo: Type.Optional(NonEmptyString()),
    /** Branch to deploy; overrides the fraise-level one. Default `main`. */
    branch: Type.Optional(NonEmptyString()),
    /** Local directory to ship instead of git (relative to the config file). */
    artifact_dir: Type.Optional(NonEmptyString()),
    /** systemd unit to restart. Exactly one of the three service keys. */
    systemd_service: Type.Optional(NonEmptyString()),
    /** supervisor program to restart. */
    supervisor_program: Type.Optional(NonEmptyString()),
    /** Shell command that restarts the app. */
    restart_command: Type.Optional(NonEmptyString()),
    /** Releases kept on each host. */
    keep_releases: Type.Optional(Type.Integer({ minimum: 2 })),
    /** Paths shared between releases (linked into each one). */
    shared: Type.Optional(Type.Array(NonEmptyString())),
    /** Command run in the release directory before activation. */
    build_command: Type.Optional(NonEmptyString()),
    /** Default `rolling`. */
    deployment_strategy: Type.Optional(NonEmptyString()),
    rolling_config: Type.Optional(RollingConfigSchema),
    blue_green_config: Type.Optional(BlueGreenConfigSchema),
    health_check_type: Type.Optional(Type.Union(HEALTH_CHECK_TYPES.map((t) => Type.Literal(t)))),
    health_check_url: Type.Optional(NonEmptyString()),
    health_check_timeout: Type.Optional(DurationSchema),
    health_check_expect: Type.Optional(Type.String()),
    health_check_port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    health_check_command: Type.Optional(NonEmptyString()),
    health_check: Type.Optional(HealthCheckSchema),
    rollback_config: Type.Optional(RollbackConfigSchema),
    load_balancer: Type.Optional(LoadBalancerSchema),
    database: Type.Optional(DatabaseSchema),
    pre_deployment_hooks: Type.Optional(Type.Array(HookSchema, { expected: 'a list of hooks (name, command, ...)' })),
    post_deployment_hooks: Type.Optional(Type.Array(HookSchema, { expected: 'a list of hooks (name, command, ...)' })),
  },
  { additionalProperties: false },
);

/** One fraise (`fraises.<name>`): an app deployed to one or more environments. */
export const FraiseSchema = Type.Object(
  {
    /** Free text (e.g. `api`, `worker`). */
    type: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    /** Default `git_repo` of the environments. */
    git_repo: Type.Optional(NonEmptyString()),
    /** Default `branch` of the environments. */
    branch: Type.Optional(NonEmptyString()),
    /** Default `app_path` of the environments. */
    app_path: Type.Optional(NonEmptyString()),
    environments: Type.Record(Type.String({ pattern: NAME_PATTERN }), EnvironmentSchema, {
      additionalProperties: false,
      minProperties: 1,
      expected: 'a mapping of environment names to environments',
    }),
  },
  { additionalProperties: false },
);

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

/** The whole `fraises.yaml`. */
export const FraisesFileSchema = Type.Object(
  {
    state: Type.Optional(StateSchema),
    ssh: Type.Optional(SshSchema),
    fraises: Type.Record(Type.String({ pattern: NAME_PATTERN }), FraiseSchema, {
      additionalProperties: false,
      minProperties: 1,
      expected: 'a mapping of fraise names to fraises',
    }),
  },
  { additionalProperties: false },
);

/** A validated, interpolated `fraises.yaml`. */
export type FraisesFile = Static<typeof FraisesFileSchema>;
/** One validated environment block, as written. */
export type EnvironmentConfig = Static<typeof EnvironmentSchema>;
/** One validated fraise block, as written. */
export type FraiseConfig = Static<typeof FraiseSchema>;
