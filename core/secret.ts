import { inspect } from 'node:util';

/** What a secret looks like in every log line, error and dry-run plan. */
export const REDACTED = '[REDACTED]';

const known = new Set<string>();

/**
 * A value that must never be printed. `String(secret)`, `JSON.stringify`, `console.log` and template
 * strings all show `[REDACTED]`; only `reveal()` gives the value, and only the executor calls it when it
 * builds the command that actually runs. Every revealed value is also remembered, so that {@link redact}
 * removes it from command output and error messages that echo it back.
 */
export class Secret {
  readonly #value: string;
  /** A name for humans, e.g. the environment variable it came from. */
  readonly label: string;

  constructor(value: string, label = 'secret') {
    this.#value = value;
    this.label = label;
    if (value.length >= 3) known.add(value);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Marks a value as secret (Kamal's `sensitive`). */
export function secret(value: string, label?: string): Secret {
  return new Secret(value, label);
}

/** Registers a value to be redacted from all output without wrapping it (e.g. a password inside a URL). */
export function registerSecret(value: string): void {
  if (value.length >= 3) known.add(value);
}

/** Replaces every known secret value in `text` with `[REDACTED]`. */
export function redact(text: string): string {
  let out = text;
  for (const value of known) {
    if (out.includes(value)) out = out.split(value).join(REDACTED);
  }
  return out;
}
