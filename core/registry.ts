/**
 * The registry of what fraises.yaml can name. A provider, a strategy or a plugin registers ONE thing:
 * its YAML name, the keys it owns in an environment block (a typebox schema fragment), its normaliser
 * (YAML block → the factory's options) and its factory. The config loader (`core/config/load.ts`) knows
 * no built-in's keys: it validates each environment against the envelope plus the registered owners'
 * keys, then hands each section to its owner. Built-ins register themselves the same way a package does
 * (see `providers/bare-metal.yaml.ts`); see docs/plugins.md, "Write and publish a provider".
 *
 * The registry lives on `globalThis` under `Symbol.for('fraisier.registry')`, so that a package holding
 * its own copy of the `fraisier` module (a peer dependency resolved twice) still registers into the
 * registry the `fraisier` command reads.
 */
import type { Static, TObject, TProperties } from '@sinclair/typebox';
import type { FraisierError } from './errors.js';
import type { Plugin, Provider, Strategy } from './types.js';
import type { DeployWindowPolicy } from './windows.js';

/** One step of a key path: a mapping key or a list index. */
export type Segment = string | number;

/**
 * One normalized environment of fraises.yaml. The core fills the envelope (`name`, `keyPath`,
 * `provider`, `strategy.type`, `health`, `rollback`); each owner adds what its normaliser returns.
 * Owners describe their fields by augmenting this interface (`declare module 'fraisier' { interface
 * NormalizedEnvironment { ... } }`), as the built-ins do in their `*.yaml.ts` files.
 */
export interface NormalizedEnvironment {
  /** Environment name, e.g. `production`. */
  name: string;
  /** Dotted path of the block in the file, e.g. `fraises.api.environments.production`, for error messages. */
  keyPath: string;
  /** The registered provider name (`provider:`, default: the default provider). */
  provider: string;
  /** `{ type: <strategy name>, ...what the strategy's normaliser returned }`. */
  strategy: NormalizedStrategy;
  /** `null` when no health check is configured. */
  health: null | {
    check: { type: 'http'; url: string; expectBody?: string } | { type: 'tcp'; port: number; host?: string } | { type: 'exec'; command: string };
    /** `rollback_config.health_check_retries` ?? a strategy's value ?? `health_check.retries` ?? 3. */
    retries: number;
    /** `rollback_config.retry_delay` ?? `health_check.retry_delay` ?? 2000. */
    retryDelayMs: number;
    /** `health_check_timeout` / `health_check.timeout` ?? 5000. */
    timeoutMs: number;
    maxConsecutiveFailures?: number;
  };
  /** `enabled` default true; `onHealthCheckFailure` default true; `timeoutMs` default 300000. */
  rollback: { enabled: boolean; onHealthCheckFailure: boolean; timeoutMs: number };
  /** `deploy_windows:` and `freeze:`, when either is set (core/windows.ts). */
  deployWindows?: DeployWindowPolicy;
  /**
   * `deployment_mode: multi_provider` only (then `provider` is `multi_provider`): the mode, and each entry
   * of `providers:` by priority, normalized as an environment block of its own by its provider's owner.
   */
  multiProvider?: {
    mode: 'failover' | 'all';
    onFailure: 'rollback_all' | 'keep_others';
    providers: { name: string; priority: number; env: NormalizedEnvironment }[];
  };
}

/**
 * Normalized options of each strategy by YAML name, filled by the strategies through declaration
 * merging (`interface StrategyOptionsByName { rolling: {...} }`).
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging
export interface StrategyOptionsByName {}

/** The `strategy` of a {@link NormalizedEnvironment}: a tagged union over {@link StrategyOptionsByName}. */
export type NormalizedStrategy = [keyof StrategyOptionsByName] extends [never]
  ? { type: string }
  : { [K in keyof StrategyOptionsByName]: { type: K } & StrategyOptionsByName[K] }[keyof StrategyOptionsByName];

/** What a normaliser gets besides its block: where it is, and how to raise a good error. */
export interface YamlContext {
  /** The config file as the user named it (errors name it this way). */
  file: string;
  /** Directory of the config file: resolve relative paths against it. */
  baseDir: string;
  /** The fraise's name. */
  fraise: string;
  /** The environment's name. */
  environment: string;
  /** Key path of the environment block (`['fraises', 'api', 'environments', 'production']`). */
  segs: Segment[];
  /** `[...segs, ...rest]`: the key path of a key inside the environment block. */
  at(...rest: Segment[]): Segment[];
  /** Key path of the fraise block (`['fraises', 'api']`), for keys given there as defaults. */
  fraiseSegs: Segment[];
  /** The environment block as written (validated, interpolated): read another owner's keys only to check consistency. */
  raw: Readonly<Record<string, unknown>>;
  /** The fraise block as written: the fraise-level defaults (`fraiseKeys`) of the environment. */
  fraiseRaw: Readonly<Record<string, unknown>>;
  /** The environment normalized so far: the envelope, the provider's fields, then the strategy's. */
  env: Readonly<NormalizedEnvironment>;
  /**
   * The error to throw for a key: `<file>: <dotted.key>: <problem> (line N)`, secrets redacted.
   * `lineAt` points the line at another key than the one named.
   */
  error(segs: readonly Segment[], problem: string, opts?: { hint?: string; lineAt?: readonly Segment[] }): FraisierError;
  /** A value as errors show it: `"text"`, `a list`, or `[REDACTED] (from ${VAR})` for a secret. */
  show(segs: readonly Segment[], value: unknown): string;
  /** A duration (a number of seconds, or `"500ms"`, `"30s"`, `"2m"`) in milliseconds; an E_CONFIG naming `segs` if invalid. */
  ms(value: number | string, segs: readonly Segment[]): number;
  /** A path relative to the config file's directory, made absolute. */
  resolve(p: string): string;
  /** `['fraises', 'api', 'shared', 1]` → `fraises.api.shared[1]`. */
  dotted(segs: readonly Segment[]): string;
  /** Registers a value for redaction in every output (e.g. a password read from the block). */
  secret(value: string): void;
  /**
   * Defaults a strategy gives the core's health and rollback settings (the original Fraisier's
   * `rolling_config.health_check_retries`): `rollback_config` still takes precedence.
   */
  envelopeDefaults(d: { healthCheckRetries?: number; rollbackOnHealthCheckFailure?: boolean }): void;
}

/** What a factory gets. */
export interface BuildContext<Env = NormalizedEnvironment> {
  /** The environment's normalized YAML block. */
  env: Env;
  /** The whole loaded config (`LoadedConfig`: ssh options, base directory). */
  config: unknown;
}

type Factory<T> = (ctx: BuildContext<any>) => T;

interface Owned<K extends TProperties, O> {
  /** The YAML name: `provider: <name>`, `deployment_strategy: <name>`, `load_balancer.type: <name>`. */
  name: string;
  /**
   * The keys this owner adds to an environment block, as typebox properties
   * (`{ acme_dirs: Type.Array(Type.String()) }`). Closed: any other key is an error naming the known ones.
   */
  keys: K;
  /** Common misnamings of this owner's keys → the key meant, offered as `did you mean` on an unknown key. */
  aliases?: Record<string, string>;
  /**
   * Turns the owner's keys (validated against {@link keys}) into the factory's options. Throw
   * `ctx.error(ctx.at('my_key'), 'problem')` for what a schema cannot express.
   */
  normalize(block: Static<TObject<K>>, ctx: YamlContext): O;
}

/** A provider as fraises.yaml sees it. */
export interface ProviderDefinition<K extends TProperties = TProperties, O extends object = object> extends Owned<K, O> {
  /** Keys also accepted at fraise level as defaults of every environment (the original Fraisier's `git_repo`, `app_path`). */
  fraiseKeys?: TProperties;
  /** The provider used when an environment names none. One provider is the default. */
  default?: boolean;
  /** Builds the provider: `options` is the environment with what {@link normalize} returned merged in. */
  create?(options: NormalizedEnvironment & O, ctx: BuildContext): Provider;
}

/** Loader's view of all environments of one fraise, for a strategy's {@link StrategyDefinition.environments} hook. */
export interface FraiseEnvironments {
  fraise: string;
  /** Normalized environments by name; the hook may replace, merge or remove entries. */
  environments: Record<string, NormalizedEnvironment>;
  /** The blocks as written, by the same names (before the hook ran). */
  raw: Record<string, Readonly<Record<string, unknown>>>;
  /** An error at a key path (see {@link YamlContext.error}). */
  error(segs: readonly Segment[], problem: string, opts?: { hint?: string; lineAt?: readonly Segment[] }): FraisierError;
}

/** A deployment strategy as fraises.yaml sees it. */
export interface StrategyDefinition<K extends TProperties = TProperties, O extends object = object> extends Owned<K, O> {
  /** The strategy used when an environment names none. */
  default?: boolean;
  /** Runs when another strategy is selected but some of this one's keys are set (to refuse them, or to use them). */
  unselected?(block: Static<TObject<K>>, ctx: YamlContext): void;
  /** Keys this strategy adds inside another owner's section, e.g. `{ load_balancer: { target: ... } }`. */
  sectionKeys?: Record<string, TProperties>;
  /** Runs once per fraise after its environments are normalized: may rewrite the set (the seed's colour pairs). */
  environments?(set: FraiseEnvironments): void;
  /** Builds the strategy from `env.strategy`. */
  create?(options: NormalizedStrategy & O, ctx: BuildContext): Strategy;
}

/** A plugin as fraises.yaml sees it (a load balancer, migrations, hooks). */
export interface PluginDefinition<K extends TProperties = TProperties, O = unknown> extends Owned<K, O | undefined> {
  /**
   * Several plugins may own one section by its `type` (`load_balancer: { type: nginx }`): `variant` is the
   * owned key; {@link keys}`[variant]` must be an object whose `type` is a literal (this plugin's value).
   */
  variant?: string;
  /** The field of {@link NormalizedEnvironment} that receives what {@link normalize} returned (`loadBalancer`). */
  field: string;
  /** Builds the plugin from the normalized field. */
  create?(options: O, ctx: BuildContext): Plugin;
}

interface Entry<D> {
  def?: D;
  factory?: Factory<any>;
}

interface Store {
  providers: Map<string, Entry<ProviderDefinition<any, any>>>;
  strategies: Map<string, Entry<StrategyDefinition<any, any>>>;
  plugins: Map<string, Entry<PluginDefinition<any, any>>>;
  /** Names recognised but not implemented yet (a clear "not supported yet" instead of "unknown"). */
  planned: Map<string, string>;
  /** Incremented on every registration: tells whether importing a package registered anything. */
  version: number;
}

const KEY = Symbol.for('fraisier.registry');
const store: Store = ((globalThis as Record<symbol, unknown>)[KEY] as Store | undefined) ?? {
  providers: new Map(),
  strategies: new Map(),
  plugins: new Map(),
  planned: new Map(),
  version: 0,
};
(globalThis as Record<symbol, unknown>)[KEY] = store;

function put<D>(map: Map<string, Entry<D>>, name: string, patch: Entry<D>): void {
  const e = map.get(name) ?? {};
  map.set(name, { ...e, ...patch });
  store.version++;
}

/** The definition of an entry, or one with no keys for a factory-only registration. */
function withoutKeys<D>(name: string, e: Entry<D> | undefined): D | undefined {
  if (!e) return undefined;
  return e.def ?? ({ name, keys: {}, normalize: () => ({}) } as unknown as D);
}

function nameOf(x: string | { name: string }): string {
  return typeof x === 'string' ? x : x.name;
}

/**
 * Registers a provider: `registerProvider({ name, keys, normalize, create })` (its YAML and its factory),
 * or `registerProvider(name, factory)` (a factory over the normalized environment only).
 */
function registerProvider<K extends TProperties, O extends object>(def: ProviderDefinition<K, O>): void;
function registerProvider(name: string, factory: Factory<Provider>): void;
function registerProvider(x: string | ProviderDefinition<any, any>, factory?: Factory<Provider>): void {
  if (typeof x === 'string') put(store.providers, x, { factory: factory! });
  else put(store.providers, x.name, { def: x, ...(x.create ? { factory: ({ env, config }) => x.create!(env, { env, config }) } : {}) });
}

/** Registers a strategy (see {@link registerProvider}). */
function registerStrategy<K extends TProperties, O extends object>(def: StrategyDefinition<K, O>): void;
function registerStrategy(name: string, factory: Factory<Strategy>): void;
function registerStrategy(x: string | StrategyDefinition<any, any>, factory?: Factory<Strategy>): void {
  if (typeof x === 'string') put(store.strategies, x, { factory: factory! });
  else put(store.strategies, x.name, { def: x, ...(x.create ? { factory: ({ env, config }) => x.create!(env.strategy, { env, config }) } : {}) });
}

/** Registers a plugin (see {@link registerProvider}). */
function registerPlugin<K extends TProperties, O>(def: PluginDefinition<K, O>): void;
function registerPlugin(name: string, factory: Factory<Plugin>): void;
function registerPlugin(x: string | PluginDefinition<any, any>, factory?: Factory<Plugin>): void {
  if (typeof x === 'string') put(store.plugins, x, { factory: factory! });
  else {
    const field = x.field;
    put(store.plugins, x.name, { def: x, ...(x.create ? { factory: ({ env, config }) => x.create!(env[field], { env, config }) } : {}) });
  }
}

export const registry = {
  registerProvider,
  registerStrategy,
  registerPlugin,
  /** Marks a provider name as known but not implemented yet. */
  planProvider(name: string, note = 'not supported yet'): void {
    store.planned.set(name, note);
  },
  provider(name: string): Factory<Provider> | undefined {
    return store.providers.get(name)?.factory;
  },
  strategy(name: string): Factory<Strategy> | undefined {
    return store.strategies.get(name)?.factory;
  },
  plugin(name: string): Factory<Plugin> | undefined {
    return store.plugins.get(name)?.factory;
  },
  /**
   * The YAML side of a provider, strategy or plugin. A provider or strategy registered with a factory
   * only (`registerProvider(name, factory)`) is usable from YAML too, with no keys of its own.
   */
  providerDefinition: (name: string) => withoutKeys(name, store.providers.get(name)),
  strategyDefinition: (name: string) => withoutKeys(name, store.strategies.get(name)),
  pluginDefinition: (name: string) => store.plugins.get(name)?.def,
  /** Names fraises.yaml can use, in registration order. */
  providerNames: (): string[] => [...store.providers.keys()],
  strategyNames: (): string[] => [...store.strategies.keys()],
  pluginNames: (): string[] => [...store.plugins].filter(([, e]) => e.def).map(([n]) => n),
  providerDefinitions: (): ProviderDefinition<any, any>[] => [...store.providers].map(([n, e]) => withoutKeys(n, e)!),
  strategyDefinitions: (): StrategyDefinition<any, any>[] => [...store.strategies].map(([n, e]) => withoutKeys(n, e)!),
  pluginDefinitions: (): PluginDefinition<any, any>[] => [...store.plugins.values()].flatMap((e) => (e.def ? [e.def] : [])),
  plannedProvider: (name: string): string | undefined => store.planned.get(name),
  /** Changes on every registration. */
  version: (): number => store.version,
  nameOf,
};

/** The registration API a package's default-exported `register(api)` function receives. */
export type RegistryApi = typeof registry;

/** Typed helper for a package: `export default defineProvider({ name, keys, normalize, create })` registers it. */
export function defineProvider<K extends TProperties, O extends object>(def: ProviderDefinition<K, O>): ProviderDefinition<K, O> {
  registerProvider(def);
  return def;
}

/** Typed helper for a package's strategy (see {@link defineProvider}). */
export function defineStrategy<K extends TProperties, O extends object>(def: StrategyDefinition<K, O>): StrategyDefinition<K, O> {
  registerStrategy(def);
  return def;
}

/** Typed helper for a package's plugin (see {@link defineProvider}). */
export function definePlugin<K extends TProperties, O>(def: PluginDefinition<K, O>): PluginDefinition<K, O> {
  registerPlugin(def);
  return def;
}
