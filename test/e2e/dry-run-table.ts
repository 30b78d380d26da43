/**
 * End to end: the command × flag table. Every command of the command list (core/commands/) × every
 * flag it declares, through both front ends (`fraisier` over fraises.yaml, and `npx tsx deploy.ts
 * <env> <command>`), with `--dry-run` where the command changes hosts. Each flag is either honoured or
 * refused: a call exits as expected, says what it would do, and changes nothing on any host, in the
 * history, in the lock table or in the migrated database; a flag a command does not declare is refused
 * (exit 2, naming the flag and the command) rather than ignored or run for real.
 *
 * The table is long, so each front end is its own test file (dry-run.test.ts for `fraisier`,
 * dry-run-script.test.ts for deploy.ts), and the test runner runs the two at once, each on its own lab.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS, commandsOf, globalOptionsOf, optionsOf, type Command, type FrontEnd } from '../../core/commands/index.js';
import { Locks } from '../../core/state/lock.js';
import { openStore } from '../../core/state/store.js';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { freshDatabase, publicTables, stopOwnPostgres } from '../support/postgres.js';
import { allHosts, bin, fraisier, lab, labYaml, repoRoot, resetHosts, run, workspace, type Run } from './helpers.js';

let env: LabEnv;
let ws: string;
/** The database of the `migrating` environment (its migrations are never applied here). */
let dbUrl: string;
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');

/**
 * What a dry run must not change: each host's `current`, its releases and the app's pid; the history;
 * the lock; the tables of the migrated database.
 */
async function snapshot(): Promise<unknown> {
  const hosts = await Promise.all(
    env.hosts.map(async (h) => (await hostExec(env, h.name, 'readlink /srv/app/current; ls -1a /srv/app/releases; supervisorctl pid app')).stdout),
  );
  const store = await openStore({ path: join(ws, '.fraisier', 'state.db') });
  try {
    return { hosts, history: await store.history(), locks: await new Locks(store).list(), tables: await publicTables(dbUrl) };
  } finally {
    await store.close();
  }
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  dbUrl = await freshDatabase('e2e_dry');
  process.env['APP_DATABASE_URL'] = dbUrl; // read by both front ends (they inherit the environment)
  // `migrating`: production's hosts plus a database, for `migrate`; it is never deployed
  ws = workspace(
    labYaml(env, {
      batch: 3,
      extraEnvs: `      migrating:
        provider: bare_metal
        instances: [h1, h2, h3]
        supervisor_program: app
        database:
          type: postgresql
          url_env: APP_DATABASE_URL
          migrations_dir: ./migrations
`,
    }),
  );
  mkdirSync(join(ws, 'migrations'));
  writeFileSync(join(ws, 'migrations', '001_users.sql'), 'create table users (id serial primary key);');
  writeFileSync(join(ws, 'package.json'), '{"type":"module"}');
  const provider = `bareMetal({
        hosts: ['h1', 'h2', 'h3'],
        appPath: '/srv/app',
        source: { type: 'git', repo: ${JSON.stringify(env.appRepo)}, branch: 'main' },
        service: { type: 'supervisor', program: 'app' },
        ssh: { configFile: ${JSON.stringify(env.sshConfig)} },
      })`;
  writeFileSync(
    join(ws, 'deploy.ts'),
    `import { bareMetal, defineDeploy, http, psqlMigration, rolling } from ${JSON.stringify(join(repoRoot, 'index.ts'))};
export default defineDeploy({
  name: 'app',
  environments: {
    production: {
      provider: ${provider},
      strategy: rolling({ batchSize: 3 }),
      health: { checks: [http({ url: 'http://localhost:8000/health', expectBody: 'ok' })], retries: 8, retryDelay: '250ms', timeout: '2s' },
    },
    migrating: {
      provider: ${provider},
      strategy: rolling({ batchSize: 3 }),
      plugins: [psqlMigration({ dir: './migrations', urlEnv: 'APP_DATABASE_URL' })],
    },
  },
});
`,
  );
  for (const v of ['v1.0.0', 'v1.1.0']) {
    const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', v);
    assert.is(r.code, 0, r.out);
  }
});

/** Generous: the machine may be loaded, and a deploy.ts call compiles the script first. */
const CALL_TIMEOUT_MS = 300_000;
const frontEnds: Record<string, (args: string[]) => Promise<Run>> = {
  fraisier: (args) => fraisier(ws, args[0]!, 'app', 'production', ...args.slice(1)),
  'deploy.ts': (args) => run(tsx, ['deploy.ts', 'production', ...args], { cwd: ws, timeoutMs: CALL_TIMEOUT_MS }),
};

/** The front ends' names in the command list, and how each runs a command line. */
const FRONT_ENDS: Record<FrontEnd, { label: string; call(argv: string[]): Promise<Run> }> = {
  fraisier: { label: 'fraisier', call: (argv) => run(process.execPath, [bin, ...argv], { cwd: ws, timeoutMs: CALL_TIMEOUT_MS }) },
  script: { label: 'deploy.ts', call: (argv) => run(tsx, ['deploy.ts', ...argv], { cwd: ws, timeoutMs: CALL_TIMEOUT_MS }) },
};

/** The environment a command runs on: `migrate` needs the one with a database. */
const envFor = (command: Command) => (command.name === 'migrate' ? 'migrating' : 'production');

/** A command line: the front end's positionals, then the options; `--dry-run` added where the command changes hosts. */
async function argvFor(front: FrontEnd, command: Command, options: string[]): Promise<string[]> {
  const base = command.name === 'state' ? ['migrate', '--to', await freshDatabase('e2e_copy')] : command.name === 'slo' ? ['check'] : [];
  const dry = command.changesHosts && !options.includes('--dry-run') ? ['--dry-run'] : [];
  const where = front === 'fraisier' ? [command.name, ...(command.scope === 'environment' ? ['app', envFor(command)] : [])] : [envFor(command), command.name];
  return [...where, ...base, ...options, ...dry];
}

/** How each option is given in the table. An option missing here fails the table: add it. */
const SAMPLE: Record<string, string[]> = {
  version: ['--version', 'v1.2.0'],
  to: ['--to', 'v1.0.0'],
  force: ['--force'],
  'dry-run': ['--dry-run'],
  'wait-lock': ['--wait-lock=5'],
  'canary-only': ['--canary-only'],
  'complete-rollout': ['--complete-rollout'],
  phase: ['--phase', 'prepare'],
  fraise: ['--fraise', 'app'],
  env: ['--env', 'production'],
  limit: ['--limit', '1'],
  id: ['--id', '2'],
  days: ['--days', '7'],
  json: ['--json'],
  config: ['-c', 'fraises.yaml'],
  scheduled: ['--scheduled', '+1h'],
  once: ['--once'],
  poll: ['--poll', '1s'],
  listen: ['--listen', '127.0.0.1:0'],
  all: ['--all'],
  // multi-provider environments only (this file has none): proven in test/e2e/multi-provider.test.ts
  provider: ['--provider', 'coolify_cloud'],
  reason: ['--reason', 'wrong tag'],
  'max-parallel': ['--max-parallel', '2'],
  'fail-fast': ['--fail-fast'],
  textfile: ['--textfile', 'metrics.prom'],
  hosts: ['--hosts'],
  ts: ['--ts'],
  environment: ['--environment', 'production'],
  host: ['--host', 'h1'],
  repo: ['--repo', '/tmp/x.git'],
  branch: ['--branch', 'main'],
  'app-path': ['--app-path', '/srv/app'],
  service: ['--service', 'app.service'],
  supervisor: ['--supervisor', 'app'],
  'health-url': ['--health-url', 'http://localhost:8000/health'],
  output: ['--output', 'init-out.ts'],
  shell: ['--shell', 'bash'],
};

/** The JSON on stdout of a `--json` call (or undefined without `--json`). */
function jsonOf(r: Run, given: Set<string>): any {
  if (!given.has('json')) return undefined;
  try {
    return JSON.parse(r.stdout);
  } catch {
    assert.unreachable(`--json: stdout is not JSON: ${r.stdout}`);
  }
}

/**
 * What each command must say, given the options of the row. The state: v1.0.0 then v1.1.0 deployed to
 * production by `deploy`, both succeeded; nothing locked; the `migrating` database empty.
 */
const EXPECT: Record<string, (r: Run, given: Set<string>) => void> = {
  deploy(r, given) {
    if (given.has('canary-only')) {
      // with --complete-rollout too (the row of every flag): the two exclude each other
      assert.is(r.code, 2, r.out);
      assert.match(r.stderr, '--canary-only and --complete-rollout exclude each other');
      return;
    }
    assert.is(r.code, 0, r.out);
    if (given.has('scheduled')) {
      // resolved now, queued nothing (the queue is empty in the next rows)
      const j = jsonOf(r, given);
      if (j) assert.equal([j.id, j.dryRun, j.version, j.flags.force === true], [null, true, 'v1.2.0', given.has('force')]);
      else assert.match(r.stdout, /^Would queue app\/production \S+/);
      if (given.has('force') && !j) assert.match(r.stdout, ', --force');
      return;
    }
    assert.match(r.out, '(dry run)');
    assert.match(r.out, given.has('version') ? 'v1.1.0 → v1.2.0' : /v1\.1\.0 → \S+/);
    if (given.has('force')) assert.match(r.out, '(--force: no health checks)');
    else assert.not.match(r.out, '(--force: no health checks)');
    const j = jsonOf(r, given);
    if (j) assert.equal([j.kind, j.dryRun, j.status, j.fromVersion, j.id], ['deploy', true, 'succeeded', 'v1.1.0', null]);
  },
  promote(r) {
    // production uses the rolling strategy and has no canary open
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, 'error[E_USAGE] --complete-rollout (promote) needs the canary strategy; app/production uses strategy:rolling');
  },
  rollback(r, given) {
    assert.is(r.code, 0, r.out);
    assert.match(r.out, '(dry run)');
    assert.match(r.out, 'v1.1.0 → v1.0.0');
    if (given.has('force')) assert.match(r.out, '(--force: no health checks)');
    else assert.not.match(r.out, '(--force: no health checks)');
    const j = jsonOf(r, given);
    if (j) assert.equal([j.kind, j.dryRun, j.toVersion, j.id], ['rollback', true, 'v1.0.0', null]);
  },
  migrate(r, given) {
    assert.is(r.code, 0, r.out);
    const phase = given.has('phase') ? 'prepare' : 'cleanup';
    assert.match(r.out, `Migrating app/migrating (${phase} phase, live release (none)) (dry run)`);
    const j = jsonOf(r, given);
    if (j) assert.equal(j, [{ phase: 'cleanup', applied: [], pending: [] }]);
    else assert.match(r.stdout, phase === 'prepare' ? 'Pending prepare migration(s): 001_users.sql' : 'No pending cleanup migrations');
  },
  status(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j)
      assert.equal(
        j.targets.map((t: { current: string }) => t.current),
        ['v1.1.0', 'v1.1.0', 'v1.1.0'],
      );
    else for (const h of ['h1', 'h2', 'h3']) assert.match(r.stdout, new RegExp(`${h}\\s+v1\\.1\\.0\\s`));
  },
  'status-all'(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal(j.find((row: { environment: string }) => row.environment === 'production').version, 'v1.1.0');
    else assert.match(r.stdout, /app\s+production\s+v1\.1\.0/);
  },
  history(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (given.has('id')) {
      // one deployment in full (the second of the set-up): its targets and events
      if (j) assert.equal([j.id, j.toVersion, j.targets.length, j.events.length > 0], [2, 'v1.1.0', 3, true]);
      else assert.match(r.stdout, /^Deployment #2: app\/production deploy v1\.0\.0 → v1\.1\.0: succeeded$/m);
      return;
    }
    const expected = given.has('limit') ? ['v1.1.0'] : ['v1.1.0', 'v1.0.0'];
    if (j)
      assert.equal(
        j.map((d: { toVersion: string }) => d.toVersion),
        expected,
      );
    else assert.is(r.stdout.split('\n').filter((l) => /\bsucceeded\b/.test(l)).length, expected.length, r.stdout);
  },
  stats(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal([j[0].fraise, j[0].total, j[0].successRate], ['app', 2, 1]);
    else assert.match(r.stdout, /app\s+2\s+100\.0%\s+0\.0%\s+0\s/);
  },
  cancel(r, given) {
    // nothing runs: exit 1, nothing recorded
    assert.is(r.code, 1, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal([j.outcome, j.lock], ['not_running', null]);
    else assert.match(r.stdout, 'Nothing to cancel: no deployment of app/production is running');
  },
  unlock(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal(j, { removed: null });
    else assert.match(r.stdout, 'app/production was not locked');
  },
  queue(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal(j, []);
    else assert.match(r.stdout, 'No scheduled deployments.');
  },
  worker(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal(j, { ran: [], waiting: 0, wouldRun: [], dryRun: true });
    else assert.match(r.stdout, 'Nothing to run (dry run)');
  },
  serve(r, given) {
    // this file has no webhooks: block: serve refuses to start (test/core/webhooks.test.ts has the rest)
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, 'serve needs a top-level webhooks: block');
    const j = jsonOf(r, given);
    if (j) assert.is(j.error.code, 'E_CONFIG');
  },
  state(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal([j.deployments, j.to.includes('***')], [2, true]);
    else assert.match(r.stdout, /Copied 2 deployment\(s\), \d+ target result\(s\) and \d+ event\(s\) to postgres/);
  },
  slo(r, given) {
    // this file has no deployment_slo: `slo check` has nothing to check (test/e2e/slo.test.ts has the rest)
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, given.has('fraise') ? 'no deployment_slo for app: nothing to check' : 'no deployment_slo: nothing to check');
    const j = jsonOf(r, given);
    if (j) assert.is(j.error.code, 'E_CONFIG');
  },
  metrics(r, given) {
    assert.is(r.code, 0, r.out);
    if (given.has('textfile')) {
      assert.is(r.stdout, '');
      assert.match(
        readFileSync(join(ws, 'metrics.prom'), 'utf8'),
        'fraisier_deployments_total{fraise="app",environment="production",kind="deploy",status="succeeded"} 2',
      );
    } else if (given.has('json')) {
      const deployed = jsonOf(r, given).samples.find(
        (x: { name: string; labels: Record<string, string> }) => x.name === 'fraisier_deployments_total' && x.labels['status'] === 'succeeded',
      );
      assert.equal(deployed, {
        name: 'fraisier_deployments_total',
        labels: { fraise: 'app', environment: 'production', kind: 'deploy', status: 'succeeded' },
        value: 2,
      });
    } else assert.match(r.stdout, 'fraisier_deployments_total{fraise="app",environment="production",kind="deploy",status="succeeded"} 2');
  },
  check(r, given) {
    assert.is(r.code, 0, r.out);
    const j = jsonOf(r, given);
    if (j) assert.equal([j.valid, j.fraises, j.environments], [true, 1, 2]);
    else assert.match(r.stdout, 'valid (1 fraise(s), 2 environment(s))');
    if (given.has('hosts')) assert.match(r.stdout, /All \d+ host check\(s\) passed/);
  },
  init(r, given) {
    // never prompts without a terminal; every flag at once names the two that exclude each other
    assert.is(r.code, 2, r.out);
    // (alone, or with --config: the workspace already has a fraises.yaml, which init never overwrites without --force)
    assert.match(r.stderr, given.has('service') ? '--service and --supervisor are exclusive' : 'fraises.yaml exists: not overwritten');
    assert.not.ok(existsSync(join(ws, 'init-out.ts')), 'nothing written');
  },
  completion(r) {
    assert.is(r.code, 0, r.out);
    assert.match(r.stdout, '###-begin-fraisier-completions-###');
  },
};

/** Runs `fn` over `items`, `width` at a time. */
async function inPool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

/** Registers the table's tests for one front end and runs them. */
export function table(front: FrontEnd): void {
  if (front === 'fraisier')
    test('the table covers every command of the command list, and every option has a sample', () => {
      for (const c of COMMANDS) {
        assert.ok(EXPECT[c.name], `no expectation for ${c.name}`);
        for (const o of Object.keys(c.options)) assert.ok(SAMPLE[o] || (c.name === 'state' && o === 'to'), `no sample for --${o} of ${c.name}`);
      }
    });

  const { label, call } = FRONT_ENDS[front];
  for (const command of commandsOf(front)) {
    // Rows: the command alone (with --dry-run where it changes hosts); with every flag it declares at
    // once (each one's effect is checked); with the global options. State's --to is always given.
    const own = Object.keys(optionsOf(command, front)).filter((o) => !(command.name === 'state' && o === 'to') && o !== 'provider');
    const rows = [[], ...(own.length > 0 ? [own] : []), Object.keys(globalOptionsOf(front))];
    test(`${label} ${command.name}: ${rows.map((r) => (r.length ? r.map((o) => `--${o}`).join(' ') : '(alone)')).join(' | ')}: honoured${command.changesHosts ? ' as a dry run' : ''}, nothing changed`, async () => {
      const before = await snapshot();
      await inPool(rows, 3, async (row) => {
        const argv = await argvFor(
          front,
          command,
          row.flatMap((o) => SAMPLE[o]!),
        );
        const r = await call(argv);
        try {
          EXPECT[command.name]!(r, new Set(row));
        } catch (err) {
          (err as Error).message = `${label} ${argv.join(' ')}: ${(err as Error).message}`;
          throw err;
        }
      });
      assert.equal(await snapshot(), before, 'nothing changed on the hosts, in the history, the locks or the database');
    });
  }

  test(`${label}: every flag a command does not declare is refused (exit 2, naming each), nothing changed`, async () => {
    const before = await snapshot();
    const every = [...new Set(COMMANDS.flatMap((c) => Object.keys(c.options)).concat(Object.keys(globalOptionsOf('fraisier'))))];
    let combinations = 0;
    await inPool(commandsOf(front), 3, async (command) => {
      const accepted = [...Object.keys(optionsOf(command, front)), ...Object.keys(globalOptionsOf(front))];
      const foreign = every.filter((o) => !accepted.includes(o));
      combinations += foreign.length;
      const argv = await argvFor(
        front,
        command,
        foreign.flatMap((o) => [`--${o}`, ...(SAMPLE[o]!.length > 1 ? ['x'] : [])]),
      );
      const r = await call(argv);
      assert.is(r.code, 2, `${label} ${argv.join(' ')}: ${r.out}`);
      assert.match(r.stderr, `error[E_USAGE] ${command.name} does not take --`, `${label} ${argv.join(' ')}`);
      const named = /does not take (.*)/.exec(r.stderr)![1]!.split(', ');
      assert.equal(named.sort(), foreign.map((o) => `--${o}`).sort(), `${label} ${argv.join(' ')}: each refused flag is named`);
    });
    assert.ok(combinations > (front === 'fraisier' ? 50 : 40), `${combinations} refused combinations`);
    assert.equal(await snapshot(), before, 'none of them ran');
  });

  test(`${label}: a declared flag with a bad value is an error, so it is read, not ignored; nothing changed`, async () => {
    const before = await snapshot();
    const named = (n: string) => COMMANDS.find((c) => c.name === n)!;
    const bad: [Command, string[], number, string][] = [
      [named('deploy'), ['--wait-lock=soon'], 2, '--wait-lock: expected a number of seconds'],
      // a release that cannot be resolved on the host: exit 1 (docs/cli.md, exit codes)
      [named('rollback'), ['--to', 'v9.9.9'], 1, 'error[E_VERSION] cannot resolve "v9.9.9"'],
      [named('migrate'), ['--phase', 'later'], 2, 'Given: "later", Choices: "prepare", "cleanup"'],
      [named('history'), ['--limit', '0'], 2, '--limit: expected a whole number of at least 1, got "0"'],
      [named('history'), ['--id', 'last'], 2, '--id: expected a whole number of at least 1, got "last"'],
      [named('stats'), ['--days', 'abc'], 2, '--days: expected a whole number of at least 1, got "abc"'],
    ];
    await inPool(bad, 3, async ([command, options, code, says]) => {
      const argv = await argvFor(front, command, options);
      const r = await call(argv);
      assert.is(r.code, code, `${label} ${argv.join(' ')}: ${r.out}`);
      assert.match(r.stderr, says, `${label} ${argv.join(' ')}`);
    });
    assert.equal(await snapshot(), before);
  });

  test(`${label} migrate --dry-run without migrations configured: an error, nothing changed`, async () => {
    const before = await snapshot();
    const r = await frontEnds[label]!(['migrate', '--dry-run']);
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, 'app/production has no migrations configured');
    assert.equal(await snapshot(), before);
  });

  if (front === 'script')
    test('deploy.ts refuses an option of another command instead of ignoring it', async () => {
      const before = await snapshot();
      const a = await frontEnds['deploy.ts']!(['rollback', '--version', 'v1.2.0']);
      assert.is(a.code, 2, a.out);
      assert.match(a.stderr, 'rollback does not take --version');
      const b = await frontEnds['deploy.ts']!(['deploy', '--to', 'v1.0.0', '--version', 'v1.2.0']);
      assert.is(b.code, 2, b.out);
      assert.match(b.stderr, 'deploy does not take --to');
      assert.equal(await snapshot(), before, 'neither ran');
    });

  test('the dry runs left the hosts on v1.1.0, and a real rollback then works', async () => {
    const r = await frontEnds['deploy.ts']!(['rollback']);
    assert.is(r.code, 0, r.out);
    for (const h of await allHosts(env)) assert.equal([h.current, h.serving], ['v1.0.0', 'v1.0.0']);
  });

  test.after(async () => {
    await stopOwnPostgres();
  });

  test.run();
}
