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
 * A socket is only opened here: no byte is written on it. `SshExecutor.connect` hands it to ssh2 when it
 * starts the handshake to that address and port (core/connect-early.ts {@link takeEarlySocket}), which
 * checks the host key as strictly as ever. A socket that failed to connect is not used (the connection is
 * made again, and fails or not, as without it); one nobody took is destroyed when the command ends.
 */
import net from 'node:net';
import { CONNECTING_COMMANDS, commandOf, plainArgs } from './argv.js';
import { findCommand } from './commands/index.js';
import { cachedConfig, targetsKey } from './config/cache.js';
import { findConfig } from './config/find.js';
import { earlySockets } from './connect-early.js';
import { trace } from './trace.js';

/**
 * Opens a TCP connection to each host the command line `argv` will connect to, when the config cache
 * knows them; returns how many it opened. Never throws, never writes to a socket.
 */
export function openEarlySockets(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  try {
    if (env['FRAISIER_CONNECT_EARLY'] === '0') return 0;
    const name = commandOf(argv);
    if (name === undefined || !CONNECTING_COMMANDS.includes(name)) return 0;
    const command = findCommand('fraisier', name);
    const a = command ? plainArgs(command, 'fraisier', argv) : undefined;
    if (!command || !a) return 0;
    const words = [
      String(a['fraise']),
      String(a['env']),
      ...(command.scope === 'environment' && command.runMany ? ((a['more'] as unknown[] | undefined) ?? []).map(String) : []),
    ];
    const cached = cachedConfig(findConfig(a['config'] as string | undefined, env), env);
    const endpoints = cached?.endpoints?.[targetsKey(words.slice(0, -1), words[words.length - 1]!)];
    if (!endpoints || endpoints.length === 0) return 0;
    const registry = earlySockets();
    for (const { host, port } of endpoints) {
      if (typeof host !== 'string' || !Number.isInteger(port)) continue;
      const socket = net.connect({ host, port });
      // a failure is seen by whoever takes the socket (it is destroyed then, and not used)
      socket.on('error', () => {});
      registry.push({ host, port, socket });
    }
    trace(`TCP connections opened to ${registry.length} host(s) (config cache)`);
    return registry.length;
  } catch {
    return 0;
  }
}
