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
// The command word is the first argument that is not an option or an option's value, so that global
// options work before it: `fraisier -c fraises.yaml status api production`, `--config=x`, `--json`.
// Anything but a known read-only command loads the built-ins: loading them needlessly is only slower.
// Both lists come from the command list (core/commands/index.ts), which loads no command's dependencies.
const { commandOf, READ_ONLY_COMMANDS } = await import('../dist/bundle/argv.js').catch(() => import('../dist/core/argv.js'));
const command = commandOf(argv);
const needsBuiltins = command !== undefined && !READ_ONLY_COMMANDS.includes(command);
let cli;
if (needsBuiltins) {
  // registers the built-in providers, strategies and plugins; the bundle (npm run bundle) is a few files
  // sharing chunks with the package's own entry, so a plugin importing 'fraisier' sees the same registry
  await import('../dist/bundle/index.js');
  cli = await import('../dist/bundle/cli.js');
} else {
  // Read-only commands (history, stats, status-all, help) load one bundled file: loading hundreds of
  // small modules was most of their start-up time.
  cli = await import('../dist/bundle/cli.js').catch(() => import('../dist/core/cli.js'));
}
const { runFraisierCli } = cli;
runFraisierCli(argv).then(
  (code) => {
    trace(`done, exit ${code}`);
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
