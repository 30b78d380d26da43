/**
 * Connections started early (core/connect-early.ts): `SshExecutor.connect` with the same host and
 * settings takes the connection started early (no second connection to the host, the same error when
 * it failed), other settings connect on their own, buffered warnings reach the taker once, and
 * `closeEarly` forgets what nobody took. A local TCP server that is no SSH server counts the
 * connections: every handshake fails on it, which is enough to see who connected.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeEarly, connectEarly, earlyPending } from '../../core/connect-early.js';
import { SshExecutor } from '../../core/exec/ssh.js';
import { FraisierError } from '../../core/errors.js';

/** A server on 127.0.0.1 (a free port) that answers every connection with a non-SSH line and closes it. */
async function notSsh(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s: Socket) => {
    n++;
    s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  return { server, port, connections: () => n };
}

function sshConfig(dir: string, port: number): string {
  const file = join(dir, 'ssh_config');
  writeFileSync(file, ['a', 'b'].map((h) => `Host ${h}\n  HostName 127.0.0.1\n  Port ${port}\n  User nobody\n  StrictHostKeyChecking no\n`).join(''));
  return file;
}

test('connect takes the early connection: one connection to the host, the same failure, one warning', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-early-'));
  const { server, port, connections } = await notSsh();
  try {
    const configFile = sshConfig(dir, port);
    connectEarly(['a', 'b'], { configFile, connectTimeout: 5 });
    assert.is(earlyPending(), 2);
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    for (const host of ['a', 'b']) {
      const err = await SshExecutor.connect(host, { warn, configFile, connectTimeout: 5 }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.instance(err, FraisierError, host);
      assert.is((err as FraisierError).code, 'E_UNREACHABLE', host);
      assert.match((err as FraisierError).message, `cannot connect to ${host}`);
    }
    assert.is(earlyPending(), 0, 'both taken');
    assert.is(connections(), 2, 'one connection per host: the early ones');
    // host key checking off: the warning of the early connections reaches the taker, once for the run
    assert.is(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, 'host key checking is OFF');
  } finally {
    await closeEarly();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('other settings connect on their own; closeEarly forgets what nobody took', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-early-'));
  const { server, port, connections } = await notSsh();
  try {
    const configFile = sshConfig(dir, port);
    connectEarly(['a'], { configFile });
    connectEarly(['a'], { configFile });
    assert.is(earlyPending(), 1, 'the same host and settings are started once');
    const err = await SshExecutor.connect('a', { configFile, connectTimeout: 3, warn: () => {} }).catch((e: unknown) => e);
    assert.instance(err, FraisierError);
    assert.is(earlyPending(), 1, 'not taken: other settings');
    await closeEarly();
    assert.is(earlyPending(), 0);
    assert.is(connections(), 2, 'the early connection and the one with other settings');
  } finally {
    await closeEarly();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
