import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { connectTcp } from './tcp.js';
import { render, type Command } from './command.js';
import { stdoutListener, type ExecResult, type Executor, type RunOptions } from './executor.js';
import { commandError } from './ssh.js';

/** Runs commands on the deploying machine through bash (zx). Used for the `local` target and LB hosts on this machine. */
export class LocalExecutor implements Executor {
  readonly name: string;
  readonly stats = { commands: 0, busyMs: 0 };

  constructor(name = 'local') {
    this.name = name;
  }

  async run(cmd: Command, options: RunOptions = {}): Promise<ExecResult> {
    const text = render(cmd, { reveal: true });
    if (options.stdoutChunks || options.onStdout) {
      const result = await runBytes(text, options);
      this.stats.commands++;
      this.stats.busyMs += result.durationMs;
      if ((options.check ?? true) && result.code !== 0) throw commandError(this.name, cmd, result);
      return result;
    }
    // zx loads on first use: most deployments never run a local command, and it is a large module
    const { $ } = await import('zx');
    const started = performance.now();
    const p = $({
      nothrow: true,
      quiet: true,
      ...nestedBash(),
      ...(options.input !== undefined ? { input: options.input as never } : {}),
      ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
    })`bash -c ${text}`;
    const out = await p;
    const durationMs = performance.now() - started;
    const code = out.exitCode ?? (out.signal ? 124 : 255);
    const result: ExecResult = { code, stdout: out.stdout, stderr: out.stderr, durationMs };
    this.stats.commands++;
    this.stats.busyMs += durationMs;
    if ((options.check ?? true) && code !== 0) throw commandError(this.name, cmd, result);
    return result;
  }

  connectTcp(host: string, port: number): Promise<Duplex> {
    return connectTcp(host, port);
  }

  async close(): Promise<void> {}
}

/**
 * The environment option of a local `bash -c`: Node's stdio pipes are sockets, and a top-level bash
 * (SHLVL unset or 0) with a socket on stdin believes sshd started it and reads ~/.bashrc, which can be
 * slow or stall (a pyenv rehash lock). SHLVL=1 when the caller's is not set already.
 */
function nestedBash(): { env?: NodeJS.ProcessEnv } {
  return Number(process.env['SHLVL'] ?? 0) >= 1 ? {} : { env: { ...process.env, SHLVL: '1' } };
}

/**
 * `bash -c text` with stdout kept as the chunks it arrived in (RunOptions.stdoutChunks), or handed to
 * RunOptions.onStdout as it arrives: no zx, no string of the output.
 */
function runBytes(text: string, options: RunOptions): Promise<ExecResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', text], {
      stdio: [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      ...nestedBash(),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGTERM');
        }, options.timeoutMs)
      : undefined;
    const stdout = stdoutListener(options.onStdout, out, () => child.kill('SIGTERM'));
    child.stdout!.on('data', stdout.listener);
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const failure = stdout.failure();
      if (failure) return reject(failure.error);
      resolve({
        code: timedOut ? 124 : (code ?? (signal ? 124 : 255)),
        stdout: '',
        stdoutChunks: out,
        stderr: Buffer.concat(err).toString('utf8'),
        durationMs: performance.now() - started,
      });
    });
    const input = options.input;
    if (input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // a command that does not read its input closes the pipe early
      if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
      else input.pipe(child.stdin);
    }
  });
}
