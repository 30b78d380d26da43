/**
 * The fast path of a cold `fraisier history` (core/quick-history.ts, tried by bin/fraisier.js before the
 * CLI loads): it reads a command line as the CLI does, answers only the plain case, and prints exactly
 * what the full CLI prints on the same store. Through the built command (bin/fraisier.js: run
 * `npm run build` first); `FRAISIER_TRACE` says which path answered.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plainArgs } from '../../core/argv.js';
import { findCommand } from '../../core/commands/index.js';
import { countOption } from '../../core/commands/support.js';
import { rememberConfig } from '../../core/config/cache.js';
import { quickHistoryArgs, quickHistoryCli } from '../../core/quick-history.js';
import { openStore } from '../../core/state/store.js';
import { bin, repoRoot, run } from '../e2e/helpers.js';

const history = findCommand('fraisier', 'history')!;

test('a plain history line is read as the CLI reads it', () => {
  const lines = [
    ['history'],
    ['history', '--json'],
    ['--json', 'history', '--fraise=api', '--env', 'production'],
    ['-c', 'x.yaml', 'history'],
    ['history', '--limit', '5'],
    ['history', '--limit=3', '--config=y.yaml'],
    ['history', '--fraise=', '--json'],
    ['history', '--limit', ' 7 '],
  ];
  for (const argv of lines) {
    const plain = plainArgs(history, 'fraisier', argv);
    assert.ok(plain, argv.join(' '));
    const fraise = plain!['fraise'] ? String(plain!['fraise']) : undefined;
    const environment = plain!['env'] ? String(plain!['env']) : undefined;
    assert.equal(
      quickHistoryArgs(argv),
      {
        json: Boolean(plain!['json']),
        ...(plain!['config'] !== undefined ? { config: String(plain!['config']) } : {}),
        ...(fraise ? { fraise } : {}),
        ...(environment ? { environment } : {}),
        limit: countOption('limit', plain!['limit'], 20),
      },
      argv.join(' '),
    );
  }
});

test('anything else is left to the CLI: --id, help, a bad --limit, another command, yargs forms', () => {
  const lines = [
    [],
    ['stats'],
    ['history', '--id', '3'],
    ['history', '--help'],
    ['history', '-h'],
    ['history', '--limit', '0'],
    ['history', '--limit', 'x'],
    ['history', '--limit='],
    ['history', '--limit', '5', '--limit', '6'],
    ['history', '--json', '--json'],
    ['history', '--no-json'],
    ['history', '--json=true'],
    ['history', 'extra'],
    ['history', 'history'],
    ['history', '--fraise', '-x'],
    ['history', '--fraise'],
    ['history', '--', 'x'],
    ['history', '--days', '3'],
    ['completion', '--get-yargs-completions', 'fraisier', 'history'],
  ];
  for (const argv of lines) assert.is(quickHistoryArgs(argv), undefined, argv.join(' '));
});

const YAML = `fraises:
  api:
    git_repo: /tmp/nowhere.git
    app_path: /srv/api
    environments:
      production:
        provider: bare_metal
        instances: [h1]
        supervisor_program: api
      staging:
        provider: bare_metal
        instances: [h2]
        supervisor_program: api
`;

test('through bin/fraisier.js: the fast path prints what the full CLI prints; a changed file, --id, errors and PostgreSQL take the full path', async () => {
  assert.ok(existsSync(join(repoRoot, 'dist', 'bundle', 'quick-history.js')), 'dist/ is not built: npm run build');
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-cold-history-'));
  try {
    const file = join(dir, 'fraises.yaml');
    writeFileSync(file, YAML);
    const store = await openStore({ path: join(dir, '.fraisier', 'state.db') });
    for (const [i, env] of ['production', 'staging', 'production'].entries()) {
      const id = await store.recordDeployment({
        fraise: 'api',
        environment: env,
        kind: 'deploy',
        strategy: 'rolling',
        fromVersion: i === 0 ? null : `v${i - 1}`,
        toVersion: `v${i}`,
        user: 'alice',
        host: 'laptop',
      });
      // a URL with a password in an error: redacted on both paths
      await store.finishDeployment(
        id,
        i === 1 ? { status: 'failed', error: 'fetch https://bot:hunter22@git.example/api.git failed' } : { status: 'succeeded', error: null },
      );
    }
    await store.close();

    const fraisier = (...args: string[]) => run(process.execPath, [bin, ...args], { cwd: dir, env: { FRAISIER_TRACE: '1' }, timeoutMs: 120_000 });
    const fast = (r: { stderr: string }) => r.stderr.includes('done (fast path)');
    const cache = join(dir, '.fraisier', 'config-cache-fraises.yaml.json');
    for (const argv of [['history'], ['history', '--json'], ['history', '--fraise', 'api', '--limit', '2'], ['--json', 'history', '--env=staging']]) {
      rmSync(cache, { force: true });
      const full = await fraisier(...argv);
      assert.is(full.code, 0, full.out);
      assert.not.ok(fast(full), `${argv.join(' ')}: no cache yet, the full CLI answers`);
      const quick = await fraisier(...argv);
      assert.is(quick.code, 0, quick.out);
      assert.ok(fast(quick), `${argv.join(' ')}: the config is unchanged, the fast path answers`);
      assert.is(quick.stdout, full.stdout, argv.join(' '));
      assert.not.match(quick.stdout, 'hunter22', argv.join(' '));
    }
    const table = (await fraisier('history')).stdout;
    assert.match(table, /^ID +FRAISE +ENV/);
    assert.match(table, /v1 +failed/);
    assert.match(table, /alice@laptop/);
    const json = JSON.parse((await fraisier('history', '--json', '--limit', '1')).stdout) as { toVersion: string }[];
    assert.equal(
      json.map((d) => d.toVersion),
      ['v2'],
    );

    // --id and a bad --limit: the full CLI, its messages and exit codes
    const one = await fraisier('history', '--id', '2');
    assert.is(one.code, 0, one.out);
    assert.not.ok(fast(one));
    assert.match(one.stdout, 'Deployment #2: api/staging deploy v0 → v1');
    assert.not.match(one.stdout, 'hunter22');
    const bad = await fraisier('history', '--limit', '0');
    assert.is(bad.code, 2, bad.out);
    assert.match(bad.stderr, '--limit: expected a whole number of at least 1');

    // an edited file: validated again by the full CLI, then cached again
    appendFileSync(file, '# edited\n');
    const edited = await fraisier('history');
    assert.not.ok(fast(edited), 'a changed file is validated again');
    assert.is(edited.stdout, table);
    assert.ok(fast(await fraisier('history')), 'cached again once it validated');

    // state in PostgreSQL: never the fast path (the full CLI opens it, here reports that it cannot)
    const pg = await run(process.execPath, [bin, 'history'], {
      cwd: dir,
      env: { FRAISIER_TRACE: '1', FRAISIER_DATABASE_URL: 'postgres://u@127.0.0.1:1/none' },
      timeoutMs: 120_000,
    });
    assert.not.ok(fast(pg), pg.out);
    assert.is.not(pg.code, 0, pg.out);
    // in this process (the sources, another build stamp): the same answer once this build validated it
    const text = `${YAML}# edited\n`;
    rememberConfig(file, text, { state: {}, secrets: [] });
    assert.is(quickHistoryCli(['history', '-c', file]), table);
    assert.is(quickHistoryCli(['history', '-c', file], { ...process.env, FRAISIER_DATABASE_URL: 'postgres://u@127.0.0.1:1/none' }), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the quick read loads the SQLite addon without the package: the package still works after it in the same process', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-cold-addon-'));
  try {
    const file = join(dir, 'state.db');
    await (await openStore({ path: file })).close();
    const script = `
      import { createRequire } from 'node:module';
      import { quickHistory } from ${JSON.stringify(join(repoRoot, 'dist', 'core', 'state', 'read.js'))};
      const require = createRequire(${JSON.stringify(join(repoRoot, 'core', 'state', 'read.ts'))});
      const rows = quickHistory(${JSON.stringify(file)});
      const quick = require.cache[require.resolve('better-sqlite3')] === undefined;
      const Database = require('better-sqlite3');
      const db = new Database(${JSON.stringify(file)});
      let error;
      try { db.prepare('select * from no_such_table'); } catch (e) { error = e; }
      db.close();
      console.log(JSON.stringify({ quick, rows, name: error?.constructor?.name, isSqliteError: error instanceof Database.SqliteError, code: error?.code }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), { quick: true, rows: [], name: 'SqliteError', isSqliteError: true, code: 'SQLITE_ERROR' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
