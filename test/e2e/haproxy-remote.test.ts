/**
 * End to end: HAProxy on a load-balancer host reached over SSH (lab host h3, in its own namespace; started
 * and stopped by this test by pid), in front of h1 and h2. The haproxy-lb plugin talks to its admin socket
 * through the SSH executor (socat on h3). A rolling deploy under keep-alive and new-connection load must see
 * zero non-2xx and zero socket errors, and HAProxy is never reloaded.
 * Traffic: the lab's own addresses only (clients → h3:8080, HAProxy → h1/h2:8000).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEntry } from '../../core/log.js';
import { haproxyLb } from '../../plugins/haproxy-lb.js';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { hostState, lab, resetHosts } from './helpers.js';
import { haproxyConfig, labApp, loadLines, sample, sleep, socketErrorCount, startTraffic } from './traffic.js';

let env: LabEnv;
let lbAddress: string;
const LB_PORT = 8080;
const servers: Record<string, string> = {};
const stateDir = mkdtempSync(join(tmpdir(), 'fraisier-haproxy-remote-'));

async function onLb(cmd: string): Promise<string> {
  const r = await hostExec(env, 'h3', cmd);
  if (r.code !== 0) throw new Error(`h3: ${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function deploy(version: string, entries: LogEntry[]) {
  const plugin = haproxyLb({ socket: '/srv/lb/admin.sock', host: 'h3', ssh: { configFile: env.sshConfig } });
  return labApp(env, stateDir, { hosts: ['h1', 'h2'], plugins: [plugin], entries }).deploy(version);
}

test.before(async () => {
  env = await lab();
  for (const h of env.hosts.slice(0, 2)) servers[h.name] = `${h.address}:${env.appPort}`;
  lbAddress = env.hosts[2]!.address;
  await resetHosts(env);
  const b64 = Buffer.from(haproxyConfig('/srv/lb', LB_PORT, 'app', servers, lbAddress)).toString('base64');
  // HAProxy daemonizes on h3 (-D) with its pid file in /srv/lb; stopped by that pid in test.after.
  await onLb(`mkdir -p /srv/lb && echo ${b64} | base64 -d > /srv/lb/haproxy.cfg && haproxy -D -f /srv/lb/haproxy.cfg -p /srv/lb/haproxy.pid`);
});

test.after(async () => {
  await hostExec(env, 'h3', '[ -s /srv/lb/haproxy.pid ] && kill -TERM "$(cat /srv/lb/haproxy.pid)"; sleep 0.5; rm -rf /srv/lb');
});

test('rolling deploy behind HAProxy on an LB host over SSH, under both loads: zero non-2xx, zero socket errors, no reload', async () => {
  const first: LogEntry[] = [];
  const r1 = await deploy('v1.0.0', first);
  assert.is(r1.status, 'succeeded', `${JSON.stringify(r1.error)}\n${first.map((e) => e.message).join('\n')}`);
  assert.equal(await sample(LB_PORT, 10, lbAddress), { '200 v1.0.0': 10 });
  const pid = (await onLb('cat /srv/lb/haproxy.pid')).trim();

  const entries: LogEntry[] = [];
  const traffic = startTraffic(LB_PORT, lbAddress);
  await sleep(500);
  const r = await deploy('v1.1.0', entries);
  await sleep(500);
  const load = await traffic.stop();
  console.log(`  [haproxy on LB host h3] rolling v1.0.0 → v1.1.0\n${loadLines('haproxy-lb on an LB host over SSH: rolling deploy with drain', load)}`);
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  assert.ok(load.fresh.total > 50 && load.keepAlive.requests > 50, `enough requests (${load.fresh.total}, ${load.keepAlive.requests})`);
  assert.equal(load.fresh.non2xx, {});
  assert.equal(load.fresh.socketErrors, {});
  assert.equal(load.keepAlive.non2xx, {}, load.keepAlive.raw);
  assert.is(socketErrorCount(load.keepAlive), 0, load.keepAlive.raw);
  for (const h of ['h1', 'h2'])
    assert.ok(
      entries.some((e) => e.target === h && /haproxy app\/\w+: (drained in \d+ ms \(no reload\)|\d+ session\(s\) still open)/.test(e.message)),
      `${h} drained through h3's socket`,
    );
  assert.match(await onLb(`printf 'show servers state app\\n' | socat stdio UNIX-CONNECT:/srv/lb/admin.sock`), / h1 \S+ 2 0 /, 'h1 ready again');
  assert.is((await onLb('cat /srv/lb/haproxy.pid')).trim(), pid, 'the same HAProxy process');
  assert.equal(await sample(LB_PORT, 10, lbAddress), { '200 v1.1.0': 10 });
  assert.is((await hostState(env, 'h1')).serving, 'v1.1.0');
});

test.run();
