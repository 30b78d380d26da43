/**
 * The canary analysis's own cost per interval: one round (error rate and p99 of the canary and the stable
 * pool, so four metric queries) with the nginx source on a JSON access log that grew by 100,000 lines
 * since the previous round (read with `tail -c +N` through a local shell, parsed, summarised per pool).
 * Target: under 200 ms. No lab, no Prometheus needed: `npx tsx bench/analysis.ts`.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAnalysis } from '../core/analysis/index.js';
import type { AnalysisContext } from '../core/analysis/types.js';
import { parseAccessLog } from '../plugins/metrics/nginx.js';
import { nginxSource } from '../plugins/metrics/nginx.js';
import { fmtMs, machine, median, runMain, saveResult, section, table } from './lib.js';

const LINES = Number(process.env['BENCH_ANALYSIS_LINES'] ?? 100_000);
const RUNS = Number(process.env['BENCH_ANALYSIS_RUNS'] ?? 7);
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

async function main(): Promise<void> {
  const m = machine();
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-bench-analysis-'));
  const file = join(dir, 'access.json');
  writeFileSync(file, lines(1000, Date.now() - 60_000, 50_000)); // history before the analysis starts: skipped
  const ctx: AnalysisContext = {
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
  const analysis = createAnalysis(
    {
      checks: [
        { metric: 'error_rate', maxIncrease: 1 },
        { metric: 'response_latency_p99', maxRatio: 1.2 },
      ],
      sources: [nginxSource({ accessLog: file, servers })],
      failureLimit: 1_000_000,
      inconclusiveLimit: 1_000_000,
    },
    ctx,
  );
  const rounds: number[] = [];
  const parse: number[] = [];
  const cpu: number[] = [];
  let bytes = 0;
  let verdict = '';
  try {
    await analysis.start();
    for (let r = 0; r < RUNS; r++) {
      const chunk = lines(LINES, Date.now() + 2, 10);
      bytes = Buffer.byteLength(chunk);
      appendFileSync(file, chunk);
      await new Promise((res) => setTimeout(res, 30)); // every line is older than the round's end
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const s = await analysis.measure();
      rounds.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      const round = s.rounds[s.rounds.length - 1]!;
      verdict = round.results.map((x) => x.message).join('; ');
      if (round.results[0]!.canary!.samples < LINES / 3 - 1)
        throw new Error(`the round saw ${round.results[0]!.canary!.samples} canary requests, expected ${LINES / 3}`);
      const t1 = performance.now();
      parseAccessLog(chunk);
      parse.push(performance.now() - t1);
    }
  } finally {
    await analysis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const med = median(rounds);
  console.log(
    `analysis round on ${LINES} new access-log lines: median ${fmtMs(med)} wall, ${fmtMs(median(cpu))} CPU in this process (runs ${rounds.map((x) => fmtMs(x)).join(', ')}), parse alone ${fmtMs(median(parse))}`,
  );
  const startLoad = section('analysis cost per round');
  const markdown = `### What it measures
One analysis round (\`measure()\`) with the \`nginx\` source: error rate and p99 latency of the canary
(1 host) and of the stable pool (2 hosts), on a JSON access log that grew by ${LINES.toLocaleString('en')} lines
(${(bytes / 1e6).toFixed(1)} MB) since the previous round. The round reads only the new bytes
(\`tail -c +N\` through a local shell; over SSH the transfer adds the link's time), parses them and
summarises both pools. Median of ${RUNS} rounds. Target: under 200 ms. On a loaded machine the wall
time grows with the load average; the CPU time of Fraisier's own process (reading the pipe, parsing,
summarising; the \`sh\`/\`tail\` child not included) shows the work itself.

${table(
  ['lines per round', 'round, wall (median)', 'min', 'max', 'round, CPU of this process (median)', 'parsing alone (median)', 'target'],
  [[LINES.toLocaleString('en'), fmtMs(med), fmtMs(Math.min(...rounds)), fmtMs(Math.max(...rounds)), fmtMs(median(cpu)), fmtMs(median(parse)), '< 200 ms']],
)}

Verdict lines of the last round: \`${verdict}\`.
`;
  saveResult({
    name: 'analysis',
    order: 5,
    title: 'Canary analysis: cost of one round on a 100,000-line access log',
    date: new Date().toISOString(),
    machine: { ...m, load: startLoad },
    markdown,
    raw: { lines: LINES, bytes, rounds, cpu, parse },
  });
}

runMain(import.meta.url, main);
