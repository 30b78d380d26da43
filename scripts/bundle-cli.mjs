// Builds dist/bundle/cli.cjs, the `fraisier` command's one file (`npm run bundle:cli`, part of `npm run
// build`): the CLI and the package in one CommonJS file that bin/cli-loader.js compiles with V8's code
// cache. Reading that file and deserialising its cache is most of what a deploy does on this machine
// before its first remote command, and both grow with the file, so the file is kept small:
// - minified (whitespace, syntax and local names); ASCII only, so that the loader reads it as latin1, a
//   one-byte string. Not esbuild's `keepNames`: its ~2,000 `__name()` calls cost more CPU than the
//   smaller file saves (loading the file and running `fraisier check` in one process, each code cache
//   made by one `check`: 240 ms of CPU with it, 189 ms without, 233 ms for the unminified file; medians
//   of 5 on a loaded machine); no code of the bundle's commands reads a function's or class's `.name`
//   (ssh2's server side does, which Fraisier never runs), and errors set theirs explicitly;
// - already wrapped in the function the loader calls (`(function (exports, require, module, __filename,
//   __dirname) {...})`): the loader compiles the file's text as read, where concatenating a wrapper
//   made V8 copy the whole source once more;
// - without what no command of the bundle runs at load: ssh2's HTTP(S)-over-SSH agents (they load
//   node:https and node:tls) and @heroku/socksv5 (SOCKS tunnels) stand in as modules that load the real
//   ones on first use (core/exec/*-lazy.cjs);
// - without yargs (and its string-width, cliui, y18n, ...): the CLI parses a plain command line itself
//   and imports yargs only for help, completion or an unusual command line; yargs is then required from
//   its own file, dist/bundle/cli-yargs.cjs, built here too.
// pg, zx and better-sqlite3 stay outside (loaded from node_modules when used).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** ssh2's `require('./http-agents.js')` (lib/index.js) resolves to core/exec/ssh2-http-agents-lazy.cjs. */
const lazySsh2HttpAgents = {
  name: 'lazy-ssh2-http-agents',
  setup(b) {
    b.onResolve({ filter: /^\.\/http-agents\.js$/ }, (args) =>
      /[\\/]ssh2[\\/]lib[\\/]index\.js$/.test(args.importer) ? { path: `${root}core/exec/ssh2-http-agents-lazy.cjs` } : undefined,
    );
  },
};

/** `import('yargs')` resolves to a module that requires ./cli-yargs.cjs (next to cli.cjs) when evaluated: its default export, the one the CLI imports (esbuild gives it as the whole `module.exports` of a CommonJS module imported from an ES module). */
const yargsApart = {
  name: 'yargs-apart',
  setup(b) {
    b.onResolve({ filter: /^yargs$/ }, () => ({ path: 'yargs', namespace: 'yargs-apart' }));
    b.onLoad({ filter: /.*/, namespace: 'yargs-apart' }, () => ({ contents: "module.exports = require('./cli-yargs.cjs').default;", loader: 'js' }));
    b.onResolve({ filter: /^\.\/cli-yargs\.cjs$/ }, (args) => (args.namespace === 'yargs-apart' ? { path: './cli-yargs.cjs', external: true } : undefined));
  },
};

/** What both files share: Node 20, CommonJS, minified, ASCII only, `import.meta.url` defined as the file's URL. */
const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  charset: 'ascii',
  logLevel: 'warning',
};
const importMetaUrl = "const __fraisierImportMetaUrl = require('node:url').pathToFileURL(__filename).href;";

await build({
  ...common,
  entryPoints: ['yargs'],
  outfile: 'dist/bundle/cli-yargs.cjs',
  define: { 'import.meta.url': '__fraisierImportMetaUrl' },
  banner: { js: importMetaUrl },
});

await build({
  ...common,
  entryPoints: ['dist/core/cli.js'],
  outfile: 'dist/bundle/cli.cjs',
  // import() becomes require(): the bundle's modules are evaluated when first needed, from the one file
  supported: { 'dynamic-import': false },
  // ssh2 is its own file (below): bin/cli-loader.js hands the CLI's require('ssh2') the one instance that
  // bin/fraisier.js loaded for the handshakes it started before this file compiled (core/early-ssh.ts)
  external: ['ssh2', 'better-sqlite3', 'pg', 'zx', 'cpu-features', '*.node'],
  alias: { '@heroku/socksv5': './core/exec/socksv5-lazy.cjs' },
  plugins: [yargsApart],
  define: { 'import.meta.url': '__fraisierImportMetaUrl', FRAISIER_SINGLE_FILE: 'true' },
  banner: {
    js: `(function (exports, require, module, __filename, __dirname) {${importMetaUrl}`,
  },
  footer: { js: '\n})' },
});

await build({
  ...common,
  entryPoints: ['node_modules/ssh2/lib/index.js'],
  outfile: 'dist/bundle/ssh2.cjs',
  // whitespace only: ssh2 reads some functions' names, and its files stay readable in a stack trace
  minify: false,
  minifyWhitespace: true,
  external: ['cpu-features', '*.node'],
  plugins: [lazySsh2HttpAgents],
  banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
  footer: { js: '\n})' },
});
