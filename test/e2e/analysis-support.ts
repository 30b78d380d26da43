/** Shared set-up of the analysis e2e tests (analysis-probe, analysis-prometheus, analysis-nginx) and of bench/analysis.ts. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { createAnalysis } from '../../core/analysis/index.js';
import type { AnalysisContext, AnalysisOptions } from '../../core/analysis/types.js';
import type { Target } from '../../core/types.js';
import { renderUpstream } from '../../plugins/nginx-lb.js';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { freePort } from './traffic.js';

/**
 * An analysis context for app/production with one canary and one stable host, whose versions come from
 * `releases`; log lines go to `lines`. `executor` defaults to one that throws `noExecutor` (for the
 * sources that never use the hosts' connections).
 */
export function analysisContext(
  releases: Record<string, string>,
  hosts: { canary: string; stable: string },
  lines: string[],
  options: { executor?: AnalysisContext['executor']; noExecutor?: string; extra?: Partial<AnalysisContext> } = {},
): AnalysisContext {
  const log = (m: string) => lines.push(m);
  return {
    fraise: 'app',
    environment: 'production',
    log: { info: log, warn: log, error: log },
    signal: new AbortController().signal,
    now: () => Date.now(),
    executor:
      options.executor ??
      ((_t: Target) => {
        throw new Error(options.noExecutor ?? 'this source does not use the hosts');
      }),
    traffic: null,
    canary: [{ name: hosts.canary, kind: 'ssh' }],
    stable: [{ name: hosts.stable, kind: 'ssh' }],
    canaryVersion: releases[hosts.canary]!,
    stableVersion: releases[hosts.stable]!,
    ...options.extra,
  };
}

/** Runs an analysis until its first verdict (or `ms`), then stops it; returns the status and the log. */
export async function analyse(options: AnalysisOptions, context: (lines: string[]) => AnalysisContext, ms = 60_000) {
  const lines: string[] = [];
  const a = createAnalysis(options, context(lines));
  try {
    await a.start();
    return { status: await a.run(ms), lines };
  } finally {
    await a.stop();
  }
}

/** Puts each host on its release (a clone checked out at the tag, `current` switched, app restarted) and waits for /health. */
export async function putReleases(env: LabEnv, releases: Record<string, string>): Promise<void> {
  await Promise.all(
    Object.entries(releases).map(async ([host, v]) => {
      const r = await hostExec(
        env,
        host,
        `set -e; git clone -q ${env.appRepo} /srv/app/releases/${v}; git -C /srv/app/releases/${v} checkout -q ${v}; ln -sfn releases/${v} /srv/app/current; supervisorctl restart app >/dev/null; for i in $(seq 100); do curl -sf http://127.0.0.1:8000/health >/dev/null && exit 0; sleep 0.2; done; exit 1`,
        120_000,
      );
      assert.is(r.code, 0, `${host}: ${r.stderr}`);
    }),
  );
}

/** A private nginx started by {@link startLocalNginx}. */
export interface LocalNginx {
  /** Its directory (config, pid, logs, temp files); removed by `stop`. */
  dir: string;
  /** The free loopback port it listens on. */
  port: number;
  conf: string;
  /** The upstream file nginx-lb writes (`include`d by the config). */
  upstreamFile: string;
  /** Where nginx-lb's `accessLog` option should point (not written until the plugin asks for it). */
  accessLog: string;
  pidFile: string;
  /** `-p dir -c conf`, for nginx-lb's `nginxArgs`. */
  args: string[];
  /** SIGQUIT (graceful), SIGKILL after 10 s; then removes `dir`. */
  stop(): Promise<void>;
}

/**
 * A private nginx in the foreground (started and stopped by pid, never by name) on a free loopback port,
 * proxying `/` to upstream `app` = `servers` through an upstream file as nginx-lb writes it (the plugin
 * then adds the JSON access log with its `accessLog` option). `location` goes inside `location / { }`
 * after `proxy_pass`. Resolves once nginx wrote its pid file.
 */
export async function startLocalNginx(servers: Record<string, string>, options: { workers?: number; location?: string } = {}): Promise<LocalNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-nginx-log-'));
  mkdirSync(join(dir, 'tmp'));
  const port = await freePort();
  const upstreamFile = join(dir, 'upstream.conf');
  const conf = join(dir, 'nginx.conf');
  const pidFile = join(dir, 'nginx.pid');
  writeFileSync(upstreamFile, renderUpstream('app', servers));
  writeFileSync(
    conf,
    `worker_processes ${options.workers ?? 1};
pid ${pidFile};
error_log ${dir}/error.log notice;
events { worker_connections 1024; }
http {
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  include ${upstreamFile};
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; ${options.location ?? ''} }
  }
}
`,
  );
  const nginx: ChildProcess = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr!.on('data', (d) => (stderr += d));
  const stop = async () => {
    if (nginx.exitCode === null && nginx.pid) {
      const exited = new Promise((r) => nginx.once('exit', r));
      process.kill(nginx.pid, 'SIGQUIT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (nginx.exitCode === null) process.kill(nginx.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    try {
      if (nginx.exitCode !== null) throw new Error(`nginx exited at start: ${stderr}`);
      try {
        readFileSync(pidFile);
        break;
      } catch {
        if (i > 200) throw new Error(`nginx did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (err) {
      await stop();
      throw err;
    }
  }
  return { dir, port, conf, upstreamFile, accessLog: join(dir, 'access.json'), pidFile, args: ['-p', dir, '-c', conf], stop };
}
