/**
 * Phase timestamps for profiling the fixed cost of a command: with `FRAISIER_TRACE=1`, each phase
 * (modules loaded, config read, state store open, lock taken, SSH ready, ...) prints one line on stderr
 * with the milliseconds since the process started: `[trace] 412 ms config read`. Off by default; costs
 * one environment lookup per phase.
 */
const on = Boolean(process.env['FRAISIER_TRACE']);

/** Prints `[trace] <ms since process start> ms <phase>` on stderr when `FRAISIER_TRACE` is set. */
export function trace(phase: string): void {
  if (on) process.stderr.write(`[trace] ${performance.now().toFixed(0)} ms ${phase}\n`);
}
