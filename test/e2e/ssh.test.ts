/**
 * SSH as users have it: keys from ssh-agent (SSH_AUTH_SOCK), ProxyJump through a bastion, and one
 * connection reused for many commands.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command } from '../../core/exec/command.js';
import { SshExecutor } from '../../core/exec/ssh.js';
import type { LabEnv } from '../lab/lab.js';
import { lab } from './helpers.js';

let env: LabEnv;
let dir: string;
let agent: ChildProcess | null = null;
let agentSock = '';

test.before(async () => {
  env = await lab();
  dir = mkdtempSync(join(tmpdir(), 'fraisier-ssh-'));
  const known = env.knownHosts;
  writeFileSync(
    join(dir, 'ssh_config'),
    `Host agent-h1
  HostName ${env.hosts[0]!.address}
  User root
  UserKnownHostsFile ${known}

Host jump-h2
  HostName ${env.hosts[1]!.address}
  User root
  IdentityFile ${env.identity}
  UserKnownHostsFile ${known}
  ProxyJump h1

Host h1
  HostName ${env.hosts[0]!.address}
  User root
  IdentityFile ${env.identity}
  UserKnownHostsFile ${known}
`,
  );
  // An ssh-agent we start and stop by pid, holding the lab key.
  agentSock = join(dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    try {
      execFileSync('ssh-add', [env.identity], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'ignore' });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

test.after(() => {
  agent?.kill('SIGTERM');
});

test('a key held by ssh-agent (no IdentityFile) logs in', async () => {
  const saved = process.env['SSH_AUTH_SOCK'];
  const savedHome = process.env['HOME'];
  process.env['SSH_AUTH_SOCK'] = agentSock;
  process.env['HOME'] = dir; // no ~/.ssh/id_* to fall back on
  try {
    const e = await SshExecutor.connect('agent-h1', { configFile: join(dir, 'ssh_config') });
    const r = await e.run(command('hostname'));
    assert.is(r.stdout.trim(), 'h1');
    await e.close();
  } finally {
    if (saved === undefined) delete process.env['SSH_AUTH_SOCK'];
    else process.env['SSH_AUTH_SOCK'] = saved;
    process.env['HOME'] = savedHome;
  }
});

test('ProxyJump reaches a host through a bastion, host keys checked on both', async () => {
  const e = await SshExecutor.connect('jump-h2', { configFile: join(dir, 'ssh_config') });
  const r = await e.run(command('hostname'));
  assert.is(r.stdout.trim(), 'h2');
  await e.close();
});

test('one connection carries many commands, exit codes and stderr included', async () => {
  const e = await SshExecutor.connect('h1', { configFile: env.sshConfig });
  for (let i = 0; i < 100; i++) {
    const r = await e.run(command('sh', '-c', 'echo "$1"; echo err >&2; exit "$2"', 'x', String(i), String(i % 3)), { check: false });
    assert.is(r.stdout, `${i}\n`);
    assert.is(r.stderr, 'err\n');
    assert.is(r.code, i % 3);
  }
  assert.is(e.stats.commands, 100);
  await e.close();
});

test.run();
