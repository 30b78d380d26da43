/**
 * The round trips of a bare_metal deployment (issue 13 goals 1 and 2), with the provider's real scripts
 * run on this machine (a local executor that records every command) against a real git repository:
 * - a one-host deploy checks, resolves and prepares in ONE command, then activates and prunes old
 *   releases in ONE more: two commands where there were four;
 * - a failed check or an unknown ref in that one command changes nothing on the host, and is reported
 *   exactly as the separate preflight / resolution round trips report it (a preDeploy hook turns the
 *   folding off, so the same deployer shows the old path side by side);
 * - keep_releases is honoured by the pruning folded into activate, and a rollback still finds the
 *   previous release.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { render, type Command } from '../../core/exec/command.js';
import type { ExecResult, Executor, RunOptions } from '../../core/exec/executor.js';
import { LocalExecutor } from '../../core/exec/local.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import { bareMetal, type BareMetalOptions } from '../../providers/bare-metal.js';
import { rolling } from '../../strategies/rolling.js';
import { tempRepo } from '../support/git-repo.js';

const { dir, repo, git } = tempRepo('fraisier-round-trips-');
for (const v of ['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.3.0']) {
  execFileSync('sh', ['-c', `echo ${v} > "$1/VERSION"`, 'sh', repo]);
  git('add', 'VERSION');
  git('commit', '-qm', v);
  git('tag', v);
}

/** This machine as the one host, every command it runs recorded by label. */
class Recorded implements Executor {
  readonly name = 'web1';
  readonly labels: string[] = [];
  private readonly local = new LocalExecutor('web1');
  readonly stats = this.local.stats;
  connectTcp(host: string, port: number) {
    return this.local.connectTcp(host, port);
  }
  run(cmd: Command, options?: RunOptions): Promise<ExecResult> {
    this.labels.push(cmd.label ?? render(cmd));
    return this.local.run(cmd, options);
  }
  async close(): Promise<void> {}
}

let apps = 0;
async function setup(options: { service?: BareMetalOptions['service']; build?: string; preDeployHook?: boolean; hosts?: string[]; repo?: string } = {}) {
  const app = join(dir, `app${++apps}`);
  const host = new Recorded();
  const provider = bareMetal({
    hosts: options.hosts ?? ['web1'],
    appPath: app,
    source: { type: 'git', repo: options.repo ?? repo },
    service: options.service ?? { type: 'command', restart: 'true' },
    keepReleases: 2,
    ...(options.build ? { build: options.build } : {}),
    connect: async () => host,
  });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider,
    strategy: rolling({ batchSize: 1, waitBetweenBatches: 0 }),
    health: { checks: [exec(`test -f ${app}/current/VERSION`)], retries: 1, retryDelay: '1s' },
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  // a preDeploy hook runs between preflight and prepare: the deployer then keeps them apart
  if (options.preDeployHook) deployer.hooks.preDeploy.tapPromise('test', async () => {});
  const releases = () => (existsSync(join(app, 'releases')) ? readdirSync(join(app, 'releases')).sort() : null);
  const current = () => (existsSync(join(app, 'current')) ? readlinkSync(join(app, 'current')) : null);
  return { app, host, deployer, store, entries, releases, current };
}

test('one host: checks + resolution + prepare in one command, switch + restart + pruning in one more', async () => {
  const s = await setup();
  const r = await s.deployer.deploy({ version: 'v1.0.0' });
  assert.is(r.status, 'succeeded', r.error?.message);
  assert.equal(
    s.host.labels.filter((l) => !l.startsWith('test -f /')),
    ['preflight checks, resolve v1.0.0 and prepare the release', 'switch to v1.0.0 and restart'],
  );
  assert.is(s.current(), 'releases/v1.0.0');
  assert.is(execFileSync('cat', [join(s.app, 'current', 'VERSION')], { encoding: 'utf8' }).trim(), 'v1.0.0');
  assert.is(execFileSync('cat', [join(s.app, 'current', 'REVISION')], { encoding: 'utf8' }).trim(), git('rev-parse', 'v1.0.0').trim());
  assert.equal(
    r.targets.map((t) => [t.name, t.fromVersion, t.toVersion, t.status]),
    [['web1', null, 'v1.0.0', 'healthy']],
  );
  // a branch resolves to the tag on its commit, as before
  const main = await s.deployer.deploy({ version: 'main' });
  assert.is(main.toVersion, 'v1.3.0');
  assert.is(s.current(), 'releases/v1.3.0');
});

test('the one command fetches only when the mirror lacks a branch or tag as the repository has it now', async () => {
  const own = tempRepo('fraisier-fetch-skip-');
  const commit = (v: string) => {
    execFileSync('sh', ['-c', `echo ${v} > "$1/VERSION"`, 'sh', own.repo]);
    own.git('add', 'VERSION');
    own.git('commit', '-qm', v);
  };
  for (const v of ['v1.0.0', 'v1.1.0']) {
    commit(v);
    own.git('tag', v);
  }
  const s = await setup({ repo: own.repo });
  // every fetch (not the first clone) writes the mirror's FETCH_HEAD
  const fetchHead = join(s.app, 'repo', 'FETCH_HEAD');
  const deploy = async (version: string) => {
    rmSync(fetchHead, { force: true });
    s.host.labels.length = 0;
    const r = await s.deployer.deploy({ version });
    assert.is(r.status, 'succeeded', r.error?.message);
    assert.equal(
      s.host.labels.filter((l) => !l.startsWith('test -f /')),
      [`preflight checks, resolve ${version} and prepare the release`, `switch to ${r.toVersion} and restart`],
    );
    return { version: r.toVersion, current: s.current(), fetched: existsSync(fetchHead) };
  };
  assert.equal(await deploy('v1.0.0'), { version: 'v1.0.0', current: 'releases/v1.0.0', fetched: false }, 'the first deploy clones');
  assert.equal(await deploy('v1.1.0'), { version: 'v1.1.0', current: 'releases/v1.1.0', fetched: false }, 'the mirror has it: no fetch');
  commit('v1.2.0');
  own.git('tag', 'v1.2.0');
  assert.equal(await deploy('v1.2.0'), { version: 'v1.2.0', current: 'releases/v1.2.0', fetched: true }, 'a new tag and commit: fetched');
  assert.equal(await deploy('main'), { version: 'v1.2.0', current: 'releases/v1.2.0', fetched: false }, 'main as the mirror has it: no fetch');
  // a new tag on a commit the mirror has: fetched, so the release is named after it as before
  own.git('tag', 'v1.2.1', 'v1.2.0');
  assert.equal(await deploy('main'), { version: 'v1.2.1', current: 'releases/v1.2.1', fetched: true }, 'a new tag on a known commit');
  // main moved back to a commit the mirror has (a force push): the mirror's main is stale, so it fetches
  own.git('update-ref', 'refs/heads/main', own.git('rev-parse', 'v1.0.0').trim());
  assert.equal(await deploy('main'), { version: 'v1.0.0', current: 'releases/v1.0.0', fetched: true }, 'a branch moved to a known commit');
  // a branch deleted in the repository is pruned from the mirror (a fetch), so it no longer resolves
  own.git('branch', 'gone', 'v1.1.0');
  assert.equal((await deploy('gone')).version, 'v1.1.0');
  own.git('branch', '-D', 'gone');
  const r = await s.deployer.deploy({ version: 'gone' });
  assert.is(r.error?.message, `cannot resolve "gone" in ${own.repo} (on web1): unknown ref gone`);
  assert.is(s.current(), 'releases/v1.1.0', 'nothing changed');
  const rows = await s.store.history();
  assert.equal(
    rows.map((h) => [h.status, h.toVersion]),
    [
      ['failed', 'gone'],
      ['succeeded', 'v1.1.0'],
      ['succeeded', 'v1.0.0'],
      ['succeeded', 'v1.2.1'],
      ['succeeded', 'v1.2.0'],
      ['succeeded', 'v1.2.0'],
      ['succeeded', 'v1.1.0'],
      ['succeeded', 'v1.0.0'],
    ],
  );
});

test('with a preDeploy hook (or more hosts) preflight and prepare stay apart, and the outcome is the same', async () => {
  const s = await setup({ preDeployHook: true });
  const r = await s.deployer.deploy({ version: 'v1.0.0' });
  assert.is(r.status, 'succeeded', r.error?.message);
  assert.equal(
    s.host.labels.filter((l) => !l.startsWith('test -f /')),
    ['preflight checks', 'prepare release v1.0.0 from git', 'switch to v1.0.0 and restart'],
    'preflight before the hook, prepare after it',
  );
  assert.is(s.current(), 'releases/v1.0.0');
});

test('keep_releases 2 is honoured by the pruning folded into activate; a rollback still finds the previous release', async () => {
  const s = await setup();
  for (const v of ['v1.0.0', 'v1.1.0', 'v1.2.0', 'v1.3.0']) assert.is((await s.deployer.deploy({ version: v })).status, 'succeeded');
  assert.equal(s.releases(), ['v1.2.0', 'v1.3.0'], 'the live release and the previous one');
  assert.not.ok(s.host.labels.includes('remove old releases'), 'no cleanup round trip of its own');
  const back = await s.deployer.rollback();
  assert.is(back.status, 'succeeded', back.error?.message);
  assert.is(back.toVersion, 'v1.2.0');
  assert.is(s.current(), 'releases/v1.2.0');
  assert.equal(s.releases(), ['v1.2.0', 'v1.3.0'], 'the release rolled back from stays for a roll forward');
});

/** The error, history row and host state of a deploy, with and without the folding. */
async function failing(version: string, options: Parameters<typeof setup>[0]) {
  const out = [];
  for (const preDeployHook of [false, true]) {
    const s = await setup({ ...options, preDeployHook });
    const r = await s.deployer.deploy({ version });
    const [row] = await s.store.history();
    out.push({
      error: r.error,
      status: r.status,
      targets: r.targets.map((t) => [t.name, t.status, t.toVersion]),
      history: [row?.status, row?.toVersion],
      app: existsSync(s.app) ? readdirSync(s.app).sort() : null,
      releases: s.releases(),
      current: s.current(),
      labels: s.host.labels,
      message: s.entries.filter((e) => e.level === 'error').map((e) => e.message),
    });
  }
  const [folded, apart] = out;
  const { labels: fl, app: fa, ...f } = folded!;
  const { labels: al, app: aa, ...a } = apart!;
  assert.equal(f, a, 'reported exactly as the separate round trips report it');
  return { folded: folded!, apart: apart!, fl, al, fa, aa };
}

test('a failed check in the one command changes nothing on the host and fails as preflight does', async () => {
  const { folded, fl } = await failing('v1.0.0', { service: { type: 'systemd', unit: 'fraisier-no-such-unit.service' } });
  assert.is(folded.error?.code, 'E_PREFLIGHT');
  assert.match(folded.error!.message, 'preflight failed on web1: systemd unit fraisier-no-such-unit.service is not known on this host');
  assert.is(folded.status, 'failed');
  assert.equal(folded.app, null, 'the app path was not even created');
  assert.equal(fl, ['preflight checks, resolve v1.0.0 and prepare the release'], 'one command, nothing after it');
});

test('an unknown ref in the one command creates no release and fails as the resolution does', async () => {
  const { folded, fa, aa, fl } = await failing('v9.9.9', {});
  assert.equal(
    fl,
    ['preflight checks, resolve v9.9.9 and prepare the release', 'check free disk space'],
    'then only the disk probe any failed resolution runs',
  );
  assert.is(folded.error?.code, 'E_VERSION');
  assert.is(folded.error?.message, `cannot resolve "v9.9.9" in ${repo} (on web1): unknown ref v9.9.9`);
  assert.equal(folded.releases, null, 'no release directory');
  assert.equal(fa, ['repo'], 'only the mirror, as the resolution round trip leaves it');
  assert.equal(aa, ['repo']);
});

test('a build that fails in the one command fails as prepare does, and nothing goes live', async () => {
  const { folded, fl } = await failing('v1.0.0', { build: 'echo broken >&2; exit 1' });
  assert.is(folded.error?.code, 'E_COMMAND');
  assert.match(folded.error!.message, 'prepare release v1.0.0 from git exited 4');
  assert.match(folded.error!.message, 'build failed');
  assert.not.match(folded.error!.message, 'checked=ok');
  assert.equal(folded.targets, [['web1', 'failed', null]]);
  assert.equal(folded.releases, [], 'the half-built release is gone');
  assert.is(folded.current, null);
  assert.equal(fl, ['preflight checks, resolve v1.0.0 and prepare the release', 'check free disk space'], 'then only the disk probe any failed prepare runs');
});

test('a dry run of a one-host deploy runs no changing command', async () => {
  const s = await setup();
  const r = await s.deployer.deploy({ version: 'v1.0.0', dryRun: true });
  assert.is(r.status, 'succeeded', r.error?.message);
  assert.not.ok(
    s.host.labels.some((l) => l.includes('prepare')),
    s.host.labels.join(', '),
  );
  assert.is(existsSync(s.app), false, 'nothing created');
});

test.run();
