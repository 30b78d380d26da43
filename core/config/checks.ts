/**
 * Checks on single values that both `fraises.yaml` (core/config/load.ts) and the SDK factories
 * (`bareMetal({...})`, `http({...})`) apply before anything connects to a host. Each returns `null` when
 * the value is fine, else the problem as a phrase (`"..." has a ".." component`) for the caller to put in
 * its own error, with the file, key and line it knows.
 */
import path from 'node:path';

/**
 * An SSH host as `instances:` and `bareMetal({ hosts })` accept it: `alias`, `user@alias` or
 * `user@alias:port`, made of letters, digits, `.`, `_` and `-`. The same form `resolveHost` parses.
 */
export const HOST_PATTERN = /^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9._-]*(?::\d{1,5})?$/;

/** What is wrong with an SSH host name, or null. Shell metacharacters, spaces and empty names are refused. */
export function hostProblem(host: string): string | null {
  if (HOST_PATTERN.test(host)) return null;
  return `${JSON.stringify(host)} is not a host name: expected host, user@host or user@host:port (letters, digits, ".", "_", "-")`;
}

/**
 * What is wrong with an `app_path`, or null. It must be absolute, must not be `/`, and must be written
 * in normal form: a path with `.`, `..` or `//` components names another directory than it seems to
 * (`/srv/../tmp/x` is `/tmp/x`), so it is refused with the normal form to write instead. One trailing
 * `/` is allowed (and dropped).
 */
export function appPathProblem(p: string): string | null {
  if (!p.startsWith('/')) return `expected an absolute path (starting with /), got ${JSON.stringify(p)}`;
  const normal = normalAppPath(p);
  if (normal === '/')
    return `${JSON.stringify(p)} is the root directory: releases would be written in /releases and /current; give the app its own directory, e.g. /srv/api`;
  const written = p.length > 1 ? p.replace(/\/$/, '') : p;
  if (normal !== written)
    return `${JSON.stringify(p)} is not in normal form: it names ${JSON.stringify(normal)}; write ${JSON.stringify(normal)} (no ".", ".." or empty components)`;
  return null;
}

/** `app_path` without `.`/`..`/`//` components and without a trailing `/`. */
export function normalAppPath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** Files Fraisier writes in each release: a shared path may not replace them. */
const RESERVED_IN_RELEASE = ['.fraisier-release', 'REVISION'];

/**
 * What is wrong with one `shared:` entry, or null. A shared path is a path inside the release (and
 * inside `<app_path>/shared/`): relative, names separated by single `/`, no `.` or `..` component,
 * not one of the files Fraisier writes in each release.
 */
export function sharedPathProblem(p: string): string | null {
  const expected = 'expected a relative path inside the release such as "log" or "storage/uploads"';
  if (p === '') return `${expected}, got an empty path`;
  if (p.startsWith('/')) return `${expected}, got the absolute path ${JSON.stringify(p)}`;
  if (/[\0\n\r]/.test(p)) return `${expected}, got ${JSON.stringify(p)} (control characters)`;
  const parts = p.split('/');
  if (parts.includes('..')) return `${expected}, got ${JSON.stringify(p)}: a ".." component leaves the release directory`;
  if (parts.includes('.')) return `${expected}, got ${JSON.stringify(p)}: remove the "." component`;
  if (parts.includes('')) return `${expected}, got ${JSON.stringify(p)}: empty component (a "//" or a trailing "/")`;
  if (RESERVED_IN_RELEASE.includes(parts[0]!) && parts.length === 1)
    return `${JSON.stringify(p)} is a file Fraisier writes in every release; it cannot be shared`;
  return null;
}

/**
 * Problems of a whole `shared:` list: each entry, a path listed twice, and a path inside another one
 * (`log` and `log/app`: the second would be linked through the first, into the shared directory itself).
 * Returns the index of the offending entry and the problem, or null.
 */
export function sharedListProblem(list: readonly string[]): { index: number; problem: string } | null {
  for (let i = 0; i < list.length; i++) {
    const problem = sharedPathProblem(list[i]!);
    if (problem) return { index: i, problem };
  }
  for (let i = 0; i < list.length; i++) {
    for (let j = 0; j < list.length; j++) {
      if (i === j) continue;
      const a = list[i]!;
      const b = list[j]!;
      if (a === b && j < i) return { index: i, problem: `${JSON.stringify(a)} is listed twice` };
      if (a.startsWith(`${b}/`))
        return { index: i, problem: `${JSON.stringify(a)} is inside ${JSON.stringify(b)}, which is shared already: list only ${JSON.stringify(b)}` };
    }
  }
  return null;
}

/**
 * What is wrong with a git branch name, or null: the rules of `git check-ref-format --branch`. No
 * space, control character, `~ ^ : ? * [ \`, no `..` or `@{`, no component starting with `.` or ending
 * with `.lock`, no leading `-` or `/`, no trailing `/` or `.`, no `//`, not `@`.
 */
export function branchProblem(name: string): string | null {
  const bad = (why: string) => `${JSON.stringify(name)} is not a valid git branch name: ${why}`;
  if (name === '') return bad('empty');
  if (name === '@') return bad('"@" alone is not allowed');
  if (name.startsWith('-')) return bad('it starts with "-"');
  // eslint-disable-next-line no-control-regex
  const ch = /[\x00-\x20\x7f~^:?*[\\]/.exec(name);
  if (ch)
    return bad(
      ch[0] === ' ' ? 'it contains a space' : /[\x00-\x1f\x7f]/.test(ch[0]) ? 'it contains a control character' : `it contains ${JSON.stringify(ch[0])}`,
    );
  if (name.includes('..')) return bad('it contains ".."');
  if (name.includes('@{')) return bad('it contains "@{"');
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return bad('empty component (a leading, trailing or double "/")');
  if (name.endsWith('.')) return bad('it ends with "."');
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return bad(`component ${JSON.stringify(part)} starts with "."`);
    if (part.endsWith('.lock')) return bad(`component ${JSON.stringify(part)} ends with ".lock"`);
  }
  return null;
}

/** What is wrong with an http health check URL, or null: it must parse, be `http://` and name a host. */
export function healthUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `expected an http:// URL such as http://localhost:8000/health, got ${JSON.stringify(url)} (not a URL)`;
  }
  if (u.protocol !== 'http:') {
    return `expected an http:// URL such as http://localhost:8000/health, got ${JSON.stringify(url)} (${u.protocol.replace(/:$/, '')}:// is not supported: the probe runs on the host, behind TLS termination)`;
  }
  if (!u.hostname) return `expected an http:// URL with a host, such as http://localhost:8000/health, got ${JSON.stringify(url)}`;
  return null;
}
