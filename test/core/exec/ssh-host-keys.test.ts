/**
 * Which host key algorithms a connection asks for (bug 10: an `ssh-rsa` known_hosts key must accept the
 * rsa-sha2 signatures), and the warning when host key checking is off.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SshExecutor, hostKeyAlgorithms, resolveHost } from '../../../core/exec/ssh.js';

const dir = mkdtempSync(join(tmpdir(), 'fraisier-hostkeys-'));

test('an ssh-rsa known_hosts key allows rsa-sha2-512 and rsa-sha2-256 signatures, strongest first', () => {
  assert.equal(hostKeyAlgorithms(['ssh-rsa']), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  assert.equal(hostKeyAlgorithms(['ssh-ed25519', 'ssh-rsa', 'ssh-ed25519']), ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  assert.equal(hostKeyAlgorithms(['ecdsa-sha2-nistp256']), ['ecdsa-sha2-nistp256']);
  // types ssh2 cannot verify are left out instead of failing the connection
  assert.equal(hostKeyAlgorithms(['sk-ssh-ed25519@openssh.com', 'ssh-ed25519']), ['ssh-ed25519']);
});

test('resolveHost says why host key checking is off: the option, or the SSH config file and value', () => {
  const config = join(dir, 'ssh_config');
  writeFileSync(config, 'Host loose\n  HostName 127.0.0.1\n  StrictHostKeyChecking no\n\nHost tight\n  HostName 127.0.0.1\n');
  assert.is(resolveHost('tight', { configFile: config }).insecureBecause, null);
  assert.is(resolveHost('loose', { configFile: config }).insecureBecause, `StrictHostKeyChecking no in ${config}`);
  assert.match(resolveHost('tight', { configFile: config, strictHostKeyChecking: false }).insecureBecause!, 'strict_host_key_checking: false');
});

test('host key checking off: one warning per run (per warn function), whatever the number of hosts', async () => {
  const config = join(dir, 'ssh_config_warn');
  writeFileSync(config, 'Host *\n  HostName 127.0.0.1\n  Port 1\n  StrictHostKeyChecking no\n');
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  for (const h of ['a', 'b', 'c']) await SshExecutor.connect(h, { configFile: config, warn, connectTimeout: 2 }).catch(() => {});
  assert.is(warnings.length, 1);
  assert.match(warnings[0]!, `host key checking is OFF (StrictHostKeyChecking no in ${config}; first seen for a)`);
  assert.match(warnings[0]!, 'any host key is accepted');
  // a new run (a new function) warns again; strict hosts never warn
  const next: string[] = [];
  await SshExecutor.connect('a', { configFile: config, warn: (m) => next.push(m), connectTimeout: 2 }).catch(() => {});
  await SshExecutor.connect('a', { configFile: config, strictHostKeyChecking: true, warn: (m) => next.push(`strict: ${m}`), connectTimeout: 2 }).catch(
    () => {},
  );
  assert.is(next.length, 1);
});

test.run();
