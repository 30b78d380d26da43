import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import type { DeployApp } from './app.js';
import { positionalsOf, commandOf, plainArgs, targetWords, CONNECTING_COMMANDS, READ_ONLY_COMMANDS } from './argv.js';
import { closeEarly, connectEarly, endpointsOf } from './connect-early.js';
import {
  commandsOf,
  findCommand,
  globalOptionsOf,
  optionsOf,
  refusedOptions,
  type Command,
  type CommandArgs,
  type CommandIo,
  type FrontEnd,
  type OptionSpec,
  type StoreCommand,
} from './commands/index.js';
import { cachedConfig, rememberConfig, rememberEndpoints } from './config/cache.js';
import { findConfig } from './config/find.js';
import type { LoadedConfig } from './config/load.js';
import type { SshOptions } from './exec/ssh.js';
import type { NormalizedEnvironment } from './registry.js';
import { FraisierError, formatError } from './errors.js';
import { consoleSink } from './log.js';
import { toJson } from './report.js';
import { trace } from './trace.js';
import { registerSecret } from './secret.js';
import { quickHistory, resolveState, storeOptions } from './state/read.js';
import type { StateStore } from './state/store.js';

export { countOption, waitLockOption } from './commands/support.js';

/** Loads the SDK side (Deployer, hooks, health checks) only for commands that deploy: history starts fast. */
async function appFromYaml(config: LoadedConfig, fraise: string): Promise<DeployApp> {
  return (await import('./config/build.js')).appFromYaml(config, fraise);
}

/**
 * Loads the package (the built-in providers', strategies' and plugins' implementations register
 * themselves) for the commands that use targets; the read-only ones (history, stats, ...) never need it.
 * It loads in steps (package-steps.ts), in the order a deploy needs them, yielding to the event loop
 * between steps: an SSH handshake started early (core/connect-early.ts) then progresses while the
 * package loads, instead of its packets waiting for one long synchronous evaluation to end.
 */
async function loadPackage(command: Command): Promise<void> {
  if (READ_ONLY_COMMANDS.includes(command.name)) return;
  const { PACKAGE_STEPS } = await import('../package-steps.js');
  for (const step of PACKAGE_STEPS) {
    await step();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  trace('package loaded');
}

/**
 * Starts the SSH handshakes to the hosts of `fraises` in `env` (bare_metal environments, also as
 * members of a multi-provider one) while the deploy path loads, the store opens and the lock is taken:
 * see core/connect-early.ts. The config is validated already; nothing runs on a host before the lock.
 * Resolves once the SSH code is loaded and the connections are under way, so that the caller loads the
 * package after the handshakes started, not before.
 */
async function startConnections(
  config: LoadedConfig,
  fraises: readonly string[],
  env: string,
  text: string | undefined,
  ssh: SshOptions = config.ssh,
): Promise<void> {
  if (process.env['FRAISIER_CONNECT_EARLY'] === '0') return;
  const hosts: string[] = [];
  const add = (e: NormalizedEnvironment | undefined): void => {
    if (!e) return;
    if (e.provider === 'bare_metal') hosts.push(...((e as { instances?: string[] }).instances ?? []));
    for (const m of e.multiProvider?.providers ?? []) add(m.env);
  };
  for (const f of fraises) add(config.fraises[f]?.environments[env]);
  if (hosts.length > 0) {
    trace(`connecting to ${hosts.length} host(s)`);
    await connectEarly([...new Set(hosts)], ssh);
    // where they are reached, for the next command's TCP connections before anything loads (core/early-sockets.ts)
    if (text !== undefined) {
      const endpoints = await endpointsOf([...new Set(hosts)], config.ssh);
      rememberEndpoints(config.file, text, fraises, env, endpoints, config.ssh.configFile);
    }
  }
}

/** The package's own version (package.json). */
export function toolVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'fraisier') return pkg.version;
    } catch {}
  }
  return 'unknown';
}

/**
 * What {@link runFraisierCli} returns, in the single-file build of the CLI (dist/bundle/cli.cjs), when
 * fraises.yaml lists plugins: nothing was done, and bin/fraisier.js runs the command again from the ES
 * modules (see core/config/load.ts, EsmRequired). Never an exit status.
 */
export const RERUN_AS_ESM = -1;

/** Exit status for an error: 2 bad input, 3 lock held, 1 anything else. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof FraisierError) {
    if (['E_CONFIG', 'E_USAGE', 'E_VERSION', 'E_NOT_FOUND', 'E_STATE', 'E_WINDOW'].includes(err.code)) return 2;
    if (err.code === 'E_LOCKED') return 3;
  }
  return 1;
}

function printError(err: unknown, json: boolean): void {
  if (json) process.stdout.write(toJson({ error: err instanceof FraisierError ? err.toJSON() : { message: String(err) } }) + '\n');
  process.stderr.write(formatError(err) + '\n');
}

/** The process's stdout and stderr; with `--json`, progress goes to stderr so stdout holds only JSON. */
function processIo(json: boolean): CommandIo {
  return {
    json,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    sinks: [consoleSink(json ? process.stderr : process.stdout)],
  };
}

/** The text each config remembered in the cache was validated from (for {@link rememberEndpoints}). */
const validatedText = new WeakMap<LoadedConfig, string>();

/**
 * Loads fraises.yaml and registers its secrets for redaction: the one place the `fraisier` command
 * reads its config.
 */
async function loadFraises(file: string | undefined, remember = false): Promise<LoadedConfig> {
  // the config loader (YAML parser, schemas) loads here, not with the CLI: see historyFromCache
  const { openConfig, readConfig } = await import('./config/load.js');
  const found = findConfig(file);
  const text = readConfig(found);
  const config = await openConfig(found, process.env, text);
  for (const s of config.secrets) registerSecret(s);
  if (remember) {
    rememberConfig(found, text, config);
    validatedText.set(config, text);
  }
  trace('config read and validated');
  return config;
}

/**
 * `fraisier history` when fraises.yaml is unchanged since it last validated (core/config/cache.ts): the
 * rows are read without loading the config loader; the store, if needed (schema not current, no file
 * yet), is opened after a full load of the config, as without the cache. Undefined on a miss.
 */
async function historyFromCache(command: Command, a: CommandArgs, io: CommandIo): Promise<{ code: number } | undefined> {
  const file = a['config'] as string | undefined;
  const cached = cachedConfig(findConfig(file));
  if (!cached) return undefined;
  trace('config unchanged since it last validated (cache)');
  const state = resolveState(cached.baseDir, cached.state);
  let full: Promise<LoadedConfig> | undefined;
  const config = () => (full ??= loadFraises(file, true));
  const code = await (command as StoreCommand).run(
    {
      frontEnd: 'fraisier',
      readStore: async (fn) => withStore(await config(), fn),
      quickHistory: (q) => (state.kind === 'sqlite' ? quickHistory(state.path, q) : undefined),
    },
    a,
    io,
  );
  return { code };
}

/** Runs `fn` with the config's state store open for reading, and closes it. */
async function withStore<T>(config: LoadedConfig, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const { openStore } = await import('./state/store.js');
  const store = await openStore({ ...storeOptions(resolveState(config.baseDir, config.state)), readOnly: true });
  trace('state store open');
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function envOf(app: DeployApp, env: string): string {
  if (!app.environments.includes(env)) {
    throw new FraisierError('E_NOT_FOUND', `fraise ${app.name} has no environment ${JSON.stringify(env)}`, {
      key: `fraises.${app.name}.environments.${env}`,
      hint:
        /_(blue|green)$/.test(env) && app.environments.includes(env.replace(/_(blue|green)$/, ''))
          ? `${env} is a colour of the blue-green environment ${env.replace(/_(blue|green)$/, '')}: deploy, roll back and check that one`
          : `known environments: ${app.environments.join(', ')}`,
    });
  }
  return env;
}

/** Declares options on a yargs builder, as a command module lists them. */
function declare<T>(y: Argv<T>, options: Record<string, OptionSpec & { alias?: string }>): Argv<T> {
  for (const [name, o] of Object.entries(options)) {
    y = y.option(name, {
      type: o.type,
      describe: o.describe,
      ...(o.alias !== undefined ? { alias: o.alias } : {}),
      ...(o.default !== undefined ? { default: o.default } : {}),
      ...(o.defaultDescription !== undefined ? { defaultDescription: o.defaultDescription } : {}),
      ...(o.choices !== undefined ? { choices: [...o.choices] } : {}),
      ...(o.demandOption ? { demandOption: true } : {}),
    }) as Argv<T>;
  }
  return y;
}

/** The options a command takes in a front end, for a hint: `--to, --force, --dry-run, --wait-lock`. */
function optionList(names: string[]): string {
  return names.map((n) => `--${n}`).join(', ');
}

/**
 * Refuses, before anything runs, an option that `command` does not declare in `frontEnd` (a flag of
 * another command, or of the other front end): `E_USAGE`, exit 2, naming the option and the command.
 */
function refuseUndeclared(command: Command, frontEnd: FrontEnd, argv: readonly string[]): void {
  const refused = refusedOptions(command, frontEnd, argv);
  if (refused.length === 0) return;
  const own = Object.keys(optionsOf(command, frontEnd));
  const globals = Object.keys(globalOptionsOf(frontEnd));
  const elsewhere = refused.filter((r) => {
    const other: FrontEnd = frontEnd === 'fraisier' ? 'script' : 'fraisier';
    return r.startsWith('--') && Object.keys(optionsOf(command, other)).includes(r.slice(2)) && !own.includes(r.slice(2));
  });
  const other = frontEnd === 'fraisier' ? 'npx tsx deploy.ts' : 'fraisier';
  throw new FraisierError('E_USAGE', `${command.name} does not take ${refused.join(', ')}`, {
    hint:
      (own.length > 0 ? `${command.name} takes ${optionList(own)}` : `${command.name} takes no option of its own`) +
      ` (and ${optionList(globals)})` +
      (elsewhere.length > 0 ? `; ${elsewhere.join(', ')} is an option of \`${other} ${command.name}\`` : ''),
  });
}

/**
 * The `fraisier` command over fraises.yaml. Returns the exit status: 0 success, 1 a deployment failed
 * (rolled back or not), 2 bad input, 3 the lock is held.
 */
export async function runFraisierCli(argv: string[]): Promise<number> {
  trace('modules loaded');
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`fraisier ${toolVersion()}\n`);
    return 0;
  }
  let code = 0;
  let json = argv.includes('--json');
  const commands = commandsOf('fraisier');
  const handler = (command: Command) => async (a: CommandArgs) => {
    json = Boolean(a['json']);
    const io = processIo(json);
    try {
      if (command.scope === 'standalone') {
        await loadPackage(command);
        code = await command.run(a, io);
        return;
      }
      if (command.scope === 'store' && command.name === 'history') {
        const fast = await historyFromCache(command, a, io);
        if (fast) {
          code = fast.code;
          return;
        }
      }
      const connecting = command.scope === 'environment' && CONNECTING_COMMANDS.includes(command.name);
      const config = await loadFraises(a['config'] as string | undefined, command.name === 'history' || connecting);
      const words = targetWords(command, a);
      if (command.scope === 'environment' && connecting) {
        // status runs one command per host: its connections keep no persistent shell, as the provider's
        // own options say for a listing session (providers/bare-metal.ts), so that it takes these
        const ssh = command.name === 'status' ? { ...config.ssh, persistentShell: false } : config.ssh;
        await startConnections(config, words.slice(0, -1), words[words.length - 1]!, validatedText.get(config), ssh);
      }
      await loadPackage(command);
      if (command.scope === 'environment' && command.runMany && words.length > 2) {
        // `deploy api etl worker production`: the last word is the environment, every fraise is checked first
        const env = words.pop()!;
        const unknown = words.filter((f) => !Object.hasOwn(config.fraises, f));
        if (unknown.length > 0) {
          throw new FraisierError('E_NOT_FOUND', `unknown fraise ${unknown.map((f) => JSON.stringify(f)).join(', ')} in ${config.file}: nothing was deployed`, {
            hint: `known fraises: ${Object.keys(config.fraises).join(', ')}; the environment comes last: fraisier ${command.name} api worker production`,
          });
        }
        const apps: DeployApp[] = [];
        for (const f of words) {
          const app = await appFromYaml(config, f);
          envOf(app, env);
          apps.push(app);
        }
        code = await command.runMany(apps, env, a, io);
      } else if (command.scope === 'environment') {
        const app = await appFromYaml(config, String(a['fraise']));
        code = await command.run(app, envOf(app, String(a['env'])), a, io);
      } else {
        const state = resolveState(config.baseDir, config.state);
        code = await command.run(
          {
            frontEnd: 'fraisier',
            config,
            readStore: (fn) => withStore(config, fn),
            quickHistory: (q) => (state.kind === 'sqlite' ? quickHistory(state.path, q) : undefined),
          },
          a,
          io,
        );
      }
    } catch (err) {
      if ((err as { code?: unknown } | undefined)?.code === 'E_ESM_REQUIRED') {
        code = RERUN_AS_ESM;
        return;
      }
      printError(err, json);
      code = exitCodeFor(err);
    } finally {
      // connections started early that the command did not use (it stopped before connecting)
      await closeEarly();
    }
  };
  try {
    // the shell asks for completions (`fraisier completion` printed the script that does)
    const completing = argv.includes('--get-yargs-completions');
    const command = findCommand('fraisier', commandOf(argv));
    if (command && !completing) refuseUndeclared(command, 'fraisier', argv);
    // a plain command line is parsed without yargs: loading it was a large part of a cold start
    const plain = command && !completing ? plainArgs(command, 'fraisier', argv) : undefined;
    if (command && plain) {
      await handler(command)(plain as CommandArgs);
      return code;
    }
    const { default: yargs } = await import('yargs');
    let cli = declare(yargs(argv), globalOptionsOf('fraisier')).scriptName('fraisier').version(false).strict();
    if (completing) cli = cli.completion('__completion', false);
    for (const command of commands) {
      const positionals = [...(command.scope === 'environment' ? ['fraise', 'env'] : []), ...Object.keys(command.positionals ?? {})];
      const many = command.scope === 'environment' && command.runMany ? ['[more..]'] : [];
      cli = cli.command(
        [command.name, ...positionals.map((p) => (command.positionals?.[p]?.optional ? `[${p}]` : `<${p}>`)), ...many].join(' '),
        command.describe,
        (y) => {
          for (const p of positionals) {
            const spec = command.positionals?.[p];
            y = y.positional(p, {
              type: 'string',
              demandOption: !spec?.optional,
              ...(spec ? { describe: spec.describe } : {}),
              ...(spec?.choices ? { choices: [...spec.choices] } : {}),
            });
          }
          return declare(y, optionsOf(command, 'fraisier'));
        },
        handler(command),
      );
    }
    await cli
      .demandCommand(1, `name a command: ${commands.map((c) => c.name).join(', ')}`)
      .fail((msg, err) => {
        throw err ?? new FraisierError('E_USAGE', msg);
      })
      .help()
      .parseAsync();
  } catch (err) {
    printError(err, json);
    return exitCodeFor(err);
  }
  return code;
}

/**
 * The command line of a deploy script: `npx tsx deploy.ts <environment> [command]`, with the commands
 * of {@link commandsOf}('script'); the command defaults to `deploy`. Returns the exit status (see
 * {@link runFraisierCli}).
 */
export async function runScriptCli(app: DeployApp, argv: string[]): Promise<number> {
  let code = 0;
  let json = argv.includes('--json');
  const commands = commandsOf('script');
  try {
    // the command word is the second positional; its options are the only ones declared
    const command = findCommand('script', positionalsOf(argv)[1] ?? 'deploy');
    if (command) refuseUndeclared(command, 'script', argv);
    const { default: yargs } = await import('yargs');
    await yargs(argv)
      .scriptName(process.argv[1] ? `npx tsx ${process.argv[1].split('/').pop()}` : 'deploy.ts')
      .usage('$0 <environment> [command]')
      .epilog(`Commands:\n${commands.map((c) => `  ${c.name.padEnd(10)} ${c.describe}`).join('\n')}`)
      .version(false)
      .strict()
      .command(
        '$0 <environment> [command]',
        `deploy ${app.name}`,
        (y) =>
          declare(
            declare(
              y
                .positional('environment', { type: 'string', choices: app.environments, demandOption: true })
                .positional('command', { type: 'string', choices: commands.map((c) => c.name), default: 'deploy' }),
              globalOptionsOf('script'),
            ),
            command ? optionsOf(command, 'script') : {},
          ),
        async (a) => {
          json = Boolean(a['json']);
          const io = processIo(json);
          const env = String(a['environment']);
          try {
            if (!command) throw new FraisierError('E_USAGE', `unknown command ${JSON.stringify(a['command'])}`);
            code =
              command.scope === 'environment'
                ? await command.run(app, env, a, io)
                : command.scope === 'standalone'
                  ? await command.run(a, io)
                  : await command.run({ frontEnd: 'script', fraise: app.name, environment: env, readStore: (fn) => app.withStore({}, fn, true) }, a, io);
          } catch (err) {
            printError(err, json);
            code = exitCodeFor(err);
          }
        },
      )
      .fail((msg, err) => {
        throw err ?? new FraisierError('E_USAGE', msg);
      })
      .help()
      .parseAsync();
  } catch (err) {
    printError(err, json);
    return exitCodeFor(err);
  }
  return code;
}
