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

/** `{ cli, saveCache }`: the bundle's exports, and a function that writes the code cache when it was missing or rejected. */
export function loadCli() {
  let file;
  let source;
  try {
    file = fileURLToPath(new URL('../dist/bundle/cli.cjs', import.meta.url));
    // ASCII only (esbuild's charset: 'ascii'): decoded as latin1, a one-byte string, cheaper than utf8.
    // The file is one function expression (scripts/bundle-cli.mjs wraps the bundle at build time), compiled
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
      cacheFile = join(base, 'fraisier', `cli-${key.replace(/[^\w.-]/g, '_')}.v8cache`);
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
    script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  } catch {
    return undefined;
  }
  const fresh = useCache && (!cachedData || script.cachedDataRejected === true);
  return {
    cli: module.exports,
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
        for (const name of readdirSync(dir)) {
          const old = join(dir, name);
          if (/^cli-.*\.v8cache$/.test(name) && old !== cacheFile && statSync(old).mtimeMs < Date.now() - 7 * 86400_000) unlinkSync(old);
        }
      } catch {}
    },
  };
}
