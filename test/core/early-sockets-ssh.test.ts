/**
 * The SSH handshake started before the CLI loads (core/early-ssh.ts): from the connection settings the
 * validated-config cache recorded, `openEarlySockets` starts the key exchange, the host key check and the
 * login at once; `SshExecutor.connect` takes that connection only when it would connect with the same
 * settings. A real SSH server (ssh2's, on 127.0.0.1 and a free port, its host key in a known_hosts file)
 * counts the connections and the logins.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { cachedConfig, targetsKey } from '../../core/config/cache.js';
import { closeEarly } from '../../core/connect-early.js';
import { handshakesUnderWay, openEarlySockets } from '../../core/early-sockets.js';
import { FraisierError } from '../../core/errors.js';
import { command } from '../../core/exec/command.js';
import { SshExecutor } from '../../core/exec/ssh.js';
import { ed25519KeyPair, recordEndpoints, sshWorkspace, testSshd } from '../support/sshd.js';

const { utils } = ssh2;
const load = () => ssh2;

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
};

const env = process.env;
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

test('the cache records where the key file is, never the key', async () => {
  const d = await testSshd();
  const w = sshWorkspace(d);
  try {
    await recordEndpoints(w);
    const [e] = cachedConfig(w.file)?.endpoints?.[targetsKey(['app'], 'production')] ?? [];
    assert.equal(e?.ssh?.host.identityFiles, [w.identity]);
    assert.is(e?.ssh?.host.strict, true);
    const cacheText = readFileSync(join(w.dir, '.fraisier', 'config-cache-fraises.yaml.json'), 'utf8');
    const keyBody = w.privateKey.toString().split('\n')[1]!;
    assert.not.ok(cacheText.includes(keyBody), 'no key material in the cache');
  } finally {
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('the handshake starts before anything asks for it, and SshExecutor.connect takes it: one connection, one login', async () => {
  const d = await testSshd();
  const w = sshWorkspace(d);
  try {
    await recordEndpoints(w);
    assert.is(openEarlySockets(w.argv, env, load), 1);
    await handshakesUnderWay();
    await until(() => d.logins() === 1);
    assert.is(d.logins(), 1, 'logged in before the CLI asked');
    const e = await SshExecutor.connect('a', w.options);
    assert.is((await e.run(command('echo', 'ok'))).stdout, 'ok\n');
    await e.close();
    assert.is(d.connections(), 1);
  } finally {
    await closeEarly();
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('the CLI connecting with other settings closes the early connection and connects as before', async () => {
  const d = await testSshd();
  const w = sshWorkspace(d);
  try {
    await recordEndpoints(w);
    assert.is(openEarlySockets(w.argv, env, load), 1);
    await handshakesUnderWay();
    await until(() => d.connections() === 1);
    const e = await SshExecutor.connect('a', { ...w.options, connectTimeout: 7 });
    assert.is((await e.run(command('echo', 'ok'))).stdout, 'ok\n');
    await e.close();
    assert.is(d.connections(), 2);
  } finally {
    await closeEarly();
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('a host key refused early: the same E_HOST_KEY as a connection made then', async () => {
  const d = await testSshd();
  const w = sshWorkspace(d);
  try {
    await recordEndpoints(w);
    const other = utils.parseKey(ed25519KeyPair().public);
    if (other instanceof Error || Array.isArray(other)) throw new Error('key');
    writeFileSync(w.knownHosts, `[127.0.0.1]:${d.port} ssh-ed25519 ${other.getPublicSSH().toString('base64')}\n`);
    const late = await SshExecutor.connect('a', w.options).catch((e: unknown) => e);
    assert.is(openEarlySockets(w.argv, env, load), 1);
    await handshakesUnderWay();
    const early = await SshExecutor.connect('a', w.options).catch((e: unknown) => e);
    assert.ok(early instanceof FraisierError && late instanceof FraisierError);
    assert.is((early as FraisierError).code, 'E_HOST_KEY');
    assert.is((early as FraisierError).message, (late as FraisierError).message);
    assert.match((early as FraisierError).message, 'has CHANGED');
    assert.is(d.connections(), 2, 'the early connection gave the error: none made again');
    assert.is(d.logins(), 0);
  } finally {
    await closeEarly();
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('a login refused early: the same E_UNREACHABLE as a connection made then', async () => {
  const d = await testSshd({ refuse: true });
  const w = sshWorkspace(d);
  try {
    await recordEndpoints(w);
    const late = await SshExecutor.connect('a', w.options).catch((e: unknown) => e);
    assert.is(openEarlySockets(w.argv, env, load), 1);
    await handshakesUnderWay();
    const early = await SshExecutor.connect('a', w.options).catch((e: unknown) => e);
    assert.ok(early instanceof FraisierError && late instanceof FraisierError);
    assert.is((early as FraisierError).code, 'E_UNREACHABLE');
    assert.is((early as FraisierError).message, (late as FraisierError).message);
    assert.match((early as FraisierError).message, 'cannot log in to a as deploy');
    assert.is(d.connections(), 2, 'the early connection gave the error: none made again');
  } finally {
    await closeEarly();
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('in a fresh process, ssh2 has written its identification when handshakesUnderWay resolves (its crypto ready), before the CLI would compile', async () => {
  // ssh2 writes nothing until a WebAssembly module it compiles at load is ready, which only a turn of the
  // event loop completes: a process of its own, so that ssh2 loads there for the first time, as in `fraisier`
  const d = await testSshd();
  const w = sshWorkspace(d);
  try {
    await recordEndpoints(w);
    const child = join(w.dir, 'child.mts');
    writeFileSync(
      child,
      `import net from 'node:net';
import { createRequire } from 'node:module';
import { handshakesUnderWay, openEarlySockets } from ${JSON.stringify(join(repoRoot, 'core', 'early-sockets.ts'))};
const require = createRequire(${JSON.stringify(join(repoRoot, 'package.json'))});
let wrote = false;
const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (...a) {
  if (this.remotePort === ${d.port}) wrote = true;
  return write.apply(this, a);
};
const opened = openEarlySockets(${JSON.stringify(w.argv)}, process.env, () => require('ssh2'));
await handshakesUnderWay(60_000);
process.stdout.write(JSON.stringify({ opened, wrote }));
process.exit(0);
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', child], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), { opened: 1, wrote: true });
  } finally {
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('no handshake early for a key with a passphrase, or a key file changed since it was recorded', async () => {
  const d = await testSshd();
  const locked = sshWorkspace(d, 'secret');
  const w = sshWorkspace(d);
  try {
    await recordEndpoints(locked);
    assert.is(cachedConfig(locked.file)?.endpoints?.[targetsKey(['app'], 'production')]?.[0]?.ssh, undefined);
    await recordEndpoints(w);
    writeFileSync(w.identity, ed25519KeyPair().private, { mode: 0o600 });
    assert.is(openEarlySockets(w.argv, env, load), 1, 'the TCP connection still opens early');
    await handshakesUnderWay();
    await new Promise((r) => setTimeout(r, 100));
    assert.is(d.logins(), 0, 'no login before the CLI asks');
  } finally {
    await closeEarly();
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
    rmSync(locked.dir, { recursive: true, force: true });
  }
});

test.run();
