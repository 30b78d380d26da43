/**
 * End to end: the analysis with no monitoring system, on the lab. The probe sends GET / to the canary and
 * the stable host through each host's own SSH connection; the host source reads the app's /proc entry.
 * h1 runs v3.0.0-errors (5xx on 20 % of GET /), h2 the good v3.2.0, h3 v3.1.0-slow (+300 ms).
 * Bounds are wide (the 5xx share: 10-30 %) and runs end at the first verdict, so a loaded machine only
 * makes them slower, never red.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AnalysisOptions, AnalysisRound } from '../../core/analysis/types.js';
import { SshExecutor } from '../../core/exec/ssh.js';
import type { Target } from '../../core/types.js';
import { hostSource } from '../../plugins/metrics/host.js';
import { probeSource } from '../../plugins/metrics/probe.js';
import type { LabEnv } from '../lab/lab.js';
import { analyse as analyseWith, analysisContext, putReleases } from './analysis-support.js';
import { lab, resetHosts } from './helpers.js';

let env: LabEnv;
const executors = new Map<string, SshExecutor>();
const RELEASES: Record<string, string> = { h1: 'v3.0.0-errors', h2: 'v3.2.0', h3: 'v3.1.0-slow' };

const context = (canary: string, stable: string) => (lines: string[]) =>
  analysisContext(RELEASES, { canary, stable }, lines, {
    executor: (t: Target) => executors.get(t.name)!,
    extra: { healthUrl: 'http://localhost:8000/health', service: { type: 'supervisor', name: 'app' } },
  });

/** Runs the analysis until its first verdict (or `ms`), then stops it; returns the status and the log. */
const analyse = (options: AnalysisOptions, canary: string, stable: string, ms = 60_000) => analyseWith(options, context(canary, stable), ms);

const lastRound = (rounds: readonly AnalysisRound[]) => rounds[rounds.length - 1]!;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  await putReleases(env, RELEASES);
  for (const h of Object.keys(RELEASES)) executors.set(h, await SshExecutor.connect(h, { configFile: env.sshConfig }));
});

test.after(async () => {
  for (const e of executors.values()) await e.close();
  await resetHosts(env);
});

test('the probe measures the 5xx release near 20 % against a good stable, and the analysis fails it', async () => {
  const { status, lines } = await analyse(
    {
      checks: [{ metric: 'error_rate', maxIncrease: 1, minSamples: 10 }],
      sources: [probeSource({ url: '/', rate: 10 })],
      interval: '3s',
      inconclusiveLimit: 20,
    },
    'h1',
    'h2',
  );
  assert.is(status.phase, 'failed', lines.join('\n'));
  assert.is(status.reason, 'failed (1) > failure_limit (0)');
  const r = lastRound(status.rounds).results[0]!;
  console.log(`  [analysis-probe] ${r.message} (${r.canary!.samples} canary, ${r.stable!.samples} stable requests)`);
  assert.ok(r.canary!.value >= 10 && r.canary!.value <= 30, `canary error rate near 20 %: ${r.message}`);
  assert.is(r.stable!.value, 0, 'the good release answers every request');
  assert.ok(r.canary!.samples >= 10);
  assert.match(r.message, /^canary error rate \d+\.\d % vs stable 0\.0 % \(limit \+1 points\): FAIL$/);
  assert.ok(lines.includes('analysis failed: failed (1) > failure_limit (0)'));
});

test('the slow release fails the latency comparison (p99 ratio and Mann-Whitney)', async () => {
  const { status, lines } = await analyse(
    {
      checks: [
        { metric: 'error_rate', max: 1 },
        { metric: 'response_latency_p99', maxRatio: 1.2, mannWhitney: { alpha: 0.05 } },
      ],
      sources: [probeSource({ url: '/', rate: 10 })],
      interval: '3s',
      inconclusiveLimit: 20,
    },
    'h3',
    'h2',
  );
  assert.is(status.phase, 'failed', lines.join('\n'));
  const [errors, latency] = lastRound(status.rounds).results;
  assert.is(errors!.phase, 'successful', errors!.message);
  assert.is(latency!.phase, 'failed', latency!.message);
  assert.ok(latency!.canary!.value >= 300, `every answer of the slow release takes 300 ms or more: ${latency!.message}`);
  assert.match(latency!.message, /canary higher\): FAIL$/);
});

test('the good release passes; too few requests is inconclusive, not a pass', async () => {
  const good = await analyse(
    {
      checks: [{ metric: 'error_rate', maxIncrease: 1, minSamples: 10 }],
      sources: [probeSource({ url: '/', rate: 10 })],
      interval: '4s',
      inconclusiveLimit: 20,
    },
    'h2',
    'h2',
    8500,
  );
  assert.is(good.status.phase, 'running', good.lines.join('\n'));
  assert.is(good.status.counts.failed, 0, good.lines.join('\n'));
  assert.ok(good.status.counts.successful >= 1, good.lines.join('\n'));

  const few = await analyse({ checks: [{ metric: 'error_rate', max: 50 }], sources: [probeSource({ url: '/', rate: 1 })], interval: '2s' }, 'h1', 'h2');
  assert.is(few.status.phase, 'inconclusive', few.lines.join('\n'));
  assert.is(few.status.reason, 'inconclusive (1) > inconclusive_limit (0)');
  assert.match(lastRound(few.status.rounds).results[0]!.message, /samples < min 20\): INCONCLUSIVE$/);
});

test('the host source reads the service’s memory and cpu over SSH', async () => {
  const { status, lines } = await analyse(
    { checks: [{ metric: 'memory_usage', max: 1024 }, { metric: 'cpu_usage' }], sources: [hostSource()], interval: '1s', failureLimit: 0 },
    'h1',
    'h2',
    2500,
  );
  assert.ok(status.rounds.length >= 1, lines.join('\n'));
  const [mem, cpu] = status.rounds[0]!.results;
  assert.is(mem!.phase, 'successful', mem!.message);
  assert.ok(mem!.canary!.value > 5 && mem!.canary!.value < 1024, `node's resident memory in MiB: ${mem!.message}`);
  assert.ok(Number.isFinite(cpu!.canary!.value) && cpu!.canary!.value >= 0, cpu!.message);
});

test.run();
