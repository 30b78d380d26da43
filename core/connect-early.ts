/**
 * SSH connections started before they are asked for. The `fraisier` command knows the hosts of a
 * deployment as soon as fraises.yaml is validated, well before the deploy path is loaded, the state
 * store opened and the lock taken; the handshakes (a few round trips and a key exchange each, often
 * the largest fixed cost of a small deploy) then run during that local set-up instead of after it.
 *
 * {@link connectEarly} starts one {@link SshExecutor.connect} per host; `SshExecutor.connect` with the
 * same host and the same `ssh:` settings later takes the connection (or its failure: the error is the
 * one a connection made then would give) instead of opening another. A connection nobody takes (the
 * lock was held, the command stopped before it connected) is closed by {@link closeEarly}.
 *
 * Connecting changes nothing on a host: no command runs before the lock is taken and preflight starts;
 * only the handshake, the host key check (strict as always) and the idle shell of the connection happen
 * early. A connection is started only after the whole file was validated.
 */
import type { Socket } from 'node:net';
import type { SshExecutor, SshOptions } from './exec/ssh.js';
import { trace } from './trace.js';

/** A TCP connection opened before the CLI loaded (core/early-sockets.ts), not taken yet. */
export interface EarlySocket {
  /** The address and port it was opened to. */
  host: string;
  port: number;
  socket: Socket;
}

/**
 * The sockets opened early, kept on `globalThis`: `bin/fraisier.js` opens them from one module graph and
 * the CLI may take them from another (the unbundled fallback).
 */
export function earlySockets(): EarlySocket[] {
  const g = globalThis as { [k: symbol]: EarlySocket[] | undefined };
  const key = Symbol.for('fraisier.earlySockets');
  let list = g[key];
  if (!list) {
    list = [];
    g[key] = list;
  }
  return list;
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
 * The TCP endpoints `hosts` are reached at with `options` (after the SSH config's HostName and Port), for
 * the config cache; hosts reached through a ProxyJump, or that do not resolve, are left out.
 */
export async function endpointsOf(hosts: readonly string[], options: SshOptions = {}): Promise<{ host: string; port: number }[]> {
  const { resolveHost } = await import('./exec/ssh.js');
  const out: { host: string; port: number }[] = [];
  for (const h of hosts) {
    try {
      const r = resolveHost(h, options);
      if (!r.proxyJump) out.push({ host: r.hostname, port: r.port });
    } catch {}
  }
  return out;
}

interface Early {
  promise: Promise<SshExecutor>;
  /** How the connection attempt ended, once it did: the connection, or when it failed (performance.now()). */
  settled: { executor: SshExecutor } | { failedAt: number } | null;
  /** Forwards the connection's warnings to whoever takes it; buffers them until then. */
  relay: { target: ((message: string) => void) | null; buffered: string[] };
}

/** Started connections not taken yet, by {@link keyOf}. */
const pending = new Map<string, Early>();
/** The options objects of the connections this module starts: `SshExecutor.connect` must not take from itself. */
const starting = new WeakSet<object>();

/** Host and the settings that change how it is reached (functions left out: `warn` is per run). */
function keyOf(spec: string, options: SshOptions): string {
  const settings = Object.entries(options)
    .filter(([, v]) => v !== undefined && typeof v !== 'function')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([spec, settings]);
}

/**
 * Starts connecting to `hosts` with `options` (the `ssh:` settings of fraises.yaml), in the background;
 * resolves once the SSH code is loaded and every connection is under way (its socket opening), never
 * rejects: a failure goes to whoever takes the connection. A host already started with the same settings
 * is not started twice.
 */
export async function connectEarly(hosts: readonly string[], options: SshOptions = {}): Promise<void> {
  const todo = hosts.filter((h) => !pending.has(keyOf(h, options)));
  if (todo.length === 0) return;
  const loaded = import('./exec/ssh.js');
  // one warning function for the call, as the provider passes one for the run: a warning (host key
  // checking off) is printed once, not once per host
  const relay: Early['relay'] = { target: null, buffered: [] };
  const warn = (message: string): void => {
    if (relay.target) relay.target(message);
    else relay.buffered.push(message);
  };
  for (const host of todo) {
    const own: SshOptions = { ...options, warn };
    starting.add(own);
    const promise = loaded.then(async ({ SshExecutor }) => {
      const e = await SshExecutor.connect(host, own);
      trace(`connected to ${host} (early)`);
      return e;
    });
    const early: Early = { promise, settled: null, relay };
    // a failure is reported to whoever takes the connection; untaken, it is dropped
    promise.then(
      (executor) => (early.settled = { executor }),
      () => (early.settled = { failedAt: performance.now() }),
    );
    pending.set(keyOf(host, options), early);
  }
  // the `then` callbacks above (SshExecutor.connect up to opening its socket) run before this resumes
  await loaded.catch(() => {});
  trace('SSH code loaded, handshakes started');
}

/** A failed early attempt older than this is tried again when taken (the host may be back after a lock wait). */
export const STALE_FAILURE_MS = 5000;

/**
 * The connection started early to `spec` with the same settings, or undefined (none was started, it was
 * taken already, or `options` are the early connection's own). Its warnings, buffered until now, go to
 * `options.warn` (or stderr, as `SshExecutor.connect` does without one) from here on.
 *
 * Also undefined, so that the caller connects again (once, through the normal path and its strict host
 * key check), when the early connection is no use by now: it was closed or errored since it connected
 * (sshd restarted, host rebooted, network blip while `--wait-lock` awaited the lock; it is closed), or it
 * failed more than {@link STALE_FAILURE_MS} ago. A recent failure is handed over as is: its error is the
 * one a connection made now would give.
 */
export function takeEarly(spec: string, options: SshOptions): Promise<SshExecutor> | undefined {
  if (starting.has(options) || pending.size === 0) return undefined;
  const key = keyOf(spec, options);
  const early = pending.get(key);
  if (!early) return undefined;
  pending.delete(key);
  const s = early.settled;
  if (s && 'executor' in s && !s.executor.connected) {
    trace(`the early connection to ${spec} was lost before it was taken: connecting again`);
    void s.executor.close().catch(() => {});
    return undefined;
  }
  if (s && 'failedAt' in s && performance.now() - s.failedAt > STALE_FAILURE_MS) {
    trace(`the early connection to ${spec} failed ${Math.round(performance.now() - s.failedAt)} ms ago: connecting again`);
    return undefined;
  }
  trace(`took the early connection to ${spec}`);
  if (!early.relay.target) {
    const warn = options.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
    early.relay.target = warn;
    for (const m of early.relay.buffered.splice(0)) warn(m);
  }
  return early.promise;
}

/** Closes the connections started early that nobody took, and forgets them; destroys the sockets opened early nobody took. */
export async function closeEarly(): Promise<void> {
  destroyEarlySockets();
  const left = [...pending.values()];
  pending.clear();
  await Promise.all(left.map((e) => e.promise.then((x) => x.close()).catch(() => {})));
}

/**
 * Where the early connection to `spec` with `options` stands, or undefined when none waits to be taken
 * (tests, which wait on it rather than on time): its handshake under way, connected, lost since it
 * connected, or failed.
 */
export function earlyState(spec: string, options: SshOptions): 'connecting' | 'connected' | 'lost' | 'failed' | undefined {
  const early = pending.get(keyOf(spec, options));
  if (!early) return undefined;
  const s = early.settled;
  if (!s) return 'connecting';
  if ('failedAt' in s) return 'failed';
  return s.executor.connected ? 'connected' : 'lost';
}

/** How many early connections are waiting to be taken (tests). */
export function earlyPending(): number {
  return pending.size;
}
