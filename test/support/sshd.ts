/**
 * A real SSH server for unit tests: ssh2's `Server`, in this process, on 127.0.0.1 and a free port, with
 * a fresh ed25519 host key. It answers every exec with "ok\n" and exit status 0, and records what a test
 * asserts on: the TCP connections, the logins, and each `publickey` request (signed, or a query that
 * USERAUTH_PK_OK answers). The SSH hosts of the end-to-end tests are the lab's OpenSSH (test/lab).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { rememberConfig, rememberEndpoints } from '../../core/config/cache.js';
import { endpointsOf } from '../../core/connect-early.js';
import type { SshOptions } from '../../core/exec/ssh.js';

const { Server, utils } = ssh2;

export interface TestSshd {
  port: number;
  /** The public host key, base64 (the key field of a known_hosts line). */
  hostKey: string;
  /** A known_hosts line for this server. */
  knownHostsLine: string;
  connections: () => number;
  logins: () => number;
  /** The `publickey` requests received, in order: signed, or a query (answered by USERAUTH_PK_OK). */
  requests: ('signed' | 'query')[];
  /** While on, every login is refused (a host not ready yet, or a key it does not know). */
  refuse: (on: boolean) => void;
  /** Closes every connection open now, as an sshd restart does. */
  dropAll: () => void;
  close: () => Promise<void>;
}

export interface TestSshdOptions {
  /** Accept only this client key (its public half), checking the signature; by default any key logs in. */
  clientKey?: { getPublicSSH(): Buffer };
  /** Refuse every login from the start (see `refuse`). */
  refuse?: boolean;
}

/**
 * `utils.generateKeyPairSync('ed25519')`, generated again while ssh2 cannot read back what it made: it
 * strips every leading zero byte of the public key, so 1 pair in 256 has a malformed key and a test using
 * it fails at random (mscdex/ssh2#1513, open).
 */
export function ed25519KeyPair(options?: { passphrase: string; cipher: string; rounds: number }): { private: string; public: string } {
  for (let i = 0; i < 64; i++) {
    const pair = utils.generateKeyPairSync('ed25519', options);
    if (!(utils.parseKey(pair.public) instanceof Error) && !(utils.parseKey(pair.private, options?.passphrase) instanceof Error)) return pair;
  }
  throw new Error('ssh2 generated no readable ed25519 key pair in 64 attempts');
}

export async function testSshd(options: TestSshdOptions = {}): Promise<TestSshd> {
  const key = ed25519KeyPair();
  const open = new Set<{ end(): void }>();
  const requests: TestSshd['requests'] = [];
  let connections = 0;
  let logins = 0;
  let refusing = options.refuse ?? false;
  const server = new Server({ hostKeys: [key.private] }, (client) => {
    connections++;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.method === 'publickey') requests.push(ctx.signature ? 'signed' : 'query');
      if (refusing || ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const wanted = options.clientKey;
      if (!wanted) return ctx.accept();
      if (!ctx.key.data.equals(wanted.getPublicSSH())) return ctx.reject(['publickey']);
      if (!ctx.signature) return ctx.accept(); // USERAUTH_PK_OK
      const pub = utils.parseKey(ctx.key.data);
      if (!(pub instanceof Error) && !Array.isArray(pub) && ctx.blob && pub.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.accept();
      ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      logins++;
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec) => {
          const channel = acceptExec();
          channel.write('ok\n');
          channel.exit(0);
          channel.end();
        });
      });
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  const pub = utils.parseKey(key.public);
  if (pub instanceof Error || Array.isArray(pub)) throw new Error('test sshd: cannot read its own host key');
  const hostKey = pub.getPublicSSH().toString('base64');
  return {
    port,
    hostKey,
    knownHostsLine: `[127.0.0.1]:${port} ssh-ed25519 ${hostKey}\n`,
    connections: () => connections,
    logins: () => logins,
    requests,
    refuse: (on) => {
      refusing = on;
    },
    dropAll: () => {
      for (const c of open) c.end();
    },
    close: () =>
      new Promise((res) => {
        for (const c of open) c.end();
        server.close(() => res());
      }),
  };
}

/**
 * A directory holding fraises.yaml with one environment, `app` / `production`, over host `a` (the test
 * server, through an SSH config with a key file, optionally passphrase-protected), its known_hosts, and
 * `.fraisier/`; `argv` deploys it.
 */
export function sshWorkspace(d: TestSshd, passphrase?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-ssh-'));
  mkdirSync(join(dir, '.fraisier'));
  const identity = join(dir, 'id');
  const pair = ed25519KeyPair(passphrase ? { passphrase, cipher: 'aes256-ctr', rounds: 16 } : undefined);
  writeFileSync(identity, pair.private, { mode: 0o600 });
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, d.knownHostsLine);
  const sshConfig = join(dir, 'ssh_config');
  writeFileSync(sshConfig, `Host a\n  HostName 127.0.0.1\n  Port ${d.port}\n  User deploy\n  IdentityFile ${identity}\n`);
  const text = `ssh:\n  config: ${sshConfig}\n  known_hosts: ${knownHosts}\nfraises:\n  app:\n    git_repo: /tmp/x.git\n    app_path: /srv/app\n    environments:\n      production:\n        provider: bare_metal\n        instances: [a]\n        supervisor_program: app\n`;
  const file = join(dir, 'fraises.yaml');
  writeFileSync(file, text);
  const options: SshOptions = { configFile: sshConfig, knownHostsFile: knownHosts };
  return { dir, file, text, identity, privateKey: pair.private, knownHosts, options, argv: ['deploy', 'app', 'production', '-c', file] };
}

/** What the CLI records in the validated-config cache after validating the workspace's file and connecting to a. */
export async function recordEndpoints(w: ReturnType<typeof sshWorkspace>): Promise<void> {
  rememberConfig(w.file, w.text, { state: {}, secrets: [] });
  rememberEndpoints(w.file, w.text, ['app'], 'production', await endpointsOf(['a'], w.options), w.options.configFile);
}
