/**
 * The validated-config cache of `fraisier history` (core/config/cache.ts): a hit only for the same text,
 * the same values of the variables it names and a `.fraisier/` directory beside it; never for plugins,
 * secrets, PostgreSQL state or a backslash. Through the CLI: a changed (broken) file is validated again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedConfig, rememberConfig } from '../../../core/config/cache.js';

const YAML = `state:
  path: \${STATE_DIR:-.fraisier}/state.db
fraises:
  app:
    git_repo: /tmp/nowhere.git
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [h1]
        supervisor_program: app
`;

function workspace(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-config-cache-'));
  const file = join(dir, 'fraises.yaml');
  writeFileSync(file, YAML);
  return { dir, file };
}

const loaded = (path?: string) => ({ state: path === undefined ? {} : { path }, secrets: [] as string[] });

test('a hit for the same text and variables only; nothing without .fraisier/', () => {
  const { dir, file } = workspace();
  try {
    rememberConfig(file, YAML, loaded('/x/state.db'), {});
    assert.is(cachedConfig(file, {}), undefined, 'no .fraisier/ beside the file: nothing written');
    mkdirSync(join(dir, '.fraisier'));
    rememberConfig(file, YAML, loaded('/x/state.db'), {});
    assert.equal(cachedConfig(file, {}), { baseDir: dir, state: { path: '/x/state.db' } });
    assert.is(cachedConfig(file, { STATE_DIR: '/elsewhere' }), undefined, 'another value of a variable it names');
    assert.ok(cachedConfig(file, { OTHER: '1' }), 'a variable it does not name changes nothing');
    writeFileSync(file, YAML.replace('h1', 'h2'));
    assert.is(cachedConfig(file, {}), undefined, 'another text');
    writeFileSync(file, YAML);
    assert.ok(cachedConfig(file, {}), 'the same text again');
    const record = readFileSync(join(dir, '.fraisier', 'config-cache-fraises.yaml.json'), 'utf8');
    assert.not.match(record, 'h1', 'the record holds a hash and the state path only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('never cached: plugins, a secret variable, a PostgreSQL state, a secret, a backslash', () => {
  const { dir, file } = workspace();
  mkdirSync(join(dir, '.fraisier'));
  try {
    const cases: [string, string, ReturnType<typeof loaded> & { state: { url?: string } }][] = [
      ['plugins', `plugins: [./p.ts]\n${YAML}`, loaded()],
      ['secret variable', YAML.replace('/tmp/nowhere.git', '${GIT_TOKEN:-x}'), loaded()],
      ['backslash', YAML.replace('/srv/app', '"/srv/\\u0061pp"'), loaded()],
      ['PostgreSQL', YAML, { state: { url: 'postgres://u@db/f' }, secrets: [] }],
      ['secret', YAML, { state: {}, secrets: ['hunter22'] }],
    ];
    for (const [what, text, l] of cases) {
      writeFileSync(file, text);
      rememberConfig(file, text, l, {});
      assert.is(cachedConfig(file, {}), undefined, what);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fraisier history: a run records once .fraisier/ exists; a broken file afterwards is still reported (exit 2)', async () => {
  const { dir, file } = workspace();
  const cwd = process.cwd();
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  try {
    process.chdir(dir);
    process.stdout.write = ((t: string) => out.push(String(t)) > 0) as typeof process.stdout.write;
    process.stderr.write = ((t: string) => out.push(String(t)) > 0) as typeof process.stderr.write;
    const { runFraisierCli } = await import('../../../core/cli.js');
    assert.is(await runFraisierCli(['history']), 0, out.join(''));
    assert.not.ok(existsSync(join(dir, '.fraisier', 'config-cache-fraises.yaml.json')), 'no .fraisier/ before the store made it');
    assert.is(await runFraisierCli(['history']), 0, out.join(''));
    assert.ok(existsSync(join(dir, '.fraisier', 'config-cache-fraises.yaml.json')), 'recorded after it validated');
    assert.ok(cachedConfig(file));
    assert.is(await runFraisierCli(['history']), 0, out.join(''));
    assert.match(out.join(''), 'No deployments recorded.');
    writeFileSync(file, YAML.replace('supervisor_program: app', 'supervisor_program: app\n        bogus_key: 1'));
    out.length = 0;
    assert.is(await runFraisierCli(['history']), 2, out.join(''));
    assert.match(out.join(''), 'bogus_key');
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
