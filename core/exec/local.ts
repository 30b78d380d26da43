import type { Duplex } from 'node:stream';
import { connectTcp } from './tcp.js';
import { render, type Command } from './command.js';
import type { ExecResult, Executor, RunOptions } from './executor.js';
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
    // zx loads on first use: most deployments never run a local command, and it is a large module
    const { $ } = await import('zx');
    const started = performance.now();
    const p = $({
      nothrow: true,
      quiet: true,
      // Node's stdio pipes are sockets: a top-level bash (SHLVL unset or 0) with a socket on stdin
      // believes sshd started it and reads ~/.bashrc, which can be slow or stall (a pyenv rehash lock).
      ...(Number(process.env['SHLVL'] ?? 0) >= 1 ? {} : { env: { ...process.env, SHLVL: '1' } }),
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
