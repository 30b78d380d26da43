#!/usr/bin/env node
// The `fraisier` command. Runs the compiled package (dist/, built by `npm run build` and on install).
// Modules load lazily so that `fraisier --version` and `fraisier history` start fast: the built-in
// providers and strategies (and the SSH stack under them) load only for commands that use them.
import { readFileSync } from 'node:fs';

// FRAISIER_TRACE=1: one line on stderr per phase, in ms since the process started (core/trace.ts)
const trace = process.env.FRAISIER_TRACE ? (phase) => process.stderr.write(`[trace] ${performance.now().toFixed(0)} ms ${phase}\n`) : () => {};
trace('node started, bin/fraisier.js running');
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`fraisier ${pkg.version}\n`);
  process.exit(0);
}
// `fraisier history` on an unchanged fraises.yaml and a current SQLite state file: answered by one
// self-contained module (core/quick-history.ts) without loading the CLI. Anything else (another command
// line, a changed config, PostgreSQL state, an error to report) gives undefined and the CLI runs as before.
if (argv.includes('history')) {
  const quick = await import('../dist/bundle/quick-history.js').catch(() => undefined);
  const out = quick?.quickHistoryCli(argv);
  if (out !== undefined) {
    process.stdout.write(out);
    trace('done (fast path), exit 0');
    process.exit(0);
  }
}
// TCP first (core/early-sockets.ts): for a command that connects to hosts (deploy, rollback, status, ...),
// over an unchanged fraises.yaml (the validated-config cache), the TCP connections to its hosts open now,
// and for plain hosts the whole SSH handshake starts on them (core/early-ssh.ts: key exchange, strict host
// key check, login), so that it overlaps compiling the CLI; the CLI takes the connection only when it would
// make it with the same settings. Any other case opens nothing. ssh2 is loaded then (dist/bundle/ssh2.cjs,
// with its code cache: bin/cli-loader.js), once for the early handshakes and the CLI.
const loader = await import('./cli-loader.js').catch(() => undefined);
const early = await import('../dist/bundle/early-sockets.js').catch(() => undefined);
// FRAISIER_EARLY_HANDSHAKE=0: the TCP connections only (the handshake starts once fraises.yaml is validated)
early?.openEarlySockets(argv, process.env, process.env.FRAISIER_EARLY_HANDSHAKE === '0' ? undefined : loader?.loadSsh2);
await early?.handshakesUnderWay?.();
// One bundled entry for every command: it holds the command list, the argv parser, the config loader
// and the read-only commands. The package itself (the built-in providers, strategies and plugins, and the
// SSH stack under them) is evaluated by the CLI only for the commands that use targets, after
// fraises.yaml is validated and the SSH handshakes to its hosts have started (core/connect-early.ts), so
// that loading it overlaps the handshakes. The entry is dist/bundle/cli.cjs, the CLI and the package in
// one file compiled with V8's code cache (bin/cli-loader.js); with plugins in fraises.yaml (they import
// the package's ES modules) or without that file, the ES modules (dist/bundle/cli.js).
const single = process.env.FRAISIER_SINGLE_FILE === '0' ? undefined : loader?.loadCli();
if (single) trace(`CLI and package compiled (dist/bundle/cli.cjs, code cache: ${single.cache})`);
// the host's replies that arrived during the compile are handled now, and the handshake's next packets sent
await early?.handshakesUnderWay?.();
const esm = () => import('../dist/bundle/cli.js').catch(() => import('../dist/core/cli.js'));
const { runFraisierCli, RERUN_AS_ESM } = single?.cli ?? (await esm());
runFraisierCli(argv).then(
  async (code) => {
    if (single && code === RERUN_AS_ESM) code = await (await esm()).runFraisierCli(argv);
    else single?.saveCache();
    trace(`done, exit ${code}`);
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
