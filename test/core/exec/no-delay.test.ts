/**
 * No Nagle during the SSH handshake: every TCP socket an SSH login goes over has TCP_NODELAY set before
 * its first byte is written. ssh2 writes each encrypted packet as three writes (length, payload, MAC);
 * with Nagle's algorithm on, the second and third wait for the host's ACK of the first, which Linux
 * delays by up to 40 ms: every step of the login waited that long on the lab (a one-host deploy's
 * handshake took ~150 ms instead of ~30 ms; bench/fixed-cost.ts shows it). The three ways a login's
 * connection is made are checked against a real SSH server (test/support/sshd.ts): a plain connect, the
 * TCP connection `fraisier` opens before its code loads (core/early-sockets.ts), and the whole handshake
 * started then (core/early-ssh.ts); and `connectTcp`, a health probe's connection to this machine. What
 * is read is Node's own record of the option on the socket (the `kSetNoDelay` field net.Socket applies
 * to its handle), taken at the socket's first write.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import net from 'node:net';
import ssh2 from 'ssh2';
import { closeEarly } from '../../../core/connect-early.js';
import { handshakesUnderWay, openEarlySockets } from '../../../core/early-sockets.js';
import { command } from '../../../core/exec/command.js';
import { SshExecutor } from '../../../core/exec/ssh.js';
import { connectTcp } from '../../../core/exec/tcp.js';
import { recordEndpoints, sshWorkspace, testSshd } from '../../support/sshd.js';

const kSetNoDelay = Object.getOwnPropertySymbols(new net.Socket()).find((s) => s.description === 'kSetNoDelay');

/** For every client socket to `port`: whether TCP_NODELAY was set when it wrote its first byte. */
function firstWrites(port: number): { noDelay: boolean[]; restore: () => void } {
  const original = net.Socket.prototype.write;
  const seen = new Map<net.Socket, boolean>();
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === port && !seen.has(this)) seen.set(this, (this as unknown as Record<symbol, unknown>)[kSetNoDelay!] === true);
    return (original as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof original;
  return {
    get noDelay() {
      return [...seen.values()];
    },
    restore: () => {
      net.Socket.prototype.write = original;
    },
  };
}

/** Connects to a as the deploy would after `early` ran, runs one command, and returns the first writes seen. */
async function login(early: (w: ReturnType<typeof sshWorkspace>) => Promise<void>): Promise<{ noDelay: boolean[]; connections: number }> {
  assert.ok(kSetNoDelay, "this Node's net.Socket records TCP_NODELAY as kSetNoDelay");
  const d = await testSshd();
  const w = sshWorkspace(d);
  await recordEndpoints(w);
  const watch = firstWrites(d.port);
  try {
    await early(w);
    const e = await SshExecutor.connect('a', w.options);
    try {
      assert.is((await e.run(command('echo', 'ok'))).stdout, 'ok\n');
    } finally {
      await e.close();
    }
    return { noDelay: watch.noDelay, connections: d.connections() };
  } finally {
    watch.restore();
    await closeEarly();
    await d.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
}

test('a plain connect: TCP_NODELAY is set before the handshake writes anything', async () => {
  const r = await login(async () => {});
  assert.is(r.connections, 1);
  assert.equal(r.noDelay, [true]);
});

test('the TCP connection opened before the CLI loads, handed to ssh2 later: TCP_NODELAY from the start', async () => {
  const r = await login(async (w) => {
    // no ssh2 loader: only the TCP connection is opened early
    assert.is(openEarlySockets(w.argv, process.env, undefined), 1);
  });
  assert.is(r.connections, 1, 'the early socket was taken');
  assert.equal(r.noDelay, [true]);
});

test('the whole handshake started before the CLI loads: TCP_NODELAY from the start', async () => {
  const r = await login(async (w) => {
    assert.is(
      openEarlySockets(w.argv, process.env, () => ssh2),
      1,
    );
    await handshakesUnderWay();
  });
  assert.is(r.connections, 1, 'the early handshake was taken');
  assert.equal(r.noDelay, [true]);
});

test('a health probe to this machine (connectTcp): TCP_NODELAY set', async () => {
  const server = net.createServer((s) => s.end());
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const s = (await connectTcp('127.0.0.1', port)) as net.Socket;
    assert.is((s as unknown as Record<symbol, unknown>)[kSetNoDelay!], true);
    s.destroy();
  } finally {
    await new Promise((res) => server.close(res));
  }
});

test.run();
