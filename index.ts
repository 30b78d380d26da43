/**
 * Fraisier's public API: the core (Deployer, hooks, executors, health checks, state) and the built-in
 * strategies, providers and plugins. Importing this module registers the built-ins under their
 * fraises.yaml names (`bare_metal`, `rolling`, `canary`, `blue_green`, `nginx`, `haproxy`).
 */
export * from './core/index.js';
export { rolling, runBatch, type RollingOptions } from './strategies/rolling.js';
export { canary, canaryWeights, type CanaryOptions, type CanaryStep, type AnalysisFactory } from './strategies/canary.js';
export { blueGreen, type BlueGreenOptions, type Colour, type VerifyInfo } from './strategies/blue-green.js';
export {
  bareMetal,
  bareMetalCommands,
  type BareMetalOptions,
  type GitSource,
  type ArtifactSource,
  type ServiceManager,
  type SshTarget,
} from './providers/bare-metal.js';
export {
  psqlMigration,
  readMigrations,
  PSQL_MIGRATION,
  type PsqlMigrationOptions,
  type PsqlMigrationPlugin,
  type MigrationFile,
  type AppliedMigration,
} from './plugins/psql-migration.js';
export {
  notify,
  deliver,
  buildRequest,
  signature,
  webhookPayload,
  slackPayload,
  discordPayload,
  NOTIFY_EVENTS,
  type NotifyOptions,
  type NotifierOptions,
  type NotifyEvent,
  type Notification,
  type NotifyRequest,
} from './plugins/notify.js';
export { commandHook, hookArgv, type CommandHookOptions, type HookOnFailure } from './plugins/hooks.js';
export {
  nginxLb,
  renderUpstream,
  parseLivePool,
  pidFileFrom,
  nginxLbCommands,
  NGINX_LB,
  type NginxLbOptions,
  type NginxLbPlugin,
  type RenderOptions,
} from './plugins/nginx-lb.js';
export {
  haproxyLb,
  haproxyLbCommands,
  parseServersState,
  parsePoolFile,
  HAPROXY_LB,
  type HaproxyLbOptions,
  type HaproxyLbPlugin,
  type ServerState,
} from './plugins/haproxy-lb.js';
export {
  coolify,
  coolifyFromYaml,
  CoolifyYamlSchema,
  CoolifyError,
  failureClass,
  parseCoolifyVersion,
  type CoolifyOptions,
  type CoolifyTarget,
  type CoolifyFailure,
  type CoolifyProvider,
  type CoolifyYaml,
  type CoolifyVersion,
  type YamlWhere,
} from './providers/coolify.js';
export { probeSource, probeUrl, type ProbeOptions } from './plugins/metrics/probe.js';
export { hostSource, type HostSourceOptions } from './plugins/metrics/host.js';
export { prometheusSource, PROMQL_VARIABLES, type PrometheusMetric, type PrometheusOptions } from './plugins/metrics/prometheus.js';
export { nginxSource, parseAccessLog, type AccessLogEntry, type NginxSourceOptions } from './plugins/metrics/nginx.js';
export { buildMetricSources, defaultSources, metricSourcesFor, type MetricSourcesYaml } from './plugins/metrics/sources.js';
