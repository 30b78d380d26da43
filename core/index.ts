export { defineDeploy, type DefineDeployOptions } from './define.js';
export { DeployApp, type DeployDefinition, type EnvironmentDefinition, type ProviderSelection, type RuntimeOptions, type StateOptions } from './app.js';
export {
  multiProvider,
  isMultiProvider,
  type MultiProviderEnvironment,
  type MultiProviderMode,
  type MultiProviderOptions,
  type ProviderMember,
} from './multi-provider.js';
export {
  Deployer,
  validateVersion,
  type DeployerOptions,
  type DeployOptions,
  type RollbackOptions,
  type RollbackPolicy,
  type StatusReport,
} from './deployer.js';
export type {
  DeployContext,
  DeployHooks,
  DeploymentSummary,
  DeployResult,
  HealthCheck,
  HealthFailure,
  HistoryReader,
  MigrateReport,
  MigrateRequest,
  MigrationPhase,
  Migrator,
  Plugin,
  PluginHost,
  Provider,
  ProviderOutcome,
  ProviderSession,
  Strategy,
  StrategyRunner,
  Target,
  TargetState,
  TargetStatus,
  TrafficSwitch,
} from './types.js';
export { http, tcp, exec, runHealthPolicy, NotListeningError, type HealthPolicy, type HttpCheckOptions } from './health.js';
export { FraisierError, PostDeployError, TargetErrors, formatError, type ErrorCode } from './errors.js';
export { Secret, secret, redact, registerSecret, REDACTED } from './secret.js';
export { command, all, raw, quote, render, Raw, type Arg, type Command } from './exec/command.js';
export type { Executor, ExecResult, RunOptions } from './exec/executor.js';
export { SshExecutor, resolveHost, type SshOptions, type ResolvedHost } from './exec/ssh.js';
export { LocalExecutor } from './exec/local.js';
export { runProcess, type ProcessOptions, type ProcessResult } from './exec/process.js';
export { DryRunExecutor } from './exec/recording.js';
export { KnownHosts } from './exec/known-hosts.js';
export { systemClock, type Clock } from './clock.js';
export { toMs, type Duration } from './duration.js';
export { FanoutLogger, consoleSink, memorySink, type LogEntry, type LogSink, type Logger } from './log.js';
export { openStore, redactUrl, resolveState, StateStore, type Deployment, type StateLocation, type Stats, type StoreOptions } from './state/store.js';
export { Locks, LockHeldError, ownerString, type LockInfo, type LockOwner } from './state/lock.js';
export {
  registry,
  defineProvider,
  defineStrategy,
  definePlugin,
  type BuildContext,
  type FraiseEnvironments,
  type NormalizedEnvironment,
  type NormalizedStrategy,
  type PluginDefinition,
  type ProviderDefinition,
  type RegistryApi,
  type StrategyDefinition,
  type StrategyOptionsByName,
  type YamlContext,
} from './registry.js';
/** typebox, for the schema fragment of a provider, strategy or plugin: the same copy the loader validates with. */
export { Type, type Static, type TProperties } from '@sinclair/typebox';
export { findConfig, loadConfig, openConfig, parseConfig, type LoadedConfig, type NormalizedFraise } from './config/load.js';
export type { MigrateOptions } from './migrate.js';
export { runFraisierCli, runScriptCli } from './cli.js';
export { deployAll, type DeployAllEntry, type DeployAllItem, type DeployAllOptions, type DeployAllResult } from './deploy-all.js';
export { requestCancel, type CancelOptions, type CancelOutcome } from './cancel.js';
export { appFromYaml, environmentFromYaml } from './config/build.js';
export {
  createAnalysis,
  judge,
  kayentaScore,
  mannWhitneyU,
  percentile,
  MetricSourceError,
  type Analysis,
  type AnalysisContext,
  type AnalysisDefaults,
  type AnalysisOptions,
  type AnalysisPhase,
  type AnalysisRound,
  type AnalysisStatus,
  type MannWhitneyResult,
  type Measurement,
  type MetricCheck,
  type MetricName,
  type MetricQuery,
  type MetricResult,
  type MetricSource,
  type PoolName,
} from './analysis/index.js';
