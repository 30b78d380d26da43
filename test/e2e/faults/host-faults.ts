/**
 * Host faults for the fault-injection tests (test/e2e/faults/host-*.test.ts): cut and restore a lab host's
 * network, kill and restart its sshd, mount a small tmpfs over its app path, and a deploy run in the
 * background whose output can be waited on. Every process touched is one this lab started, by pid.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../../lab/lab.js';
import { hostExec } from '../../lab/lab.js';
import { allHosts, bin, fraisier, labYaml, type Run } from '../helpers.js';

/** The lab's namespace name for a host (`frlab-h2`, or `frlab204-h2` with FRAISIER_LAB_NET=204), as lab.sh names it. */
export function netnsOf(host: string): string {
  const net = process.env['FRAISIER_LAB_NET'] ?? '200';
  return `${net === '200' ? 'frlab' : `frlab${net}`}-h${host.replace(/^h/, '')}`;
}

/** Runs a local command; rejects with its stderr on a non-zero exit. */
export function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** `ip link set eth0 down|up` inside the host's network namespace: its network is cut or restored. */
export async function setNetwork(host: string, state: 'up' | 'down'): Promise<void> {
  await sh('ip', ['-n', netnsOf(host), 'link', 'set', 'eth0', state]);
}

/** The file under the lab dir that the host sees as `/srv/<rel>` (lab.sh bind-mounts hosts/hN/srv on /srv). */
export function srvFile(env: LabEnv, host: string, rel: string): string {
  return join(env.labDir, 'hosts', host, 'srv', rel);
}

function pidsFile(env: LabEnv, host: string): string {
  return join(env.labDir, 'hosts', host, 'pids');
}

function recordedPid(env: LabEnv, host: string, what: 'sshd' | 'supervisord' = 'sshd'): number {
  const line = readFileSync(pidsFile(env, host), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${what} `));
  if (!line) throw new Error(`${host}: no ${what} pid recorded in ${pidsFile(env, host)}`);
  return Number(line.split(' ')[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kills the host's sshd: the listener the lab recorded and every sshd session process in the host's
 * network namespace (so open connections drop at once), by pid.
 */
export async function killSshd(env: LabEnv, host: string): Promise<void> {
  const listener = recordedPid(env, host);
  const inNs = (await sh('ip', ['netns', 'pids', netnsOf(host)])).split('\n').map(Number).filter(Boolean);
  const sshds = inNs.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sshd';
    } catch {
      return false;
    }
  });
  for (const pid of new Set([listener, ...sshds])) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (let i = 0; i < 100 && alive(listener); i++) await sleep(50);
}

/**
 * Starts the host's sshd again inside its namespaces (entered through supervisord's pid, which holds
 * them), and records the new pid where lab.sh will stop it.
 */
export async function startSshd(env: LabEnv, host: string): Promise<void> {
  const sup = recordedPid(env, host, 'supervisord');
  const config = join(env.labDir, 'hosts', host, 'sshd_config');
  const child = spawn('nsenter', ['-t', String(sup), '-m', '-u', '-n', '/usr/sbin/sshd', '-D', '-e', '-f', config], { detached: true, stdio: 'ignore' });
  child.unref();
  const lines = readFileSync(pidsFile(env, host), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('sshd '));
  writeFileSync(pidsFile(env, host), [`sshd ${child.pid}`, ...lines].join('\n') + '\n');
  const address = env.hosts.find((h) => h.name === host)!.address;
  for (let i = 0; i < 200; i++) {
    const r = await sh('bash', ['-c', `timeout 0.5 bash -c ': </dev/tcp/${address}/22'`]).then(
      () => true,
      () => false,
    );
    if (r) return;
    await sleep(50);
  }
  throw new Error(`${host}: sshd did not come back`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A `fraisier` command running in the background, whose output can be waited on. */
export interface Background {
  /** stdout + stderr so far */
  readonly out: () => string;
  /** Resolves when the output matches (rejects if the command ends first). */
  waitFor(pattern: RegExp | string, what?: string): Promise<void>;
  /** Resolves when the host-side file exists (rejects if the command ends first). */
  waitForFile(file: string): Promise<void>;
  done: Promise<Run>;
}

export function background(cwd: string, ...args: string[]): Background {
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let ended = false;
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code) => {
      ended = true;
      resolve({ code: code ?? 1, stdout, stderr, out: stdout + stderr });
    }),
  );
  const poll = async (ok: () => boolean, what: string) => {
    for (;;) {
      if (ok()) return;
      if (ended) throw new Error(`the command ended before ${what}:\n${stdout}${stderr}`);
      await sleep(50);
    }
  };
  return {
    out: () => stdout + stderr,
    waitFor: (p, what) => poll(() => (typeof p === 'string' ? (stdout + stderr).includes(p) : p.test(stdout + stderr)), what ?? String(p)),
    waitForFile: (f) => poll(() => existsSync(f), f),
    done,
  };
}

/**
 * The checks every fault test ends with: each host serves a working release (the one given), the lock
 * is released, the last history row is terminal and says `status`. Returns the values the FAULT line prints.
 */
export async function assertRecovered(env: LabEnv, ws: string, serving: string[], status: string): Promise<{ consistent: boolean; lock: string }> {
  const hosts = await allHosts(env);
  assert.equal(
    hosts.map((h) => h.serving),
    serving,
    'every host serves a working release',
  );
  assert.equal(
    hosts.map((h) => h.current),
    serving,
    'current points at the release served',
  );
  const all = JSON.parse((await fraisier(ws, 'status-all', '--json')).stdout) as { lock: unknown }[];
  assert.is(all[0]!.lock, null, 'lock released');
  const last = JSON.parse((await fraisier(ws, 'history', '--json', '--limit', '1')).stdout) as { status: string }[];
  assert.is(last[0]!.status, status, 'the history row is terminal and truthful');
  return { consistent: new Set(serving).size === 1, lock: 'released' };
}

/** The line the lead collects: `FAULT | <fault> | <outcome> | hosts consistent: yes/no | lock: <state> | <wall time> s`. */
export function faultLine(fault: string, outcome: string, consistent: boolean, lock: string, startedMs: number): void {
  console.log(
    `FAULT | ${fault} | ${outcome} | hosts consistent: ${consistent ? 'yes' : 'no'} | lock: ${lock} | ${((performance.now() - startedMs) / 1000).toFixed(1)} s`,
  );
}

/** A fraises.yaml for the lab whose restart command waits on hosts holding `/srv/slow-activate`, so a fault can hit mid-activation. */
export function slowActivateYaml(env: LabEnv, extra = ''): string {
  return labYaml(env, {
    restartCommand: 'if [ -f /srv/slow-activate ]; then touch /srv/activating; sleep 4; fi; supervisorctl restart app | grep -q started',
    extraEnvs: extra,
  });
}

/** Stops the app and removes the markers a fault test left on a host. */
export async function clearMarkers(env: LabEnv): Promise<void> {
  for (const h of env.hosts) {
    for (const f of ['slow-activate', 'activating']) {
      try {
        (await import('node:fs')).rmSync(srvFile(env, h.name, f), { force: true });
      } catch {}
    }
  }
}

export { hostExec };

/** Runs a shell script inside the host's mount namespace (entered through supervisord's pid). */
export async function inHostMounts(env: LabEnv, host: string, script: string): Promise<string> {
  return sh('nsenter', ['-t', String(recordedPid(env, host, 'supervisord')), '-m', 'sh', '-c', script]);
}

/**
 * Disk full on one host: a small tmpfs mounted over /srv/app inside the host's mount namespace, holding
 * a copy of what was there (so the live release keeps running), then filled up to the last block.
 */
export async function fillDisk(env: LabEnv, host: string): Promise<void> {
  await inHostMounts(
    env,
    host,
    `set -e
rm -rf /run/fraisier-appcopy; cp -a /srv/app /run/fraisier-appcopy
mount -t tmpfs -o size=16m fraisier-full /srv/app
cp -a /run/fraisier-appcopy/. /srv/app/
rm -rf /run/fraisier-appcopy
dd if=/dev/zero of=/srv/app/.fill bs=64k 2>/dev/null || true
dd if=/dev/zero of=/srv/app/.fill2 bs=1k 2>/dev/null || true`,
  );
}

/** Unmounts the tmpfs of {@link fillDisk}: the host's own /srv/app is back (no-op if not mounted). */
export async function restoreDisk(env: LabEnv, host: string): Promise<void> {
  await inHostMounts(env, host, 'if grep -q " /srv/app tmpfs " /proc/mounts; then umount -l /srv/app; fi');
}
