/**
 * The SSH handshake started before the CLI loads. For a command that connects (`deploy`, `status`, ...)
 * over an unchanged fraises.yaml, `bin/fraisier.js` opens the TCP connections to its hosts first thing
 * (core/early-sockets.ts); for each host whose connection settings the validated-config cache recorded
 * ({@link HandshakeRecord}), it also starts the whole SSH handshake on that socket at once: key exchange,
 * the strict host key check against known_hosts (read now, as the CLI would), and the login with the
 * same key or agent. The CLI compiles meanwhile.
 *
 * `SshExecutor.connect` takes the connection ({@link takeHandshake}) only when it would connect with
 * exactly the same settings ({@link handshakeKey} in core/exec/connect-config.ts); otherwise the early one
 * is closed and the CLI connects as before. A host key refused or a login refused early is reported by
 * the CLI with the same error as a connection made then (E_HOST_KEY, E_UNREACHABLE). No command runs:
 * a handshake changes nothing on a host.
 *
 * Only for plain cases: no ProxyJump, strict host key checking, a key file without a passphrase or an
 * agent, and an SSH config without `Include` or `Match`; the record is used only while what it was
 * derived from is unchanged (the SSH config file, the key file, whether SSH_AUTH_SOCK is set). Anything
 * else starts no handshake early (the TCP connection may still be opened early).
 *
 * This module loads no SSH code itself: the caller passes ssh2's `Client` (one ssh2 for the early code
 * and the CLI, see bin/cli-loader.js), so that the CLI can import it without loading ssh2.
 */
import { statSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Client } from 'ssh2';
import { connectConfig, handshakeKey, identityOf, signFirst } from './exec/connect-config.js';
import type { ResolvedHost, SshOptions } from './exec/ssh.js';
import { trace } from './trace.js';

/** A TCP connection opened before the CLI loaded (core/early-sockets.ts), not taken yet. */
export interface EarlySocket {
  /** The address and port it was opened to. */
  host: string;
  port: number;
  socket: Socket;
}

/** Kept on `globalThis`: `bin/fraisier.js` starts them from one bundle, the CLI takes them from another. */
function registry<T>(name: string): T[] {
  const g = globalThis as { [k: symbol]: T[] | undefined };
  const key = Symbol.for(name);
  let list = g[key];
  if (!list) {
    list = [];
    g[key] = list;
  }
  return list;
}

/** The sockets opened early (core/early-sockets.ts), not taken yet. */
export function earlySockets(): EarlySocket[] {
  return registry<EarlySocket>('fraisier.earlySockets');
}

/**
 * The socket opened early to `host`:`port`, or undefined. A socket that failed (or closed) is destroyed
 * and not handed out: the caller then connects as it would have without it. Nothing was ever written to
 * a socket handed out.
 */
export function takeEarlySocket(host: string, port: number): Socket | undefined {
  const list = earlySockets();
  const i = list.findIndex((s) => s.host === host && s.port === port);
  if (i < 0) return undefined;
  const [{ socket }] = list.splice(i, 1) as [EarlySocket];
  if (socket.destroyed || socket.readyState === 'closed' || socket.bytesWritten > 0) {
    socket.destroy();
    trace(`the TCP connection opened early to ${host}:${port} failed: connecting again`);
    return undefined;
  }
  trace(`took the TCP connection opened early to ${host}:${port}${socket.connecting ? ' (still connecting)' : ''}`);
  return socket;
}

/** Destroys the sockets opened early that nobody took. */
export function destroyEarlySockets(): void {
  for (const { socket } of earlySockets().splice(0)) socket.destroy();
}

/**
 * What the early handshake to one host needs, recorded in the validated-config cache by the CLI after it
 * resolved the host (core/connect-early.ts `endpointsOf`): never key material, only where the key is.
 */
export interface HandshakeRecord {
  /** The host as fraises.yaml names it (`instances:`). */
  spec: string;
  /** The host as resolved through the SSH config then. */
  host: ResolvedHost;
  /** The `ssh:` settings that change the connection. */
  connectTimeout?: number;
  keepaliveInterval?: number;
  /** Size and mtime of the key file (`absent`: none), and whether SSH_AUTH_SOCK was set. */
  stamp: { identity: string; agent: boolean };
}

function fileStamp(file: string | undefined): string {
  if (!file) return 'absent';
  try {
    const st = statSync(file);
    return `${st.size}:${st.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

/** The stamp of what a record for `host` is derived from, now. */
export function handshakeStamp(host: ResolvedHost, env: NodeJS.ProcessEnv = process.env): HandshakeRecord['stamp'] {
  return { identity: fileStamp(identityOf(host)), agent: Boolean(env['SSH_AUTH_SOCK']) };
}

/** How a handshake started early ended: ready, or the error (and the host key refused, if it was). */
export type HandshakeOutcome = { ok: true } | { ok: false; error: unknown; hostKeyProblem: string | null };

interface Handshake {
  spec: string;
  key: string;
  client: Client;
  socket: Socket;
  outcome: Promise<HandshakeOutcome>;
}

function handshakes(): Handshake[] {
  return registry<Handshake>('fraisier.earlyHandshakes');
}

function isRecord(r: unknown): r is HandshakeRecord {
  const h = (r as HandshakeRecord | null)?.host;
  return (
    typeof (r as HandshakeRecord | null)?.spec === 'string' &&
    typeof h === 'object' &&
    h !== null &&
    typeof h.hostname === 'string' &&
    Number.isInteger(h.port) &&
    typeof h.user === 'string' &&
    Array.isArray(h.identityFiles) &&
    Array.isArray(h.knownHostsFiles) &&
    h.strict === true &&
    h.proxyJump === null
  );
}

/**
 * Starts the SSH handshake described by `record` on `socket` (opened early to its address, nothing
 * written to it) with ssh2's `ClientClass`; false (nothing started, the socket untouched) when the
 * record is not for a plain case or what it was derived from changed. Never throws.
 */
export function startHandshake(ClientClass: typeof Client, record: unknown, socket: Socket, env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    if (!isRecord(record)) return false;
    const { host } = record;
    const stamp = handshakeStamp(host, env);
    if (stamp.identity !== record.stamp?.identity || stamp.agent !== record.stamp?.agent) return false;
    const options: SshOptions = {
      ...(record.connectTimeout === undefined ? {} : { connectTimeout: record.connectTimeout }),
      ...(record.keepaliveInterval === undefined ? {} : { keepaliveInterval: record.keepaliveInterval }),
    };
    const problem = { message: null as string | null };
    const cfg = connectConfig(host, options, problem);
    cfg['sock'] = socket;
    const client = new ClientClass();
    let last: unknown = null;
    const outcome = new Promise<HandshakeOutcome>((resolve) => {
      client.on('ready', () => {
        trace(`SSH handshake to ${record.spec} done (started early)`);
        resolve({ ok: true });
      });
      // the last error before the connection closed, as ssh2-promise reports it
      client.on('error', (e: unknown) => (last = e));
      client.on('close', () => resolve({ ok: false, error: last, hostKeyProblem: problem.message }));
    });
    handshakes().push({ spec: record.spec, key: handshakeKey(host, options, env), client, socket, outcome });
    client.connect(cfg as never);
    signFirst(client);
    return true;
  } catch {
    return false;
  }
}

/**
 * The handshake started early to `spec`, when it was made with settings of key `key` (core/exec/connect-config.ts
 * {@link handshakeKey}); one made with other settings is closed, and undefined returned: the caller
 * connects as it would have.
 */
export function takeHandshake(spec: string, key: string): { client: Client; outcome: Promise<HandshakeOutcome> } | undefined {
  const list = handshakes();
  const i = list.findIndex((h) => h.spec === spec);
  if (i < 0) return undefined;
  const [h] = list.splice(i, 1) as [Handshake];
  if (h.key !== key) {
    trace(`the SSH handshake started early to ${spec} used other settings: closed, connecting again`);
    close(h);
    return undefined;
  }
  trace(`took the SSH handshake started early to ${spec}`);
  return { client: h.client, outcome: h.outcome };
}

/** Ends the connection (its socket too: it may still be connecting, or the handshake under way). */
function close(h: Handshake): void {
  try {
    h.client.end();
  } catch {}
  h.socket.destroy();
}

/** The sockets of the handshakes started early and not taken yet. */
export function handshakeSockets(): Socket[] {
  return handshakes().map((h) => h.socket);
}

/** Closes the handshakes started early that nobody took. */
export function closeHandshakes(): void {
  for (const h of handshakes().splice(0)) close(h);
}
