/**
 * End to end: nginx on a separate load-balancer host reached over SSH (lab host h3, the same executor as
 * the deploy), in front of h1 and h2. A rolling deploy under load drains and restores each backend by
 * rewriting the file on h3, `nginx -t` and a reload there; zero non-2xx. The nginx on h3 is started by
 * this test (daemonized inside h3) and stopped by the pid in its pid file.
 * Traffic: the test → h3's lab address :8080 → h1/h2's lab addresses :8000.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEntry } from '../../core/log.js';
import { nginxLb, renderUpstream } from '../../plugins/nginx-lb.js';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { hostState, lab, resetHosts } from './helpers.js';
import { labApp, loadLines, sample, sleep, startTraffic, summary } from './traffic.js';

let env: LabEnv;
let lbAddress: string;
const LB_PORT = 8080;
const servers: Record<string, string> = {};

async function onLb(cmd: string): Promise<string> {
  const r = await hostExec(env, 'h3', cmd);
  if (r.code !== 0) throw new Error(`h3: ${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const stateDir = mkdtempSync(join(tmpdir(), 'fraisier-lbremote-'));

function deploy(version: string, entries: LogEntry[]) {
  const plugin = nginxLb({
    file: '/srv/lb/upstream.conf',
    servers,
    host: 'h3',
    ssh: { configFile: env.sshConfig },
    nginxArgs: ['-p', '/srv/lb', '-c', '/srv/lb/nginx.conf'],
  });
  return labApp(env, stateDir, { hosts: ['h1', 'h2'], plugins: [plugin], entries }).deploy(version);
}

test.before(async () => {
  env = await lab();
  for (const h of env.hosts.slice(0, 2)) servers[h.name] = `${h.address}:${env.appPort}`;
  lbAddress = env.hosts[2]!.address;
  await resetHosts(env);
  const conf = `user root;
worker_processes 2;
pid /srv/lb/nginx.pid;
error_log /srv/lb/error.log notice;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path /srv/lb/tmp/body;
  proxy_temp_path /srv/lb/tmp/proxy;
  fastcgi_temp_path /srv/lb/tmp/fastcgi;
  uwsgi_temp_path /srv/lb/tmp/uwsgi;
  scgi_temp_path /srv/lb/tmp/scgi;
  include /srv/lb/upstream.conf;
  server {
    listen ${lbAddress}:${LB_PORT};
    location / { proxy_pass http://app; proxy_next_upstream error timeout http_502 http_503; proxy_connect_timeout 2s; }
  }
}
`;
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  await onLb(
    `mkdir -p /srv/lb/tmp && echo ${b64(conf)} | base64 -d > /srv/lb/nginx.conf && echo ${b64(renderUpstream('app', servers))} | base64 -d > /srv/lb/upstream.conf`,
  );
});

test.after(async () => {
  await hostExec(env, 'h3', '[ -s /srv/lb/nginx.pid ] && kill -TERM "$(cat /srv/lb/nginx.pid)"; sleep 0.5; rm -rf /srv/lb');
});

test('rolling deploy behind nginx on an LB host over SSH, under load: zero non-2xx, the file and reloads happen on h3', async () => {
  // nginx must run for the plugin's preflight: start it on h3 (it daemonizes there)
  await onLb('nginx -p /srv/lb -c /srv/lb/nginx.conf');
  const first: LogEntry[] = [];
  const r1 = await deploy('v1.0.0', first);
  assert.is(r1.status, 'succeeded', `${JSON.stringify(r1.error)}\n${first.map((e) => e.message).join('\n')}`);
  assert.equal(await sample(LB_PORT, 10, lbAddress), { '200 v1.0.0': 10 });

  const workersBefore = await onLb('cat /proc/"$(cat /srv/lb/nginx.pid)"/task/*/children');
  const entries: LogEntry[] = [];
  const traffic = startTraffic(LB_PORT, lbAddress);
  await sleep(300);
  const r = await deploy('v1.1.0', entries);
  await sleep(300);
  const { fresh: load, keepAlive } = await traffic.stop();
  console.log(
    `  [nginx on LB host h3] rolling v1.0.0 → v1.1.0 under load\n${loadLines('nginx-lb on an LB host over SSH: rolling deploy, drain reload', { fresh: load, keepAlive })}`,
  );
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  assert.ok(load.total > 50, `enough requests (${load.total})`);
  assert.equal(load.non2xx, {}, summary(load));
  assert.equal(load.socketErrors, {}, summary(load));
  assert.equal(keepAlive.non2xx, {}, keepAlive.raw); // socket errors printed: each reload may cost one (docs/nginx.md)
  assert.ok(
    entries.some((e) => e.target === 'h1' && /h1 marked down; reloaded, drained/.test(e.message)),
    'h1 drained through nginx on h3',
  );
  assert.not.equal(await onLb('cat /proc/"$(cat /srv/lb/nginx.pid)"/task/*/children'), workersBefore, 'nginx on h3 was reloaded');
  const file = await onLb('cat /srv/lb/upstream.conf');
  assert.match(file, `server ${servers['h1']}; # h1`);
  assert.not.match(file, ' down');
  assert.equal(await sample(LB_PORT, 10, lbAddress), { '200 v1.1.0': 10 });
  assert.is((await hostState(env, 'h1')).serving, 'v1.1.0');
});

test.run();
