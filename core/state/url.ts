/**
 * PostgreSQL URLs of the state store: checked before use, and shown only with the password hidden.
 * Kept apart from store.ts so the config loader can use them without loading a database driver.
 */

/**
 * `postgres://user:***@host:5432/db`: the URL with its password replaced by `***`, for messages. In a
 * string that does not parse as a URL, everything between the user name and the last `@` is hidden.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) {
      u.password = '***';
      return u.toString();
    }
    if (!url.includes('@')) return url;
  } catch {
    // not a URL: hide by pattern below
  }
  // `user:password@`, with the password running to the last `@` (an unencoded `@` or `/` in it included)
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?([^:@/]*)(:.*)?@/i, (_m, scheme: string | undefined, user: string) => `${scheme ?? ''}${user}:***@`);
}

/** Checks that `url` is a usable PostgreSQL URL; returns the problem in a few words, or null. */
export function postgresUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return `the scheme is "${u.protocol.replace(/:$/, '')}", not postgres or postgresql`;
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
