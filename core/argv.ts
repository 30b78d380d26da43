/**
 * The shape of a `fraisier` command line, known without loading the CLI: `bin/fraisier.js` reads the
 * command word here to decide which modules to load (so this file imports nothing).
 */

/** Options that apply to every command and may come before it: `fraisier -c fraises.yaml --json status api production`. */
export const GLOBAL_OPTIONS = {
  /** Take a value: `-c x`, `--config x`, `-c=x`, `--config=x`. */
  withValue: ['--config', '-c'],
  /** Flags. */
  flags: ['--json', '--help', '-h'],
} as const;

/**
 * Options of any command that take a value (as a separate argument or after `=`). Listed so that the
 * command word is found even when a command's option comes first (yargs accepts options anywhere).
 */
export const VALUE_OPTIONS: readonly string[] = [
  ...GLOBAL_OPTIONS.withValue,
  '--version',
  '--to',
  '--phase',
  '--fraise',
  '--env',
  '--limit',
  '--days',
];

/** Commands that read the state store only: they need no provider, strategy or SSH code. */
export const READ_ONLY_COMMANDS: readonly string[] = ['history', 'stats', 'status-all', 'state', 'help'];

/**
 * The command word of a `fraisier` argv: the first argument that is neither an option nor the value of
 * an option that takes one. `undefined` when there is none (`fraisier --help`).
 */
export function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (!a.startsWith('-') || a === '-') return a;
    if (a.includes('=')) continue;
    if (VALUE_OPTIONS.includes(a)) i++;
  }
  return undefined;
}
