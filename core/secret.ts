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

/**
 * Registers a value to be redacted from all output without wrapping it (e.g. a password inside a URL).
 * Its percent-encoded form (as it appears inside a URL) is registered too.
 */
export function registerSecret(value: string): void {
  if (value.length < 3) return;
  known.add(value);
  let encoded = value;
  try {
    encoded = encodeURIComponent(value);
  } catch {
    // a lone surrogate: no encoded form
  }
  if (encoded !== value) known.add(encoded);
}

/**
 * Credentials recognisable by their shape, hidden even when nobody registered them: the password of a
 * `scheme://user:password@host` URL (up to the last `@` before the next space; malformed
 * `scheme//user:password@` and `scheme:/user:password@` too), and the value of a
 * `password=` parameter (and `sslpassword=`, `PGPASSWORD=`, ...: a URL query string, a libpq
 * `key=value` conninfo string or an environment assignment, quoted or not).
 */
const SHAPES: [RegExp, (...m: string[]) => string][] = [
  // left as they are: already hidden (`***` as redactUrl shows it, [REDACTED]), the word `password` of an
  // example, and a `$VAR` / `${VAR}` reference
  [/\b([a-z][a-z0-9+.-]*:?\/\/?[^\s:@/?#]*):(?!(?:\*\*\*|\[REDACTED\]|password)@|\$)[^\s]*@/gi, (_m, head) => `${head}:${REDACTED}@`],
  [
    /\b([a-z_]*password\s*=\s*)(?!\*\*\*(?![^\s&'"])|\[REDACTED\]|["']?\$)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&'"]+)/gi,
    (_m, head) => `${head}${REDACTED}`,
  ],
];

/**
 * Replaces every known secret value in `text` with `[REDACTED]`, and every password written in a URL
 * (`user:password@`) or as `password=...`.
 */
export function redact(text: string): string {
  let out = text;
  // longest first: a secret that contains another is hidden whole
  for (const value of [...known].sort((a, b) => b.length - a.length)) {
    if (out.includes(value)) out = out.split(value).join(REDACTED);
  }
  for (const [re, to] of SHAPES) out = out.replace(re, to as (...m: string[]) => string);
  return out;
}

/**
 * `JSON.stringify` with every string value passed through {@link redact}: the JSON writer of the CLI.
 * Redacting the values (not the JSON text) also hides a secret holding `"` or `\\`, which JSON escapes.
 */
export function redactedJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? redact(v) : v), indent);
}
