/**
 * One round trip less to log in (core/exec/connect-config.ts signFirst): the key's signed request goes
 * first, without asking whether the key would do (USERAUTH_PK_OK). A real SSH server (ssh2's, on
 * 127.0.0.1 and a free port) records each `publickey` request and whether it was signed; the client
 * logs in with a key file through SshExecutor.connect, as a deploy does.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { signFirst } from '../../../core/exec/connect-config.js';
import { command } from '../../../core/exec/command.js';
import { SshExecutor } from '../../../core/exec/ssh.js';
import { ed25519KeyPair, testSshd } from '../../support/sshd.js';

const { Client, utils } = ssh2;

function setup(kind: 'ed25519' | 'rsa') {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-sign-first-'));
  const pair = kind === 'rsa' ? utils.generateKeyPairSync('rsa', { bits: 2048 }) : ed25519KeyPair();
  const parsed = utils.parseKey(pair.public);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('client key');
  writeFileSync(join(dir, 'id'), pair.private, { mode: 0o600 });
  return { dir, identity: join(dir, 'id'), publicKey: parsed };
}

async function login(kind: 'ed25519' | 'rsa'): Promise<string[]> {
  const c = setup(kind);
  const d = await testSshd({ clientKey: c.publicKey });
  try {
    writeFileSync(join(c.dir, 'known_hosts'), d.knownHostsLine);
    writeFileSync(join(c.dir, 'ssh_config'), `Host h\n  HostName 127.0.0.1\n  Port ${d.port}\n  User deploy\n  IdentityFile ${c.identity}\n`);
    const e = await SshExecutor.connect('h', { configFile: join(c.dir, 'ssh_config'), knownHostsFile: join(c.dir, 'known_hosts') });
    try {
      assert.is((await e.run(command('echo', 'ok'))).stdout, 'ok\n');
    } finally {
      await e.close();
    }
    return d.requests;
  } finally {
    await d.close();
    rmSync(c.dir, { recursive: true, force: true });
  }
}

test('a key file logs in with one signed request, no USERAUTH_PK_OK round trip (ed25519)', async () => {
  assert.equal(await login('ed25519'), ['signed']);
});

test('an RSA key file too, signed with the hash of the algorithm agreed (rsa-sha2-*)', async () => {
  assert.equal(await login('rsa'), ['signed']);
});

test('a signed request the server refuses: ssh2 goes on as before (the login fails with the usual error)', async () => {
  const c = setup('ed25519');
  const other = ed25519KeyPair();
  const otherPub = utils.parseKey(other.public);
  if (otherPub instanceof Error || Array.isArray(otherPub)) throw new Error('key');
  const d = await testSshd({ clientKey: otherPub });
  try {
    writeFileSync(join(c.dir, 'known_hosts'), d.knownHostsLine);
    writeFileSync(join(c.dir, 'ssh_config'), `Host h\n  HostName 127.0.0.1\n  Port ${d.port}\n  User deploy\n  IdentityFile ${c.identity}\n`);
    const err = await SshExecutor.connect('h', { configFile: join(c.dir, 'ssh_config'), knownHostsFile: join(c.dir, 'known_hosts') }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof Error);
    assert.match((err as Error).message, 'cannot log in to h as deploy: All configured authentication methods failed');
    assert.equal(d.requests, ['signed']);
  } finally {
    await d.close();
    rmSync(c.dir, { recursive: true, force: true });
  }
});

test('another shape than ssh2 1.x (no _protocol.authPK of 4 parameters): nothing changed, false', () => {
  assert.is(signFirst(undefined), false);
  assert.is(signFirst({}), false);
  const odd = { _protocol: { authPK: (a: unknown) => a } };
  const before = odd._protocol.authPK;
  assert.is(signFirst(odd), false);
  assert.is(odd._protocol.authPK, before);
  // a client not connected yet has no protocol object
  assert.is(signFirst(new Client()), false);
});

test.run();
