import type { Plugin, Provider, Strategy } from './types.js';

/**
 * Names used in fraises.yaml (`provider: bare_metal`, `deployment_strategy: rolling`) mapped to the
 * factories that build them. Built-ins register themselves when imported; a provider published as an
 * npm package registers its own name the same way. The core never imports a provider or strategy.
 */
export interface BuildContext<Env = unknown> {
  /** The environment's normalized YAML block. */
  env: Env;
  /** The whole loaded config (ssh options, base directory). */
  config: unknown;
}

type Factory<T> = (ctx: BuildContext<any>) => T;

const providers = new Map<string, Factory<Provider>>();
const strategies = new Map<string, Factory<Strategy>>();
const plugins = new Map<string, Factory<Plugin>>();

export const registry = {
  registerProvider(name: string, factory: Factory<Provider>): void {
    providers.set(name, factory);
  },
  registerStrategy(name: string, factory: Factory<Strategy>): void {
    strategies.set(name, factory);
  },
  registerPlugin(name: string, factory: Factory<Plugin>): void {
    plugins.set(name, factory);
  },
  provider(name: string): Factory<Provider> | undefined {
    return providers.get(name);
  },
  strategy(name: string): Factory<Strategy> | undefined {
    return strategies.get(name);
  },
  plugin(name: string): Factory<Plugin> | undefined {
    return plugins.get(name);
  },
  providerNames: (): string[] => [...providers.keys()],
  strategyNames: (): string[] => [...strategies.keys()],
};
