/**
 * TCP first: the `fraisier` command opens the TCP connections to the hosts of a command that connects
 * (`deploy`, `rollback`, `status`, ...; see `EnvironmentCommand.connects`) before it loads the CLI and the
 * SSH code, so that the TCP handshake and sshd's banner (tens of milliseconds) overlap that loading.
 * `bin/fraisier.js` calls {@link openEarlySockets} first thing.
 *
 * The hosts come from the validated-config cache (core/config/cache.ts): only when fraises.yaml, the
 * variables it names and this build are unchanged since it last validated, and the SSH config the hosts
 * were resolved through is unchanged too, are sockets opened, to the same address and port as last time
 * (after the SSH config's HostName and Port; never through a ProxyJump). Anything else (no cache, another
 * command line, a plugin, a secret) opens nothing, and the command runs as before.
 *
 * For a plain host (see core/early-ssh.ts) the SSH handshake starts on the socket at once, and the CLI
 * takes the connection when its settings are the same. Any other socket is only opened here: no byte is
 * written on it. `SshExecutor.connect` hands it to ssh2 when it starts the handshake to that address and
 * port (core/connect-early.ts {@link takeEarlySocket}), which checks the host key as strictly as ever. A socket that failed to connect is not used (the connection is
 * made again, and fails or not, as without it); one nobody took is destroyed when the command ends.
 */
import net from 'node:net';
import type { Client } from 'ssh2';
import { CONNECTING_COMMANDS, commandOf, plainArgs, targetWords } from './argv.js';
import { findCommand } from './commands/index.js';
import { cachedConfig, targetsKey } from './config/cache.js';
import { findConfig } from './config/find.js';
import { earlySockets, handshakeSockets, startHandshake } from './early-ssh.js';
import { trace } from './trace.js';

/** The handshakes {@link openEarlySockets} starts (once the sockets' connects were issued), until they are. */
let starting: Promise<number> = Promise.resolve(0);

/**
 * How long {@link handshakesUnderWay} waits, at most, for ssh2 to write its identification on each
 * socket (~3-8 ms on an idle machine).
 */
const FIRST_WRITE_WAIT_MS = 40;

/**
 * Resolves once the SSH handshakes {@link openEarlySockets} asked for are started and have written their
 * first packet, and one turn of the event loop later: the sockets' connections complete, ssh2 sends its
 * identification, and the host's (with its key exchange offer), when it already arrived, is handled and
 * answered, so that the host computes its part of the key exchange while the CLI compiles (a synchronous
 * compile during which no packet is handled).
 *
 * ssh2 writes nothing before its crypto is ready: a WebAssembly module (Poly1305) it compiles when it
 * loads, off the main thread, whose completion only a turn of the event loop handles. Without waiting for
 * it here, while the loop is free, the identification went out only after the CLI compiled and the
 * package loaded (~150 ms after the socket connected, seen with strace), and the whole handshake with it.
 * The wait is bounded (`maxWaitMs`, {@link FIRST_WRITE_WAIT_MS} by default), and only for sockets already
 * connected: not for one that failed, nor for one still connecting (a host further away than the lab's:
 * its connection completes during the compile, and ssh2 writes then, its crypto ready by that time).
 */
export async function handshakesUnderWay(maxWaitMs = FIRST_WRITE_WAIT_MS): Promise<void> {
  if ((await starting) > 0) {
    // the first turn may run in the check phase of the loop turn we are in, before its poll; the second
    // runs after the next turn's poll, which handles the completed connects
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
    const sockets = handshakeSockets();
    const until = performance.now() + maxWaitMs;
    // only for connected sockets: one still connecting (a distant host) is written on when it connects,
    // and the CLI compiles meanwhile
    while (sockets.some((s) => s.bytesWritten === 0 && !s.destroyed && !s.connecting) && performance.now() < until) {
      // a timer, not setImmediate: the loop sleeps in its poll until the crypto's completion wakes it
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // the host's identification and key exchange offer, if here, are handled in this turn
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Opens a TCP connection to each host the command line `argv` will connect to, when the config cache
 * knows them; returns how many it opened. Never throws. With `ssh2` (a function that loads ssh2: the
 * one the CLI will use, bin/cli-loader.js), the SSH handshake starts on the next tick (await
 * {@link handshakesUnderWay}) on the sockets of the hosts whose connection settings the cache recorded
 * (core/early-ssh.ts); without it, or for the other hosts, nothing is written to a socket.
 */
export function openEarlySockets(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, ssh2?: () => { Client: typeof Client }): number {
  try {
    if (env['FRAISIER_CONNECT_EARLY'] === '0') return 0;
    const name = commandOf(argv);
    if (name === undefined || !CONNECTING_COMMANDS.includes(name)) return 0;
    const command = findCommand('fraisier', name);
    const a = command ? plainArgs(command, 'fraisier', argv) : undefined;
    if (!command || !a) return 0;
    const words = targetWords(command, a);
    const cached = cachedConfig(findConfig(a['config'] as string | undefined, env), env);
    const endpoints = cached?.endpoints?.[targetsKey(words.slice(0, -1), words[words.length - 1]!)];
    if (!endpoints || endpoints.length === 0) return 0;
    const registry = earlySockets();
    const opened: { host: string; port: number; ssh: unknown; socket: net.Socket }[] = [];
    for (const { host, port, ssh } of endpoints) {
      if (typeof host !== 'string' || !Number.isInteger(port)) continue;
      const socket = net.connect({ host, port, noDelay: true });
      // a failure is seen by whoever takes the socket (it is destroyed then, and not used)
      socket.on('error', () => {});
      opened.push({ host, port, ssh, socket });
    }
    trace(`TCP connections opened to ${opened.length} host(s) (config cache)`);
    const plain = opened.filter((o) => o.ssh === undefined || !ssh2);
    registry.push(...plain.map(({ host, port, socket }) => ({ host, port, socket })));
    const withSsh = opened.filter((o) => !plain.includes(o));
    if (withSsh.length > 0) {
      // after Node issued the sockets' connects (on the next tick): the TCP handshakes run while ssh2 loads
      starting = new Promise((resolve) =>
        process.nextTick(() => {
          let n = 0;
          let lib: { Client: typeof Client } | undefined;
          try {
            lib = ssh2!();
          } catch {}
          for (const { host, port, ssh, socket } of withSsh) {
            // the whole SSH handshake at once (core/early-ssh.ts); else the socket waits to be taken
            if (lib?.Client && startHandshake(lib.Client, ssh, socket, env)) n++;
            else registry.push({ host, port, socket });
          }
          trace(`SSH handshakes started to ${n} host(s) (config cache)`);
          resolve(n);
        }),
      );
    }
    return opened.length;
  } catch {
    return 0;
  }
}
