/**
 * Deployment hooks: real local processes around a deployment to recorded bare_metal hosts. Each
 * on_failure policy, pre and post, a missing command, a script, a hook killed at its timeout, and the
 * YAML form's errors.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock.js';
import { parseConfig } from '../../core/config/load.js';
import { Deployer } from '../../core/deployer.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import { rolling } from '../../strategies/rolling.js';
import { commandHook, hooksFromYaml, type CommandHookOptions } from '../../plugins/hooks.js';
import { recordedBareMetal } from '../support/recorded-hosts.js';

const dir = mkdtempSync(join(tmpdir(), 'fraisier-hooks-'));

async function setup(hooks: Omit<CommandHookOptions, 'cwd'>[], opts: { unhealthy?: string[] } = {}) {
  const hosts = recordedBareMetal({ hosts: ['h1', 'h2'], appPath: '/srv/app', program: 'app', ...(opts.unhealthy ? { unhealthy: opts.unhealthy } : {}) });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'app',
    environment: 'production',
    provider: hosts.provider,
    strategy: rolling({ batchSize: 1 }),
    health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
    plugins: hooks.map((h) => commandHook({ cwd: dir, ...h })),
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  const text = () => entries.map((e) => `${e.level}: ${e.message}`).join('\n');
  return { deployer, hosts, store, entries, text };
}

/** True while the pid exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

test('a pre hook runs in its directory with the deployment in its environment, before any host changes', async () => {
  const { deployer, hosts, entries, text } = await setup([
    { name: 'note', when: 'preDeploy', command: 'echo "$FRAISIER_FRAISE $FRAISIER_ENVIRONMENT $FRAISIER_VERSION $FRAISIER_PREVIOUS_VERSION" > pre.out; pwd' },
  ]);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', text());
  assert.is(readFileSync(join(dir, 'pre.out'), 'utf8'), 'app production v1.1.0 \n');
  assert.match(text(), `note: ${dir}`);
  const ok = entries.findIndex((e) => e.message.startsWith('pre-deployment hook note ok'));
  assert.ok(ok >= 0 && ok < entries.findIndex((e) => e.target !== null), 'hook finished before the first host line');
  assert.equal(hosts.activations(), ['h1:v1.1.0', 'h2:v1.1.0']);
});

for (const onFailure of ['abort', 'rollback'] as const) {
  test(`a failing pre hook with on_failure ${onFailure} stops the deployment before any host changes`, async () => {
    const { deployer, hosts, text } = await setup([{ name: 'check', when: 'preDeploy', command: 'echo "queue not empty" >&2; exit 3', onFailure }]);
    const r = await deployer.deploy({ version: 'v1.1.0' });
    assert.is(r.status, 'failed');
    assert.match(r.error!.message, 'pre-deployment hook check failed: exited with status 3: queue not empty; the deployment stopped before any host changed');
    assert.equal(hosts.activations(), []);
    assert.equal(
      r.targets.map((t) => t.status),
      ['pending', 'pending'],
    );
    void text;
  });
}

test('a failing pre hook with on_failure alert warns, records the warning in the history, and goes on', async () => {
  const { deployer, hosts, store } = await setup([{ name: 'warm', when: 'preDeploy', command: 'exit 1', onFailure: 'alert' }]);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded');
  assert.equal(hosts.activations(), ['h1:v1.1.0', 'h2:v1.1.0']);
  const events = (await store.deployment(r.id!))!.events;
  assert.ok(
    events.some((e) => e.level === 'warn' && e.message.includes('ALERT: pre-deployment hook warm failed: exited with status 1')),
    JSON.stringify(events),
  );
});

test('a failing pre hook with on_failure ignore goes on without a warning', async () => {
  const { deployer, hosts, entries } = await setup([{ name: 'optional', when: 'preDeploy', command: 'exit 1', onFailure: 'ignore' }]);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded');
  assert.equal(hosts.activations(), ['h1:v1.1.0', 'h2:v1.1.0']);
  assert.ok(entries.some((e) => e.message.includes('ignored (on_failure: ignore)')));
  assert.not.ok(entries.some((e) => e.level !== 'info'));
});

test('a hook command that does not exist: exit 127, named clearly; the deployment stops', async () => {
  const { deployer, hosts } = await setup([{ name: 'missing', when: 'preDeploy', command: 'no-such-command-fraisier --flag' }]);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, 'pre-deployment hook missing failed: command not found (exit 127)');
  assert.match(r.error!.message, 'no-such-command-fraisier');
  assert.equal(hosts.activations(), []);
});

test('a hook that hangs past its timeout is killed with its whole process group, and handled by on_failure', async () => {
  const pids = join(dir, 'hang.pids');
  const { deployer, hosts } = await setup([
    { name: 'hang', when: 'preDeploy', command: `sleep 60 & echo "$$ $!" > ${pids}; wait`, timeout: '700ms', onFailure: 'abort' },
  ]);
  const started = Date.now();
  const r = await deployer.deploy({ version: 'v1.1.0' });
  const took = Date.now() - started;
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, /pre-deployment hook hang failed: timed out after 700 ms: its process group \(pid \d+\) was killed/);
  assert.ok(took < 5000, `stopped at the timeout, took ${took} ms`);
  const [shell, sleeper] = readFileSync(pids, 'utf8').trim().split(' ').map(Number);
  await new Promise((res) => setTimeout(res, 300));
  assert.not.ok(alive(shell!), `the hook's shell ${shell} is gone`);
  assert.not.ok(alive(sleeper!), `its child ${sleeper} (same process group) is gone`);
  assert.equal(hosts.activations(), []);
});

test('a script hook runs an executable file; a missing one is named', async () => {
  writeFileSync(join(dir, 'pre.sh'), '#!/bin/sh\necho "script ran for $FRAISIER_VERSION" > script.out\n');
  chmodSync(join(dir, 'pre.sh'), 0o755);
  const ok = await setup([{ name: 'script', type: 'script', when: 'preDeploy', command: 'pre.sh' }]);
  assert.is((await ok.deployer.deploy({ version: 'v1.1.0' })).status, 'succeeded', ok.text());
  assert.is(readFileSync(join(dir, 'script.out'), 'utf8'), 'script ran for v1.1.0\n');
  const bad = await setup([{ name: 'gone', type: 'script', when: 'preDeploy', command: 'nope.sh' }]);
  const r = await bad.deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, `script ${join(dir, 'nope.sh')} does not exist`);
});

test('a database hook gets DATABASE_URL from its variable; the URL and password never reach the output', async () => {
  process.env['HOOK_DB_URL'] = 'postgres://app:Hook-Secret-42@db.example:5432/app';
  const { deployer, text } = await setup([
    { name: 'dump', type: 'database', when: 'preDeploy', command: 'echo "url=$DATABASE_URL" ; echo "$DATABASE_URL" > db.out', databaseUrlEnv: 'HOOK_DB_URL' },
  ]);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'succeeded', text());
  assert.is(readFileSync(join(dir, 'db.out'), 'utf8'), 'postgres://app:Hook-Secret-42@db.example:5432/app\n', 'the hook got the real URL');
  assert.match(text(), 'url=[REDACTED]');
  assert.not.match(text(), 'Hook-Secret-42');
  const unset = await setup([{ name: 'dump', type: 'database', when: 'preDeploy', command: 'true', databaseUrlEnv: 'NOT_SET_HOOK_URL' }]);
  const r2 = await unset.deployer.deploy({ version: 'v1.1.0' });
  assert.match(r2.error!.message, 'the environment variable NOT_SET_HOOK_URL (the database URL) is not set');
});

test('post hook on_failure rollback: every host goes back to the previous release', async () => {
  const { deployer, hosts } = await setup([{ name: 'smoke', when: 'postDeploy', command: 'echo "smoke test failed" >&2; exit 1', onFailure: 'rollback' }]);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.match(r.error!.message, 'post-deployment hook smoke failed: exited with status 1: smoke test failed; rolling the deployment back');
  assert.is(hosts.activations().length, 4, 'two switches forward, two back');
  assert.equal(hosts.activations().slice(0, 2), ['h1:v1.1.0', 'h2:v1.1.0']);
  assert.equal(hosts.activations().slice(2).sort(), ['h1:v1.0.0', 'h2:v1.0.0']);
  assert.equal([...hosts.live.values()], ['v1.0.0', 'v1.0.0']);
  assert.equal(
    r.targets.map((t) => t.status),
    ['rolled_back', 'rolled_back'],
  );
});

test('post hook on_failure abort: the deployment is marked failed, the hosts stay on the new release', async () => {
  const { deployer, hosts, store } = await setup([{ name: 'notify', when: 'postDeploy', command: 'exit 2', onFailure: 'abort' }]);
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, 'the deployment is marked failed, the hosts stay on v1.1.0');
  assert.equal([...hosts.live.values()], ['v1.1.0', 'v1.1.0']);
  assert.is((await store.deployment(r.id!))!.status, 'failed');
});

test('post hook on_failure alert warns and ignore ignores: both stay succeeded', async () => {
  const a = await setup([{ name: 'purge', when: 'postDeploy', command: 'exit 1', onFailure: 'alert' }]);
  const ra = await a.deployer.deploy({ version: 'v1.1.0' });
  assert.is(ra.status, 'succeeded');
  assert.ok(a.entries.some((e) => e.level === 'warn' && e.message.startsWith('ALERT: post-deployment hook purge failed')));
  const i = await setup([{ name: 'purge', when: 'postDeploy', command: 'exit 1', onFailure: 'ignore' }]);
  const ri = await i.deployer.deploy({ version: 'v1.1.0' });
  assert.is(ri.status, 'succeeded');
  assert.not.ok(i.entries.some((e) => e.level !== 'info'));
  assert.equal([...i.hosts.live.values()], ['v1.1.0', 'v1.1.0']);
});

test('post hooks do not run when the deployment failed', async () => {
  const { deployer } = await setup([{ name: 'after', when: 'postDeploy', command: `touch ${join(dir, 'post-ran')}` }], { unhealthy: ['h1'] });
  const r = await deployer.deploy({ version: 'v1.1.0' });
  assert.is(r.status, 'rolled_back');
  assert.not.ok(existsSync(join(dir, 'post-ran')));
});

const YAML = (hook: string) => `fraises:
  api:
    git_repo: /repo.git
    app_path: /srv/api
    environments:
      production:
        instances: [h1]
        supervisor_program: api
        pre_deployment_hooks:
${hook}`;

test('YAML: an unknown on_failure names the file, the key and the allowed values', () => {
  assert.throws(
    () => parseConfig(YAML('          - name: backup\n            command: ./backup.sh\n            on_failure: retry\n'), '/etc/fraises.yaml'),
    (err: Error) =>
      err.message.includes(
        '/etc/fraises.yaml: fraises.api.environments.production.pre_deployment_hooks[0].on_failure: expected one of: abort, rollback, alert, ignore, got "retry" (line 12)',
      ),
  );
});

test('YAML: hooks normalize with defaults (abort pre, alert post, 5m, command) and become plugins in order', () => {
  const c = parseConfig(
    YAML(
      '          - { name: backup, type: database, command: "pg_dump -f b.sql", timeout: 30s, on_failure: abort }\n          - { name: check, command: ./check.sh }\n        post_deployment_hooks:\n          - { name: smoke, type: script, command: bin/smoke }\n',
    ),
    '/etc/deploy/fraises.yaml',
  );
  const h = c.fraises['api']!.environments['production']!.hooks!;
  assert.equal(
    h.pre.map((x) => [x.name, x.type, x.timeoutMs, x.onFailure]),
    [
      ['backup', 'database', 30000, 'abort'],
      ['check', 'command', 300000, 'abort'],
    ],
  );
  assert.equal(
    h.post.map((x) => [x.name, x.type, x.command, x.onFailure]),
    [['smoke', 'script', '/etc/deploy/bin/smoke', 'alert']],
  );
  assert.equal(
    hooksFromYaml(h, { cwd: '/etc/deploy' }).map((p) => p.name),
    ['plugin:hook:backup', 'plugin:hook:check', 'plugin:hook:smoke'],
  );
  assert.throws(
    () => parseConfig(YAML('          - { name: a, command: x }\n          - { name: a, command: y }\n'), 'f.yaml'),
    /pre_deployment_hooks\[1\]\.name: hook name "a" is used twice/,
  );
  assert.throws(
    () => parseConfig(YAML('          - { name: a, command: x, timeout: soon }\n'), 'f.yaml'),
    /pre_deployment_hooks\[0\]\.timeout: expected a duration/,
  );
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
