/**
 * Multi-provider environments with in-memory providers (no host, no HTTP) and a real in-memory store:
 * the failover order and its rollbacks, what stops a failover, `all` mode with and without
 * `keep_others`, an unavailable provider, `--provider`, the SDK's bad input, and the YAML envelope
 * (errors naming the file, the key and the line).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeployApp } from '../../core/app.js';
import { parseConfig } from '../../core/config/load.js';
import { FraisierError } from '../../core/errors.js';
import { RecordingExecutor } from '../../core/exec/recording.js';
import { multiProvider, type MultiProviderOptions } from '../../core/multi-provider.js';
import { openStore } from '../../core/state/store.js';
import type { DeployResult, Provider, Target } from '../../core/types.js';
import { rolling } from '../../strategies/rolling.js';

/** A provider whose targets hold a release in memory; `failOn` makes activating that release fail. */
function memoryProvider(name: string, targets: string[], opts: { failOn?: string; failCode?: 'E_COMMAND' | 'E_CONFIG'; down?: boolean } = {}) {
  const live = new Map<string, string | null>(targets.map((t) => [t, 'v1']));
  const calls: string[] = [];
  const provider: Provider = {
    name: `provider:${name}`,
    targets: targets.map((t): Target => ({ name: t, kind: name })),
    open: async () => {
      if (opts.down) throw new FraisierError('E_UNREACHABLE', `${name} is down`);
    },
    resolveVersion: async (ref) => ref ?? 'v2',
    currentRelease: async (t) => live.get(t.name) ?? null,
    releases: async (t) => [live.get(t.name)!].filter(Boolean),
    prepare: async (t, v) => {
      calls.push(`prepare ${t.name} ${v}`);
    },
    activate: async (t, v) => {
      calls.push(`activate ${t.name} ${v}`);
      if (v === opts.failOn) throw new FraisierError(opts.failCode ?? 'E_COMMAND', `${t.name} cannot run ${v}`);
      live.set(t.name, v);
    },
    finalize: async () => {},
    executor: (t) => new RecordingExecutor(t.name),
    close: async () => {},
  };
  return { provider, live, calls };
}

async function deploy(options: Omit<MultiProviderOptions, 'providers'> & { providers: MultiProviderOptions['providers'] }, version = 'v2', provider?: string) {
  const store = await openStore({ path: ':memory:' });
  const app = new DeployApp({ name: 'api', environments: { production: multiProvider(options) } }, '/tmp');
  const result = await app.deploy('production', { version, ...(provider ? { provider } : {}) }, { store, sinks: [], handleSignals: false });
  const [row] = await store.history({ fraise: 'api', limit: 1 });
  return { result, row, app, store };
}

const outcome = (r: DeployResult) => r.providers!.map((p) => `${p.name}:${p.status}`);

test('failover: the primary serves; the fallback is opened (preflight) but never changed', async () => {
  const a = memoryProvider('metal', ['h1', 'h2']);
  const b = memoryProvider('cloud', ['app-1']);
  const { result, row } = await deploy({
    providers: [
      { name: 'metal', provider: a.provider, strategy: rolling() },
      { name: 'cloud', provider: b.provider, strategy: rolling() },
    ],
  });
  assert.is(result.status, 'succeeded');
  assert.equal(outcome(result), ['metal:served', 'cloud:not_tried']);
  assert.equal(b.calls, []);
  assert.equal([...a.live.values()], ['v2', 'v2']);
  assert.equal(row!.providers, result.providers);
});

test('failover: the primary fails on h2 → h1 and h2 rolled back, then the fallback serves; priority, not list order, decides', async () => {
  const a = memoryProvider('metal', ['h1', 'h2']);
  const b = memoryProvider('cloud', ['app-1']);
  // h2 fails: wrap activate so only h2 fails
  const activate = a.provider.activate;
  (a.provider as { activate: Provider['activate'] }).activate = async (t, v, ctx) => {
    if (t.name === 'h2' && v === 'v2') throw new FraisierError('E_HEALTH', 'health check failed on h2: HTTP 500', { target: 'h2' });
    return activate(t, v, ctx);
  };
  const { result, row } = await deploy({
    providers: [
      { name: 'cloud', priority: 2, provider: b.provider, strategy: rolling() },
      { name: 'metal', priority: 1, provider: a.provider, strategy: rolling() },
    ],
  });
  assert.is(result.status, 'succeeded');
  assert.equal(outcome(result), ['metal:rolled_back', 'cloud:served']);
  assert.match(result.providers![0]!.error!, 'health check failed on h2');
  assert.equal([...a.live.values()], ['v1', 'v1']);
  assert.is(b.live.get('app-1'), 'v2');
  assert.is(row!.status, 'succeeded');
  assert.equal(
    row!.providers!.map((p) => p.status),
    ['rolled_back', 'served'],
  );
});

test('failover: every provider fails → each rolled back, status rolled_back', async () => {
  const a = memoryProvider('metal', ['h1'], { failOn: 'v2' });
  const b = memoryProvider('cloud', ['app-1'], { failOn: 'v2' });
  const { result } = await deploy({
    providers: [
      { name: 'metal', provider: a.provider, strategy: rolling() },
      { name: 'cloud', provider: b.provider, strategy: rolling() },
    ],
  });
  assert.is(result.status, 'rolled_back');
  assert.equal(outcome(result), ['metal:rolled_back', 'cloud:rolled_back']);
  assert.equal([a.live.get('h1'), b.live.get('app-1')], ['v1', 'v1']);
});

test('failover: a configuration error stops at once (the fallback is never tried)', async () => {
  const a = memoryProvider('metal', ['h1'], { failOn: 'v2', failCode: 'E_CONFIG' });
  const b = memoryProvider('cloud', ['app-1']);
  const { result } = await deploy({
    providers: [
      { name: 'metal', provider: a.provider, strategy: rolling() },
      { name: 'cloud', provider: b.provider, strategy: rolling() },
    ],
  });
  assert.is(result.status, 'rolled_back');
  assert.equal(outcome(result), ['metal:rolled_back', 'cloud:not_tried']);
  assert.equal(b.calls, []);
});

test('failover: an unreachable primary is skipped at preflight (unavailable), the fallback serves', async () => {
  const a = memoryProvider('metal', ['h1'], { down: true });
  const b = memoryProvider('cloud', ['app-1']);
  const { result } = await deploy({
    providers: [
      { name: 'metal', provider: a.provider, strategy: rolling() },
      { name: 'cloud', provider: b.provider, strategy: rolling() },
    ],
  });
  assert.is(result.status, 'succeeded');
  assert.equal(outcome(result), ['metal:unavailable', 'cloud:served']);
  assert.match(result.providers![0]!.error!, 'metal is down');
  assert.equal(a.calls, []);
});

test('all: both in parallel; one fails → both rolled back; with keep_others only the failed one', async () => {
  const a = memoryProvider('metal', ['h1'], { failOn: 'v2' });
  const b = memoryProvider('cloud', ['app-1']);
  const providers = [
    { name: 'metal', provider: a.provider, strategy: rolling() },
    { name: 'cloud', provider: b.provider, strategy: rolling() },
  ];
  const all = await deploy({ mode: 'all', providers });
  assert.is(all.result.status, 'rolled_back');
  assert.equal(outcome(all.result), ['metal:rolled_back', 'cloud:rolled_back']);
  assert.equal([a.live.get('h1'), b.live.get('app-1')], ['v1', 'v1']);

  const keep = await deploy({ mode: 'all', onFailure: 'keep_others', providers });
  assert.is(keep.result.status, 'succeeded');
  assert.equal(outcome(keep.result), ['metal:rolled_back', 'cloud:served']);
  assert.equal([a.live.get('h1'), b.live.get('app-1')], ['v1', 'v2']);
});

test('--provider: only that provider; an unknown one is E_USAGE naming the providers', async () => {
  const a = memoryProvider('metal', ['h1']);
  const b = memoryProvider('cloud', ['app-1']);
  const providers = [
    { name: 'metal', provider: a.provider, strategy: rolling() },
    { name: 'cloud', provider: b.provider, strategy: rolling() },
  ];
  const { result } = await deploy({ providers }, 'v2', 'cloud');
  assert.equal(outcome(result), ['cloud:served']);
  assert.equal([a.live.get('h1'), b.live.get('app-1')], ['v1', 'v2']);
  const err = await deploy({ providers }, 'v2', 'nope').then(
    () => null,
    (e: FraisierError) => e,
  );
  assert.is(err?.code, 'E_USAGE');
  assert.match(err!.hint ?? '', 'metal, cloud');
});

test('SDK bad input: two providers with one priority in failover mode is E_CONFIG when used, before anything is sent', async () => {
  const a = memoryProvider('metal', ['h1']);
  const b = memoryProvider('cloud', ['app-1']);
  const err = await deploy({
    providers: [
      { name: 'metal', priority: 1, provider: a.provider, strategy: rolling() },
      { name: 'cloud', priority: 1, provider: b.provider, strategy: rolling() },
    ],
  }).then(
    () => null,
    (e: FraisierError) => e,
  );
  assert.is(err?.code, 'E_CONFIG');
  assert.match(err!.message, 'providers[1].priority: 1 is also the priority of providers[0] (metal)');
  assert.equal([...a.calls, ...b.calls], []);
});

const YAML = (providers: string, extra = '') => `fraises:
  api:
    git_repo: /srv/git/api.git
    app_path: /srv/api
    environments:
      production:
        deployment_mode: multi_provider
${extra}        providers:
${providers}`;

const METAL = `          - name: metal
            type: bare_metal
            priority: 1
            instances: [h1]
            supervisor_program: api
`;

function yamlError(text: string): FraisierError {
  try {
    parseConfig(text, 'fraises.yaml', { COOLIFY_TOKEN: 't' });
  } catch (e) {
    return e as FraisierError;
  }
  throw new Error('expected an error');
}

test('YAML: each entry is normalized by its provider; the environment is a multi-provider one', () => {
  const c = parseConfig(
    YAML(`${METAL}          - name: cloud
            type: coolify
            priority: 2
            url: https://coolify.example.com
            application_id: abc
`),
    'fraises.yaml',
    { COOLIFY_TOKEN: 't' },
  );
  const mp = c.fraises['api']!.environments['production']!.multiProvider!;
  assert.is(mp.mode, 'failover');
  assert.equal(
    mp.providers.map((p) => [p.name, p.priority, p.env.provider, p.env.keyPath]),
    [
      ['metal', 1, 'bare_metal', 'fraises.api.environments.production.providers[0]'],
      ['cloud', 2, 'coolify', 'fraises.api.environments.production.providers[1]'],
    ],
  );
});

test('YAML bad input: same priority, unknown type, a provider key of another type, on_failure without all', () => {
  const same = yamlError(YAML(METAL + METAL.replace('name: metal', 'name: metal2').replace('[h1]', '[h2]')));
  assert.match(
    same.message,
    /fraises\.yaml: fraises\.api\.environments\.production\.providers\[1\]\.priority: priority 1 is also the priority of providers\[0\] \(metal\).*\(line 16\)/,
  );
  const unknown = yamlError(YAML(METAL.replace('bare_metal', 'bare-metal')));
  assert.match(unknown.message, /providers\[0\]\.type: unknown provider "bare-metal"; known providers: .*bare_metal/);
  const foreign = yamlError(YAML(`${METAL}            application_id: abc\n`));
  assert.match(foreign.message, /providers\[0\]\.application_id: unknown key "application_id"/);
  const onFailure = yamlError(YAML(METAL, '        on_failure: keep_others\n'));
  assert.match(onFailure.message, /production\.on_failure: on_failure only applies with multi_provider_mode: all/);
  const stray = yamlError(YAML(METAL, '        provider: bare_metal\n'));
  assert.match(stray.message, /production\.provider: with deployment_mode: multi_provider, name each provider in providers:/);
});

test.run();
