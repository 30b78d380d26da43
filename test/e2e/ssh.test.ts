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
import { command, raw } from '../../core/exec/command.js';
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

test('commands through the persistent shell behave as in a session of their own', async () => {
  const e = await SshExecutor.connect('h1', { configFile: env.sshConfig });
  // the shell opens in the background at the first command; commands use their own session until it answered
  const cwd = (await e.run(command('pwd'))).stdout;
  for (let i = 0; i < 300 && !(e as unknown as { shell: unknown }).shell; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok((e as unknown as { shell: unknown }).shell, 'the persistent shell answered');
  // cd, export and exit stay inside their command
  await e.run({
    steps: [
      ['cd', '/tmp'],
      ['export', 'FRAISIER_X=1'],
    ],
  });
  assert.is((await e.run(command('pwd'))).stdout, cwd);
  assert.is((await e.run(command('sh', '-c', 'echo "${FRAISIER_X:-unset}"'))).stdout, 'unset\n');
  assert.is((await e.run(command('exit', '7'), { check: false })).code, 7);
  // output without a final newline, quotes, several lines, stderr; stdin is empty (never the command stream)
  const r = await e.run(command('sh', '-c', `printf "a'b\\nc"; printf e >&2; cat; exit 4`), { check: false });
  assert.equal([r.code, r.stdout, r.stderr], [4, "a'b\nc", 'e']);
  // plain programs run in the shell itself (no subshell): stdin is empty, a failing step ends the chain
  const chain = await e.run({ steps: [['cat'], ['sh', '-c', 'exit 5'], ['echo', 'not reached']] }, { check: false });
  assert.equal([chain.code, chain.stdout], [5, '']);
  const two = await e.run({
    steps: [
      ['echo', 'a'],
      ['echo', 'b'],
    ],
  });
  assert.is(two.stdout, 'a\nb\n');
  // a syntax error fails that command only
  const bad = await e.run(command(raw('if then')), { check: false });
  assert.is.not(bad.code, 0);
  assert.is((await e.run(command('echo', 'still here'))).stdout, 'still here\n');
  // commands run at once (the shell is busy) and commands with input get a session of their own
  const many = await Promise.all([1, 2, 3, 4].map((i) => e.run(command('sh', '-c', 'sleep 0.2; echo "$1"', 'x', String(i)))));
  assert.equal(
    many.map((m) => m.stdout),
    ['1\n', '2\n', '3\n', '4\n'],
  );
  assert.is((await e.run(command('cat'), { input: 'from stdin' })).stdout, 'from stdin');
  // a big output arrives whole
  const big = await e.run(command('sh', '-c', 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done'));
  assert.is(big.stdout.split('\n').length, 20001);
  assert.ok(big.stdout.endsWith('line 19999\n'));
  await e.close();
});

test.run();
