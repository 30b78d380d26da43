/**
 * Fraisier's public API: the core (Deployer, hooks, executors, health checks, state) and the built-in
 * strategies, providers and plugins. Importing this module registers the built-ins under their
 * fraises.yaml names (`bare_metal`, `rolling`).
 */
export * from './core/index.js';
export { rolling, type RollingOptions } from './strategies/rolling.js';
export { bareMetal, bareMetalCommands, type BareMetalOptions, type GitSource, type ArtifactSource, type ServiceManager, type SshTarget } from './providers/bare-metal.js';
export { psqlMigration, readMigrations, PSQL_MIGRATION, type PsqlMigrationOptions, type PsqlMigrationPlugin, type MigrationFile, type AppliedMigration } from './plugins/psql-migration.js';
export { commandHook, hookArgv, runHookProcess, type CommandHookOptions, type HookOnFailure, type HookRun } from './plugins/hooks.js';
export { nginxLb, renderUpstream, pidFileFrom, nginxLbCommands, NGINX_LB, type NginxLbOptions, type NginxLbPlugin, type RenderOptions } from './plugins/nginx-lb.js';
