/**
 * PostgreSQL URLs of the state store: checked before use, and shown only with the password hidden.
 * Kept apart from store.ts so the config loader can use them without loading a database driver.
 */

/** Query and conninfo keys whose value is a credential. */
const SECRET_KEY = /password/i;

const HIDDEN = '(connection string hidden: ';

/** What is printed in place of a connection string that cannot be shown safely. */
function hidden(reason: string): string {
  return `${HIDDEN}${reason})`;
}

/** True when {@link redactUrl} gave a placeholder instead of the connection string. */
export function isHiddenUrl(shown: string): boolean {
  return shown.startsWith(HIDDEN);
}

/**
 * A libpq `key=value` conninfo string (`host=db user=deploy password=x dbname=app`) as its pairs, or null
 * when the text is not one. Values may be single-quoted, with `\'` and `\\` escapes.
 */
function parseConninfo(text: string): [string, string][] | null {
  const pairs: [string, string][] = [];
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s'\\]*))\s*/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m || m[0].length === 0) return null;
    pairs.push([m[1]!, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!]);
    at = re.lastIndex;
  }
  return pairs.length > 0 ? pairs : null;
}

/**
 * A connection string as it may be shown in a message, or a placeholder saying why it is hidden.
 *
 * - A URL that parses: its `user:password@` password and every `password=` query parameter become
 *   `***`: `postgres://user:***@host:5432/db?sslmode=require&password=***`.
 * - A libpq `key=value` conninfo string: `host=db user=deploy password=*** dbname=app`.
 * - Anything else (`postgres//user:pw@host/db`, an unencoded `@`, `#` or `?` in the password, several
 *   hosts): a placeholder with the reason, `(connection string hidden: ...)`, never the text itself,
 *   since where its password starts and ends cannot be told.
 */
export function redactUrl(url: string): string {
  const text = url.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const pairs = parseConninfo(text);
    if (pairs && !text.includes('://')) {
      return pairs.map(([k, v]) => `${k}=${SECRET_KEY.test(k) ? '***' : /^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/['\\]/g, '\\$&')}'`}`).join(' ');
    }
    return hidden(
      /^(postgres(ql)?\b|[a-z][a-z0-9+.-]*(\/\/|:\/(?!\/)))/i.test(text)
        ? 'its scheme is not followed by "://" (expected postgres://...)'
        : 'neither a URL nor a key=value connection string',
    );
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return hidden('it does not parse as a URL; percent-encode special characters in the password (@ is %40, / is %2F, # is %23, ? is %3F, : is %3A)');
  }
  // What follows the authority must hold no `@`: else part of a password may sit in the path, query or fragment.
  if (`${u.pathname}${u.search}${u.hash}`.includes('@') || (!u.host && text.includes('@'))) {
    return hidden('an "@" after the host: percent-encode "@" in the password as %40');
  }
  if (u.password) u.password = '***';
  if ([...u.searchParams.keys()].some((k) => SECRET_KEY.test(k))) {
    u.search = u.search.replace(/([?&][^=&]*password[^=&]*=)[^&]*/gi, '$1***');
  }
  return u.toString();
}

/** Checks that `url` is a usable PostgreSQL URL; returns the problem in a few words, or null. */
export function postgresUrlProblem(url: string): string | null {
  const text = url.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    if (/^postgres(ql)?:?\/*/i.test(text)) return 'it must start with postgres:// or postgresql://';
    return 'not a URL';
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return 'not a URL (percent-encode special characters in the password: @ is %40, / is %2F, # is %23, ? is %3F, : is %3A)';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return `the scheme is "${u.protocol.replace(/:$/, '')}", not postgres or postgresql`;
  if (`${u.pathname}${u.search}${u.hash}`.includes('@')) return 'an "@" after the host (percent-encode "@" in the password as %40)';
  if (!u.hostname && !u.searchParams.get('host')) return 'no host';
  if (u.pathname.length <= 1) return 'no database name';
  return null;
}

/** The password of a URL (percent-decoded), or undefined. */
export function urlPassword(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every credential in a connection string, to register for redaction: the `user:password@` password
 * (as written and percent-decoded), `password=` query parameters, and the `password` of a conninfo string.
 */
export function urlSecrets(url: string): string[] {
  const out = new Set<string>();
  try {
    const u = new URL(url.trim());
    if (u.password) {
      out.add(u.password);
      try {
        out.add(decodeURIComponent(u.password));
      } catch {
        // malformed percent-encoding: the raw form is registered
      }
    }
    for (const [k, v] of u.searchParams) if (SECRET_KEY.test(k) && v) out.add(v);
  } catch {
    for (const [k, v] of parseConninfo(url) ?? []) if (SECRET_KEY.test(k) && v) out.add(v);
  }
  return [...out];
}
