/**
 * Traffic for the end-to-end tests: a real nginx 1.22 in the foreground (started and stopped by pid by
 * the test), and a bounded HTTP load generator. Client traffic goes to 127.0.0.1 only; nginx proxies to
 * the lab's namespace addresses.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderUpstream } from '../../plugins/nginx-lb.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export type Answer = { status: number; body: string } | { error: string };

/** One GET on host:port (a new connection; 127.0.0.1 or a lab address only): status and body, or the socket error. */
export function get(port: number, path = '/', host = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, agent: false, timeout: 10_000 }, (res) => {
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

/** `n` answers, counted by `status body` (or `error CODE`). */
export async function sample(port: number, n: number, host = '127.0.0.1'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const g = await get(port, '/', host);
    const key = 'error' in g ? `error ${g.error}` : `${g.status} ${g.body}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export interface Load {
  total: number;
  ok: number;
  non2xx: Record<string, number>;
  socketErrors: Record<string, number>;
  versions: Record<string, number>;
  /** Hit the count or time bound before being stopped. */
  bounded: boolean;
  stop(): Promise<Load>;
}

/** `loops` concurrent loops of GET through nginx until stopped, at most `maxCount` requests and `maxMs`. */
export function startLoad(port: number, loops = 4, maxCount = 20_000, maxMs = 120_000, host = '127.0.0.1'): Load {
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
      const r = await get(port, '/', host);
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

export function summary(l: Load): string {
  return `${l.total} requests: ${l.ok} 2xx, non-2xx ${JSON.stringify(l.non2xx)}, socket errors ${JSON.stringify(l.socketErrors)}, versions ${JSON.stringify(l.versions)}${l.bounded ? ' (stopped by the count/time bound)' : ''}`;
}

/** A private nginx: its own prefix directory, config, pid file and the generated upstream file it includes. */
export interface Nginx {
  dir: string;
  port: number;
  conf: string;
  upstreamFile: string;
  /** nginx arguments the plugin needs (`-p`, `-c`). */
  args: string[];
  /** The master's worker pids, sorted (a reload changes them). */
  workers(): string[];
  upstream(): string;
  stop(): Promise<void>;
}

/** Starts nginx in the foreground in front of `servers`, upstream `name`, on a free loopback port. */
export async function startNginx(name: string, servers: Record<string, string>): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const upstreamFile = join(dir, 'upstream.conf');
  writeFileSync(upstreamFile, renderUpstream(name, servers));
  writeFileSync(
    conf,
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
  include ${upstreamFile};
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${name};
      proxy_next_upstream error timeout http_502 http_503;
      proxy_connect_timeout 2s;
    }
  }
}
`,
  );
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited at start: ${stderr}`);
    const r = await get(port);
    if (!('error' in r)) break;
    if (i > 100) throw new Error(`nginx did not answer on 127.0.0.1:${port}: ${stderr}`);
    await sleep(50);
  }
  return {
    dir,
    port,
    conf,
    upstreamFile,
    args: ['-p', dir, '-c', conf],
    workers() {
      const master = readFileSync(join(dir, 'nginx.pid'), 'utf8').trim();
      return execFileSync('ps', ['-o', 'pid=', '--ppid', master], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).sort();
    },
    upstream: () => readFileSync(upstreamFile, 'utf8'),
    async stop() {
      if (child.pid && child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      }
    },
  };
}
