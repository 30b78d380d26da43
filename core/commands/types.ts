/**
 * The shape of a command, shared by both command lines: `fraisier <command>` over fraises.yaml and
 * `npx tsx deploy.ts <environment> [command]`. A command module declares its name, help, options and
 * whether it changes hosts, and one `run` that both front ends call. The front ends only differ in how
 * they find the {@link DeployApp} and in their positionals.
 *
 * This file and the command modules import nothing at load time but types (their `run` imports what it
 * needs): `bin/fraisier.js` reads the command list before deciding which modules to load.
 */
import type { DeployApp } from '../app.js';
import type { LoadedConfig } from '../config/load.js';
import type { LogSink } from '../log.js';
import type { Deployment, StateStore } from '../state/store.js';

/** `fraisier` (over fraises.yaml) or `script` (`npx tsx deploy.ts <environment> [command]`). */
export type FrontEnd = 'fraisier' | 'script';

/** One option of a command, as yargs declares it, plus which front ends offer it. */
export interface OptionSpec {
  /** `string` takes a value (`--to v1`, `--to=v1`); `boolean` is a flag (`--force`, `--no-force`). */
  type: 'string' | 'boolean';
  /** One line of help. */
  describe: string;
  /** Default value; absent: the option is `undefined` when not given. */
  default?: string | boolean;
  /** What the help shows as the default when `default` is not set (`20`). */
  defaultDescription?: string;
  /** The only values accepted; anything else is a usage error (exit 2). */
  choices?: readonly string[];
  /** The option must be given. */
  demandOption?: boolean;
  /** Front ends that offer the option. Default: both. Elsewhere the option is refused (exit 2). */
  frontEnds?: readonly FrontEnd[];
}

/** A positional argument after the command word (besides the fraise and environment). */
export interface PositionalSpec {
  describe: string;
  choices?: readonly string[];
  /** May be left out (`fraisier queue` and `fraisier queue cancel 3`). Default: required. */
  optional?: boolean;
}

/** Where a command writes: stdout/stderr and the progress sinks, set up by the front end. */
export interface CommandIo {
  /** `--json`: machine-readable output on stdout, progress on stderr. */
  json: boolean;
  /** Writes to stdout. */
  out(text: string): void;
  /** Writes to stderr. */
  err(text: string): void;
  /** Where a deployment's progress lines go. */
  sinks: LogSink[];
}

/** Parsed options of one command, by their long name (`dry-run`, `wait-lock`), plus positionals. */
export type CommandArgs = Record<string, unknown>;

/** What every command declares. */
interface CommandBase {
  /** The command word: `deploy`, `status-all`. */
  name: string;
  /** One line of help. */
  describe: string;
  /** Front ends that offer the command. */
  frontEnds: readonly FrontEnd[];
  /**
   * True when the command changes a host, a database or a service (`deploy`, `rollback`, `migrate`):
   * it then declares `--dry-run`, which prints the plan and changes nothing.
   */
  changesHosts: boolean;
  /**
   * True when the command connects to targets or databases through the providers, strategies and
   * plugins: `bin/fraisier.js` then loads the built-ins. False for commands that only read the state
   * store (they start from one bundled file).
   */
  usesTargets: boolean;
  /** Positionals after the fraise and environment (or after the command word for store commands). */
  positionals?: Record<string, PositionalSpec>;
  /** The command's own options. Any other option given is refused (exit 2), never ignored. */
  options: Record<string, OptionSpec>;
}

/**
 * A command over one environment of one fraise: `fraisier <command> <fraise> <env>`, `npx tsx deploy.ts
 * <env> <command>`. The front end resolves the app and checks the environment first.
 */
export interface EnvironmentCommand extends CommandBase {
  scope: 'environment';
  /**
   * True when the command opens the environment's provider, i.e. connects to its hosts (`deploy`,
   * `promote`, `rollback`, `status`; not `migrate`, `cancel`, `unlock`): `fraisier` then opens the TCP
   * connections and starts the SSH handshakes before it loads the code that uses them
   * (core/early-sockets.ts, core/connect-early.ts).
   */
  connects?: boolean;
  /** Runs the command; resolves with the exit status. Throws a `FraisierError` for bad input. */
  run(app: DeployApp, env: string, args: CommandArgs, io: CommandIo): Promise<number>;
  /**
   * Set by a command that takes several fraises before the environment (`fraisier deploy api etl
   * production`): the front end checks every fraise and the environment first, then calls this with the
   * apps in the order given. Only `fraisier` offers it.
   */
  runMany?(apps: DeployApp[], env: string, args: CommandArgs, io: CommandIo): Promise<number>;
}

/** What a store command is given: the state store, and what the front end narrows it to. */
export interface StoreContext {
  frontEnd: FrontEnd;
  /** The fraise the front end is about: the deploy script's app; none for `fraisier`. */
  fraise?: string;
  /** The environment the front end is about: the deploy script's positional; none for `fraisier`. */
  environment?: string;
  /** The loaded fraises.yaml (`fraisier` only). */
  config?: LoadedConfig;
  /** Runs `fn` with the state store open for reading, and closes it. */
  readStore<T>(fn: (store: StateStore) => Promise<T>): Promise<T>;
  /**
   * Past deployments read without opening the whole store (the `fraisier` front end, on a SQLite file
   * whose schema is current: a faster cold start), or `undefined`: then read them through
   * {@link StoreContext.readStore}. Same rows as `StateStore.history`.
   */
  quickHistory?(q: { fraise?: string; environment?: string; limit?: number }): Deployment[] | undefined;
}

/** A command over the state store (history, stats, status-all, state): no SSH. */
export interface StoreCommand extends CommandBase {
  scope: 'store';
  /** Runs the command; resolves with the exit status. Throws a `FraisierError` for bad input. */
  run(ctx: StoreContext, args: CommandArgs, io: CommandIo): Promise<number>;
}

/** A command that needs no config file and no state store (`init`, `completion`). */
export interface StandaloneCommand extends CommandBase {
  scope: 'standalone';
  /** Runs the command; resolves with the exit status. Throws a `FraisierError` for bad input. */
  run(args: CommandArgs, io: CommandIo): Promise<number>;
}

/** One command of both command lines. */
export type Command = EnvironmentCommand | StoreCommand | StandaloneCommand;

/** Options every command accepts, before or after the command word. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec & { alias?: string }> = {
  config: { type: 'string', alias: 'c', describe: 'path to fraises.yaml (default: $FRAISIER_CONFIG, then ./fraises.yaml)', frontEnds: ['fraisier'] },
  json: { type: 'boolean', default: false, describe: 'print machine-readable JSON on stdout' },
};

/** The option value as a string, or undefined when not given. */
export function stringArg(args: CommandArgs, name: string): string | undefined {
  const v = args[name];
  return v === undefined || v === null ? undefined : String(v);
}
