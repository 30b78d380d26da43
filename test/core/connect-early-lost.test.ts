/**
 * An early connection lost before it is taken (core/connect-early.ts): with `--wait-lock`, the
 * connections started early are held while the lock is awaited; if the host closes one meanwhile (sshd
 * restarted, host rebooted), `SshExecutor.connect` does not hand the dead connection to the deployment:
 * it connects again, once, through the normal path and its strict host-key check. A real SSH server
 * (ssh2's, in this process, on 127.0.0.1 and a free port, its host key recorded in a known_hosts file)
 * counts the connections and closes them on demand.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STALE_FAILURE_MS, closeEarly, connectEarly, earlyPending, earlyState } from '../../core/connect-early.js';
import { command } from '../../core/exec/command.js';
import { FraisierError } from '../../core/errors.js';
import { SshExecutor, type SshOptions } from '../../core/exec/ssh.js';
import { ed25519KeyPair, testSshd } from '../support/sshd.js';

/** An SSH config for host `web` on the server, strict host key checking against a known_hosts file holding `hostKey`. */
function setup(dir: string, port: number, hostKey: string): SshOptions {
  const client = ed25519KeyPair();
  writeFileSync(join(dir, 'id_ed25519'), client.private, { mode: 0o600 });
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ssh-ed25519 ${hostKey}\n`);
  writeFileSync(
    join(dir, 'ssh_config'),
    `Host web\n  HostName 127.0.0.1\n  Port ${port}\n  User deploy\n  IdentityFile ${join(dir, 'id_ed25519')}\n  UserKnownHostsFile ${join(dir, 'known_hosts')}\n  StrictHostKeyChecking yes\n`,
  );
  return { configFile: join(dir, 'ssh_config'), connectTimeout: 5, persistentShell: false };
}

const waitFor = async (what: string, ok: () => boolean) => {
  for (let i = 0; !ok(); i++) {
    if (i > 6000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('an early connection the host closed before it was taken: connect opens a new one (once) and the command runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-early-lost-'));
  const server = await testSshd();
  const env = { SSH_AUTH_SOCK: process.env['SSH_AUTH_SOCK'] };
  delete process.env['SSH_AUTH_SOCK'];
  try {
    const options = setup(dir, server.port, server.hostKey);
    connectEarly(['web'], options);
    // its handshake done: it waits to be taken, as during a lock wait
    await waitFor('the early connection', () => earlyState('web', options) === 'connected');
    assert.is(server.connections(), 1);
    server.dropAll(); // sshd restarted while the lock was awaited
    await waitFor('the client to see the connection closed', () => earlyState('web', options) === 'lost');
    const warnings: string[] = [];
    const exec = await SshExecutor.connect('web', { ...options, warn: (m) => warnings.push(m) });
    try {
      assert.ok(exec.connected, 'a live connection is handed over, not the dead one');
      assert.is(server.connections(), 2, 'one new connection');
      const r = await exec.run(command('echo', 'ok'));
      assert.is(r.stdout.trim(), 'ok');
      assert.is(server.connections(), 2, 'the command ran on the new connection: no reconnection');
      assert.is(earlyPending(), 0);
      assert.equal(warnings, [], 'strict host key checking: no warning');
    } finally {
      await exec.close();
    }
  } finally {
    if (env.SSH_AUTH_SOCK) process.env['SSH_AUTH_SOCK'] = env.SSH_AUTH_SOCK;
    await closeEarly();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the new connection goes through the strict host key check: a host whose key changed meanwhile is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-early-lost-'));
  const server = await testSshd();
  const agent = process.env['SSH_AUTH_SOCK'];
  delete process.env['SSH_AUTH_SOCK'];
  try {
    const options = setup(dir, server.port, server.hostKey);
    connectEarly(['web'], options);
    await waitFor('the early connection', () => earlyState('web', options) === 'connected');
    server.dropAll();
    await waitFor('the client to see the connection closed', () => earlyState('web', options) === 'lost');
    // the host came back with another key (or another machine answers at its address)
    const other = ed25519KeyPair().public.split(' ')[1]!;
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${server.port} ssh-ed25519 ${other}\n`);
    const err = await SshExecutor.connect('web', { ...options, warn: () => {} }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_HOST_KEY');
    assert.match((err as FraisierError).message, 'has CHANGED');
  } finally {
    if (agent) process.env['SSH_AUTH_SOCK'] = agent;
    await closeEarly();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`an early attempt that failed more than ${STALE_FAILURE_MS} ms before it is taken is tried again once; a recent failure is handed over`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-early-lost-'));
  const server = await testSshd();
  const agent = process.env['SSH_AUTH_SOCK'];
  delete process.env['SSH_AUTH_SOCK'];
  const realNow = performance.now.bind(performance);
  try {
    const options = setup(dir, server.port, server.hostKey);
    // the early attempt fails: the host refuses logins (sshd still starting, host rebooting)
    server.refuse(true);
    connectEarly(['web'], options);
    await waitFor('the early attempt to fail', () => earlyState('web', options) === 'failed');
    assert.is(server.connections(), 1);
    // the lock wait: the clock moves past the stale limit; meanwhile the host came back
    const offset = STALE_FAILURE_MS + 1000;
    performance.now = () => realNow() + offset;
    server.refuse(false);
    const exec = await SshExecutor.connect('web', { ...options, warn: () => {} });
    try {
      assert.ok(exec.connected);
      assert.is(server.connections(), 2, 'tried again once');
      assert.is((await exec.run(command('echo', 'ok'))).stdout.trim(), 'ok');
    } finally {
      await exec.close();
    }
    // without the wait, a failed early attempt is handed over as is: no second connection
    performance.now = realNow;
    server.refuse(true);
    connectEarly(['web'], options);
    await waitFor('the early attempt to fail', () => earlyState('web', options) === 'failed');
    assert.is(server.connections(), 3);
    const err = await SshExecutor.connect('web', { ...options, warn: () => {} }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_UNREACHABLE');
    assert.is(server.connections(), 3, 'the recent failure, not a new attempt');
  } finally {
    performance.now = realNow;
    if (agent) process.env['SSH_AUTH_SOCK'] = agent;
    await closeEarly();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
