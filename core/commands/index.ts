/**
 * The command list of both command lines, in one place: `fraisier <command>` and `npx tsx deploy.ts
 * <environment> [command]` build their yargs setup from it, and `bin/fraisier.js` (through
 * `core/argv.ts`) reads it to decide which modules to load. Loading it loads no command's dependencies.
 */
import { check } from './check.js';
import { completion } from './completion.js';
import { cancel } from './cancel.js';
import { deploy } from './deploy.js';
import { history } from './history.js';
import { init } from './init.js';
import { metrics } from './metrics.js';
import { migrate } from './migrate.js';
import { queue } from './queue.js';
import { promote } from './promote.js';
import { rollback } from './rollback.js';
import { serve } from './serve.js';
import { slo } from './slo.js';
import { state } from './state.js';
import { statusAll } from './status-all.js';
import { stats } from './stats.js';
import { status } from './status.js';
import { GLOBAL_OPTIONS, type Command, type FrontEnd, type OptionSpec } from './types.js';
import { unlock } from './unlock.js';
import { worker } from './worker.js';

export type { Command, CommandArgs, CommandIo, EnvironmentCommand, FrontEnd, OptionSpec, StandaloneCommand, StoreCommand, StoreContext } from './types.js';
export { GLOBAL_OPTIONS } from './types.js';

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly Command[] = [
  deploy,
  promote,
  rollback,
  migrate,
  status,
  statusAll,
  history,
  stats,
  slo,
  metrics,
  cancel,
  unlock,
  state,
  queue,
  worker,
  serve,
  init,
  check,
  completion,
];

/** The commands a front end offers. */
export function commandsOf(frontEnd: FrontEnd): Command[] {
  return COMMANDS.filter((c) => c.frontEnds.includes(frontEnd));
}

/** The command named `name` in a front end, or undefined. */
export function findCommand(frontEnd: FrontEnd, name: string | undefined): Command | undefined {
  return commandsOf(frontEnd).find((c) => c.name === name);
}

/** A command's own options in a front end (without the global ones). */
export function optionsOf(command: Command, frontEnd: FrontEnd): Record<string, OptionSpec> {
  return Object.fromEntries(Object.entries(command.options).filter(([, o]) => !o.frontEnds || o.frontEnds.includes(frontEnd)));
}

/** The options every command of a front end accepts. */
export function globalOptionsOf(frontEnd: FrontEnd): Record<string, OptionSpec & { alias?: string }> {
  return Object.fromEntries(Object.entries(GLOBAL_OPTIONS).filter(([, o]) => !o.frontEnds || o.frontEnds.includes(frontEnd)));
}

/**
 * The options written on a command line, as written (`--dry-run`, `--no-force`, `-x`), with the long
 * name each stands for (`dry-run`, `force`; a short option stands for itself). Stops at `--`.
 */
export function givenOptions(argv: readonly string[]): { written: string; name: string }[] {
  const given: { written: string; name: string }[] = [];
  for (const a of argv) {
    if (a === '--') break;
    const long = /^--(?:no-)?([^=]+)/.exec(a);
    if (long) {
      // yargs also reads `--dryRun` as `--dry-run`
      given.push({ written: a.split('=')[0]!, name: long[1]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) });
      continue;
    }
    const short = /^-([A-Za-z])/.exec(a);
    if (short) given.push({ written: `-${short[1]}`, name: short[1]! });
  }
  return given;
}

/**
 * The options on `argv` that `command` does not take in `frontEnd` (global options and `--help` are
 * always taken), as written. Empty when every option is honoured.
 */
export function refusedOptions(command: Command, frontEnd: FrontEnd, argv: readonly string[]): string[] {
  const accepted = new Set(['help', 'h']);
  for (const [name, o] of Object.entries({ ...globalOptionsOf(frontEnd), ...optionsOf(command, frontEnd) })) {
    accepted.add(name);
    if ('alias' in o && typeof o.alias === 'string') accepted.add(o.alias);
  }
  const refused = givenOptions(argv)
    .filter((g) => !accepted.has(g.name))
    .map((g) => g.written);
  return [...new Set(refused)];
}
