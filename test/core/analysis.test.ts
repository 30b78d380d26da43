import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeClock } from '../../core/clock.js';
import { createAnalysis, judge, kayentaScore, mannWhitneyU, percentile, verdictDetail, verdictLine } from '../../core/analysis/index.js';
import {
  type AnalysisContext,
  type AnalysisOptions,
  type Measurement,
  type MetricQuery,
  type MetricSource,
  MetricSourceError,
} from '../../core/analysis/types.js';
import { FraisierError } from '../../core/errors.js';
import type { Executor } from '../../core/exec/executor.js';
import type { Target } from '../../core/types.js';

const t = (name: string): Target => ({ name, kind: 'ssh' });

function context(clock: FakeClock, lines: string[] = [], signal = new AbortController().signal): AnalysisContext {
  const log = (m: string) => lines.push(m);
  return {
    fraise: 'api',
    environment: 'production',
    log: { info: log, warn: log, error: log },
    signal,
    now: () => clock.now(),
    sleep: (ms, s) => clock.sleep(ms, s),
    executor: () => ({}) as Executor,
    traffic: null,
    canary: [t('h1')],
    stable: [t('h2'), t('h3')],
    canaryVersion: 'v2',
    stableVersion: 'v1',
  };
}

/** A source that answers from a function of the query, and records the queries. */
function fakeSource(
  answer: (q: MetricQuery) => Measurement,
  name = 'source:fake',
  metrics = ['error_rate', 'response_latency_p99', 'cpu_usage'],
): MetricSource & { queries: MetricQuery[]; started: number; stopped: number } {
  const s = {
    name,
    queries: [] as MetricQuery[],
    started: 0,
    stopped: 0,
    provides: (m: string) => metrics.includes(m),
    async start() {
      s.started += 1;
    },
    async measure(q: MetricQuery) {
      s.queries.push(q);
      return answer(q);
    },
    async stop() {
      s.stopped += 1;
    },
  };
  return s;
}

test('percentile interpolates like numpy', () => {
  assert.is(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 9.91);
  assert.is(percentile([5, 1, 3], 50), 3);
  assert.ok(Math.abs(percentile([1, 2, 3, 4], 90) - 3.7) < 1e-12);
  assert.ok(Number.isNaN(percentile([], 99)));
});

test('Mann-Whitney U matches scipy (asymptotic, two-sided, tie and continuity corrections)', () => {
  const cases: [number[], number[], number, number][] = [
    [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0, 0.012185780355344813],
    [[1, 2, 2, 3, 3, 3, 4, 5], [2, 3, 3, 4, 5, 5, 6], 15.5, 0.1538256069539177],
    [[10, 12, 11, 13, 12, 14, 11, 10, 12, 13], [11, 12, 13, 12, 11, 10, 12, 13, 11, 12], 52, 0.9065175653628045],
  ];
  for (const [a, b, u, p] of cases) {
    const r = mannWhitneyU(a, b);
    assert.is(r.u, u);
    assert.ok(Math.abs(r.p - p) < 1e-6, `p ${r.p} vs scipy ${p}`);
  }
  assert.ok(mannWhitneyU([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]).aHigher);
  assert.ok(Number.isNaN(mannWhitneyU([], [1]).p));
  assert.ok(Number.isNaN(mannWhitneyU([3, 3], [3, 3]).p), 'all tied: no test');
});

test('Kayenta score is the weighted share of passing metrics', () => {
  assert.is(
    kayentaScore([
      { weight: 3, passed: true },
      { weight: 1, passed: false },
    ]),
    75,
  );
  assert.ok(Number.isNaN(kayentaScore([])));
});

test('verdict lines carry the numbers, and comparisons use the stable pool', () => {
  const r = judge({ metric: 'response_latency_p99', maxRatio: 1.2 }, 'source:fake', { value: 182, samples: 50 }, { value: 95, samples: 60 });
  assert.is(r.phase, 'failed');
  assert.is(r.message, 'canary p99 182 ms vs stable 95 ms (limit 1.2×): FAIL');
  const e = judge({ metric: 'error_rate', maxIncrease: 0.5, max: 5 }, 'source:fake', { value: 0.4, samples: 100 }, { value: 0.1, samples: 100 });
  assert.is(e.phase, 'successful');
  assert.is(e.message, 'canary error rate 0.4 % vs stable 0.1 % (max 5.0 %; limit +0.5 points): PASS');
  assert.is(judge({ metric: 'error_rate', maxIncrease: 0.5 }, 's', { value: 0.7, samples: 100 }, { value: 0.1, samples: 100 }).phase, 'failed');
  assert.is(judge({ metric: 'cpu_usage', max: 80 }, 's', { value: 95, samples: 1 }, null).message, 'canary cpu 95.0 % (max 80.0 %): FAIL');
});

test('too few samples, NaN or no stable data is inconclusive, never a pass', () => {
  const few = judge({ metric: 'error_rate', max: 5 }, 's', { value: 0, samples: 19 }, null);
  assert.is(few.phase, 'inconclusive');
  assert.match(few.message, /19 samples < min 20/);
  assert.is(judge({ metric: 'error_rate', max: 5, minSamples: 5 }, 's', { value: 0, samples: 5 }, null).phase, 'successful');
  assert.is(judge({ metric: 'error_rate', max: 5 }, 's', { value: Number.NaN, samples: 0 }, null).phase, 'inconclusive');
  assert.is(judge({ metric: 'response_latency_p99', maxRatio: 1.2 }, 's', { value: 10, samples: 50 }, { value: Number.NaN, samples: 0 }).phase, 'inconclusive');
  assert.is(judge({ metric: 'response_latency_p99', maxRatio: 1.2 }, 's', { value: 10, samples: 50 }, null).phase, 'inconclusive');
});

test('Mann-Whitney fails a canary that is significantly slower, not one that is faster', () => {
  const slow = Array.from({ length: 40 }, (_, i) => 300 + (i % 7));
  const fast = Array.from({ length: 40 }, (_, i) => 5 + (i % 7));
  const check = { metric: 'response_latency_p99', mannWhitney: { alpha: 0.05 } } as const;
  const bad = judge(check, 's', { value: 306, samples: 40, values: slow }, { value: 11, samples: 40, values: fast });
  assert.is(bad.phase, 'failed');
  assert.match(bad.message, /Mann-Whitney U 1600, p .* vs α 0.05, canary higher\): FAIL$/);
  assert.is(judge(check, 's', { value: 11, samples: 40, values: fast }, { value: 306, samples: 40, values: slow }).phase, 'successful');
  assert.is(judge(check, 's', { value: 11, samples: 40, values: fast.slice(0, 5) }, { value: 306, samples: 40, values: slow }).phase, 'inconclusive');
});

test('run measures every interval after the initial delay, over consecutive windows, canary and stable', async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const src = fakeSource((q) => ({ value: q.pool === 'canary' ? 1 : 0.8, samples: 100 }));
  const a = createAnalysis({ checks: [{ metric: 'error_rate', maxIncrease: 0.5 }], sources: [src], interval: '10s', initialDelay: '5s' }, context(clock));
  await a.start();
  const s = await a.run(40_000);
  assert.is(s.phase, 'running');
  assert.is(s.rounds.length, 3, '5 s delay, then rounds at 15, 25, 35 s; 40 s ends before the 4th');
  assert.equal(
    s.rounds.map((r) => r.at - t0),
    [15_000, 25_000, 35_000],
  );
  assert.is(clock.now() - t0, 40_000, 'run waits for the whole step');
  const canary = src.queries.filter((q) => q.pool === 'canary');
  assert.equal(
    canary.map((q) => [q.since - t0, q.until - t0]),
    [
      [5000, 15_000],
      [15_000, 25_000],
      [25_000, 35_000],
    ],
  );
  assert.equal(
    src.queries.filter((q) => q.pool === 'stable').map((q) => q.targets.map((x) => x.name)),
    [
      ['h2', 'h3'],
      ['h2', 'h3'],
      ['h2', 'h3'],
    ],
  );
  assert.is(src.queries[0]!.version, 'v2');
  const s2 = await a.run(10_000);
  assert.is(s2.rounds.length, 4, 'the next step continues the windows where the last one stopped');
  assert.is(s2.counts.successful, 4);
  await a.stop();
  assert.is(src.started, 1);
  assert.is(src.stopped, 1);
});

test('failures beyond failure_limit end the run early, with Argo counts', async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const lines: string[] = [];
  const src = fakeSource((q) => ({ value: q.pool === 'canary' ? 182 : 95, samples: 50 }));
  const a = createAnalysis(
    { checks: [{ metric: 'response_latency_p99', maxRatio: 1.2 }], sources: [src], interval: '1s', failureLimit: 1 },
    context(clock, lines),
  );
  const s = await a.run(60_000);
  assert.is(s.phase, 'failed');
  assert.is(s.reason, 'failed (2) > failure_limit (1)');
  assert.is(s.rounds.length, 2);
  assert.is(clock.now() - t0, 2000, 'resolves at the verdict, not at the end of the step');
  assert.ok(lines.includes('analysis: canary p99 182 ms vs stable 95 ms (limit 1.2×): FAIL'), lines.join('\n'));
  assert.ok(lines.includes('analysis failed: failed (2) > failure_limit (1)'));
});

test('the verdict line names the metrics that decided, with their numbers (failed, critical, error, inconclusive)', async () => {
  const clock = new FakeClock();
  // error rate 20 % vs 0 % fails; p99 passes: only the failing metric is named
  const src = fakeSource((q) =>
    q.metric === 'error_rate' ? { value: q.pool === 'canary' ? 20 : 0, samples: 100 } : { value: q.pool === 'canary' ? 101 : 100, samples: 100 },
  );
  const a = createAnalysis(
    {
      checks: [
        { metric: 'error_rate', maxIncrease: 1 },
        { metric: 'response_latency_p99', maxRatio: 1.2 },
      ],
      sources: [src],
      interval: '1s',
    },
    context(clock),
  );
  const s = await a.run(60_000);
  assert.is(verdictLine('canary', s), 'canary analysis failed: failed (1) > failure_limit (0): error_rate 20.0 % vs stable 0.0 % (limit +1 points)');
  assert.is(verdictDetail(a.status()), 'error_rate 20.0 % vs stable 0.0 % (limit +1 points)');

  const both = createAnalysis(
    {
      checks: [
        { metric: 'error_rate', max: 5, critical: true },
        { metric: 'response_latency_p99', max: 50 },
      ],
      sources: [fakeSource((q) => (q.metric === 'error_rate' ? { value: 19.6, samples: 100 } : { value: 182, samples: 100 }))],
      interval: '1s',
      failureLimit: 5,
    },
    context(new FakeClock()),
  );
  assert.is(
    verdictLine('bake', await both.run(60_000)),
    'bake analysis failed: critical metric error_rate failed: error_rate 19.6 % (max 5.0 %); response_latency_p99 182 ms (max 50 ms)',
  );

  const down = createAnalysis(
    {
      checks: [{ metric: 'error_rate', max: 5 }],
      sources: [
        fakeSource(() => {
          throw new MetricSourceError('source:fake', 'metric source unavailable: ECONNREFUSED');
        }),
      ],
      interval: '1s',
      consecutiveErrorLimit: 1,
    },
    context(new FakeClock()),
  );
  assert.is(
    verdictLine('canary', await down.run(60_000)),
    'canary analysis error: consecutive errors (2) > consecutive_error_limit (1): error_rate: error rate: source:fake: metric source unavailable: ECONNREFUSED',
  );

  for (const onInconclusive of ['pause', 'fail'] as const) {
    const few = createAnalysis(
      { checks: [{ metric: 'error_rate', max: 5, minSamples: 20 }], sources: [fakeSource(() => ({ value: 0, samples: 3 }))], interval: '1s', onInconclusive },
      context(new FakeClock()),
    );
    const st = await few.run(60_000);
    assert.is(
      verdictLine('canary', st),
      `canary analysis ${onInconclusive === 'fail' ? 'failed' : 'inconclusive'}: inconclusive (1) > inconclusive_limit (0)${onInconclusive === 'fail' ? ', on_inconclusive: fail' : ''}: error_rate 0.0 % (canary: 3 samples < min 20)`,
    );
  }
  const running = createAnalysis(
    { checks: [{ metric: 'error_rate', max: 5 }], sources: [fakeSource(() => ({ value: 0, samples: 100 }))], interval: '1s' },
    context(new FakeClock()),
  );
  assert.is(verdictLine('canary', await running.run(3_000)), 'canary analysis running', 'nothing to explain while it runs');
});

test('inconclusive rounds pause by default, or fail by policy; never successful', async () => {
  for (const onInconclusive of ['pause', 'fail'] as const) {
    const clock = new FakeClock();
    const src = fakeSource(() => ({ value: Number.NaN, samples: 0 }));
    const a = createAnalysis(
      { checks: [{ metric: 'error_rate', max: 1 }], sources: [src], interval: '1s', inconclusiveLimit: 2, onInconclusive },
      context(clock),
    );
    const s = await a.run(60_000);
    assert.is(s.phase, onInconclusive === 'pause' ? 'inconclusive' : 'failed');
    assert.is(s.counts.inconclusive, 3);
    assert.is(s.counts.successful, 0);
    assert.match(s.reason!, /^inconclusive \(3\) > inconclusive_limit \(2\)/);
  }
});

test('source errors count apart from failures; consecutive errors beyond the limit end in error; a success resets them', async () => {
  const clock = new FakeClock();
  let n = 0;
  const src = fakeSource(() => {
    n += 1;
    if (n === 3) return { value: 0, samples: 100 };
    throw new MetricSourceError('source:fake', 'metric source unavailable: connection refused');
  });
  const lines: string[] = [];
  const a = createAnalysis({ checks: [{ metric: 'error_rate', max: 1 }], sources: [src], interval: '1s', consecutiveErrorLimit: 2 }, context(clock, lines));
  const s = await a.run(60_000);
  assert.is(s.phase, 'error');
  assert.is(s.reason, 'consecutive errors (3) > consecutive_error_limit (2)');
  assert.equal(
    s.rounds.map((r) => r.phase),
    ['error', 'error', 'successful', 'error', 'error', 'error'],
  );
  assert.is(s.counts.error, 5);
  assert.is(s.counts.failed, 0);
  assert.ok(lines.some((l) => l.includes('source:fake: metric source unavailable: connection refused: ERROR')));
});

test('a critical metric fails on its own; with scoring, other metrics are weighed', async () => {
  const clock = new FakeClock();
  const values: Record<string, number> = { error_rate: 0, response_latency_p99: 500, cpu_usage: 90 };
  const src = fakeSource((q) => ({ value: values[q.metric]!, samples: 100 }));
  const opts = (critical: boolean): AnalysisOptions => ({
    checks: [
      { metric: 'error_rate', max: 1, weight: 3 },
      { metric: 'response_latency_p99', max: 200, weight: 1, critical },
      { metric: 'cpu_usage', max: 95, weight: 1 },
    ],
    sources: [src],
    interval: '1s',
    failureLimit: 5,
    scoring: { pass: 75, marginal: 50 },
  });
  const scored = await createAnalysis(opts(false), context(clock)).measure();
  assert.is(scored.rounds[0]!.score, 80);
  assert.is(scored.rounds[0]!.phase, 'successful', '80 ≥ pass 75, though one metric failed');
  assert.is(scored.phase, 'running');
  const crit = await createAnalysis(opts(true), context(clock)).measure();
  assert.is(crit.phase, 'failed');
  assert.is(crit.reason, 'critical metric response_latency_p99 failed');
  values.error_rate = 9;
  const low = await createAnalysis(opts(false), context(clock)).measure();
  assert.is(low.rounds[0]!.score, 20);
  assert.is(low.rounds[0]!.phase, 'failed');
});

test('an unknown metric or source is a config error at creation', () => {
  const clock = new FakeClock();
  const src = fakeSource(() => ({ value: 0, samples: 1 }));
  const err = (o: AnalysisOptions) => {
    try {
      createAnalysis(o, context(clock));
    } catch (e) {
      return e as FraisierError;
    }
    return null;
  };
  const e1 = err({ checks: [{ metric: 'latency_p99' }], sources: [src] });
  assert.instance(e1, FraisierError);
  assert.is(e1!.code, 'E_CONFIG');
  assert.match(e1!.message, /unknown metric latency_p99/);
  assert.match(err({ checks: [{ metric: 'error_rate', source: 'source:prometheus' }], sources: [src] })!.message, /source source:prometheus is not configured/);
  assert.match(err({ checks: [{ metric: 'error_rate', maxRatio: -1 }], sources: [src] })!.message, /maxRatio: expected a number above 0/);
});

test('abort during a run rejects with the signal reason', async () => {
  const clock = new FakeClock();
  const ac = new AbortController();
  const src = fakeSource(() => {
    ac.abort(new Error('interrupted'));
    return { value: 0, samples: 100 };
  });
  const a = createAnalysis({ checks: [{ metric: 'error_rate', max: 1 }], sources: [src], interval: '1s' }, context(clock, [], ac.signal));
  try {
    await a.run(10_000);
    assert.unreachable('should reject');
  } catch (e) {
    assert.is((e as Error).message, 'interrupted');
  }
});

test.run();
