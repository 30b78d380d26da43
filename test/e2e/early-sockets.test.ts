/**
 * TCP first (core/early-sockets.ts): over an unchanged fraises.yaml, `fraisier` opens the TCP connections
 * to the command's hosts before it loads the CLI, and ssh2 takes them over for the handshake. On the lab:
 * - a deploy given the early socket succeeds;
 * - a host whose key changed is refused all the same (E_HOST_KEY, nothing run on it);
 * - a changed fraises.yaml (cache miss) opens nothing early and deploys as before;
 * - `fraisier status` makes one round trip per host, and prints the same with and without early
 *   connections. `FRAISIER_TRACE=ssh` says which sockets were taken and which commands ran.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { bin, hostState, lab, labYaml, resetHosts, run, workspace, type Run } from './helpers.js';

let env: LabEnv;
let ws: string;
let knownHosts: string;
let address: string;

/** `fraisier <args>` traced (FRAISIER_TRACE=ssh); a generous timeout for a loaded machine. */
function traced(...args: string[]): Promise<Run> {
  return run(process.execPath, [bin, ...args], { cwd: ws, env: { FRAISIER_TRACE: 'ssh' }, timeoutMs: 600_000 });
}

/** The CLI took h1's SSH handshake started before it loaded (core/early-ssh.ts). */
const tookHandshake = (r: Run) => r.stderr.includes('took the SSH handshake started early to h1');
/** h1's connection started before the CLI loaded: its whole handshake, or its TCP connection. */
const tookEarly = (r: Run) => tookHandshake(r) || r.stderr.includes(`took the TCP connection opened early to ${address}:22`);
/** The commands run on `host`, by their labels, from the trace. */
const ran = (r: Run, host: string) => [...r.stderr.matchAll(new RegExp(`^\\[trace\\] \\d+ ms ssh ${host}: run (.*)$`, 'gm'))].map((m) => m[1]);

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  address = env.hosts[0]!.address;
  // known_hosts of our own (named in fraises.yaml): a test changes h1's key in it, not in the SSH config
  knownHosts = join(mkdtempSync(join(tmpdir(), 'fraisier-early-')), 'known_hosts');
  copyFileSync(env.knownHosts, knownHosts);
  ws = workspace(
    labYaml(env, {
      sshExtra: `  known_hosts: ${knownHosts}\n`,
      extraEnvs: `      solo:
        instances: [h1]
        supervisor_program: app
        health_check: { url: "http://localhost:8000/health", timeout: 2, retries: 12, retry_delay: 0.25 }
`,
    }),
  );
  // the state directory (the config cache lives there): as after a first deploy
  mkdirSync(join(ws, '.fraisier'));
});

test.after(async () => {
  await resetHosts(env);
});

test('a deploy given the socket opened early succeeds', async () => {
  // the first run validates fraises.yaml and records where h1 is reached; nothing is opened early yet
  const first = await traced('deploy', 'app', 'solo', '--version', 'v1.0.0');
  assert.is(first.code, 0, first.out);
  assert.not.ok(tookEarly(first), first.stderr);
  const second = await traced('deploy', 'app', 'solo', '--version', 'v1.1.0');
  assert.is(second.code, 0, second.out);
  assert.match(second.stderr, 'TCP connections opened to 1 host(s) (config cache)');
  assert.match(second.stderr, 'SSH handshakes started to 1 host(s) (config cache)');
  assert.ok(tookHandshake(second), second.stderr);
  assert.match(second.stdout, 'Deployment successful! v1.0.0 → v1.1.0');
  const h1 = await hostState(env, 'h1');
  assert.is(h1.current, 'v1.1.0');
  assert.is(h1.serving, 'v1.1.0');
});

test('a host whose key changed is refused even with the socket opened early: E_HOST_KEY, nothing run', async () => {
  const good = readFileSync(knownHosts, 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-early-key-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')], { stdio: 'ignore' });
  const other = readFileSync(join(dir, 'other.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  // h1's line now holds another key (fraises.yaml and the SSH config are unchanged: the cache hits)
  writeFileSync(
    knownHosts,
    good
      .split('\n')
      .map((l) => (l.split(/[ ,]/).includes(address) ? `${l.split(' ')[0]} ${other}` : l))
      .join('\n'),
  );
  try {
    const r = await traced('deploy', 'app', 'solo', '--version', 'v1.0.0');
    // the handshake started before the CLI loaded met the changed key: the CLI reports it as ever
    assert.ok(tookHandshake(r), r.stderr);
    assert.is.not(r.code, 0, r.out);
    assert.match(r.out, 'E_HOST_KEY');
    assert.match(r.out, 'has CHANGED');
    assert.equal(ran(r, 'h1'), [], r.stderr);
    assert.is((await hostState(env, 'h1')).current, 'v1.1.0');
  } finally {
    writeFileSync(knownHosts, good);
  }
});

test('a changed fraises.yaml opens nothing early and deploys as before', async () => {
  appendFileSync(join(ws, 'fraises.yaml'), '# edited\n');
  const r = await traced('deploy', 'app', 'solo', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
  assert.not.match(r.stderr, 'TCP connections opened');
  assert.not.ok(tookEarly(r), r.stderr);
  assert.is((await hostState(env, 'h1')).current, 'v1.0.0');
  // validated again: the next command opens its connections early again
  const s = await traced('status', 'app', 'solo');
  assert.is(s.code, 0, s.out);
  assert.ok(tookEarly(s), s.stderr);
});

test('status: one round trip per host, the same output with and without early connections', async () => {
  await traced('status', 'app', 'production'); // records the three hosts' endpoints
  const s = await traced('status', 'app', 'production');
  assert.is(s.code, 0, s.out);
  assert.match(s.stderr, 'TCP connections opened to 3 host(s) (config cache)');
  for (const h of ['h1', 'h2', 'h3']) assert.equal(ran(s, h), ['preflight checks'], s.stderr);
  const plain = await run(process.execPath, [bin, 'status', 'app', 'production'], { cwd: ws, env: { FRAISIER_CONNECT_EARLY: '0' }, timeoutMs: 600_000 });
  assert.is(plain.code, 0, plain.out);
  assert.is(s.stdout, plain.stdout);
  assert.match(s.stdout, /h1\s+v1\.0\.0/);
});

test.run();
