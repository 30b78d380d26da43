/**
 * Fault: the load-balancer host (nginx on h3, driven over SSH by nginx-lb) becomes unreachable mid-rollout:
 * its network is cut while h2 activates (h2 already drained on h3), then restored while the deployer
 * retries. The failure names the lost connection to h3; h1 and h2 are rolled back and put back in the
 * upstream on h3; a re-run succeeds and nginx routes every request to the new release.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEntry } from '../../../core/log.js';
import { nginxLb, renderUpstream } from '../../../plugins/nginx-lb.js';
import { hostExec, type LabEnv } from '../../lab/lab.js';
import { hostState, lab, resetHosts } from '../helpers.js';
import { labApp, sample } from '../traffic.js';
import { faultLine, setNetwork, sleep, srvFile } from './host-faults.js';

let env: LabEnv;
let lbAddress: string;
const LB_PORT = 8080;
const servers: Record<string, string> = {};
const stateDir = mkdtempSync(join(tmpdir(), 'fraisier-fault-lb-'));

async function onLb(cmd: string): Promise<string> {
  const r = await hostExec(env, 'h3', cmd);
  if (r.code !== 0) throw new Error(`h3: ${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const lbApp = (entries: LogEntry[] = []) =>
  labApp(env, stateDir, {
    hosts: ['h1', 'h2'],
    service: { type: 'command', restart: 'if [ -f /srv/slow-activate ]; then touch /srv/activating; sleep 3; fi; supervisorctl restart app | grep -q started' },
    plugins: [
      nginxLb({
        file: '/srv/lb/upstream.conf',
        servers,
        host: 'h3',
        ssh: { configFile: env.sshConfig },
        nginxArgs: ['-p', '/srv/lb', '-c', '/srv/lb/nginx.conf'],
      }),
    ],
    entries,
  });
const app = () => lbApp().app;
const deploy = (version: string, entries: LogEntry[]) => lbApp(entries).deploy(version);
const text = (entries: LogEntry[]) => entries.map((e) => `${e.target ? `[${e.target}] ` : ''}${e.message}`).join('\n');

test.before(async () => {
  env = await lab();
  for (const h of env.hosts.slice(0, 2)) servers[h.name] = `${h.address}:${env.appPort}`;
  lbAddress = env.hosts[2]!.address;
  await resetHosts(env);
  const conf = `user root;
worker_processes 1;
pid /srv/lb/nginx.pid;
error_log /srv/lb/error.log notice;
events { worker_connections 256; }
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
  const b64 = (t: string) => Buffer.from(t).toString('base64');
  await onLb(
    `mkdir -p /srv/lb/tmp && echo ${b64(conf)} | base64 -d > /srv/lb/nginx.conf && echo ${b64(renderUpstream('app', servers))} | base64 -d > /srv/lb/upstream.conf && nginx -p /srv/lb -c /srv/lb/nginx.conf`,
  );
  const first: LogEntry[] = [];
  const r = await deploy('v1.0.0', first);
  assert.is(r.status, 'succeeded', text(first));
});

test.after(async () => {
  await setNetwork('h3', 'up').catch(() => {});
  rmSync(srvFile(env, 'h2', 'slow-activate'), { force: true });
  rmSync(srvFile(env, 'h2', 'activating'), { force: true });
  await hostExec(env, 'h3', '[ -s /srv/lb/nginx.pid ] && kill -TERM "$(cat /srv/lb/nginx.pid)"; sleep 0.5; rm -rf /srv/lb');
});

test('LB host h3 unreachable while h2 activates, back while the deployer retries: rolled back, upstream restored; re-run ok', async () => {
  const t0 = performance.now();
  writeFileSync(srvFile(env, 'h2', 'slow-activate'), '');
  const entries: LogEntry[] = [];
  const running = deploy('v1.1.0', entries);
  for (let i = 0; ; i++) {
    if ((await import('node:fs')).existsSync(srvFile(env, 'h2', 'activating'))) break;
    if (i > 2400) throw new Error(`h2 never activated:\n${text(entries)}`);
    await sleep(50);
  }
  await setNetwork('h3', 'down');
  for (let i = 0; !text(entries).includes('lost the SSH connection to h3'); i++) {
    if (i > 2400) throw new Error(`the lost LB connection was never reported:\n${text(entries)}`);
    await sleep(50);
  }
  await setNetwork('h3', 'up');
  const r = await running;
  const log = text(entries);
  assert.is(r.status, 'rolled_back', log);
  assert.is(r.error?.code, 'E_UNREACHABLE', log);
  assert.match(r.error?.message ?? '', /^lost the SSH connection to h3 during \S.*: \S/);
  assert.equal(
    r.targets.map((t) => t.status),
    ['rolled_back', 'rolled_back'],
    log,
  );
  for (const h of ['h1', 'h2']) assert.is((await hostState(env, h)).serving, 'v1.0.0');
  const file = await onLb('cat /srv/lb/upstream.conf');
  assert.not.match(file, ' down', 'both backends are back in the upstream on h3');
  assert.equal(await sample(LB_PORT, 10, lbAddress), { '200 v1.0.0': 10 });
  rmSync(srvFile(env, 'h2', 'slow-activate'), { force: true });
  const again: LogEntry[] = [];
  const r2 = await deploy('v1.1.0', again);
  assert.is(r2.status, 'succeeded', text(again));
  assert.equal(await sample(LB_PORT, 10, lbAddress), { '200 v1.1.0': 10 });
  const history = await app().history({ limit: 2 });
  assert.equal(
    history.map((d) => d.status),
    ['succeeded', 'rolled_back'],
    'history rows are terminal and truthful',
  );
  faultLine('LB host unreachable mid-rollout, restored', 'rolled_back, upstream restored on h3; re-run ok', true, 'released', t0);
});

test.run();
