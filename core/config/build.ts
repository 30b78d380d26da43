import { DeployApp, type EnvironmentDefinition } from '../app.js';
import { FraisierError } from '../errors.js';
import { http, tcp, exec as execCheck, type HealthPolicy } from '../health.js';
import { multiProvider } from '../multi-provider.js';
import { registry } from '../registry.js';
import type { Plugin } from '../types.js';
import type { LoadedConfig, NormalizedEnvironment } from './load.js';

/** Builds the SDK model of one environment from its YAML block, through the registry. */
export function environmentFromYaml(env: NormalizedEnvironment, config: LoadedConfig): EnvironmentDefinition {
  if (env.multiProvider) {
    // Each entry is built like an environment of its own (its provider, strategy and health check);
    // the plugins and the rollback policy are the environment's.
    const plugins = pluginsFromYaml(env, config);
    const mp = env.multiProvider;
    const built = multiProvider({
      mode: mp.mode,
      onFailure: mp.onFailure,
      providers: mp.providers.map((p) => {
        const built = environmentFromYaml(p.env, config);
        return { name: p.name, priority: p.priority, provider: built.provider, strategy: built.strategy, ...(built.health ? { health: built.health } : {}) };
      }),
      rollback: { enabled: env.rollback.enabled, onHealthCheckFailure: env.rollback.onHealthCheckFailure, timeout: env.rollback.timeoutMs },
      plugins,
    });
    return env.deployWindows ? { ...built, deployWindows: env.deployWindows } : built;
  }
  const providerFactory = registry.provider(env.provider);
  if (!providerFactory) {
    throw new FraisierError(
      'E_CONFIG',
      `provider ${JSON.stringify(env.provider)} has no implementation loaded; known: ${registry.providerNames().join(', ')}`,
      {
        file: config.file,
        key: `${env.keyPath}.provider`,
      },
    );
  }
  const strategyFactory = registry.strategy(env.strategy.type);
  if (!strategyFactory) {
    throw new FraisierError(
      'E_CONFIG',
      `deployment_strategy ${JSON.stringify(env.strategy.type)} has no implementation loaded; known: ${registry.strategyNames().join(', ')}`,
      {
        file: config.file,
        key: `${env.keyPath}.deployment_strategy`,
      },
    );
  }
  let health: HealthPolicy | undefined;
  if (env.health) {
    const c = env.health.check;
    const check =
      c.type === 'http'
        ? http({ url: c.url, ...(c.expectBody !== undefined ? { expectBody: c.expectBody } : {}) })
        : c.type === 'tcp'
          ? tcp({ port: c.port, ...(c.host ? { host: c.host } : {}) })
          : execCheck({ command: c.command });
    health = {
      checks: [check],
      retries: env.health.retries,
      retryDelay: env.health.retryDelayMs,
      timeout: env.health.timeoutMs,
      ...(env.health.maxConsecutiveFailures !== undefined ? { maxConsecutiveFailures: env.health.maxConsecutiveFailures } : {}),
    };
  }
  const plugins = pluginsFromYaml(env, config);
  return {
    plugins,
    provider: providerFactory({ env, config }),
    strategy: strategyFactory({ env, config }),
    ...(health ? { health } : {}),
    rollback: { enabled: env.rollback.enabled, onHealthCheckFailure: env.rollback.onHealthCheckFailure, timeout: env.rollback.timeoutMs },
    ...(env.deployWindows ? { deployWindows: env.deployWindows } : {}),
  };
}

/**
 * The environment's plugins in registration order (the built-ins: pre-deployment hooks before
 * migrations, before the load balancer), each built from the field its normalizer filled.
 */
function pluginsFromYaml(env: NormalizedEnvironment, config: LoadedConfig): Plugin[] {
  const plugins: Plugin[] = [];
  for (const def of registry.pluginDefinitions()) {
    const value = (env as unknown as Record<string, unknown>)[def.field];
    if (value === undefined) continue;
    if (def.variant) {
      const literal = ((def.keys[def.variant] as { properties?: { type?: { const?: unknown } } } | undefined)?.properties?.type?.const ?? def.name) as string;
      if ((value as { type?: unknown }).type !== literal) continue;
    }
    const factory = registry.plugin(def.name);
    if (!factory) {
      throw new FraisierError(
        'E_CONFIG',
        `plugin ${JSON.stringify(def.name)} has no implementation loaded (import fraisier, or the package that provides it)`,
        {
          file: config.file,
          key: `${env.keyPath}`,
        },
      );
    }
    plugins.push(factory({ env, config }));
  }
  return plugins;
}

/** One DeployApp for a fraise of the loaded fraises.yaml. */
export function appFromYaml(config: LoadedConfig, fraise: string): DeployApp {
  const f = config.fraises[fraise];
  if (!f) {
    throw new FraisierError('E_NOT_FOUND', `unknown fraise ${JSON.stringify(fraise)} in ${config.file}`, {
      file: config.file,
      key: `fraises.${fraise}`,
      hint: `known fraises: ${Object.keys(config.fraises).join(', ')}`,
    });
  }
  const environments: Record<string, EnvironmentDefinition> = {};
  for (const [name, env] of Object.entries(f.environments)) {
    // Build lazily: a broken environment must not stop work on another one.
    Object.defineProperty(environments, name, {
      enumerable: true,
      configurable: true,
      get: () => {
        const built = environmentFromYaml(env, config);
        Object.defineProperty(environments, name, { value: built, enumerable: true });
        return built;
      },
    });
  }
  return new DeployApp({ name: fraise, environments, ...(config.state.path || config.state.url ? { state: { ...config.state } } : {}) }, config.baseDir);
}
