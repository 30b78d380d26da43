/**
 * One runner for local commands that must not outlive their budget: hooks, blue-green's verification
 * command, and (later) canary gates. The command runs in a process group of its own, so a timeout or an
 * interruption kills what it started too, not only the shell.
 */
import { spawn } from 'node:child_process';
import { constants as os } from 'node:os';

/** Options of {@link runProcess}. */
export interface ProcessOptions {
  /** Working directory. Default: this process's. */
  cwd?: string;
  /** The whole environment of the child (not merged with this process's: pass `{ ...process.env, ... }`). */
  env?: NodeJS.ProcessEnv;
  /** Longest run in ms; then the group is killed and the result says `timedOut`. */
  timeoutMs: number;
  /**
   * How long the group has between SIGTERM and SIGKILL once the timeout or the signal fired. `0` (the
   * default) sends SIGKILL at once.
   */
  graceMs?: number;
  /** Aborting it kills the group as the timeout does; the result then says `interrupted`. */
  signal?: AbortSignal;
  /** Called with each non-empty output line (stdout and stderr), as it arrives. */
  onLine?: (line: string) => void;
  /** Called with the child's pid (its process group id) once it started. */
  onStart?: (pid: number) => void;
  /**
   * `'exit'` (default): resolve when the command's own process exits; a background process it left keeps
   * running until the timeout kills the group. `'close'`: resolve when every process holding its output
   * pipes is gone too.
   */
  until?: 'exit' | 'close';
}

/** What a {@link runProcess} run gave. */
export interface ProcessResult {
  /** The exit status; 128 + the signal's number when a signal ended it; 127 when it could not start. */
  code: number;
  /** stdout and stderr interleaved as they arrived (and the spawn error, when it could not start). */
  output: string;
  /** The timeout killed the group. */
  timedOut: boolean;
  /** The abort signal killed the group. */
  interrupted: boolean;
  /** The child's pid, which is also its process group id. */
  pid: number | undefined;
  /** Set when the command could not be started at all (then `code` is 127). */
  spawnError?: string;
}

/** Runs argv (no shell unless argv asks for one) in a new process group; never rejects. */
export function runProcess(argv: readonly string[], options: ProcessOptions): Promise<ProcessResult> {
  return new Promise((resolve) => {
    let output = '';
    let partial = '';
    let killedFor: 'timeout' | 'signal' | null = null;
    const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    if (pid !== undefined) options.onStart?.(pid);
    const killGroup = (signal: NodeJS.Signals) => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, signal);
      } catch {
        /* already gone */
      }
    };
    const grace = options.graceMs ?? 0;
    const stop = (why: 'timeout' | 'signal') => {
      if (killedFor) return;
      killedFor = why;
      if (grace > 0) {
        killGroup('SIGTERM');
        setTimeout(() => killGroup('SIGKILL'), grace).unref();
      } else killGroup('SIGKILL');
    };
    const timer = setTimeout(() => stop('timeout'), options.timeoutMs);
    const onAbort = () => stop('signal');
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    const onData = (d: Buffer) => {
      const text = d.toString('utf8');
      output += text;
      if (!options.onLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') options.onLine(line);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let settled = false;
    let spawnError: string | undefined;
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (killedFor) killGroup('SIGKILL'); // whatever survived the grace period
      if (options.onLine && partial.trim() !== '') options.onLine(partial);
      resolve({ code, output, timedOut: killedFor === 'timeout', interrupted: killedFor === 'signal', pid, ...(spawnError ? { spawnError } : {}) });
    };
    const statusOf = (code: number | null, signal: NodeJS.Signals | null) => code ?? 128 + (signal ? (os.signals[signal] ?? 0) : 0);
    child.on('error', (err) => {
      spawnError = err.message;
      output += `${err.message}\n`;
      finish(127);
    });
    if ((options.until ?? 'exit') === 'close') {
      child.on('close', (code, signal) => finish(statusOf(code, signal)));
    } else {
      child.on('exit', (code, signal) => {
        // Give the pipes a moment to deliver what was written before the exit; don't wait for leftovers.
        setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          finish(statusOf(code, signal));
        }, 20);
      });
    }
  });
}
