/**
 * The shape of a `fraisier` command line, known without loading the CLI: `bin/fraisier.js` reads the
 * command word here to decide which modules to load. Derived from the command list
 * (`core/commands/index.ts`), which loads no command's dependencies.
 */
import { COMMANDS, GLOBAL_OPTIONS } from './commands/index.js';

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
