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
 */
import fs from 'node:fs';
import path from 'node:path';
import { SECRET_NAME } from './find.js';

/** What a hit gives: enough to read the history of the SQLite state file. */
export interface CachedConfig {
  /** Directory of the config file (relative state paths resolve against it). */
  baseDir: string;
  /** The `state:` block as loaded (a SQLite path, or none: the default). */
  state: { path?: string };
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
    const entry = JSON.parse(fs.readFileSync(cacheFile(file), 'utf8')) as { key?: string; state?: { path?: unknown } };
    if (entry.key !== key || typeof entry.state !== 'object' || entry.state === null) return undefined;
    const statePath = entry.state.path;
    if (statePath !== undefined && typeof statePath !== 'string') return undefined;
    return { baseDir: path.dirname(path.resolve(file)), state: statePath === undefined ? {} : { path: statePath } };
  } catch {
    return undefined;
  }
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
    const target = cacheFile(file);
    if (!fs.statSync(path.dirname(target)).isDirectory()) return;
    const tmp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify({ key, state: loaded.state.path === undefined ? {} : { path: loaded.state.path } })}\n`, { mode: 0o600 });
    fs.renameSync(tmp, target);
  } catch {}
}
