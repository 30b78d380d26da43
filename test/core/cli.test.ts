import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { DeployApp } from '../../core/app.js';
import { countOption, exitCodeFor, runFraisierCli, runScriptCli, waitLockOption } from '../../core/cli.js';
import { commandOf, positionalsOf, READ_ONLY_COMMANDS, VALUE_OPTIONS } from '../../core/argv.js';
import { COMMANDS, commandsOf, findCommand, givenOptions, optionsOf, refusedOptions } from '../../core/commands/index.js';
import { FraisierError } from '../../core/errors.js';
import type { Provider, Strategy } from '../../core/types.js';

test('--wait-lock: absent, bare (10 minutes), seconds, durations; anything else is a usage error', () => {
  assert.is(waitLockOption(undefined), undefined);
  assert.is(waitLockOption(''), 600_000);
  assert.is(waitLockOption('30'), 30_000);
  assert.is(waitLockOption('1.5'), 1500);
  assert.is(waitLockOption('2m'), 120_000);
  for (const bad of ['soon', '-5', '5 minutes']) {
    try {
      waitLockOption(bad);
      assert.unreachable(`accepted ${bad}`);
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_USAGE');
      assert.is(exitCodeFor(e), 2);
      assert.match((e as Error).message, `--wait-lock: expected a number of seconds (or a duration such as 30s or 2m), got ${JSON.stringify(bad)}`);
    }
  }
});

test('exit codes: a state store that cannot be opened is bad input (2), a held lock is 3', () => {
  assert.is(exitCodeFor(new FraisierError('E_STATE', 'x')), 2);
  assert.is(exitCodeFor(new FraisierError('E_LOCKED', 'x')), 3);
});

test('--limit and --days: whole numbers of at least 1; anything else is a usage error (exit 2)', () => {
  assert.is(countOption('limit', undefined, 20), 20);
  assert.is(countOption('limit', '5', 20), 5);
  assert.is(countOption('days', 7, 30), 7);
  for (const bad of ['abc', '0', '2.5', '-3', '', '1e3', '5 ']) {
    if (bad === '5 ') continue; // trimmed: accepted
    try {
      countOption('days', bad, 30);
      assert.unreachable(`accepted ${bad}`);
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_USAGE');
      assert.is(exitCodeFor(e), 2);
      assert.is((e as Error).message, `--days: expected a whole number of at least 1, got ${JSON.stringify(bad)}`);
    }
  }
});

test('the command word comes after any global option and its value, in every form', () => {
  assert.is(commandOf(['status', 'api', 'production']), 'status');
  assert.is(commandOf(['-c', 'fraises.yaml', 'status', 'api', 'production']), 'status');
  assert.is(commandOf(['--config', 'fraises.yaml', 'deploy', 'api', 'production']), 'deploy');
  assert.is(commandOf(['--config=fraises.yaml', 'rollback', 'api', 'production']), 'rollback');
  assert.is(commandOf(['-c=fraises.yaml', '--json', 'unlock', 'api', 'production']), 'unlock');
  assert.is(commandOf(['--json', '-c', 'history', 'history']), 'history', 'a config file named like a command is the value of -c');
  assert.is(commandOf(['--limit', '5', 'history']), 'history');
  assert.is(commandOf(['--help']), undefined);
  assert.is(commandOf(['-c', 'x.yaml']), undefined);
});

test('the command list: every command that changes hosts has a dry run; read-only commands are the store ones', () => {
  assert.equal(
    COMMANDS.map((c) => c.name),
    [
      'deploy',
      'promote',
      'rollback',
      'migrate',
      'status',
      'status-all',
      'history',
      'stats',
      'slo',
      'metrics',
      'cancel',
      'unlock',
      'state',
      'queue',
      'worker',
      'serve',
      'init',
      'check',
      'completion',
    ],
  );
  for (const c of COMMANDS) {
    if (c.changesHosts) assert.is(c.options['dry-run']?.type, 'boolean', `${c.name} changes hosts: it must declare --dry-run`);
    // `check` builds every environment (and connects with --hosts), and the worker deploys over the whole
    // store: both need the built-ins too
    assert.is(
      c.usesTargets,
      c.scope === 'environment' || c.name === 'check' || c.name === 'worker',
      `${c.name}: only commands that reach hosts load the built-ins`,
    );
  }
  assert.equal(READ_ONLY_COMMANDS, ['status-all', 'history', 'stats', 'slo', 'metrics', 'state', 'queue', 'serve', 'init', 'completion', 'help']);
  assert.equal(
    commandsOf('script').map((c) => c.name),
    ['deploy', 'promote', 'rollback', 'migrate', 'status', 'history', 'stats', 'metrics', 'cancel', 'unlock'],
  );
  for (const c of COMMANDS) {
    for (const [name, o] of Object.entries(c.options)) if (o.type === 'string') assert.ok(VALUE_OPTIONS.includes(`--${name}`), `--${name} takes a value`);
  }
});

test('options given: long, negated, camel-cased, with =, short; nothing after --', () => {
  assert.equal(
    givenOptions(['deploy', '--dry-run', '--no-force', '--waitLock=5', '-c', 'x', '--to=v1', '--', '--json']).map((g) => g.name),
    ['dry-run', 'force', 'wait-lock', 'c', 'to'],
  );
  const history = findCommand('fraisier', 'history')!;
  assert.equal(refusedOptions(history, 'fraisier', ['history', '--fraise', 'app', '--limit=3', '-c', 'f.yaml', '--json', '--help']), []);
  assert.equal(refusedOptions(history, 'script', ['production', 'history', '--fraise', 'app', '--limit=3']), ['--fraise']);
  assert.equal(refusedOptions(history, 'fraisier', ['history', '--dry-run', '-x', '--dry-run']), ['--dry-run', '-x']);
  assert.equal(refusedOptions(findCommand('script', 'deploy')!, 'script', ['production', '--config', 'x']), ['--config']);
  assert.equal(Object.keys(optionsOf(history, 'script')), ['limit', 'id']);
});

test('the positionals of a deploy script command line skip the values of options', () => {
  assert.equal(positionalsOf(['production', '--version', 'v1', 'deploy']), ['production', 'deploy']);
  assert.equal(positionalsOf(['--limit=5', 'production', 'history', '--json']), ['production', 'history']);
  assert.equal(positionalsOf(['production', '--', '--x']), ['production', '--x']);
});

/** A deploy script's app whose provider and strategy throw if anything reaches them. */
function untouchableApp(): DeployApp {
  const boom = () => {
    throw new Error('reached the provider or strategy');
  };
  const provider = new Proxy({}, { get: boom }) as unknown as Provider;
  const strategy = new Proxy({}, { get: boom }) as unknown as Strategy;
  return new DeployApp({ name: 'app', environments: { production: { provider, strategy } } }, '/nonexistent-fraisier-dir');
}

/** Runs `fn` with stdout and stderr captured. */
async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), out: out.join(''), err: err.join('') };
  } finally {
    [process.stdout.write, process.stderr.write] = write as [typeof process.stdout.write, typeof process.stderr.write];
  }
}

test('an option a command does not take is refused (exit 2) before any config, store or host is read, in both front ends', async () => {
  const app = untouchableApp();
  const cases: [string, () => Promise<number>, string][] = [
    [
      'fraisier status --dry-run',
      () => runFraisierCli(['-c', '/nonexistent/fraises.yaml', 'status', 'app', 'production', '--dry-run']),
      'status does not take --dry-run',
    ],
    ['fraisier history --force', () => runFraisierCli(['history', '--force', '-c', '/nonexistent/fraises.yaml']), 'history does not take --force'],
    ['fraisier rollback --version', () => runFraisierCli(['rollback', 'app', 'production', '--version', 'v1']), 'rollback does not take --version'],
    ['fraisier unlock --wait-lock', () => runFraisierCli(['unlock', 'app', 'production', '--wait-lock=5']), 'unlock does not take --wait-lock'],
    ['fraisier migrate --to', () => runFraisierCli(['migrate', 'app', 'production', '--to=v1']), 'migrate does not take --to'],
    ['deploy.ts deploy --to', () => runScriptCli(app, ['production', 'deploy', '--to', 'v1']), 'deploy does not take --to'],
    ['deploy.ts (default deploy) --phase', () => runScriptCli(app, ['production', '--phase', 'prepare']), 'deploy does not take --phase'],
    ['deploy.ts history --fraise', () => runScriptCli(app, ['production', 'history', '--fraise', 'other']), 'history does not take --fraise'],
    ['deploy.ts stats --config', () => runScriptCli(app, ['production', 'stats', '--config', 'x.yaml']), 'stats does not take --config'],
    ['deploy.ts status --dry-run', () => runScriptCli(app, ['production', 'status', '--dry-run']), 'status does not take --dry-run'],
  ];
  for (const [label, call, says] of cases) {
    const r = await captured(call);
    assert.is(r.code, 2, `${label}: ${r.err}`);
    assert.match(r.err, `error[E_USAGE] ${says}`, label);
    assert.not.match(r.err, 'reached the provider', label);
  }
  const hint = await captured(() => runScriptCli(app, ['production', 'history', '--fraise', 'other']));
  assert.match(hint.err, 'hint: history takes --limit, --id (and --json); --fraise is an option of `fraisier history`');
  const json = await captured(() => runFraisierCli(['status', 'app', 'production', '--dry-run', '--json']));
  assert.is(JSON.parse(json.out).error.code, 'E_USAGE');
});

test('a command a front end does not have is a usage error (exit 2)', async () => {
  const r = await captured(() => runScriptCli(untouchableApp(), ['production', 'status-all']));
  assert.is(r.code, 2, r.err);
  assert.match(r.err, 'status-all');
  const f = await captured(() => runFraisierCli(['frobnicate']));
  assert.is(f.code, 2, f.err);
});

test('docs/cli.md has a section for every command, naming each of its options', () => {
  const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
  for (const c of COMMANDS) {
    const heading = new RegExp(`^### \`fraisier ${c.name}[ \`]`, 'm');
    assert.match(doc, heading, `docs/cli.md: no section for ${c.name}`);
    const section = doc.slice(doc.search(heading)).split(/\n### |\n## /)[0]!;
    for (const name of Object.keys(c.options)) assert.match(section, `--${name}`, `docs/cli.md, ${c.name}: --${name} is not documented`);
    if (c.frontEnds.includes('script')) assert.match(section, `deploy.ts <env> ${c.name}`, `docs/cli.md, ${c.name}: the deploy.ts form is not documented`);
  }
});

test.run();
