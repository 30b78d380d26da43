// Loads the `fraisier` command's code (dist/bundle/cli.cjs: the CLI and the package in one CommonJS
// file, built by `npm run build`) with V8's code cache, as the v8-compile-cache package does: Node 20 has
// no compile cache for ES modules, and compiling the bundle's modules was most of a deploy's local work.
// The cache is made by V8 after a first run (`script.createCachedData()`, so that the functions the
// command compiled lazily are in it too) and kept in the user's cache directory
// ($XDG_CACHE_HOME/fraisier or ~/.cache/fraisier), one file per build of the bundle and Node version; V8
// itself rejects a cache made for another source or another V8, and the file is then made again.
// FRAISIER_COMPILE_CACHE=0: no cache (read nor written). Any failure: undefined, and the caller loads the
// ES modules (dist/bundle/cli.js) as before.
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

/**
 * `{ cli, saveCache }`: the bundle's exports, and a function that writes the code caches when they were missing or
 * rejected. The CLI's `require('ssh2')` gets dist/bundle/ssh2.cjs ({@link loadSsh2}): one ssh2 for the CLI and the SSH
 * handshakes bin/fraisier.js started before it (core/early-ssh.ts), loaded once and with a code cache too.
 */
export function loadCli() {
  const loaded = loadBundle('cli', (req) => Object.assign((id) => (id === 'ssh2' ? (loadSsh2() ?? req(id)) : req(id)), req));
  if (!loaded) return undefined;
  return {
    cli: loaded.exports,
    cache: loaded.cache,
    saveCache() {
      loaded.saveCache();
      for (const b of bundles.values()) b?.saveCache();
    },
  };
}

/** The bundles loaded besides the CLI, by name (null: could not be loaded). */
const bundles = new Map();
function once(name) {
  if (!bundles.has(name)) bundles.set(name, loadBundle(name) ?? null);
  return bundles.get(name) ?? undefined;
}

/** ssh2 (dist/bundle/ssh2.cjs, with its code cache), loaded once for the early handshakes and the CLI; undefined if it cannot be. */
export function loadSsh2() {
  return once('ssh2')?.exports;
}

/** Loads dist/bundle/<name>.cjs with its code cache; `hook` wraps the `require` it is given. */
function loadBundle(name, hook = (req) => req) {
  let file;
  let source;
  try {
    file = fileURLToPath(new URL(`../dist/bundle/${name}.cjs`, import.meta.url));
    // ASCII only (esbuild's charset: 'ascii'): decoded as latin1, a one-byte string, cheaper than utf8.
    // The file is one function expression (scripts/bundle-cli.mjs wraps each bundle at build time), compiled
    // as read: no wrapper concatenated here, which made V8 copy the whole source once more.
    source = readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
  let useCache = process.env.FRAISIER_COMPILE_CACHE !== '0';
  let cacheFile;
  let cachedData;
  if (useCache) {
    try {
      // the bundle's identity without hashing its megabytes: every build writes a new file (new ctime)
      const st = statSync(file);
      const key = `${st.size}-${st.ino}-${Math.round(st.ctimeMs)}-${Math.round(st.mtimeMs)}-${process.version}-${process.arch}`;
      const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
      cacheFile = join(base, 'fraisier', `${name}-${key.replace(/[^\w.-]/g, '_')}.v8cache`);
    } catch {
      useCache = false; // no home directory: no cache
    }
    try {
      if (cacheFile) cachedData = readFileSync(cacheFile);
    } catch {}
  }
  let script;
  const module = { exports: {} };
  try {
    script = new vm.Script(source, {
      filename: file,
      ...(cachedData ? { cachedData } : {}),
    });
    // defines the bundle's modules; each is evaluated when first imported (the package after the config)
    script.runInThisContext()(module.exports, hook(createRequire(file)), module, file, dirname(file));
  } catch {
    return undefined;
  }
  const fresh = useCache && (!cachedData || script.cachedDataRejected === true);
  return {
    exports: module.exports,
    /** 'hit', 'rejected' (made for another source or V8: made again after this run), 'none' or 'off'. */
    cache: !useCache ? 'off' : !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'hit',
    /** After the command ran: writes the code cache if there was none (or V8 rejected it). Errors are ignored. */
    saveCache() {
      if (!fresh) return;
      try {
        mkdirSync(dirname(cacheFile), { recursive: true, mode: 0o700 });
        const tmp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
        renameSync(tmp, cacheFile);
        // the caches of earlier builds, written more than a week ago (another install's is made again once)
        const dir = dirname(cacheFile);
        for (const entry of readdirSync(dir)) {
          const old = join(dir, entry);
          if (entry.startsWith(`${name}-`) && entry.endsWith('.v8cache') && old !== cacheFile && statSync(old).mtimeMs < Date.now() - 7 * 86400_000)
            unlinkSync(old);
        }
      } catch {}
    },
  };
}
