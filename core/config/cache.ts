/**
 * The validated-config cache of `fraisier history`: its cold start without the config loader. Loading the
 * YAML parser, TypeBox and every owner's schema to validate fraises.yaml was most of a cold `history`;
 * when the file is byte for byte the one that last validated, with the same values for the variables it
 * names, under the same build of Fraisier, the answer is the same: valid, and the same `state:`.
 *
 * What is kept, in `.fraisier/config-cache-<name>.json` beside the config file (only when that directory
 * exists: it holds the default state file): a hash of the inputs and the `state:` block (a SQLite path;
 * nothing else), the hash computed in JavaScript ({@link hash106}): loading node:crypto for it was a
 * tenth of a cold `history`. Never for a file that names `plugins:` (their code may change),
 * interpolates a secret variable (PASSWORD, SECRET, TOKEN, KEY), holds a backslash (a YAML escape could
 * hide a `${VAR}`), or keeps its state in PostgreSQL. Anything that does not match exactly loads and validates the file as
 * before, so a broken config is still reported (exit 2).
 *
 * The commands that connect (`deploy`, `status`, ...) also record, per fraises and environment, the
 * address and port their hosts were reached at ({@link rememberEndpoints}), stamped with the SSH config
 * file they were resolved through: the next such command opens its TCP connections from them before it
 * loads anything (core/early-sockets.ts), and for plain hosts, where the SSH handshake to them starts
 * from (resolved host, user, port, the key file's path (never the key), known_hosts files, timeouts),
 * stamped with the key file and whether an agent is set (core/early-ssh.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HandshakeRecord } from '../early-ssh.js';
import { SECRET_NAME } from './find.js';

/** What a hit gives: enough to read the history of the SQLite state file. */
export interface CachedConfig {
  /** Directory of the config file (relative state paths resolve against it). */
  baseDir: string;
  /** The `state:` block as loaded (a SQLite path, or none: the default). */
  state: { path?: string };
  /**
   * Where the hosts of a command's fraises and environment were reached last time (see
   * {@link rememberEndpoints}), by {@link targetsKey}; only while the SSH config they were resolved
   * through is unchanged. Absent when none was recorded or the SSH config changed.
   */
  endpoints?: Record<string, Endpoint[]>;
}

/** A TCP endpoint an SSH host is reached at: its address (after the SSH config's HostName) and port. */
export interface Endpoint {
  host: string;
  port: number;
  /** For a plain host: what the SSH handshake started before the CLI loads needs (core/early-ssh.ts). */
  ssh?: HandshakeRecord;
}

/** What the SSH config file looked like when endpoints were resolved through it. */
interface SshConfigStamp {
  /** The `ssh.config_file` setting (null: the default `~/.ssh/config`). */
  setting: string | null;
  /** That setting as an absolute path. */
  file: string;
  /** Its size and mtime, or `absent`. */
  stamp: string;
}

/** The key of a command's targets in {@link CachedConfig.endpoints}: its fraises, then the environment. */
export function targetsKey(fraises: readonly string[], environment: string): string {
  return JSON.stringify([...fraises, environment]);
}

/** The SSH config file a `configFile` setting names, as core/exec/ssh.ts reads it (default `~/.ssh/config`). */
function sshConfigFile(setting: string | null): string {
  const p = setting ?? '~/.ssh/config';
  return path.resolve(p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p);
}

function statStamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.size}:${st.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

/**
 * The stamp of the SSH config file now, or undefined when endpoints must not be cached through it: it
 * includes other files or has `Match` blocks (whose answer can change without this file changing).
 */
function sshConfigStamp(setting: string | null): SshConfigStamp | undefined {
  const file = sshConfigFile(setting);
  const stamp = statStamp(file);
  if (stamp !== 'absent') {
    try {
      if (/^\s*(include|match)\b/im.test(fs.readFileSync(file, 'utf8'))) return undefined;
    } catch {
      return undefined;
    }
  }
  return { setting, file, stamp };
}

const FORMAT = 2;

function cacheFile(file: string): string {
  return path.join(path.dirname(file), '.fraisier', `config-cache-${path.basename(file).replace(/[^\w.-]/g, '_')}.json`);
}

/**
 * This build of Fraisier: the bundle's entry `cli.js` beside this module when there is one (dist/bundle/:
 * the CLI chunks and the fast path of core/quick-history.ts, built together, see the same file), else
 * the module's own file. Its size and mtime change with every build.
 */
function buildStamp(): string {
  for (const url of [new URL('./cli.js', import.meta.url), new URL(import.meta.url)]) {
    try {
      const st = fs.statSync(url);
      return `${url.href}:${st.size}:${st.mtimeMs}`;
    } catch {}
  }
  return import.meta.url;
}

/**
 * A hash of `text` in hex: cyrb53 (53 bits) with two seeds, and the length. Not cryptographic, and it
 * need not be: whoever can write the cache can write the config itself. It tells an edited file from the
 * one that validated; two texts that differ are not expected to share all three.
 */
export function hash106(text: string): string {
  const lane = (seed: number): string => {
    let h1 = 0xdeadbeef ^ seed;
    let h2 = 0x41c6ce57 ^ seed;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
  };
  return `${lane(0)}${lane(0x9e3779b9)}${text.length.toString(16)}`;
}

/** The hash of everything the validation depends on, or undefined when the text must not be cached. */
function keyOf(file: string, text: string, env: NodeJS.ProcessEnv): string | undefined {
  if (text.includes('plugins') || text.includes('\\')) return undefined;
  const names = [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!))].sort();
  if (names.some((n) => SECRET_NAME.test(n))) return undefined;
  const vars = names.map((n) => [n, env[n] ?? null]);
  return hash106(JSON.stringify([FORMAT, buildStamp(), path.resolve(file), text, vars]));
}

/**
 * The cached result of validating `file` (an absolute path), or undefined: no cache, another content,
 * other variables, another build, or a file that is never cached.
 */
export function cachedConfig(file: string, env: NodeJS.ProcessEnv = process.env): CachedConfig | undefined {
  try {
    const key = keyOf(file, fs.readFileSync(file, 'utf8'), env);
    if (!key) return undefined;
    const entry = JSON.parse(fs.readFileSync(cacheFile(file), 'utf8')) as Entry;
    if (entry.key !== key || typeof entry.state !== 'object' || entry.state === null) return undefined;
    const statePath = entry.state.path;
    if (statePath !== undefined && typeof statePath !== 'string') return undefined;
    const hit: CachedConfig = { baseDir: path.dirname(path.resolve(file)), state: statePath === undefined ? {} : { path: statePath } };
    const early = entry.early;
    if (early && typeof early === 'object' && early.ssh && early.targets) {
      const { setting, file: sshFile, stamp } = early.ssh;
      if ((setting === null || typeof setting === 'string') && sshConfigFile(setting) === sshFile && statStamp(sshFile) === stamp) {
        hit.endpoints = early.targets;
      }
    }
    return hit;
  } catch {
    return undefined;
  }
}

/** The cache file's content. */
interface Entry {
  key?: string;
  state?: { path?: unknown };
  /** Endpoints of the hosts, and the SSH config they were resolved through (see {@link rememberEndpoints}). */
  early?: { ssh?: SshConfigStamp; targets?: Record<string, Endpoint[]> };
}

function readEntry(file: string): Entry | undefined {
  try {
    return JSON.parse(fs.readFileSync(cacheFile(file), 'utf8')) as Entry;
  } catch {
    return undefined;
  }
}

function writeEntry(file: string, entry: Entry): void {
  const target = cacheFile(file);
  if (!fs.statSync(path.dirname(target)).isDirectory()) return;
  const tmp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, target);
}

/**
 * Records that `file` (absolute), read as `text`, validated with this `state:` and no secret. Does
 * nothing for a file that is never cached, or when `.fraisier/` does not exist beside it; never throws.
 */
export function rememberConfig(
  file: string,
  text: string,
  loaded: { state: { path?: string; url?: string }; secrets: readonly string[] },
  env: NodeJS.ProcessEnv = process.env,
): void {
  if (loaded.secrets.length > 0 || loaded.state.url !== undefined) return;
  try {
    const key = keyOf(file, text, env);
    if (!key) return;
    const state = loaded.state.path === undefined ? {} : { path: loaded.state.path };
    // the same file validated again: the entry stands (with the endpoints recorded since)
    const old = readEntry(file);
    if (old?.key === key && JSON.stringify(old.state) === JSON.stringify(state)) return;
    writeEntry(file, { key, state });
  } catch {}
}

/**
 * Records where the hosts of `fraises` in `environment` were reached (`endpoints`, resolved through the
 * SSH config file that the `ssh.config_file` setting names), in the entry of `file` as validated from
 * `text`: the next command over the same fraises and environment opens its TCP connections from these
 * before it loads anything (core/early-sockets.ts). Does nothing when the entry is not this validation's
 * (see {@link rememberConfig}), when the SSH config includes other files or has `Match` blocks, or when
 * the same endpoints are recorded already; never throws.
 */
export function rememberEndpoints(
  file: string,
  text: string,
  fraises: readonly string[],
  environment: string,
  endpoints: readonly Endpoint[],
  sshConfigSetting: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): void {
  try {
    const key = keyOf(file, text, env);
    const entry = readEntry(file);
    if (!key || !entry || entry.key !== key) return;
    const ssh = sshConfigStamp(sshConfigSetting ?? null);
    if (!ssh) return;
    const same = JSON.stringify(entry.early?.ssh) === JSON.stringify(ssh);
    const targets = same ? { ...entry.early?.targets } : {};
    const k = targetsKey(fraises, environment);
    const list = endpoints.map((e) => ({ host: e.host, port: e.port, ...(e.ssh ? { ssh: e.ssh } : {}) }));
    if (same && JSON.stringify(targets[k]) === JSON.stringify(list)) return;
    targets[k] = list;
    writeEntry(file, { ...entry, early: { ssh, targets } });
  } catch {}
}
