import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KnownHosts } from '../../../core/exec/known-hosts.js';
import { resolveHost } from '../../../core/exec/ssh.js';

const dir = mkdtempSync(join(tmpdir(), 'fraisier-kh-'));
function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

test('plain, hashed, [host]:port, wildcard and revoked entries', () => {
  const file = join(dir, 'known_hosts');
  writeFileSync(
    file,
    [
      '# comment',
      'web1,10.0.0.1 ssh-ed25519 AAAAplain',
      `${hashed('web2')} ssh-ed25519 AAAAhashed`,
      '[web3]:2222 ssh-rsa AAAAport',
      '*.lab.example ssh-ed25519 AAAAwild',
      '@revoked web1 ssh-ed25519 AAAArevoked',
      'web1 ssh-ed25519 AAAArevoked',
    ].join('\n'),
  );
  const kh = new KnownHosts([file]);
  assert.equal(
    kh.lookup('web1').keys.map((k) => k.key),
    ['AAAAplain'],
  );
  assert.equal(
    kh.lookup('10.0.0.1').keys.map((k) => k.key),
    ['AAAAplain'],
  );
  assert.equal(
    kh.lookup('web2').keys.map((k) => k.key),
    ['AAAAhashed'],
  );
  assert.equal(kh.lookup('web2', 2222).keys, []);
  assert.equal(
    kh.lookup('web3', 2222).keys.map((k) => k.type),
    ['ssh-rsa'],
  );
  assert.equal(kh.lookup('web3').keys, []);
  assert.equal(
    kh.lookup('a.lab.example').keys.map((k) => k.key),
    ['AAAAwild'],
  );
  assert.equal(kh.lookup('nowhere').keys, []);
  assert.equal(kh.lookup('web1').revoked, ['AAAArevoked']);
});

test('host aliases resolve through the SSH config like OpenSSH', () => {
  const cfg = join(dir, 'ssh_config');
  writeFileSync(
    cfg,
    `Host web1
  HostName 10.0.0.1
  User deploy
  Port 2200
  IdentityFile ~/.ssh/deploy_key
  ProxyJump bastion
  UserKnownHostsFile ${join(dir, 'known_hosts')}

Host bastion
  HostName 10.0.0.254

Host *
  User fallback
  StrictHostKeyChecking yes
`,
  );
  const h = resolveHost('web1', { configFile: cfg });
  assert.is(h.hostname, '10.0.0.1');
  assert.is(h.user, 'deploy');
  assert.is(h.port, 2200);
  assert.match(h.identityFiles[0]!, /\/\.ssh\/deploy_key$/);
  assert.is(h.proxyJump, 'bastion');
  assert.equal(h.knownHostsFiles, [join(dir, 'known_hosts')]);
  assert.is(h.strict, true);
  const b = resolveHost('ops@bastion:22', { configFile: cfg });
  assert.is(b.user, 'ops');
  assert.is(b.hostname, '10.0.0.254');
  assert.is(resolveHost('other', { configFile: cfg }).user, 'fallback');
  assert.throws(() => resolveHost('bad host name', { configFile: cfg }), /invalid SSH host/);
});

test.run();
