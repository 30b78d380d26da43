/**
 * TCP first (core/early-sockets.ts): the hosts' endpoints recorded in the validated-config cache, and
 * the sockets opened from them before the CLI loads. A local TCP server (127.0.0.1, a free port) stands
 * for the hosts: it counts the connections and every byte it receives (none must arrive before the SSH
 * code takes the socket). The handshake over such a socket, and the host key check, are on the lab:
 * test/e2e/early-sockets.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedConfig, rememberConfig, rememberEndpoints, targetsKey } from '../../core/config/cache.js';
import { destroyEarlySockets, earlySockets, endpointsOf, takeEarlySocket } from '../../core/connect-early.js';
import { openEarlySockets } from '../../core/early-sockets.js';

async function server(): Promise<{ server: Server; port: number; connections: () => number; bytes: () => number }> {
  let n = 0;
  let bytes = 0;
  const s = createServer((c) => {
    n++;
    c.on('data', (d) => (bytes += d.length));
    c.on('error', () => {});
  });
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  return { server: s, port: (s.address() as { port: number }).port, connections: () => n, bytes: () => bytes };
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
};

/** A workspace: fraises.yaml over hosts a and b, an SSH config sending both to 127.0.0.1:`port`, `.fraisier/`. */
function workspace(port: number): { dir: string; file: string; text: string; sshConfig: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-early-sockets-'));
  mkdirSync(join(dir, '.fraisier'));
  const sshConfig = join(dir, 'ssh_config');
  writeFileSync(sshConfig, ['a', 'b'].map((h) => `Host ${h}\n  HostName 127.0.0.1\n  Port ${port}\n`).join(''));
  const text = `ssh:\n  config: ${sshConfig}\nfraises:\n  app:\n    git_repo: /tmp/x.git\n    app_path: /srv/app\n    environments:\n      production:\n        provider: bare_metal\n        instances: [a, b]\n        supervisor_program: app\n`;
  const file = join(dir, 'fraises.yaml');
  writeFileSync(file, text);
  return { dir, file, text, sshConfig };
}

/** What the CLI records after validating `file` and starting the connections to a and b. */
async function record(w: ReturnType<typeof workspace>): Promise<void> {
  rememberConfig(w.file, w.text, { state: {}, secrets: [] });
  const endpoints = await endpointsOf(['a', 'b'], { configFile: w.sshConfig });
  rememberEndpoints(w.file, w.text, ['app'], 'production', endpoints, w.sshConfig);
}

test('endpoints are recorded through the SSH config, and forgotten when it changes', async () => {
  const w = workspace(2222);
  try {
    await record(w);
    assert.equal(cachedConfig(w.file)?.endpoints?.[targetsKey(['app'], 'production')], [
      { host: '127.0.0.1', port: 2222 },
      { host: '127.0.0.1', port: 2222 },
    ]);
    appendFileSync(w.sshConfig, 'Host c\n  HostName 127.0.0.2\n');
    assert.ok(cachedConfig(w.file), 'the config itself is still cached');
    assert.is(cachedConfig(w.file)?.endpoints, undefined, 'the SSH config changed: no endpoints');
    // an SSH config with Include (or Match) is never trusted for this
    appendFileSync(w.sshConfig, 'Include other_config\n');
    await record(w);
    assert.is(cachedConfig(w.file)?.endpoints, undefined);
  } finally {
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('a connecting command over an unchanged config opens one socket per host and writes nothing on it', async () => {
  const s = await server();
  const w = workspace(s.port);
  try {
    await record(w);
    assert.is(openEarlySockets(['status', 'app', 'production', '-c', w.file]), 2);
    await until(() => s.connections() === 2);
    assert.is(s.connections(), 2);
    const taken = takeEarlySocket('127.0.0.1', s.port);
    assert.ok(taken);
    assert.is(earlySockets().length, 1, 'the other one waits');
    await new Promise((r) => setTimeout(r, 50));
    assert.is(s.bytes(), 0, 'nothing written before the SSH code has the socket');
    taken!.destroy();
    destroyEarlySockets();
    assert.is(earlySockets().length, 0);
    assert.is(takeEarlySocket('127.0.0.1', s.port), undefined);
  } finally {
    destroyEarlySockets();
    s.server.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('nothing is opened for another command, another environment, a changed config, or FRAISIER_CONNECT_EARLY=0', async () => {
  const s = await server();
  const w = workspace(s.port);
  try {
    await record(w);
    for (const argv of [
      ['history', '-c', w.file],
      ['migrate', 'app', 'production', '-c', w.file],
      ['status', 'app', 'staging', '-c', w.file],
      ['status', 'app', 'production', '-c', w.file, '--help'],
    ]) {
      assert.is(openEarlySockets(argv), 0, argv.join(' '));
    }
    assert.is(openEarlySockets(['deploy', 'app', 'production', '-c', w.file], { ...process.env, FRAISIER_CONNECT_EARLY: '0' }), 0);
    appendFileSync(w.file, '# edited\n');
    assert.is(openEarlySockets(['status', 'app', 'production', '-c', w.file]), 0);
    assert.is(earlySockets().length, 0);
  } finally {
    destroyEarlySockets();
    s.server.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test('a socket that failed to connect is not handed out', async () => {
  const s = await server();
  const port = s.port;
  await new Promise<void>((res) => s.server.close(() => res()));
  const w = workspace(port);
  try {
    await record(w);
    assert.is(openEarlySockets(['deploy', 'app', 'production', '-c', w.file]), 2);
    await until(() => earlySockets().every((e) => e.socket.destroyed));
    assert.is(takeEarlySocket('127.0.0.1', port), undefined);
  } finally {
    destroyEarlySockets();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

test.run();
