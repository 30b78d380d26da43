/**
 * deployAll (core/deploy-all.ts) over fake providers and one in-memory store: bad input refused before
 * anything starts, `maxParallel` respected, every deployment with its own history row and prefixed
 * lines, and fail-fast: the first failure cancels the running ones and skips those not started.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeployApp } from '../../core/app.js';
import { deployAll } from '../../core/deploy-all.js';
import type { FraisierError } from '../../core/errors.js';
import { RecordingExecutor } from '../../core/exec/recording.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore, type StateStore } from '../../core/state/store.js';
import type { Provider, Strategy } from '../../core/types.js';

let running = 0;
let peak = 0;

/** A fraise on one fake host; `fail` makes its activation fail; `holdMs` keeps `prepare` busy that long (abortable). */
function fakeApp(name: string, o: { fail?: boolean; holdMs?: number } = {}): { app: DeployApp; live: () => string } {
  let live = 'v1';
  const provider: Provider = {
    name: 'provider:fake',
    targets: [{ name: `${name}-1`, kind: 'fake' }],
    open: async () => {},
    resolveVersion: async (ref) => ref ?? 'v2',
    currentRelease: async () => live,
    releases: async () => [live],
    prepare: async (_t, _v, ctx) => {
      running++;
      peak = Math.max(peak, running);
      try {
        await ctx.clock.sleep(o.holdMs ?? 50, ctx.signal);
      } finally {
        running--;
      }
    },
    activate: async (_t, version) => {
      if (o.fail && version !== 'v1') throw new Error('boom');
      live = version;
    },
    finalize: async () => {},
    executor: (t) => new RecordingExecutor(t.name),
    close: async () => {},
  };
  const strategy: Strategy = { name: 'strategy:all', run: async (ctx, runner) => void (await Promise.all(ctx.targets.map((t) => runner.deployTarget(t)))) };
  return { app: new DeployApp({ name, environments: { production: { provider, strategy } } }, '/nonexistent'), live: () => live };
}

async function withStore(fn: (store: StateStore) => Promise<void>): Promise<void> {
  const store = await openStore({ path: ':memory:' });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

test('bad input is refused before anything starts', async () => {
  await withStore(async (store) => {
    const a = fakeApp('api').app;
    const cases: [Parameters<typeof deployAll>, string, string][] = [
      [[[]], 'E_USAGE', 'name at least one fraise'],
      [[[{ app: a, environment: 'staging' }]], 'E_NOT_FOUND', 'fraise api has no environment "staging"'],
      [
        [
          [
            { app: a, environment: 'production' },
            { app: a, environment: 'production' },
          ],
        ],
        'E_USAGE',
        'api/production is named twice',
      ],
      [[[{ app: a, environment: 'production' }], { maxParallel: 0 }], 'E_USAGE', '--max-parallel: expected a whole number of at least 1'],
      [[[{ app: a, environment: 'production', options: { version: '$(id)' } }]], 'E_VERSION', 'invalid version'],
    ];
    for (const [args, code, message] of cases) {
      const [items, options] = args;
      const err = await deployAll(items, { ...options, runtime: { store, handleSignals: false } }).then(
        () => null,
        (e: FraisierError) => e,
      );
      assert.is(err?.code, code, message);
      assert.match(err?.message ?? '', message);
    }
    assert.equal(await store.history(), [], 'nothing recorded');
  });
});

test('maxParallel bounds how many run at once; each has its own row; lines are tagged with the fraise', async () => {
  await withStore(async (store) => {
    peak = 0;
    const apps = ['api', 'etl', 'worker', 'mailer'].map((n) => fakeApp(n));
    const logs: LogEntry[] = [];
    const r = await deployAll(
      apps.map(({ app }) => ({ app, environment: 'production' })),
      { maxParallel: 2, sinks: [memorySink(logs)], runtime: { store, handleSignals: false } },
    );
    assert.is(r.ok, true);
    assert.is(peak, 2);
    assert.equal(
      r.entries.map((e) => `${e.fraise} ${e.status}`),
      ['api succeeded', 'etl succeeded', 'worker succeeded', 'mailer succeeded'],
    );
    assert.equal((await store.history()).map((d) => d.fraise).sort(), ['api', 'etl', 'mailer', 'worker']);
    assert.ok(logs.some((l) => l.target === 'etl' && l.message.startsWith('Deployment successful')));
    assert.ok(logs.some((l) => l.target === 'api' && l.message.startsWith('Deploying api')));
  });
});

test('failFast: the first failure cancels the running one (rolled back) and skips the one not started', async () => {
  await withStore(async (store) => {
    const bad = fakeApp('bad', { fail: true });
    const slow = fakeApp('slow', { holdMs: 60_000 });
    const later = fakeApp('later');
    const r = await deployAll(
      [bad, slow, later].map(({ app }) => ({ app, environment: 'production' })),
      { maxParallel: 2, failFast: true, runtime: { store, handleSignals: false } },
    );
    assert.is(r.ok, false);
    assert.equal(
      r.entries.map((e) => [e.fraise, e.status]),
      [
        ['bad', 'rolled_back'],
        ['slow', 'cancelled'],
        ['later', 'skipped'],
      ],
    );
    assert.is(r.entries[1]!.error?.message, 'cancelled: bad rolled_back (--fail-fast)');
    assert.equal([bad.live(), slow.live(), later.live()], ['v1', 'v1', 'v1']);
    const rows = await store.history();
    assert.equal(rows.map((d) => `${d.fraise} ${d.status}`).sort(), ['bad rolled_back', 'slow cancelled']);
  });
});

test.run();
