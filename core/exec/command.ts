import { REDACTED, Secret } from '../secret.js';

/**
 * Shell text that is passed through unquoted. Only providers and plugins use it, for operators such as
 * `||` or redirections, and never with a value that came from a user or a config file.
 */
export class Raw {
  constructor(readonly text: string) {}
}

/** One argument of a command: a plain string (quoted), a {@link Secret} (quoted, redacted in logs) or {@link Raw}. */
export type Arg = string | Secret | Raw;

/**
 * A command as data: one or more argv steps run in order, each only if the previous succeeded (`&&`).
 * Built by providers and plugins, rendered to shell text at one edge by {@link render}, run by an
 * executor. A unit test can assert the exact command; a dry run can print it.
 */
export interface Command {
  readonly steps: readonly (readonly Arg[])[];
  /** Directory to run in (quoted, `cd` first). */
  readonly cwd?: string;
  /** Environment variables set for the command (values quoted; secrets redacted in logs). */
  readonly env?: Readonly<Record<string, string | Secret>>;
  /** Run through `sudo -n` (non-interactive; fails instead of prompting). */
  readonly sudo?: boolean;
  /** A short name for error messages, e.g. `prepare release v1.2.0`; the full command is still what runs and what a dry run prints. */
  readonly label?: string;
  /** The command only reads state (e.g. `readlink current`): a dry run still runs it so the plan names real versions. */
  readonly readOnly?: boolean;
}

/** Builds a one-step command: `command('ln', '-sfn', target, link)`. */
export function command(...argv: Arg[]): Command {
  return { steps: [argv] };
}

/** Joins commands with `&&`, keeping the first one's cwd/env/sudo. */
export function all(...cmds: Command[]): Command {
  const first = cmds[0];
  if (!first) return { steps: [] };
  return { ...first, steps: cmds.flatMap((c) => c.steps) };
}

/** Marks text to be passed unquoted (see {@link Raw}). */
export function raw(text: string): Raw {
  return new Raw(text);
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one value for a POSIX shell. Safe words are left as they are; everything else is wrapped in
 * single quotes, with embedded single quotes written as `'\''`. The only quoting function in Fraisier.
 */
export function quote(value: string): string {
  if (value === '') return "''";
  if (SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function renderArg(arg: Arg, reveal: boolean): string {
  if (arg instanceof Raw) return arg.text;
  if (arg instanceof Secret) return reveal ? quote(arg.reveal()) : REDACTED;
  return quote(arg);
}

/**
 * Renders a command as shell text. With `reveal: false` (the default) secrets show as `[REDACTED]`:
 * that form is for logs and dry runs. Executors render with `reveal: true` just before running.
 */
export function render(cmd: Command, options: { reveal?: boolean } = {}): string {
  const reveal = options.reveal ?? false;
  const steps = cmd.steps.map((argv) => {
    const text = argv.map((a) => renderArg(a, reveal)).join(' ');
    return cmd.sudo ? `sudo -n ${text}` : text;
  });
  let body = steps.join(' && ');
  if (cmd.env && Object.keys(cmd.env).length > 0) {
    const assigns = Object.entries(cmd.env).map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name: ${JSON.stringify(k)}`);
      return `export ${k}=${renderArg(v, reveal)}`;
    });
    body = `${assigns.join(' && ')} && ${body}`;
  }
  if (cmd.cwd) body = `cd ${quote(cmd.cwd)} && ${body}`;
  return body;
}
