import type { Duplex, Readable } from 'node:stream';
import type { Command } from './command.js';

/** What one command returned. */
export interface ExecResult {
  /** Exit status; 0 is success. */
  code: number;
  /** Standard output as text; empty when the run asked for {@link RunOptions.stdoutChunks} and got them. */
  stdout: string;
  stderr: string;
  /** Standard output's bytes as they arrived, when the run asked for them ({@link RunOptions.stdoutChunks}) and the executor supports it. */
  stdoutChunks?: Buffer[];
  /** Wall time of the command, from the executor's point of view. */
  durationMs: number;
}

/** Options of one {@link Executor.run} call. */
export interface RunOptions {
  /** Throw a `E_COMMAND` FraisierError when the exit status is not 0. Default true. */
  check?: boolean;
  /** Data streamed to the command's standard input (e.g. a tar archive). */
  input?: Readable | string | Buffer;
  /** Kill the command after this many milliseconds (exit status 124). Default: none. */
  timeoutMs?: number;
  /**
   * Give standard output as the chunks of bytes it arrived in, `stdoutChunks` (then `stdout` is empty):
   * no string and no concatenated copy of a large output (the nginx source reads megabytes of access log
   * per round into a buffer it reuses). Executors that do not support it ignore it and fill `stdout`:
   * check `stdoutChunks` before using it.
   */
  stdoutChunks?: boolean;
  /**
   * Hand each chunk of standard output to this function as it arrives, and keep none of it (`stdout` is
   * empty, `stdoutChunks` absent or empty): a large output is consumed while the command still runs (the
   * nginx source scans its access log as the bytes come in). The function must not throw; if it does,
   * the command is stopped and the run rejects with that error. Executors that do not support it ignore
   * it and fill `stdout` or `stdoutChunks` as usual: a caller whose function was never called reads those.
   */
  onStdout?: (chunk: Buffer) => void;
}

/**
 * Runs commands on one target. Every provider and plugin goes through this interface, so the same code
 * runs over SSH, locally, as a dry run, or against a recording executor in a unit test.
 */
export interface Executor {
  /** The target's name, e.g. the SSH host alias. */
  readonly name: string;
  run(cmd: Command, options?: RunOptions): Promise<ExecResult>;
  /**
   * Opens a TCP connection from the target's point of view (for an SSH target, a forwarded channel over
   * the existing connection), so `http://localhost:8000/health` means the target's localhost.
   */
  connectTcp(host: string, port: number): Promise<Duplex>;
  /** Counters for benchmarks: commands run and milliseconds spent waiting for them. */
  readonly stats: { commands: number; busyMs: number };
  close(): Promise<void>;
}

/**
 * The `data` listener of a command's standard output, for executors: with {@link RunOptions.onStdout}
 * each chunk goes to the caller and none is kept (a sink that throws stops the command through `stop`,
 * and `failure()` then holds its error, for the run to reject with); without, chunks go into `out`.
 */
export function stdoutListener(
  onStdout: RunOptions['onStdout'],
  out: Buffer[],
  stop: () => void,
): { listener: (chunk: Buffer) => void; failure: () => { error: unknown } | undefined } {
  if (!onStdout) return { listener: (d) => out.push(d), failure: () => undefined };
  let failed: { error: unknown } | undefined;
  const listener = (d: Buffer): void => {
    if (failed) return;
    try {
      onStdout(d);
    } catch (error) {
      failed = { error };
      stop();
    }
  };
  return { listener, failure: () => failed };
}
