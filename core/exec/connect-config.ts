/**
 * The ssh2 settings of one SSH connection (address, user, key, agent, timeouts, the strict host key
 * check against known_hosts), from a host resolved through the SSH config. Shared by `SshExecutor.connect`
 * and by the handshake `fraisier` starts before its CLI loads (core/early-ssh.ts): both connect with
 * exactly these settings, and the CLI takes an early connection only when {@link handshakeKey} is the
 * same for both. Loads no SSH code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { KnownHosts } from './known-hosts.js';
import type { ResolvedHost, SshOptions } from './ssh.js';
import { trace } from '../trace.js';

function expandHome(p: string): string {
  return p.startsWith('~/') ? resolvePath(homedir(), p.slice(2)) : p;
}

/**
 * The host key algorithms to ask for, from the key types in known_hosts. An `ssh-rsa` key is signed
 * with `rsa-sha2-512` or `rsa-sha2-256` by any OpenSSH of the last years (8.8 turned the SHA-1 `ssh-rsa`
 * signature off): all three are allowed, as OpenSSH does, so a host whose only key is RSA connects.
 */
export function hostKeyAlgorithms(types: string[]): string[] {
  const out = types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
  return [...new Set(out)].filter((t) => SUPPORTED_HOST_KEYS.has(t));
}

/** The server host key algorithms ssh2 (1.x) can verify. */
const SUPPORTED_HOST_KEYS = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
  'ssh-dss',
]);

const DEFAULT_IDENTITIES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

/** The ssh2 debug messages that `FRAISIER_TRACE=ssh` traces: one per round trip of the handshake. */
const HANDSHAKE_STEPS =
  /^(Client: Trying|Socket connected|Remote ident|Outbound: Sending KEXINIT|Handshake completed|Inbound: Received (SERVICE_ACCEPT|USERAUTH_\w+))/;

/** The identity file a connection to `host` logs in with (the SSH config's, else OpenSSH's defaults), or undefined. */
export function identityOf(host: ResolvedHost): string | undefined {
  const identities = host.identityFiles.length > 0 ? host.identityFiles : DEFAULT_IDENTITIES.map(expandHome).filter((f) => existsSync(f));
  return identities.find((f) => existsSync(f));
}

/**
 * Everything that decides how a connection to `host` is made with `options`, besides the files read at
 * connect time (known_hosts, the key): an early connection is used only when its key is the CLI's.
 */
export function handshakeKey(host: ResolvedHost, options: SshOptions, env: NodeJS.ProcessEnv = process.env): string {
  return JSON.stringify([host, options.connectTimeout ?? 10, options.keepaliveInterval ?? 5, identityOf(host) ?? null, env['SSH_AUTH_SOCK'] || null]);
}

/**
 * The ssh2 `connect` settings for `host`. With strict host key checking, `hostKeyProblem.message` says
 * why a host key was refused (unknown, changed, revoked), for the error the caller reports.
 */
export function connectConfig(host: ResolvedHost, options: SshOptions, hostKeyProblem: { message: string | null }): Record<string, unknown> {
  const known = new KnownHosts(host.knownHostsFiles);
  const { keys, revoked } = known.lookup(host.hostname, host.port);
  const cfg: Record<string, unknown> = {
    host: host.hostname,
    port: host.port,
    username: host.user,
    readyTimeout: (options.connectTimeout ?? 10) * 1000,
    keepaliveInterval: (options.keepaliveInterval ?? 5) * 1000,
    keepaliveCountMax: 3,
    reconnect: false,
    uniqueId: `${host.user}@${host.hostname}:${host.port}#${Math.random()}`,
    hoppingTool: 'native',
  };
  // FRAISIER_TRACE=ssh: the handshake's steps in the trace (core/trace.ts), to see what it waits on;
  // only these steps, never a command line (it could hold a secret)
  if (process.env['FRAISIER_TRACE'] === 'ssh') {
    cfg['debug'] = (m: string) => {
      if (HANDSHAKE_STEPS.test(m)) trace(`ssh ${host.alias}: ${m.replace(/ \(.*$/, '')}`);
    };
  }
  const identity = identityOf(host);
  if (identity) cfg['privateKey'] = readFileSync(identity);
  if (process.env['SSH_AUTH_SOCK']) cfg['agent'] = process.env['SSH_AUTH_SOCK'];
  // ssh2 asks for the "none" method first (one round trip that a server requiring a key always
  // refuses); offer the key, then the agent, and "none" last: the same methods, one round trip less
  if (cfg['privateKey'] || cfg['agent']) cfg['authHandler'] = [...(cfg['privateKey'] ? ['publickey'] : []), ...(cfg['agent'] ? ['agent'] : []), 'none'];
  if (host.strict) {
    const types = hostKeyAlgorithms(keys.map((k) => k.type));
    if (types.length > 0) cfg['algorithms'] = { serverHostKey: types };
    cfg['hostVerifier'] = (key: Buffer): boolean => {
      const b64 = key.toString('base64');
      if (revoked.includes(b64)) {
        hostKeyProblem.message = `the host key of ${host.alias} (${host.hostname}) is marked @revoked in known_hosts`;
        return false;
      }
      if (keys.some((k) => k.key === b64)) return true;
      hostKeyProblem.message =
        keys.length === 0
          ? `host key verification failed: ${host.alias} (${host.hostname}:${host.port}) is not in ${host.knownHostsFiles.join(', ')}`
          : `host key verification failed: the host key of ${host.alias} (${host.hostname}:${host.port}) has CHANGED since it was recorded in ${keys[0]!.file}:${keys[0]!.line}; this may be an attack`;
      return false;
    };
  }
  return cfg;
}

/** The hash ssh2 signs with for an RSA key algorithm (the others imply theirs). */
const RSA_HASHES: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256' };

/** The shape of ssh2's (1.x) parsed private key, as `signFirst` uses it. */
interface ParsedKey {
  sign(data: Buffer, hash?: string): Buffer | Error;
  isPrivateKey(): boolean;
}

type AuthPK = (username: string, key: unknown, keyAlgo: string | undefined, cbSign?: (data: Buffer, done: (sig: Buffer) => void) => void) => void;

/**
 * One round trip less to log in with a key file: ssh2 first asks whether the server would accept the
 * public key (`publickey` without a signature, answered by USERAUTH_PK_OK) and only then sends the
 * signed request; RFC 4252 §7 lets a client send the signed request at once, which the server accepts
 * or refuses (USERAUTH_FAILURE, after which ssh2 goes on as before: the next key algorithm, the agent,
 * `none`). ssh2 has no option for it, so this wraps the private `authPK` of the client's protocol object
 * (`client._protocol`, made by `client.connect()`): a request for a private key (a key file, not an agent
 * key) without a signature gets one, with the hash ssh2 would use after USERAUTH_PK_OK. Call it right
 * after `client.connect()`. When the shape is not the expected one (another ssh2), it changes nothing
 * and returns false: the login takes the usual path.
 */
export function signFirst(client: unknown): boolean {
  const proto = (client as { _protocol?: { authPK?: unknown; _server?: unknown } } | null)?._protocol;
  if (!proto || typeof proto.authPK !== 'function' || proto.authPK.length !== 4 || proto._server) return false;
  const authPK = proto.authPK as AuthPK;
  const wrapped: AuthPK = function (this: unknown, username, key, keyAlgo, cbSign) {
    const k = key as Partial<ParsedKey> | null;
    if (cbSign !== undefined || typeof k?.sign !== 'function' || typeof k.isPrivateKey !== 'function' || !k.isPrivateKey()) {
      return authPK.call(this, username, key, keyAlgo, cbSign);
    }
    const hash = keyAlgo === undefined ? undefined : RSA_HASHES[keyAlgo];
    return authPK.call(this, username, key, keyAlgo, (data, done) => {
      const signature = (k as ParsedKey).sign(data, hash);
      if (signature instanceof Error) throw signature;
      done(signature);
    });
  };
  proto.authPK = wrapped;
  return true;
}
