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
import type { Endpoint } from './config/cache.js';
import { closeHandshakes, destroyEarlySockets, handshakeStamp, type HandshakeRecord } from './early-ssh.js';
import type { ResolvedHost, SshExecutor, SshOptions } from './exec/ssh.js';
import { trace } from './trace.js';

export { destroyEarlySockets, earlySockets, takeEarlySocket, type EarlySocket } from './early-ssh.js';

/**
 * The TCP endpoints `hosts` are reached at with `options` (after the SSH config's HostName and Port), for
 * the config cache; hosts reached through a ProxyJump, or that do not resolve, are left out. For a plain
 * host (strict host key checking, a key file without a passphrase or an agent), the endpoint also holds
 * what `fraisier` needs to start its SSH handshake before the CLI loads (core/early-ssh.ts).
 */
export async function endpointsOf(hosts: readonly string[], options: SshOptions = {}): Promise<Endpoint[]> {
  const { resolveHost } = await import('./exec/ssh.js');
  const out: Endpoint[] = [];
  for (const h of hosts) {
    try {
      const r = resolveHost(h, options);
      if (r.proxyJump) continue;
      const ssh = r.strict ? await handshakeRecord(h, r, options) : undefined;
      out.push({ host: r.hostname, port: r.port, ...(ssh ? { ssh } : {}) });
    } catch {}
  }
  return out;
}

/** The early handshake's record for `spec` (resolved as `host`), or undefined when its key needs a passphrase or there is no key nor agent. */
async function handshakeRecord(spec: string, host: ResolvedHost, options: SshOptions): Promise<HandshakeRecord | undefined> {
  const { identityOf } = await import('./exec/connect-config.js');
  const identity = identityOf(host);
  if (identity) {
    const { readFileSync } = await import('node:fs');
    const ssh2 = await import('ssh2');
    const utils = ssh2.utils ?? (ssh2 as unknown as { default: typeof ssh2 }).default.utils;
    const parsed = utils.parseKey(readFileSync(identity));
    if (parsed instanceof Error) return undefined; // a passphrase (or a key ssh2 cannot read): nothing early
  } else if (!process.env['SSH_AUTH_SOCK']) {
    return undefined;
  }
  return {
    spec,
    host,
    ...(options.connectTimeout === undefined ? {} : { connectTimeout: options.connectTimeout }),
    ...(options.keepaliveInterval === undefined ? {} : { keepaliveInterval: options.keepaliveInterval }),
    stamp: handshakeStamp(host),
  };
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
  closeHandshakes();
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
