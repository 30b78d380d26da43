/**
 * Host keys as users meet them (issue 8, bug 10 and the StrictHostKeyChecking warning):
 * - a host whose only host key is RSA, with a correct `ssh-rsa` known_hosts entry, is deployed to and
 *   checked, as OpenSSH connects to it; a wrong RSA key is still refused;
 * - host key checking turned off (SSH config or YAML) prints one clear warning per run.
 * The RSA-only host is a second sshd in h1's namespaces (same /srv), on port 2222, with only an RSA key.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { bin, hostState, lab, labYaml, resetHosts, run, workspace, type Run } from './helpers.js';

const PORT = 2222;
const PIDFILE = '/run/fraisier-rsa-sshd.pid';
let env: LabEnv;
let dir: string;
let ws: string;
let address: string;

const health = "{ url: 'http://localhost:8000/health', expect: ok, timeout: 2, retries: 8, retry_delay: 0.25 }";
const WARNING = 'host key checking is OFF';
const count = (text: string, word: string) => text.split(word).length - 1;

/** `fraisier <args>` in `cwd`; a generous timeout, as one run can take a minute on a loaded machine. */
function fraisier(cwd: string, ...args: string[]): Promise<Run> {
  return run(process.execPath, [bin, ...args], { cwd, timeoutMs: 600_000 });
}

function rsaKey(name: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', name, '-f', join(dir, name)], { stdio: 'ignore' });
  return readFileSync(join(dir, `${name}.pub`), 'utf8')
    .split(' ')
    .slice(0, 2)
    .join(' ');
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  address = env.hosts[0]!.address;
  dir = mkdtempSync(join(tmpdir(), 'fraisier-hostkeys-'));
  const hostKey = rsaKey('host_rsa');
  const wrongKey = rsaKey('wrong_rsa');
  // h1's own sshd_config, on another port, with an RSA host key only
  const config = readFileSync(join(env.labDir, 'hosts', 'h1', 'sshd_config'), 'utf8')
    .replace(/^Port .*$/m, `Port ${PORT}`)
    .replace(/^HostKey .*$/m, `HostKey ${join(dir, 'host_rsa')}`)
    .replace(/^PidFile .*$/m, `PidFile ${PIDFILE}`);
  writeFileSync(join(dir, 'sshd_config'), config);
  // (an sshd left by an interrupted earlier run of this file is stopped first, by its pid file)
  const started = await hostExec(
    env,
    'h1',
    `[ -s ${PIDFILE} ] && kill "$(cat ${PIDFILE})" && sleep 0.5; rm -f ${PIDFILE}; /usr/sbin/sshd -f ${dir}/sshd_config -E ${dir}/sshd.log && for i in $(seq 100); do [ -s ${PIDFILE} ] && exit 0; sleep 0.1; done; exit 1`,
  );
  assert.is(started.code, 0, `${started.stderr}${readFileSync(join(dir, 'sshd.log'), 'utf8')}`);
  writeFileSync(join(dir, 'known_hosts'), `[${address}]:${PORT} ${hostKey}\n`);
  writeFileSync(join(dir, 'known_hosts_wrong'), `[${address}]:${PORT} ${wrongKey}\n`);
  const block = (alias: string, hostName: string, port: number, known: string, strict: string) =>
    `Host ${alias}\n  HostName ${hostName}\n  Port ${port}\n  User root\n  IdentityFile ${env.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${known}\n  StrictHostKeyChecking ${strict}\n  LogLevel ERROR\n\n`;
  writeFileSync(
    join(dir, 'ssh_config'),
    block('rsa-h1', address, PORT, join(dir, 'known_hosts'), 'yes') +
      block('wrong-rsa-h1', address, PORT, join(dir, 'known_hosts_wrong'), 'yes') +
      env.hosts.map((h) => block(`loose-${h.name}`, h.address, 22, env.knownHosts, 'no')).join(''),
  );
  ws = workspace(`ssh:
  config: ${join(dir, 'ssh_config')}
fraises:
  app:
    git_repo: ${env.appRepo}
    branch: main
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [rsa-h1]
        supervisor_program: app
        health_check: ${health}
      wrongkey:
        provider: bare_metal
        instances: [wrong-rsa-h1]
        supervisor_program: app
      loose:
        provider: bare_metal
        instances: [loose-h1, loose-h2, loose-h3]
        supervisor_program: app
`);
});

test.after(async () => {
  await hostExec(env, 'h1', `[ -s ${PIDFILE} ] && kill "$(cat ${PIDFILE})"; true`);
  await resetHosts(env);
});

test('the extra sshd offers only an RSA host key, and OpenSSH connects to it', () => {
  const scan = execFileSync('ssh-keyscan', ['-p', String(PORT), '-T', '10', address], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const types = scan
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(' ')[1]);
  assert.equal([...new Set(types)], ['ssh-rsa']);
  const out = execFileSync('ssh', ['-F', join(dir, 'ssh_config'), 'rsa-h1', 'hostname'], { encoding: 'utf8' });
  assert.is(out.trim(), 'h1');
});

test('deploy and status to a host whose only host key is RSA (ssh-rsa in known_hosts)', async () => {
  const d = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(d.code, 0, d.out);
  assert.not.match(d.out, 'no matching host key format');
  const h1 = await hostState(env, 'h1');
  assert.is(h1.current, 'v1.0.0');
  assert.is(h1.serving, 'v1.0.0');
  const s = await fraisier(ws, 'status', 'app', 'production');
  assert.is(s.code, 0, s.out);
  assert.match(s.stdout, /rsa-h1\s+v1\.0\.0/);
  assert.not.match(s.out, WARNING);
});

test('a wrong RSA key in known_hosts is refused: E_HOST_KEY, nothing changes', async () => {
  const d = await fraisier(ws, 'deploy', 'app', 'wrongkey', '--version', 'v1.1.0');
  assert.is(d.code, 1, d.out);
  assert.match(d.stderr, /error\[E_HOST_KEY\] .*host key verification failed: the host key of wrong-rsa-h1 \(10\.\d+\.0\.11:2222\) has CHANGED/);
  const s = await fraisier(ws, 'status', 'app', 'wrongkey');
  assert.is(s.code, 1, s.out);
  assert.match(s.out, 'has CHANGED');
  assert.is((await hostState(env, 'h1')).current, 'v1.0.0');
});

test('StrictHostKeyChecking no in the SSH config: one warning per run, naming the file', async () => {
  for (const args of [
    ['status', 'app', 'loose'],
    ['deploy', 'app', 'loose', '--version', 'v1.0.0', '--dry-run'],
  ]) {
    const r = await fraisier(ws, ...args);
    assert.is(count(r.stderr, WARNING), 1, `${args.join(' ')}:\n${r.out}`);
    assert.match(r.stderr, `${WARNING} (StrictHostKeyChecking no in ${join(dir, 'ssh_config')}; first seen for loose-h`);
    assert.match(r.stderr, 'any host key is accepted');
    assert.not.match(r.stdout, WARNING);
  }
});

test('strict_host_key_checking: false in fraises.yaml: one warning per run, naming the key', async () => {
  const yaml = workspace(labYaml(env, { sshExtra: '  strict_host_key_checking: false\n' }));
  const r = await fraisier(yaml, 'status', 'app', 'production', '--json');
  assert.is(count(r.stderr, WARNING), 1, r.out);
  assert.match(r.stderr, `${WARNING} (ssh.strict_host_key_checking: false`);
  assert.not.match(r.stdout, WARNING);
  assert.is(JSON.parse(r.stdout).targets.length, 3);
});

test.run();
