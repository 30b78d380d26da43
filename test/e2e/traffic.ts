/**
 * Traffic for the end-to-end tests: a real nginx 1.22 in the foreground (started and stopped by pid by
 * the test), and two bounded HTTP load generators run side by side in every load scenario:
 * - new connection per request (Node, `agent: false`): what a client with `Connection: close` sees;
 * - keep-alive (wrk -c8, wrk's default HTTP/1.1 persistent connections, paced by a Lua `delay()`): what
 *   browsers and connection-pooling clients see. A proxy that closes an idle keep-alive connection while
 *   the client is sending on it (nginx retiring its workers on a reload) shows up here as a socket error.
 * Each scenario prints one `LOAD | <scenario> | <client> | requests N | non-2xx N | socket errors N ...`
 * line per client. Client traffic goes to 127.0.0.1 or the lab's own addresses only.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeployApp } from '../../core/app.js';
import { http as httpCheck } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import type { Plugin, Strategy } from '../../core/types.js';
import { bareMetal, type BareMetalOptions } from '../../providers/bare-metal.js';
import { rolling } from '../../strategies/rolling.js';
import { parseServersState } from '../../plugins/haproxy-lb.js';
import { renderUpstream } from '../../plugins/nginx-lb.js';
import type { LabEnv } from '../lab/lab.js';

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

/**
 * The sample app's own counters on one host, from its /metrics: the GET / answers so far (every status
 * code) and the release it runs. Retried (20 times, 100 ms apart) while the app restarts.
 */
export async function appCounters(address: string, port: number): Promise<{ requests: number; version: string }> {
  for (let attempt = 0; ; attempt++) {
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: address, port, path: '/metrics', agent: false, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    }).catch((e: Error) => (attempt < 20 ? null : Promise.reject(e)));
    if (text === null) {
      await sleep(100); // the app is restarting
      continue;
    }
    let requests = 0;
    for (const m of text.matchAll(/^http_requests_total\{code="\d+",path="\/"\} (\d+)$/gm)) requests += Number(m[1]);
    return { requests, version: /^app_version_info\{version="([^"]+)"\}/m.exec(text)?.[1] ?? '?' };
  }
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

/** What wrk saw on its keep-alive connections. */
export interface KeepAliveResult {
  requests: number;
  /** Answers outside 2xx, by `HTTP <status>`. */
  non2xx: Record<string, number>;
  /** wrk's socket error counters (connect, read, write, timeout), only the non-zero ones. */
  socketErrors: Record<string, number>;
  /** 2xx answers by body (the release that answered). */
  versions: Record<string, number>;
  /** wrk's own output, for failure messages. */
  raw: string;
}

export interface KeepAliveLoad {
  stop(): Promise<KeepAliveResult>;
}

/** wrk script: a pause between requests on each connection, answers counted by body, one parseable summary. */
const WRK_LUA = `local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {}; pause = tonumber(args[1]) or 20 end
function delay() return pause end
function response(status, headers, body)
  local k
  if status >= 200 and status < 300 then k = (body or ""):gsub("%s+$", "") else k = "HTTP " .. status end
  counts[k] = (counts[k] or 0) + 1
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FRAISIER requests=%d connect=%d read=%d write=%d timeout=%d\\n", summary.requests, e.connect, e.read, e.write, e.timeout))
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do io.write(string.format("FRAISIER answer %d %s\\n", v, k)) end
  end
end
`;

/**
 * Keep-alive load with wrk: `connections` persistent connections (one thread), each sending a GET every
 * `pauseMs` after its previous answer, until stopped (SIGINT makes wrk print its summary) or `maxSeconds`.
 */
export function startKeepAliveLoad(port: number, host = '127.0.0.1', connections = 8, pauseMs = 50, maxSeconds = 600): KeepAliveLoad {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-wrk-'));
  const script = join(dir, 'load.lua');
  writeFileSync(script, WRK_LUA);
  const child = spawn(
    'wrk',
    ['-t1', `-c${connections}`, `-d${maxSeconds}s`, '--timeout', '10s', '-s', script, `http://${host}:${port}/`, '--', String(pauseMs)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGINT');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      const m = /FRAISIER requests=(\d+) connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+)/.exec(out);
      if (!m) throw new Error(`wrk printed no summary:\n${out}`);
      const socketErrors: Record<string, number> = {};
      (['connect', 'read', 'write', 'timeout'] as const).forEach((k, i) => {
        const n = Number(m[i + 2]);
        if (n > 0) socketErrors[k] = n;
      });
      const non2xx: Record<string, number> = {};
      const versions: Record<string, number> = {};
      for (const a of out.matchAll(/^FRAISIER answer (\d+) (.*)$/gm)) {
        if (a[2]!.startsWith('HTTP ')) non2xx[a[2]!] = Number(a[1]);
        else versions[a[2]!] = Number(a[1]);
      }
      return { requests: Number(m[1]), non2xx, socketErrors, versions, raw: out };
    },
  };
}

/** Both kinds of client at once: four loops of new connections, and wrk's eight keep-alive connections (a request every 50 ms each). */
export interface Traffic {
  fresh: Load;
  stop(): Promise<{ fresh: Load; keepAlive: KeepAliveResult }>;
}

export function startTraffic(port: number, host = '127.0.0.1', loops = 4): Traffic {
  // Bounds generous enough for a deployment on a loaded machine (minutes), low enough to stop a runaway.
  const fresh = startLoad(port, loops, 100_000, 600_000, host);
  const keepAlive = startKeepAliveLoad(port, host);
  return {
    fresh,
    async stop() {
      const [f, k] = await Promise.all([fresh.stop(), keepAlive.stop()]);
      return { fresh: f, keepAlive: k };
    },
  };
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/**
 * The two lines a load scenario prints (one per client), for the lead's table:
 * `LOAD | <scenario> | <client> | requests N | non-2xx N | socket errors N {...} | versions {...}`.
 */
export function loadLines(scenario: string, r: { fresh: Load; keepAlive: KeepAliveResult }): string {
  const line = (client: string, requests: number, non2xx: Record<string, number>, errors: Record<string, number>, versions: Record<string, number>) =>
    `  LOAD | ${scenario} | ${client} | requests ${requests} | non-2xx ${total(non2xx)}${total(non2xx) ? ` ${JSON.stringify(non2xx)}` : ''} | socket errors ${total(errors)}${total(errors) ? ` ${JSON.stringify(errors)}` : ''} | versions ${JSON.stringify(versions)}`;
  return [
    line('new connection per request', r.fresh.total, r.fresh.non2xx, r.fresh.socketErrors, r.fresh.versions),
    line('keep-alive (wrk -c8)', r.keepAlive.requests, r.keepAlive.non2xx, r.keepAlive.socketErrors, r.keepAlive.versions),
  ].join('\n');
}

/** Total socket errors of a keep-alive run. */
export const socketErrorCount = (k: KeepAliveResult) => total(k.socketErrors);

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
      add_header X-Fraisier-Upstream $upstream_addr always;
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

/** A private HAProxy: its own directory, config, admin socket (level admin) and pid, on a free loopback port. */
export interface Haproxy {
  dir: string;
  port: number;
  socket: string;
  conf: string;
  /** Runs one runtime-API line on the admin socket and returns the answer. */
  cli(line: string): string;
  /**
   * Resolves once HAProxy's own health checks (`check inter 1s`: 3 failures mark a server down, 2
   * successes up again) see each of `servers` of backend `name` running; throws after `timeoutMs`.
   * HAProxy starts before the lab's apps do, so a server may still be down when a test begins.
   */
  running(name: string, servers: readonly string[], timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The haproxy.cfg the docs ask for (docs/haproxy.md): an admin socket, HTTP mode with keep-alive on both
 * sides, `retries` + `option redispatch`, and one backend `name` with a server per target, named like it.
 */
export function haproxyConfig(dir: string, port: number, name: string, servers: Record<string, string>, bind = '127.0.0.1'): string {
  return `global
    stats socket ${dir}/admin.sock mode 600 level admin
    stats timeout 30s
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    retries 3
    retry-on conn-failure empty-response
    option redispatch
frontend web
    bind ${bind}:${port}
    default_backend ${name}
backend ${name}
    balance roundrobin
    http-response set-header X-Fraisier-Server %s
${Object.entries(servers)
  .map(([t, a]) => `    server ${t} ${a} check inter 1s`)
  .join('\n')}
`;
}

/** Starts HAProxy 2.6 in the foreground (`-db`) in front of `servers`, backend `name`; stopped by pid. */
export async function startHaproxy(name: string, servers: Record<string, string>): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-haproxy-'));
  const port = await freePort();
  const conf = join(dir, 'haproxy.cfg');
  const socket = join(dir, 'admin.sock');
  writeFileSync(conf, haproxyConfig(dir, port, name, servers));
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited at start: ${stderr}`);
    const r = await get(port);
    if (!('error' in r)) break; // any answer: 503 while the lab's apps are stopped
    if (i > 100) throw new Error(`haproxy did not answer on 127.0.0.1:${port}: ${JSON.stringify(r)} ${stderr}`);
    await sleep(100);
  }
  const cli = (line: string) => execFileSync('socat', ['-t', '5', 'stdio', `UNIX-CONNECT:${socket}`], { input: `${line}\n`, encoding: 'utf8' });
  return {
    dir,
    port,
    socket,
    conf,
    cli,
    async running(backend, names, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const state = parseServersState(cli(`show servers state ${backend}`));
        const down = names.filter((n) => state.find((x) => x.name === n)?.op !== 2);
        if (down.length === 0) return;
        if (Date.now() > until) throw new Error(`haproxy: ${down.join(', ')} still not running after ${timeoutMs} ms: ${JSON.stringify(state)}`);
        await sleep(200);
      }
    },
    async stop() {
      if (child.pid && child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The lab deployment every load-balancer test uses: fraise `app`, environment `production`, the lab's three
 * hosts (git source, supervisor program `app`), the app's /health check, rolling one at a time unless
 * `strategy` says otherwise, and `plugins` (the LB plugin under test). State in `dir`/state.db.
 */
export function labApp(
  env: LabEnv,
  dir: string,
  options: {
    plugins?: Plugin[];
    strategy?: Strategy;
    hosts?: string[];
    service?: BareMetalOptions['service'];
    ssh?: BareMetalOptions['ssh'];
    entries?: LogEntry[];
  } = {},
) {
  const entries = options.entries ?? [];
  const deployApp = new DeployApp(
    {
      name: 'app',
      state: { path: join(dir, 'state.db') },
      environments: {
        production: {
          provider: bareMetal({
            hosts: options.hosts ?? ['h1', 'h2', 'h3'],
            appPath: '/srv/app',
            source: { type: 'git', repo: env.appRepo },
            service: options.service ?? { type: 'supervisor', program: 'app' },
            ssh: options.ssh ?? { configFile: env.sshConfig },
          }),
          strategy: options.strategy ?? rolling({ batchSize: 1 }),
          health: { checks: [httpCheck({ url: 'http://localhost:8000/health', expectBody: 'ok' })], retries: 10, retryDelay: '250ms', timeout: '2s' },
          plugins: options.plugins ?? [],
        },
      },
    },
    dir,
  );
  return {
    deploy: (version: string) => deployApp.deploy('production', { version }, { sinks: [memorySink(entries)], handleSignals: false }),
    entries,
    app: deployApp,
  };
}

/** Which backend answered `n` GETs, by the LB's response header; failures (socket errors, non-2xx) apart. */
export interface Split {
  by: Record<string, number>;
  failed: Record<string, number>;
  total: number;
}

/**
 * Sends `n` GETs to 127.0.0.1:`port`, four at a time, on new connections (`keepAlive: false`) or on four
 * persistent ones, and counts the backend that answered from `header` (`X-Fraisier-Upstream` from the
 * test nginx: the last address tried, mapped back to a name with `names`; `X-Fraisier-Server` from the
 * test HAProxy: the server's name).
 */
export async function split(port: number, n: number, header: string, keepAlive: boolean, names: Record<string, string> = {}): Promise<Split> {
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 4 }) : false;
  const out: Split = { by: {}, failed: {}, total: 0 };
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          const raw = String(res.headers[header.toLowerCase()] ?? '?')
            .split(',')
            .pop()!
            .trim();
          const key = res.statusCode && res.statusCode >= 200 && res.statusCode < 300 ? (names[raw] ?? raw) : null;
          if (key) out.by[key] = (out.by[key] ?? 0) + 1;
          else out.failed[`HTTP ${res.statusCode}`] = (out.failed[`HTTP ${res.statusCode}`] ?? 0) + 1;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        const k = (e as NodeJS.ErrnoException).code ?? e.message;
        out.failed[k] = (out.failed[k] ?? 0) + 1;
        resolve();
      });
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n) {
        next++;
        out.total++;
        await one();
      }
    }),
  );
  if (agent) agent.destroy();
  return out;
}
