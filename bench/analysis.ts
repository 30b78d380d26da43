/**
 * Two figures of the canary analysis (issue 10, "Speed"):
 * - its own cost per interval: one round (error rate and p99 of the canary and the stable pool, so four
 *   metric queries) with the nginx source on a JSON access log that grew by 100,000 lines since the
 *   previous round (read from the file, as the source does when nginx runs on this machine, and, side by
 *   side, through an executor with `tail -c +N` in a local shell, and over SSH from a bench-lab host, which
 *   sees the file through the lab's shared /tmp: the source's real remote path; scanned, summarised per
 *   pool). Target: under 200 ms.
 * - the abort: a real nginx (loopback, started and stopped by pid) with nginx-lb's weights and JSON access
 *   log in front of three local HTTP servers on free loopback ports (the canary answers 5xx on 20 % of its
 *   requests), wrk through nginx; the analysis (nginx source) gives its failed verdict, then the weights
 *   the canary strategy's abort writes (canary 0, stable 1) go through nginx-lb's `setWeights`. Measured:
 *   from the verdict to `setWeights` resolved (nginx reloaded, new workers serving), and to the last request
 *   that reached the canary server. Target: under 1 s.
 * No Prometheus needed: `npx tsx bench/analysis.ts` (`BENCH_ANALYSIS_ABORT_RUNS`, default 5). The SSH path
 * uses host h1 of the bench lab (bench/lib.ts: `BENCH_LAB_NET`/`BENCH_LAB_DIR`), brought up for it (one host,
 * `BENCH_LAB_HOSTS`) unless it is up; without a lab (not root, no network namespaces) it is skipped, with
 * the reason printed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAnalysis } from '../core/analysis/index.js';
import type { Analysis, AnalysisContext } from '../core/analysis/types.js';
import type { Executor } from '../core/exec/executor.js';
import { LocalExecutor } from '../core/exec/local.js';
import type { SshOptions } from '../core/exec/ssh.js';
import { AccessLogStore, nginxSource } from '../plugins/metrics/nginx.js';
import { nginxLb } from '../plugins/nginx-lb.js';
import { type LocalNginx, startLocalNginx } from '../test/e2e/analysis-support.js';
import { get, sleep } from '../test/e2e/traffic.js';
import { fmtMs, type LabEnv, machine, median, runMain, saveResult, section, table, withLab } from './lib.js';

const LINES = Number(process.env['BENCH_ANALYSIS_LINES'] ?? 100_000);
const RUNS = Number(process.env['BENCH_ANALYSIS_RUNS'] ?? 7);
const ABORT_RUNS = Number(process.env['BENCH_ANALYSIS_ABORT_RUNS'] ?? 5);
const servers = { h1: '10.0.0.11:8000', h2: '10.0.0.12:8000', h3: '10.0.0.13:8000' };

/** `n` access-log lines over `spanMs` from `startMs`, the canary (h1) answering 5xx on every 5th of its requests. */
function lines(n: number, startMs: number, spanMs: number): string {
  const addrs = Object.values(servers);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const addr = addrs[i % 3]!;
    const status = addr === servers.h1 && i % 15 === 0 ? 500 : 200;
    const rt = (0.002 + ((i * 7919) % 100) / 1000).toFixed(3);
    const msec = ((startMs + (i / n) * spanMs) / 1000).toFixed(3);
    out.push(`{"msec":"${msec}","status":"${status}","upstream_addr":"${addr}","upstream_response_time":"${rt}","request_time":"${rt}"}`);
  }
  return `${out.join('\n')}\n`;
}

/** A local stand-in for one host: answers GET / (the canary: 500 on every 5th), records when each request arrived. */
function backend(name: string, failEvery: number): Promise<{ server: Server; address: string; arrivals: number[] }> {
  const arrivals: number[] = [];
  let n = 0;
  const server = createServer((_req, res) => {
    arrivals.push(performance.now());
    n++;
    const fail = failEvery > 0 && n % failEvery === 0;
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(`${fail ? 'error ' : ''}${name}\n`);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, address: `127.0.0.1:${(server.address() as { port: number }).port}`, arrivals })),
  );
}

interface AbortRun {
  /** Verdict → setWeights resolved (written, nginx -t, reloaded, new workers serving). */
  switched: number;
  /** Verdict → the last request that reached the canary server (0 when none arrived after the verdict). */
  lastCanary: number;
  /** Rounds until the verdict, and its line. */
  rounds: number;
  verdict: string;
}

/** From the failed verdict to all traffic on the stable servers, `runs` times (see the file comment). */
async function abortBench(runs: number): Promise<AbortRun[]> {
  if (runs === 0) return []; // BENCH_ANALYSIS_ABORT_RUNS=0: the round part only
  const hosts = { h1: await backend('h1', 5), h2: await backend('h2', 0), h3: await backend('h3', 0) };
  const local = Object.fromEntries(Object.entries(hosts).map(([h, b]) => [h, b.address]));
  let ngx: LocalNginx | undefined;
  let wrk: ChildProcess | undefined;
  const out: AbortRun[] = [];
  try {
    ngx = await startLocalNginx(local, { workers: 2 });
    const port = ngx.port;
    for (let i = 0; 'error' in (await get(port)); i++) {
      if (i > 200) throw new Error('nginx does not answer');
      await sleep(50);
    }
    const accessLog = ngx.accessLog;
    const lb = nginxLb({ file: ngx.upstreamFile, servers: local, upstream: 'app', accessLog, nginxArgs: ngx.args, pidFile: ngx.pidFile });
    wrk = spawn('wrk', ['-t1', '-c8', '-d600s', `http://127.0.0.1:${port}/`], { stdio: 'ignore' });
    const ctx = benchContext();
    for (let r = 0; r < runs; r++) {
      await lb.setWeights({ h1: 1, h2: 4, h3: 4 }); // the canary at 10 %, as a first step would set it
      const analysis = createAnalysis(
        {
          checks: [{ metric: 'error_rate', max: 5, minSamples: 20 }],
          sources: [nginxSource({ accessLog, servers: local })],
          interval: '500ms',
          inconclusiveLimit: 100,
        },
        ctx,
      );
      await analysis.start();
      try {
        const s = await analysis.run(60_000);
        const verdictAt = performance.now();
        if (s.phase !== 'failed') throw new Error(`expected a failed verdict, got ${s.phase}: ${s.reason}`);
        await lb.setWeights({ h1: 0, h2: 1, h3: 1 }); // what the canary's abort writes
        const switchedAt = performance.now();
        await sleep(1500); // requests still reaching the canary after this would be a failure of the switch
        const after = hosts.h1.arrivals.filter((t) => t > verdictAt);
        out.push({
          switched: switchedAt - verdictAt,
          lastCanary: after.length ? after[after.length - 1]! - verdictAt : 0,
          rounds: s.rounds.length,
          verdict: s.rounds.at(-1)!.results[0]!.message,
        });
      } finally {
        await analysis.stop();
      }
    }
  } finally {
    if (wrk?.pid && wrk.exitCode === null) process.kill(wrk.pid, 'SIGKILL');
    await ngx?.stop();
    for (const b of Object.values(hosts)) b.server.close();
  }
  return out;
}

/** The analysis context of both parts: the canary h1, the stable pool h2 and h3 (the nginx source needs no host). */
function benchContext(): AnalysisContext {
  return {
    fraise: 'api',
    environment: 'production',
    log: { info: () => {}, warn: () => {}, error: () => {} },
    signal: new AbortController().signal,
    now: () => Date.now(),
    executor: () => {
      throw new Error('not used');
    },
    traffic: null,
    canary: [{ name: 'h1', kind: 'ssh' }],
    stable: [
      { name: 'h2', kind: 'ssh' },
      { name: 'h3', kind: 'ssh' },
    ],
    canaryVersion: 'v2',
    stableVersion: 'v1',
  };
}

/** One way of reading the log: the source on this machine (the file), or through an executor (a shell pipe, as over SSH). */
interface Path {
  name: string;
  analysis: Analysis;
  rounds: number[];
  cpu: number[];
}

async function main(): Promise<void> {
  // the SSH path needs the bench lab; without one the file and pipe paths still run
  let ran = false;
  try {
    await withLab(async (env) => {
      ran = true;
      await roundBench(env, '');
    });
  } catch (err) {
    if (ran) throw err;
    const skipped = `the bench lab did not come up: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`;
    console.log(`no SSH path: ${skipped}`);
    await roundBench(null, skipped);
  }
}

async function roundBench(env: LabEnv | null, skipped: string): Promise<void> {
  const m = machine();
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-bench-analysis-'));
  const file = join(dir, 'access.json');
  writeFileSync(file, lines(1000, Date.now() - 60_000, 50_000)); // history before the analysis starts: skipped
  const ctx = benchContext();
  const path = (name: string, connect?: () => Promise<Executor>, remote?: { host: string; ssh: SshOptions; compress?: boolean }): Path => ({
    name,
    analysis: createAnalysis(
      {
        checks: [
          { metric: 'error_rate', maxIncrease: 1 },
          { metric: 'response_latency_p99', maxRatio: 1.2 },
        ],
        sources: [nginxSource({ accessLog: file, servers, ...(connect ? { connect } : {}), ...remote })],
        failureLimit: 1_000_000,
        inconclusiveLimit: 1_000_000,
      },
      ctx,
    ),
    rounds: [],
    cpu: [],
  });
  // side by side on the same bytes, taking turns at going first
  const paths = [path('file'), path('pipe', async () => new LocalExecutor('nginx'))];
  // over SSH from lab host h1, which sees this machine's /tmp: the source's own connection (host + ssh options)
  // plain (compress: false) and compressed on the host (gzip -1, the default when the host has gzip)
  if (env) {
    const remote = { host: env.hosts[0]!.name, ssh: { configFile: env.sshConfig } };
    paths.push(path('ssh', undefined, { ...remote, compress: false }), path('ssh+gzip', undefined, remote));
  }
  const parse: number[] = [];
  let bytes = 0;
  let verdict = '';
  try {
    for (const p of paths) await p.analysis.start();
    for (let r = 0; r < RUNS; r++) {
      const chunk = lines(LINES, Date.now() + 2, 10);
      bytes = Buffer.byteLength(chunk);
      appendFileSync(file, chunk);
      await new Promise((res) => setTimeout(res, 30)); // every line is older than the round's end
      for (const p of [...paths.slice(r % paths.length), ...paths.slice(0, r % paths.length)]) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const s = await p.analysis.measure();
        p.rounds.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        p.cpu.push((c.user + c.system) / 1000);
        const round = s.rounds[s.rounds.length - 1]!;
        verdict = round.results.map((x) => x.message).join('; ');
        if (round.results[0]!.canary!.samples < LINES / 3 - 1)
          throw new Error(`${p.name}: the round saw ${round.results[0]!.canary!.samples} canary requests, expected ${LINES / 3}`);
      }
      const buf = Buffer.from(chunk);
      const t1 = performance.now();
      new AccessLogStore().addLines(buf);
      parse.push(performance.now() - t1);
    }
  } finally {
    for (const p of paths) await p.analysis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const sshPath = paths.find((p) => p.name === 'ssh');
  console.log(
    `analysis round on ${LINES} new access-log lines (${(bytes / 1e6).toFixed(1)} MB), median wall / CPU in this process: ${paths
      .map((p) => `${p.name} ${fmtMs(median(p.rounds))} / ${fmtMs(median(p.cpu))} (runs ${p.rounds.map((x) => fmtMs(x)).join(', ')})`)
      .join(
        '; ',
      )}; scanning alone ${fmtMs(median(parse))}${sshPath ? `; ssh/file ${(median(sshPath.rounds) / median(paths[0]!.rounds)).toFixed(2)}×` : `; ssh skipped: ${skipped}`}`,
  );
  const loadRound = section('analysis cost per round');
  const aborts = await abortBench(ABORT_RUNS);
  const switched = median(aborts.map((a) => a.switched));
  const lastCanary = median(aborts.map((a) => a.lastCanary));
  console.log(
    `abort: verdict → weights back on stable (nginx reloaded) median ${fmtMs(switched)} (runs ${aborts.map((a) => fmtMs(a.switched)).join(', ')}); verdict → last request reaching the canary median ${fmtMs(lastCanary)} (runs ${aborts.map((a) => fmtMs(a.lastCanary)).join(', ')})`,
  );
  const startLoad = `${loadRound}; abort part: ${section('abort: verdict to all traffic on stable')}`;
  const markdown = `### What it measures
One analysis round (\`measure()\`) with the \`nginx\` source: error rate and p99 latency of the canary
(1 host) and of the stable pool (2 hosts), on a JSON access log that grew by ${LINES.toLocaleString('en')} lines
(${(bytes / 1e6).toFixed(1)} MB) since the previous round. The round reads only the new bytes, scans them
(the fields of nginx-lb's format read in place, no object per line) and summarises both pools. Four ways
of reading, side by side on the same bytes in one run, taking turns at going first: **file**, what the
source does when nginx runs on the machine running Fraisier (the file read from the offset); **pipe**,
through an executor (the remote read's command in a local shell, no SSH); **ssh**, the read over the
source's SSH connection to a bench-lab host, plain (\`compress: false\`); **ssh+gzip**, the same compressed
on the host (\`gzip -1\`, inflated here as it arrives: the default when the host has gzip). The lab host is a
network namespace on this machine: the link is a veth, so a real network's time is not in the ssh rows
(over a network the plain read moves ${(bytes / 1e6).toFixed(1)} MB, the compressed one ~30× less), and the
host's side (sshd, \`tail\`, \`gzip\`) shares this machine's CPUs with Fraisier.${
    env ? '' : ` This run had no **ssh** rows: ${skipped}.`
  } Median of ${RUNS} rounds each. Target: under 200 ms. On a loaded machine the wall time grows with the
load average; the CPU time of Fraisier's own process (reading, inflating, scanning, summarising; the
processes of the shell and of the host not included) shows the work itself.

${table(
  ['lines per round', 'read', 'round, wall (median)', 'min', 'max', 'round, CPU of this process (median)', 'scanning alone (median)', 'target'],
  paths.map((p) => [
    LINES.toLocaleString('en'),
    p.name,
    fmtMs(median(p.rounds)),
    fmtMs(Math.min(...p.rounds)),
    fmtMs(Math.max(...p.rounds)),
    fmtMs(median(p.cpu)),
    fmtMs(median(parse)),
    '< 200 ms',
  ]),
)}

Verdict lines of the last round: \`${verdict}\`.

### From the failed verdict to all traffic on stable
A real nginx (two workers, loopback) with nginx-lb's weights and JSON access log in front of three local
HTTP servers (the canary answers 5xx on every 5th request), wrk (8 keep-alive connections) through it for
the whole run. The canary gets 10 % of the requests; the analysis (nginx source, error rate ≤ 5 %, at least
20 requests, a round every 500 ms) gives its failed verdict, then the abort's weights (canary 0, stable 1)
go through \`setWeights\` (write, \`nginx -t\`, reload, wait for the new workers). Median of ${aborts.length} aborts.
Target: under 1 s.

${table(
  ['verdict → weights applied (median)', 'min', 'max', 'verdict → last request reaching the canary (median)', 'max', 'target'],
  [
    [
      fmtMs(switched),
      fmtMs(Math.min(...aborts.map((a) => a.switched))),
      fmtMs(Math.max(...aborts.map((a) => a.switched))),
      fmtMs(lastCanary),
      fmtMs(Math.max(...aborts.map((a) => a.lastCanary))),
      '< 1 s',
    ],
  ],
)}

Verdict of the last abort (after ${aborts.at(-1)?.rounds} rounds): \`${aborts.at(-1)?.verdict}\`.
`;
  saveResult({
    name: 'analysis',
    order: 5,
    title: 'Canary analysis: cost of one round on a 100,000-line access log, and the abort',
    date: new Date().toISOString(),
    machine: { ...m, load: startLoad },
    markdown,
    raw: { lines: LINES, bytes, paths: paths.map((p) => ({ name: p.name, rounds: p.rounds, cpu: p.cpu })), parse, aborts },
  });
}

runMain(import.meta.url, main);
