/**
 * End to end: a real nginx 1.22 (foreground, started and stopped by this test) in front of the lab's three
 * hosts; a rolling deploy with the nginx-lb plugin under load must not let a single request fail.
 * Traffic: loopback (client → nginx) and the lab's own namespace addresses (nginx → the lab hosts' :8000).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeployApp } from '../../core/app.js';
import { http as httpCheck } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { bareMetal } from '../../providers/bare-metal.js';
import { rolling } from '../../strategies/rolling.js';
import { nginxLb, renderUpstream, type NginxLbOptions } from '../../plugins/nginx-lb.js';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, lab, resetHosts } from './helpers.js';

let env: LabEnv;
let dir: string;
let port: number;
let nginx: ChildProcess | null = null;
const conf = () => join(dir, 'nginx.conf');
const upstreamFile = () => join(dir, 'upstream.conf');
/** The lab hosts' app addresses (filled from the lab in `test.before`). */
const servers: Record<string, string> = {};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One GET through nginx: status and body, or the socket error. */
function get(): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

interface Load {
  total: number;
  ok: number;
  non2xx: Record<string, number>;
  socketErrors: Record<string, number>;
  versions: Record<string, number>;
  /** Hit the count or time bound before being stopped. */
  bounded: boolean;
  stop(): Promise<Load>;
}

/** 4 concurrent loops of GET through nginx until stopped, at most 20000 requests and 120 s. */
function startLoad(loops = 4, maxCount = 20_000, maxMs = 120_000): Load {
  let stopped = false;
  const started = Date.now();
  const load: Load = {
    total: 0,
    ok: 0,
    non2xx: {},
    socketErrors: {},
    versions: {},
    bounded: false,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      return load;
    },
  };
  const loop = async () => {
    while (!stopped) {
      if (load.total >= maxCount || Date.now() - started > maxMs) {
        load.bounded = true;
        return;
      }
      load.total++;
      const r = await get();
      if ('error' in r) load.socketErrors[r.error] = (load.socketErrors[r.error] ?? 0) + 1;
      else if (r.status >= 200 && r.status < 300) {
        load.ok++;
        load.versions[r.body] = (load.versions[r.body] ?? 0) + 1;
      } else load.non2xx[`${r.status} ${r.body.slice(0, 60)}`] = (load.non2xx[`${r.status} ${r.body.slice(0, 60)}`] ?? 0) + 1;
      await sleep(5);
    }
  };
  const workers = Array.from({ length: loops }, loop);
  return load;
}

function summary(l: Load): string {
  return `${l.total} requests: ${l.ok} 2xx, non-2xx ${JSON.stringify(l.non2xx)}, socket errors ${JSON.stringify(l.socketErrors)}, versions ${JSON.stringify(l.versions)}${l.bounded ? ' (stopped by the count/time bound)' : ''}`;
}

function app(nginxOptions: Partial<NginxLbOptions> = {}, entries: LogEntry[] = []) {
  const plugin = nginxLb({ file: upstreamFile(), servers, nginxArgs: ['-p', dir, '-c', conf()], drainTimeout: '5s', ...nginxOptions });
  const deployApp = new DeployApp(
    {
      name: 'app',
      state: { path: join(dir, 'state.db') },
      environments: {
        production: {
          provider: bareMetal({
            hosts: ['h1', 'h2', 'h3'],
            appPath: '/srv/app',
            source: { type: 'git', repo: env.appRepo },
            service: { type: 'supervisor', program: 'app' },
            ssh: { configFile: env.sshConfig },
          }),
          strategy: rolling({ batchSize: 1 }),
          health: { checks: [httpCheck({ url: 'http://localhost:8000/health', expectBody: 'ok' })], retries: 10, retryDelay: '250ms', timeout: '2s' },
          plugins: [plugin],
        },
      },
    },
    dir,
  );
  return { deploy: (version: string) => deployApp.deploy('production', { version }, { sinks: [memorySink(entries)], handleSignals: false }), entries, plugin };
}

function workers(): string[] {
  const master = readFileSync(join(dir, 'nginx.pid'), 'utf8').trim();
  return execFileSync('ps', ['-o', 'pid=', '--ppid', master], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).sort();
}

test.before(async () => {
  env = await lab();
  for (const h of env.hosts) servers[h.name] = `${h.address}:${env.appPort}`;
  await resetHosts(env);
  dir = mkdtempSync(join(tmpdir(), 'fraisier-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  port = await freePort();
  writeFileSync(upstreamFile(), renderUpstream('app', servers));
  writeFileSync(
    conf(),
    `worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include ${upstreamFile()};
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_connect_timeout 2s;
    }
  }
}
`,
  );
  nginx = spawn('nginx', ['-p', dir, '-c', conf(), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr!.on('data', (d) => (stderr += d));
  for (let i = 0; ; i++) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited at start: ${stderr}`);
    const r = await get();
    if (!('error' in r)) break;
    if (i > 100) throw new Error(`nginx did not answer on 127.0.0.1:${port}: ${stderr}`);
    await sleep(50);
  }
});

test.after(async () => {
  if (nginx?.pid && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx!.once('exit', r));
    process.kill(nginx.pid, 'SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (nginx.exitCode === null) process.kill(nginx.pid, 'SIGKILL');
  }
});

test('first deploy of v1.0.0 through nginx-lb', async () => {
  const { deploy, entries } = app();
  const r = await deploy('v1.0.0');
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.0.0');
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const g = await get();
    assert.ok(!('error' in g) && g.status === 200, JSON.stringify(g));
    if (!('error' in g)) seen.add(g.body);
  }
  assert.equal([...seen], ['v1.0.0']);
});

test('a rolling deploy to v1.1.0 under load: zero non-2xx; afterwards every response is v1.1.0', async () => {
  const { deploy, entries } = app();
  const load = startLoad();
  await sleep(300);
  const r = await deploy('v1.1.0');
  await sleep(300);
  await load.stop();
  console.log(`  [nginx e2e] rolling v1.0.0 → v1.1.0 under load: ${summary(load)}`);
  const drains = entries.filter((e) => /drained in|still busy/.test(e.message)).map((e) => `${e.target}: ${e.message}`);
  console.log(`  [nginx e2e] ${drains.join(' | ')}`);
  assert.is(r.status, 'succeeded', `${JSON.stringify(r.error)}\n${entries.map((e) => e.message).join('\n')}`);
  assert.ok(load.total > 100, `enough requests during the deploy (${load.total})`);
  assert.equal(load.non2xx, {}, `zero non-2xx: ${summary(load)}`);
  assert.ok((load.versions['v1.0.0'] ?? 0) > 0 && (load.versions['v1.1.0'] ?? 0) > 0, 'both versions served during the rollout');
  assert.ok(!readFileSync(upstreamFile(), 'utf8').includes(' down'), 'every server back up');
  const after: Record<string, number> = {};
  for (let i = 0; i < 30; i++) {
    const g = await get();
    const key = 'error' in g ? `error ${g.error}` : `${g.status} ${g.body}`;
    after[key] = (after[key] ?? 0) + 1;
  }
  assert.equal(after, { '200 v1.1.0': 30 });
});

test('an upstream nginx -t rejects fails the deploy with nginx\'s message and nginx keeps serving the old config', async () => {
  const before = readFileSync(upstreamFile(), 'utf8');
  const workersBefore = workers();
  const { deploy, entries } = app({ servers: { ...servers, h2: '127.0.0.1:0' } });
  const load = startLoad(2);
  const r = await deploy('v1.0.0');
  await load.stop();
  console.log(`  [nginx e2e] bad upstream under load: ${summary(load)}; deploy ${r.status}: ${r.error?.message.split('\n').join(' / ')}`);
  assert.is.not(r.status, 'succeeded');
  assert.is(r.error!.target, 'h1');
  assert.match(r.error!.message, /nginx -t rejected/);
  assert.match(r.error!.message, 'invalid port in upstream "127.0.0.1:0"');
  assert.is(readFileSync(upstreamFile(), 'utf8'), before, 'the previous upstream file is back');
  assert.equal(workers(), workersBefore, 'no reload happened: same nginx workers');
  assert.equal(load.non2xx, {}, summary(load));
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.1.0');
  for (let i = 0; i < 6; i++) {
    const g = await get();
    assert.equal(g, { status: 200, body: 'v1.1.0' });
  }
  assert.ok(entries.some((e) => /nginx -t rejected/.test(e.message)));
});

test('nginx not running: preDeploy fails with E_PREFLIGHT and nothing changes', async () => {
  const before = readFileSync(upstreamFile(), 'utf8');
  const { deploy } = app({ pidFile: join(dir, 'no-such.pid') });
  const r = await deploy('v1.0.0');
  assert.is(r.status, 'failed');
  assert.is(r.error!.code, 'E_PREFLIGHT');
  assert.match(r.error!.message, 'nginx is not running');
  assert.is(readFileSync(upstreamFile(), 'utf8'), before);
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.1.0');
});

test.run();
