/**
 * The shape of a `fraisier` command line, known without loading the CLI: `bin/fraisier.js` reads the
 * command word here to decide which modules to load. Derived from the command list
 * (`core/commands/index.ts`), which loads no command's dependencies.
 */
import { COMMANDS, GLOBAL_OPTIONS, globalOptionsOf, optionsOf, type Command, type FrontEnd, type OptionSpec } from './commands/index.js';
import type { PositionalSpec } from './commands/types.js';

/** Options that apply to every command and may come before it: `fraisier -c fraises.yaml --json status api production`. */
export const GLOBAL_OPTION_NAMES = {
  /** Take a value: `-c x`, `--config x`, `-c=x`, `--config=x`. */
  withValue: Object.entries(GLOBAL_OPTIONS)
    .filter(([, o]) => o.type === 'string')
    .flatMap(([name, o]) => [`--${name}`, ...(o.alias ? [`-${o.alias}`] : [])]),
  /** Flags. */
  flags: [
    ...Object.entries(GLOBAL_OPTIONS)
      .filter(([, o]) => o.type === 'boolean')
      .map(([name]) => `--${name}`),
    '--help',
    '-h',
  ],
} as const;

/**
 * Options of any command that take a value (as a separate argument or after `=`). Listed so that the
 * command word is found even when a command's option comes first (yargs accepts options anywhere).
 */
export const VALUE_OPTIONS: readonly string[] = [
  ...new Set([
    ...GLOBAL_OPTION_NAMES.withValue,
    ...COMMANDS.flatMap((c) =>
      Object.entries(c.options)
        .filter(([, o]) => o.type === 'string')
        .map(([name]) => `--${name}`),
    ),
  ]),
];

/**
 * Commands that read the state store only: they need no provider, strategy or SSH code, and start from
 * one bundled file. `help` is yargs' own.
 */
export const READ_ONLY_COMMANDS: readonly string[] = [...COMMANDS.filter((c) => !c.usesTargets).map((c) => c.name), 'help'];

/** Commands that connect to the hosts of the environment they name (see `EnvironmentCommand.connects`). */
export const CONNECTING_COMMANDS: readonly string[] = COMMANDS.filter((c) => c.scope === 'environment' && c.connects).map((c) => c.name);

/**
 * The words that name a command's fraises and environment, in order, from its parsed arguments:
 * `deploy api etl worker production` gives `['api', 'etl', 'worker', 'production']` (the last word is the
 * environment; more than one fraise only for a command that runs many, e.g. `deploy`).
 */
export function targetWords(command: Command, a: Record<string, unknown>): string[] {
  const more = command.scope === 'environment' && command.runMany ? ((a['more'] as unknown[] | undefined) ?? []).map(String) : [];
  return [String(a['fraise']), String(a['env']), ...more];
}

/**
 * The positional words of an argv, in order: the arguments that are neither an option nor the value of
 * an option that takes one. Everything after `--` is positional.
 */
export function positionalsOf(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') words.push(a);
    else if (!a.includes('=') && VALUE_OPTIONS.includes(a)) i++;
  }
  return words;
}

/**
 * The command word of a `fraisier` argv: the first argument that is neither an option nor the value of
 * an option that takes one. `undefined` when there is none (`fraisier --help`).
 */
export function commandOf(argv: readonly string[]): string | undefined {
  return positionalsOf(argv)[0];
}

/** Kebab-case to the camelCase key yargs also sets: `dry-run` → `dryRun`. */
function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The parsed arguments of a plain `fraisier` command line, the same object yargs would build, without
 * loading yargs (most of a cold `fraisier history`'s start-up once bundled). Plain means: the command is
 * known, its positionals are all there (and within their choices), and every option is written
 * `--name value`, `--name=value`, `-c value` or, for a flag, `--name`, once. Anything else (`--help`,
 * `--no-x`, `--`, a missing or extra positional, a value outside its choices, a repeated option, the
 * shell asking for completions) returns `undefined`: yargs then parses it and prints its usual messages.
 * Options the command does not take were refused before (`refusedOptions`).
 */
export function plainArgs(command: Command, frontEnd: FrontEnd, argv: readonly string[]): Record<string, unknown> | undefined {
  if (frontEnd !== 'fraisier') return undefined;
  const specs: Record<string, OptionSpec & { alias?: string }> = { ...globalOptionsOf(frontEnd), ...optionsOf(command, frontEnd) };
  const byWritten = new Map<string, string>();
  for (const [name, o] of Object.entries(specs)) {
    byWritten.set(`--${name}`, name);
    if (o.alias) byWritten.set(`-${o.alias}`, name);
  }
  const args: Record<string, unknown> = { _: [command.name], $0: 'fraisier' };
  const words: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--' || a === '--help' || a === '-h' || a.startsWith('--get-yargs')) return undefined;
    if (!a.startsWith('-') || a === '-') {
      words.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const written = eq > 0 ? a.slice(0, eq) : a;
    const name = byWritten.get(written);
    if (name === undefined || seen.has(name)) return undefined;
    seen.add(name);
    const spec = specs[name]!;
    let value: string | boolean;
    if (spec.type === 'boolean') {
      if (eq > 0) return undefined;
      value = true;
    } else if (eq > 0) {
      value = a.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-')) return undefined;
      value = next;
      i++;
    }
    if (spec.choices && !spec.choices.includes(String(value))) return undefined;
    args[name] = value;
    if (spec.alias) args[spec.alias] = value;
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (args[name] === undefined && spec.default !== undefined) {
      args[name] = spec.default;
      if (spec.alias) args[spec.alias] = spec.default;
    }
    if (args[name] === undefined && spec.demandOption) return undefined;
    if (args[name] !== undefined && camel(name) !== name) args[camel(name)] = args[name];
  }
  if (words[0] !== command.name) return undefined;
  const rest = words.slice(1);
  const positionals: [string, PositionalSpec | undefined][] = [
    ...(command.scope === 'environment' ? (['fraise', 'env'] as const).map((p): [string, undefined] => [p, undefined]) : []),
    ...Object.entries(command.positionals ?? {}),
  ];
  for (const [name, spec] of positionals) {
    const w = rest.shift();
    if (w === undefined) {
      if (spec?.optional) continue;
      return undefined;
    }
    if (spec?.choices && !spec.choices.includes(w)) return undefined;
    args[name] = w;
  }
  if (command.scope === 'environment' && command.runMany) {
    // yargs reads a number-like word of a variadic positional as a number: leave those to it
    if (rest.some((w) => /^[-+.\d]/.test(w))) return undefined;
    args['more'] = rest;
  } else if (rest.length > 0) {
    return undefined;
  }
  return args;
}
