import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import SSH2Promise from 'ssh2-promise';
import SSHConfig from 'ssh-config';
import type { Client, ClientChannel } from 'ssh2';

import { FraisierError } from '../errors.js';
import { redact } from '../secret.js';
import { quote, Raw, render, type Command } from './command.js';
import { stdoutListener, type ExecResult, type Executor, type RunOptions } from './executor.js';
import { connectConfig, handshakeKey, hostKeyAlgorithms, signFirst } from './connect-config.js';
import { takeEarly, takeEarlySocket } from '../connect-early.js';
import { takeHandshake } from '../early-ssh.js';
import { trace } from '../trace.js';

/** How Fraisier finds and trusts SSH hosts. Defaults follow OpenSSH. */
export interface SshOptions {
  /** OpenSSH client config to resolve host aliases (HostName, User, Port, IdentityFile, ProxyJump). Default `~/.ssh/config`. */
  configFile?: string;
  /** known_hosts file(s). Overrides the SSH config's UserKnownHostsFile; default: that, else `~/.ssh/known_hosts`. */
  knownHostsFile?: string | string[];
  /**
   * Refuse unknown and changed host keys. Default true (unless the SSH config says `StrictHostKeyChecking
   * no`). Turning it off, here or in the SSH config, prints a warning once per run (see {@link warn}).
   */
  strictHostKeyChecking?: boolean;
  /** Seconds to wait for the SSH handshake. Default 10. */
  connectTimeout?: number;
  /** User when neither the instance nor the SSH config names one. Default: the local user. */
  user?: string;
  /**
   * Where the warning goes when host key checking is off for a host. It is called once per function:
   * pass one function for all the connections of a run (the bare-metal provider passes the deployment
   * log's `warn`). Default: one line on stderr, once per process.
   */
  warn?: (message: string) => void;
  /**
   * Seconds between SSH keepalives; the connection counts as lost after 3 unanswered ones (a host whose
   * network went down is noticed in about 4 × this). Default 5.
   */
  keepaliveInterval?: number;
  /**
   * After a lost connection, how long the next command keeps trying to reconnect (seconds) before it
   * fails with `E_UNREACHABLE`: a host whose network or sshd comes back in time can still be rolled back.
   * Default 30; 0 never reconnects.
   */
  reconnectTimeout?: number;
  /**
   * Keep one shell open on each connection and run commands through it (one write and one read per
   * command) instead of opening a new SSH session for each (a channel open, an exec request, and sshd
   * forking a session and a login shell on the host). Stdin is /dev/null. A command made only of plain
   * programs (e.g. `sh -c <script>`, `readlink`, `true`) runs in that shell directly, forking only for
   * its program; any other (a `cd`, `export`, `exit`, raw shell text...) runs in a subshell of its own,
   * so nothing in one command leaks into the next. Commands
   * that stream stdin or have a timeout, commands issued while the shell is busy, and hosts whose login
   * shell is not POSIX (checked once per connection) use a session of their own as before. Default true.
   */
  persistentShell?: boolean;
}

export { hostKeyAlgorithms };

/** A host alias resolved through the SSH config. */
export interface ResolvedHost {
  alias: string;
  hostname: string;
  port: number;
  user: string;
  identityFiles: string[];
  proxyJump: string | null;
  knownHostsFiles: string[];
  strict: boolean;
  /** Why host key checking is off (the option, or the SSH config file and value), or null when it is on. */
  insecureBecause: string | null;
}

function expandHome(p: string): string {
  return p.startsWith('~/') ? resolvePath(homedir(), p.slice(2)) : p;
}

function asList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/**
 * Resolves `user@alias:port` (user and port optional) through the OpenSSH config, as `ssh -G` would for
 * the options Fraisier uses.
 */
export function resolveHost(spec: string, options: SshOptions = {}): ResolvedHost {
  const m = /^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9][A-Za-z0-9._-]*)(?::(\d+))?$/.exec(spec);
  if (!m) throw new FraisierError('E_CONFIG', `invalid SSH host ${JSON.stringify(spec)}: expected host, user@host or user@host:port`);
  const [, userPart, alias, portPart] = m;
  const configFile = expandHome(options.configFile ?? '~/.ssh/config');
  let computed: Record<string, unknown> = {};
  if (existsSync(configFile)) {
    const cfg = SSHConfig.parse(readFileSync(configFile, 'utf8'));
    computed = cfg.compute(alias!) as Record<string, unknown>;
  }
  const strictOpt = String(computed['StrictHostKeyChecking'] ?? 'yes').toLowerCase();
  const knownFromConfig = asList(computed['UserKnownHostsFile'])
    .flatMap((s) => s.split(/\s+/))
    .map(expandHome);
  const knownFromOptions = asList(options.knownHostsFile).map(expandHome);
  const proxy = computed['ProxyJump'] ? String(computed['ProxyJump']) : null;
  const strict = options.strictHostKeyChecking ?? (strictOpt !== 'no' && strictOpt !== 'off');
  return {
    alias: alias!,
    hostname: String(computed['HostName'] ?? alias),
    port: Number(portPart ?? computed['Port'] ?? 22),
    user: userPart ?? (computed['User'] ? String(computed['User']) : (options.user ?? userInfo().username)),
    identityFiles: asList(computed['IdentityFile']).map(expandHome),
    proxyJump: proxy && proxy.toLowerCase() !== 'none' ? proxy : null,
    knownHostsFiles: knownFromOptions.length > 0 ? knownFromOptions : knownFromConfig.length > 0 ? knownFromConfig : [expandHome('~/.ssh/known_hosts')],
    strict,
    insecureBecause: strict
      ? null
      : options.strictHostKeyChecking === false
        ? 'ssh.strict_host_key_checking: false (strictHostKeyChecking: false in the SDK)'
        : `StrictHostKeyChecking ${String(computed['StrictHostKeyChecking'])} in ${configFile}`,
  };
}

/** Warning functions that have already warned: one warning per function, i.e. per run. */
const warned = new WeakSet<(message: string) => void>();

function stderrWarn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/** Warns, once per `warn` function, that host key checking is off for `host`. */
function warnInsecure(host: ResolvedHost, options: SshOptions): void {
  const warn = options.warn ?? stderrWarn;
  if (warned.has(warn)) return;
  warned.add(warn);
  warn(
    `host key checking is OFF (${host.insecureBecause}; first seen for ${host.alias}): any host key is accepted, so a machine ` +
      'in the network path can pose as your servers and receive your commands and secrets. Turn it back on and record the keys ' +
      '(ssh-keyscan HOST >> ~/.ssh/known_hosts, after checking them)',
  );
}

/** `FRAISIER_TRACE=ssh`: the handshake's steps and each command's label in the trace. */
const TRACE_SSH = process.env['FRAISIER_TRACE'] === 'ssh';

interface SshConnectionLike {
  /** The ssh2 Client under ssh2-promise's connection. */
  sshConnection: Client;
}

/**
 * Runs commands on one SSH host over one connection (ssh2-promise over ssh2), opened once per
 * deployment and reused for every command and health check. Host keys are verified against known_hosts.
 */
export class SshExecutor implements Executor {
  readonly name: string;
  readonly host: ResolvedHost;
  readonly stats = { commands: 0, busyMs: 0 };
  /** What closes the connection (ssh2-promise's, or the handshake's taken over from `fraisier`'s early start). */
  private client: { close(): Promise<unknown> };
  private conn: SshConnectionLike;
  private readonly options: SshOptions;
  /** Why the connection was lost (keepalive timeout, closed by the host), or null while it is up. */
  private lost: string | null = null;
  private closing = false;
  private reconnecting: Promise<void> | null = null;
  /** The shell kept open on this connection (see {@link SshOptions.persistentShell}); null until it answered. */
  private shell: RemoteShell | null = null;
  private shellStarted = false;

  private constructor(name: string, host: ResolvedHost, client: { close(): Promise<unknown> }, conn: SshConnectionLike, options: SshOptions) {
    this.name = name;
    this.host = host;
    this.client = client;
    this.conn = conn;
    this.options = options;
    this.watch();
  }

  /**
   * Starts the persistent shell in the background, at the first command: commands use their own session
   * until it answered, so opening it never delays a command, and a connection that runs one command only
   * (e.g. `fraisier status`) costs the host no second session.
   */
  private openShell(): void {
    if (this.shellStarted || this.options.persistentShell === false) return;
    this.shellStarted = true;
    const conn = this.conn;
    void RemoteShell.open(conn.sshConnection, (this.options.connectTimeout ?? 10) * 1000).then((shell) => {
      if (!shell) return;
      if (this.closing || this.conn !== conn) shell.close();
      else this.shell = shell;
    });
  }

  /** Notices a connection that dies (keepalive timeout, sshd killed, network down) between or during commands. */
  private watch(): void {
    const c = this.conn.sshConnection;
    c.on('error', (e: Error) => {
      if (!this.closing) this.lost ??= e.message || 'connection error';
    });
    const closed = () => {
      if (!this.closing) this.lost ??= 'connection closed by the host';
    };
    c.on('end', closed);
    c.on('close', closed);
  }

  /** True while the connection is up (false once it was lost, until a command reconnects). */
  get connected(): boolean {
    return this.lost === null;
  }

  /** After a lost connection: tries to connect again until `reconnectTimeout` passes. */
  private async reconnect(): Promise<void> {
    const reason = this.lost!;
    const deadline = performance.now() + (this.options.reconnectTimeout ?? 30) * 1000;
    let last = '';
    do {
      try {
        const fresh = await SshExecutor.connect(this.name, { ...this.options, connectTimeout: Math.min(this.options.connectTimeout ?? 10, 5) });
        await this.client.close().catch(() => {});
        this.client = fresh.client;
        this.conn = fresh.conn;
        fresh.closing = true; // its background shell (if any) is closed; this executor opens its own
        this.shell = null;
        this.shellStarted = false;
        this.lost = null;
        this.watch();
        return;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
        if (err instanceof FraisierError && err.code === 'E_HOST_KEY') break;
      }
      if (performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    } while (performance.now() < deadline);
    throw new FraisierError('E_UNREACHABLE', `lost the SSH connection to ${this.name} (${reason}) and could not reconnect: ${last}`, {
      target: this.name,
      hint: `check that ${this.name} is up and its sshd answers, then run fraisier status`,
    });
  }

  /** Opens the connection (through ProxyJump hosts if configured) and verifies the host key. */
  static async connect(spec: string, options: SshOptions = {}): Promise<SshExecutor> {
    // a connection the command started early to this host with these settings (core/connect-early.ts)
    const early = takeEarly(spec, options);
    if (early) return early;
    const host = resolveHost(spec, options);
    const chain: ResolvedHost[] = [host];
    let jump = host.proxyJump;
    while (jump) {
      if (chain.length > 8) throw new FraisierError('E_CONFIG', `ProxyJump chain for ${spec} is too long`, { target: spec });
      const hop = resolveHost(jump.split(',')[0]!, options);
      chain.unshift(hop);
      jump = hop.proxyJump;
    }
    // the handshake `fraisier` started before its CLI loaded (core/early-ssh.ts), made with exactly these
    // settings (else it was closed, and this connects as below)
    if (chain.length === 1) {
      const handshake = takeHandshake(spec, handshakeKey(host, options));
      if (handshake) {
        const outcome = await handshake.outcome;
        if (!outcome.ok) throw connectFailure(spec, host, outcome.error, outcome.hostKeyProblem || undefined);
        // its socket has had TCP_NODELAY since core/early-sockets.ts opened it
        const sshConnection = handshake.client as SshConnectionLike['sshConnection'];
        const closer = { close: async () => sshConnection.end() };
        return new SshExecutor(spec, host, closer, { sshConnection }, options);
      }
    }
    const insecure = chain.find((h) => !h.strict);
    if (insecure) warnInsecure(insecure, options);
    const problems = chain.map(() => ({ message: null as string | null }));
    const configs = chain.map((h, i) => connectConfig(h, options, problems[i]!));
    // a TCP connection `fraisier` opened to this address before its code loaded (core/early-sockets.ts):
    // ssh2 starts the handshake on it (nothing was written to it); the host key check is the same
    if (chain.length === 1) {
      const sock = takeEarlySocket(host.hostname, host.port);
      if (sock) configs[0]!['sock'] = sock;
    }
    const client = new SSH2Promise(configs as never, true);
    let conn: SshConnectionLike;
    try {
      const connecting = client.connect();
      // the first hop's ssh2 client exists now (ssh2-promise makes it synchronously), before any byte is
      // sent: TCP_NODELAY on its socket (ssh2 writes each packet in three writes, which Nagle's algorithm
      // held back for the host's delayed ACK: docs/bare-metal.md), and for one host the signed request
      // goes first (see signFirst)
      const first = (client as unknown as { deregister?: { sshConnection?: { sshConnection?: unknown } }[] }).deregister?.[0]?.sshConnection?.sshConnection as
        | { _sock?: { setNoDelay?: (v: boolean) => void } }
        | undefined;
      first?._sock?.setNoDelay?.(true);
      if (chain.length === 1) signFirst(first);
      conn = (await connecting) as SshConnectionLike;
    } catch (err) {
      await client.close().catch(() => {});
      throw connectFailure(spec, host, err, problems.find((p) => p.message)?.message ?? undefined);
    }
    return new SshExecutor(spec, host, client, conn, options);
  }

  async run(cmd: Command, options: RunOptions = {}): Promise<ExecResult> {
    if (this.lost !== null) {
      // concurrent commands (a rollback runs hosts in parallel) share one reconnection
      this.reconnecting ??= this.reconnect().finally(() => (this.reconnecting = null));
      await this.reconnecting;
    }
    const text = render(cmd, { reveal: true });
    const what = cmd.label ?? 'a command';
    const lostError = () =>
      new FraisierError('E_UNREACHABLE', `lost the SSH connection to ${this.name} during ${what}: ${this.lost ?? 'connection closed'}`, {
        target: this.name,
        hint: `the command may or may not have finished on ${this.name}; once it answers again, fraisier status shows what it runs`,
      });
    const started = performance.now();
    // FRAISIER_TRACE=ssh: one line per command run on the host (its label, never its text: it could hold a secret)
    if (TRACE_SSH) trace(`ssh ${this.name}: run ${cmd.label ?? 'a command'}`);
    this.openShell();
    const shell = this.shell;
    if (shell?.usable && options.input === undefined && !options.timeoutMs && !options.onStdout) {
      const r = await shell.run(text, runsInPlace(cmd)).catch(async (e: unknown) => {
        // the shell ended during the command: let the connection's own events say whether it was lost
        await new Promise((res) => setImmediate(res));
        if (this.shell === shell) this.shell = null;
        throw this.lost !== null
          ? lostError()
          : new FraisierError('E_UNREACHABLE', `${this.name}: the remote shell ended during ${what}: ${e instanceof Error ? e.message : String(e)}`, {
              target: this.name,
              hint: `the command may or may not have finished on ${this.name}; fraisier status shows what it runs`,
            });
      });
      const result: ExecResult = { ...r, durationMs: performance.now() - started };
      this.stats.commands++;
      this.stats.busyMs += result.durationMs;
      if ((options.check ?? true) && result.code !== 0) throw commandError(this.name, cmd, result);
      return result;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    // Listeners are attached inside ssh2's callback: an 'exit' arriving in the same packet batch as the
    // channel confirmation would be lost if we waited for a promise to resolve first.
    const result = await new Promise<ExecResult>((resolve, reject) => {
      try {
        this.conn.sshConnection.exec(text, (openErr, channel: ClientChannel) => {
          if (openErr)
            return reject(
              this.lost !== null
                ? lostError()
                : new FraisierError('E_UNREACHABLE', `${this.name}: cannot run a command: ${openErr.message}`, { target: this.name }),
            );
          let code: number | null = null;
          let timer: NodeJS.Timeout | undefined;
          if (options.timeoutMs) {
            timer = setTimeout(() => {
              code = 124;
              try {
                channel.signal('KILL');
              } catch {}
              channel.close();
            }, options.timeoutMs);
          }
          // RunOptions.onStdout: each chunk goes to the caller as it arrives, none is kept
          const stdout = stdoutListener(options.onStdout, out, () => channel.close());
          channel.on('data', stdout.listener);
          channel.stderr.on('data', (d: Buffer) => err.push(d));
          channel.on('exit', (c: number | null, signal?: string) => {
            if (code === null) code = c ?? (signal ? 128 : 255);
          });
          channel.on('error', reject);
          channel.on('close', () => {
            if (timer) clearTimeout(timer);
            const failure = stdout.failure();
            if (failure) return reject(failure.error);
            // no exit status and the connection is gone: the command's outcome is unknown, never "exited 255"
            if (code === null && this.lost !== null) return reject(lostError());
            resolve({
              code: code ?? 255,
              ...(options.stdoutChunks || options.onStdout ? { stdout: '', stdoutChunks: out } : { stdout: Buffer.concat(out).toString('utf8') }),
              stderr: Buffer.concat(err).toString('utf8'),
              durationMs: performance.now() - started,
            });
          });
          const input = options.input;
          if (input === undefined) channel.end();
          else if (typeof input === 'string' || Buffer.isBuffer(input)) channel.end(input);
          else {
            input.on('error', (e) => reject(e));
            input.pipe(channel);
          }
        });
      } catch (err) {
        // ssh2 throws "Not connected" when the connection died since the last command
        this.lost ??= err instanceof Error ? err.message : String(err);
        reject(lostError());
      }
    });
    this.stats.commands++;
    this.stats.busyMs += result.durationMs;
    if ((options.check ?? true) && result.code !== 0) throw commandError(this.name, cmd, result);
    return result;
  }

  async connectTcp(host: string, port: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      this.conn.sshConnection.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
        if (err) {
          const msg = err.message;
          reject(new Error(/refused/i.test(msg) ? 'Connection refused' : msg.replace(/^\(SSH\) /, '')));
        } else resolve(channel);
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.shell?.close();
    this.shell = null;
    await this.client.close().catch(() => {});
  }
}

/** The error of a connection that failed: the host key refused (`hostKeyProblem`), the login refused, or the host not reached. */
function connectFailure(spec: string, host: ResolvedHost, err: unknown, hostKeyProblem: string | undefined): FraisierError {
  if (hostKeyProblem) {
    return new FraisierError('E_HOST_KEY', hostKeyProblem, {
      target: spec,
      hint: 'check the host really is who it claims, then update known_hosts (ssh-keygen -R, then ssh-keyscan)',
    });
  }
  const e = err as { message?: string; level?: string; code?: string } | null;
  const reason = e?.message ?? String(err);
  if (e?.level === 'client-authentication') {
    return new FraisierError('E_UNREACHABLE', `cannot log in to ${spec} as ${host.user}: ${reason}`, {
      target: spec,
      hint: 'check IdentityFile in your SSH config, or that ssh-agent holds the key (SSH_AUTH_SOCK)',
    });
  }
  return new FraisierError('E_UNREACHABLE', `cannot connect to ${spec} (${host.hostname}:${host.port}): ${reason}`, { target: spec });
}

/**
 * One shell kept open on an SSH connection (exec `exec "$SHELL"`, stdin the command stream). Each command
 * is sent as `( eval '<text>' ) </dev/null` followed by two markers (a random nonce, per connection)
 * carrying the exit status on stdout and flushing stderr, so a command costs one write and one read,
 * without a new SSH session. Only one command at a time: {@link usable} is false while one runs.
 */
class RemoteShell {
  private readonly marker: string;
  private busy = false;
  private ended = false;
  private current: {
    out: Buffer[];
    err: Buffer[];
    outTail: string;
    errTail: string;
    outBytes: number;
    errBytes: number;
    code: number | null;
    outEnd: number | null;
    errEnd: number | null;
    resolve: (r: { code: number; stdout: string; stderr: string }) => void;
    reject: (e: Error) => void;
  } | null = null;

  private constructor(private readonly channel: ClientChannel) {
    this.marker = `fraisier-${randomBytes(16).toString('hex')}`;
    channel.on('data', (d: Buffer) => this.onData(d, false));
    channel.stderr.on('data', (d: Buffer) => this.onData(d, true));
    const end = (why: string) => {
      this.ended = true;
      const c = this.current;
      this.current = null;
      c?.reject(new Error(why));
    };
    channel.on('close', () => end('channel closed'));
    channel.on('error', (e: Error) => end(e.message));
  }

  /** Opens the shell and checks it with one command (`exit 3` must report 3); null when that fails. */
  static open(conn: Client, timeoutMs: number): Promise<RemoteShell | null> {
    return new Promise((resolve) => {
      try {
        conn.exec('exec "${SHELL:-/bin/sh}"', (err, channel: ClientChannel) => {
          if (err) return resolve(null);
          const shell = new RemoteShell(channel);
          const timer = setTimeout(() => {
            shell.close();
            resolve(null);
          }, timeoutMs);
          shell.run('exit 3').then(
            (r) => {
              clearTimeout(timer);
              if (r.code === 3 && r.stdout === '' && r.stderr === '') resolve(shell);
              else {
                shell.close();
                resolve(null);
              }
            },
            () => {
              clearTimeout(timer);
              shell.close();
              resolve(null);
            },
          );
        });
      } catch {
        resolve(null);
      }
    });
  }

  /** True when a command can be sent now (the shell is up and idle). */
  get usable(): boolean {
    return !this.ended && !this.busy;
  }

  /**
   * Runs one command. `inPlace` (see {@link runsInPlace}): the text is a list of plain commands that
   * cannot change the shell's state, so it runs in a brace group, without forking a subshell (the fork
   * and the wait for it were most of a command's time on the host); anything else runs in `( eval … )`.
   */
  run(text: string, inPlace = false): Promise<{ code: number; stdout: string; stderr: string }> {
    if (!this.usable) return Promise.reject(new Error(this.ended ? 'shell ended' : 'shell busy'));
    this.busy = true;
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      this.current = { out: [], err: [], outTail: '', errTail: '', outBytes: 0, errBytes: 0, code: null, outEnd: null, errEnd: null, resolve, reject };
      const m = this.marker;
      const body = inPlace ? `{ ${text}\n}` : `( eval ${quote(text)} )`;
      // one write: the command, then the exit status and the end markers (stdout first, then stderr)
      this.channel.write(`${body} </dev/null; printf '%s %s\\n' ${m} "$?"; printf '%s\\n' ${m} >&2\n`);
    }).finally(() => {
      this.busy = false;
    });
  }

  /** Collects one stream's data and looks for its marker (only in the new bytes and the few before them). */
  private onData(d: Buffer, stderr: boolean): void {
    const c = this.current;
    if (!c) return; // output after a command's markers (a background process): nobody's
    if (stderr ? c.errEnd !== null : c.outEnd !== null) return;
    const before = stderr ? c.errBytes : c.outBytes;
    const tail = stderr ? c.errTail : c.outTail;
    (stderr ? c.err : c.out).push(d);
    const window = tail + d.toString('latin1');
    const start = before - tail.length;
    if (stderr) {
      c.errBytes += d.length;
      const i = window.indexOf(`${this.marker}\n`);
      if (i >= 0) c.errEnd = start + i;
      c.errTail = window.slice(-(this.marker.length + 16));
    } else {
      c.outBytes += d.length;
      const match = new RegExp(`${this.marker} (\\d+)\\n`).exec(window);
      if (match) {
        c.outEnd = start + match.index;
        c.code = Number(match[1]);
      }
      c.outTail = window.slice(-(this.marker.length + 16));
    }
    if (c.outEnd !== null && c.errEnd !== null) {
      this.current = null;
      c.resolve({
        code: c.code ?? 255,
        stdout: Buffer.concat(c.out).subarray(0, c.outEnd).toString('utf8'),
        stderr: Buffer.concat(c.err).subarray(0, c.errEnd).toString('utf8'),
      });
    }
  }

  close(): void {
    this.ended = true;
    try {
      this.channel.end();
      this.channel.close();
    } catch {}
  }
}

/**
 * Shell builtins and keywords (sh, bash, ksh, zsh) that change the shell running them (directory,
 * variables, options, traps, limits, the shell itself) or parse their arguments as shell: a command
 * starting with one of these runs in a subshell of the persistent shell, never in place.
 */
const STATEFUL_WORDS = new Set(
  (
    '. : [ [[ ]] { } ! alias autoload bg bind break builtin caller cd chdir command compgen complete compopt continue coproc ' +
    'declare dirs disable disown do done elif else emulate enable esac eval exec exit export fc fg fi for function ' +
    'functions getopts hash history if in integer jobs kill let limit local logout mapfile noglob nocorrect popd print ' +
    'printf pushd read readarray readonly rehash repeat return select set setopt shift shopt source suspend test then ' +
    'time times trap type typeset ulimit umask unalias unfunction unhash unlimit unset unsetopt until vared wait whence ' +
    'where while zle zmodload'
  ).split(' '),
);

/**
 * True when a command can run in the persistent shell itself, without a subshell: no `cd` (cwd) or
 * `export` (env), no raw shell text, and every step starts with the name of a program (not a builtin
 * or keyword that could change the shell, see {@link STATEFUL_WORDS}). Such a command forks only for
 * its program, as in a session of its own. `true` (the no-op) needs no fork at all.
 */
export function runsInPlace(cmd: Command): boolean {
  if (cmd.cwd || (cmd.env && Object.keys(cmd.env).length > 0)) return false;
  if (cmd.steps.length === 0) return false;
  return cmd.steps.every((argv) => {
    if (argv.some((a) => a instanceof Raw)) return false;
    const first = argv[0];
    if (typeof first !== 'string') return false;
    return /^[A-Za-z0-9_./+-]+$/.test(first) && !STATEFUL_WORDS.has(first);
  });
}

/** The error for a command that exited non-zero: the redacted command and the end of its output. */
export function commandError(target: string, cmd: Command, result: ExecResult): FraisierError {
  const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
  const what = result.code === 124 ? 'timed out' : `exited ${result.code}`;
  return new FraisierError('E_COMMAND', redact(`${cmd.label ?? 'command'} ${what}${cmd.label ? '' : `: ${render(cmd)}`}${tail ? `\n${tail}` : ''}`), {
    target,
  });
}
