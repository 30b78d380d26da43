/**
 * The cold path of read-only commands: a plain command line parsed without yargs (same arguments yargs
 * builds, yargs for anything else), and `fraisier history` read from SQLite without kysely (same rows
 * as the store, the store whenever the file is not plain).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import yargs from 'yargs';
import { plainArgs } from '../../core/argv.js';
import { findCommand, globalOptionsOf, optionsOf, type Command } from '../../core/commands/index.js';
import { migrations } from '../../core/state/migrations.js';
import { MIGRATION_NAMES, quickHistory } from '../../core/state/read.js';
import { openStore } from '../../core/state/store.js';

/** What yargs builds for `argv`, declared as core/cli.ts declares the command. */
async function yargsArgs(command: Command, argv: string[]): Promise<Record<string, unknown>> {
  let got: Record<string, unknown> = {};
  const positionals = [...(command.scope === 'environment' ? ['fraise', 'env'] : []), ...Object.keys(command.positionals ?? {})];
  const many = command.scope === 'environment' && command.runMany ? ['[more..]'] : [];
  let y = yargs(argv).scriptName('fraisier').version(false).strict();
  for (const [name, o] of Object.entries({ ...globalOptionsOf('fraisier') }))
    y = y.option(name, { type: o.type, ...(o.alias ? { alias: o.alias } : {}), ...(o.default !== undefined ? { default: o.default } : {}) });
  await y
    .command(
      [command.name, ...positionals.map((p) => (command.positionals?.[p]?.optional ? `[${p}]` : `<${p}>`)), ...many].join(' '),
      '',
      (c) => {
        for (const p of positionals) c = c.positional(p, { type: 'string' });
        for (const [name, o] of Object.entries(optionsOf(command, 'fraisier'))) {
          c = c.option(name, { type: o.type, ...(o.default !== undefined ? { default: o.default } : {}), ...(o.choices ? { choices: [...o.choices] } : {}) });
        }
        return c;
      },
      (a) => {
        got = { ...a };
      },
    )
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
  return got;
}

const plainLines = [
  ['history'],
  ['history', '--limit', '5', '--json'],
  ['--json', 'history', '--fraise=api', '--env', 'production'],
  ['-c', 'x.yaml', 'history'],
  ['--config=x.yaml', 'stats', '--days', '7'],
  ['status', 'api', 'production'],
  ['deploy', 'api', 'production', '--version', 'v1.2.0', '--dry-run', '--force'],
  ['deploy', 'api', 'worker', 'production', '--json'],
  ['rollback', 'api', 'production', '--wait-lock', '30s'],
  ['status-all'],
];

test('a plain command line gets the arguments yargs would build, without yargs', async () => {
  for (const argv of plainLines) {
    const command = findCommand(
      'fraisier',
      argv.find((w) => !w.startsWith('-') && !w.endsWith('.yaml')),
    );
    assert.ok(command, argv.join(' '));
    const plain = plainArgs(command!, 'fraisier', argv);
    assert.ok(plain, `not plain: ${argv.join(' ')}`);
    const expected = await yargsArgs(command!, argv);
    for (const key of new Set([...Object.keys(expected), ...Object.keys(plain!)])) {
      if (key === '$0') continue;
      assert.equal(plain![key], expected[key], `${argv.join(' ')}: ${key}`);
    }
  }
});

test('anything but a plain command line is left to yargs (its help, its messages)', () => {
  const cases = [
    ['history', '--help'],
    ['history', '-h'],
    ['history', 'extra'],
    ['history', '--limit'],
    ['history', '--limit', '5', '--limit', '6'],
    ['history', '--no-json'],
    ['history', '--json=true'],
    ['history', '--', 'x'],
    ['status', 'api'],
    ['status', 'api', 'production', 'more'],
    ['deploy', 'api', 'worker', '42'],
    ['completion', '--get-yargs-completions', 'fraisier', 'hi'],
  ];
  for (const argv of cases) {
    const command = findCommand('fraisier', argv[0]);
    assert.ok(command, argv.join(' '));
    assert.is(plainArgs(command!, 'fraisier', argv), undefined, argv.join(' '));
  }
  // the deploy script's front end always goes through yargs
  assert.is(plainArgs(findCommand('script', 'deploy')!, 'script', ['production', 'deploy']), undefined);
});

test('the migration names read by the quick history are the store migrations, on both flavours', () => {
  assert.equal([...MIGRATION_NAMES], Object.keys(migrations('sqlite')).sort());
  assert.equal([...MIGRATION_NAMES], Object.keys(migrations('postgres')).sort());
});

test('quick history: the same rows as the store, filtered and limited; undefined whenever the file is not plain', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-quick-'));
  try {
    const file = join(dir, 'state.db');
    assert.is(quickHistory(file), undefined, 'no file yet: the store creates it');
    const store = await openStore({ path: file });
    for (const [i, [fraise, environment]] of [
      ['api', 'production'],
      ['api', 'staging'],
      ['worker', 'production'],
      ['api', 'production'],
    ].entries()) {
      const id = await store.recordDeployment({
        fraise: fraise!,
        environment: environment!,
        kind: 'deploy',
        strategy: 'rolling',
        fromVersion: null,
        toVersion: `v${i}`,
        user: 'u',
        host: 'h',
      });
      if (i < 3) await store.finishDeployment(id, { status: i === 1 ? 'failed' : 'succeeded', error: i === 1 ? 'boom' : null });
    }
    for (const q of [{}, { fraise: 'api' }, { environment: 'production' }, { fraise: 'api', environment: 'production', limit: 1 }, { limit: 2 }]) {
      const quick = quickHistory(file, q);
      assert.ok(quick, JSON.stringify(q));
      assert.equal(quick, await store.history(q), JSON.stringify(q));
    }
    assert.equal(
      quickHistory(file)!.map((d) => [d.toVersion, d.status]),
      [
        ['v3', 'running'],
        ['v2', 'succeeded'],
        ['v1', 'failed'],
        ['v0', 'succeeded'],
      ],
    );
    await store.close();

    // a schema other than the current one: left to the store (which migrates it)
    const db = new BetterSqlite3(file);
    db.prepare('delete from fraisier_migration where name = ?').run(MIGRATION_NAMES[MIGRATION_NAMES.length - 1]);
    db.close();
    assert.is(quickHistory(file), undefined);

    // not a database: left to the store, which reports it
    const broken = join(dir, 'broken.db');
    writeFileSync(broken, 'this is not a database, but it is long enough to look like a file'.repeat(100));
    assert.is(quickHistory(broken), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
