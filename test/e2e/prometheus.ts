/**
 * A real Prometheus (Debian's /usr/bin/prometheus) for end-to-end tests: started on a free 127.0.0.1
 * port with a temp config and data dir, scraping the lab hosts' `/metrics` every second (labels:
 * `instance` = `10.x.0.y:8000`, `host` = `hN`), stopped by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { freePort } from './traffic.js';

export interface Prometheus {
  readonly url: string;
  readonly port: number;
  /** Instant query; the parsed JSON answer. */
  query(promql: string): Promise<{ status: string; data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } }>;
  stop(): Promise<void>;
}

export async function startPrometheus(env: LabEnv): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-prom-'));
  const port = await freePort();
  const targets = env.hosts.map((h) => `      - targets: ['${h.address}:${env.appPort}']\n        labels: { host: ${h.name} }`).join('\n');
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n${targets}\n`,
  );
  const child: ChildProcess = spawn(
    '/usr/bin/prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      '--storage.tsdb.retention.time=1h',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const query: Prometheus['query'] = async (promql) => (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)).json() as never;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`prometheus exited at start: ${stderr}`);
    try {
      if ((await fetch(`${url}/-/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 300) {
      await stop();
      throw new Error(`prometheus not ready after 60 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, port, query, stop };
}
