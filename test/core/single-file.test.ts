/**
 * The `fraisier` command's one-file bundle (dist/bundle/cli.cjs, loaded by bin/cli-loader.js): V8's code
 * cache is written after the first run of a build and used by the next ones, in the user's cache
 * directory; a fraises.yaml with plugins runs from the ES modules (the plugin and the command then share
 * one registry). Runs the built command: needs dist/ (`npm run build`).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, repoRoot, run } from '../e2e/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'fraisier-single-file-'));
const cache = join(dir, 'cache');
const LONG = 120_000;

const config = `fraises:
  api:
    git_repo: https://example.invalid/api.git
    app_path: /srv/api
    environments:
      production:
        provider: bare_metal
        instances: [web1.example.invalid]
        supervisor_program: api
`;

/** `fraisier <args>` in `cwd` with the cache directory of this test and the trace on. */
function fraisier(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, [bin, ...args], { cwd, env: { XDG_CACHE_HOME: cache, FRAISIER_TRACE: '1', ...env }, timeoutMs: LONG });
}

/** The code cache status the command traced (bin/fraisier.js), or undefined when it ran from the ES modules only. */
const cacheStatus = (stderr: string): string | undefined => /code cache: (\w+)/.exec(stderr)?.[1];

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('the first run writes the code cache, the next one uses it and prints the same; FRAISIER_COMPILE_CACHE=0 neither reads nor writes it', async () => {
  const ws = join(dir, 'plain');
  mkdirSync(ws);
  writeFileSync(join(ws, 'fraises.yaml'), config);
  const first = await fraisier(ws, ['check']);
  assert.is(first.code, 0, first.out);
  assert.is(cacheStatus(first.stderr), 'none', first.stderr);
  const files = readdirSync(join(cache, 'fraisier'));
  assert.is(files.filter((f) => /^cli-.*\.v8cache$/.test(f)).length, 1, files.join(', '));
  const second = await fraisier(ws, ['check']);
  assert.is(second.code, 0, second.out);
  assert.is(cacheStatus(second.stderr), 'hit', second.stderr);
  assert.is(second.stdout, first.stdout);
  const off = await fraisier(ws, ['check'], { FRAISIER_COMPILE_CACHE: '0', XDG_CACHE_HOME: join(dir, 'unused') });
  assert.is(off.code, 0, off.out);
  assert.is(cacheStatus(off.stderr), 'off', off.stderr);
  assert.is(off.stdout, first.stdout);
  assert.not.ok(existsSync(join(dir, 'unused')));
  // bad input: the same error and exit status as from the ES modules
  writeFileSync(join(ws, 'fraises.yaml'), config.replace('supervisor_program: api', 'supervisor_program: 7'));
  const bad = await fraisier(ws, ['check']);
  const badEsm = await fraisier(ws, ['check'], { FRAISIER_SINGLE_FILE: '0' });
  assert.is(bad.code, 2, bad.out);
  assert.is(badEsm.code, 2, badEsm.out);
  assert.match(bad.stderr, 'fraises.yaml');
  assert.is(bad.stdout, badEsm.stdout);
  assert.is(bad.stderr.replace(/^\[trace\].*\n/gm, ''), badEsm.stderr.replace(/^\[trace\].*\n/gm, ''));
});

test('a fraises.yaml with plugins runs from the ES modules: the plugin registers its provider where the command looks', async () => {
  // inside the package, so that the plugin's `import 'fraisier'` is the package itself (its ES modules)
  const ws = mkdtempSync(join(repoRoot, 'test', 'fixtures', '.single-file-'));
  try {
    writeFileSync(
      join(ws, 'plugin.js'),
      `import { registry, Type } from 'fraisier';
registry.registerProvider({
  name: 'single_file_probe',
  keys: { probe_site: Type.String({ minLength: 1 }) },
  normalize: (block) => ({ site: block.probe_site }),
  create: () => ({ name: 'provider:probe', targets: [], async open() {}, async close() {} }),
});
`,
    );
    writeFileSync(
      join(ws, 'fraises.yaml'),
      `plugins: [./plugin.js]
fraises:
  site:
    environments:
      production:
        provider: single_file_probe
        probe_site: www
`,
    );
    const r = await fraisier(ws, ['check']);
    assert.is(r.code, 0, r.out);
    const esm = await fraisier(ws, ['check'], { FRAISIER_SINGLE_FILE: '0' });
    assert.is(esm.code, 0, esm.out);
    assert.is(r.stdout, esm.stdout);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('yargs, kept out of the one file (dist/bundle/cli-yargs.cjs): help, a completion script and a usage error print what the ES modules print', async () => {
  const ws = join(dir, 'yargs');
  mkdirSync(ws);
  writeFileSync(join(ws, 'fraises.yaml'), config);
  for (const args of [['--help'], ['deploy', '--help'], ['completion'], ['deploy', 'api']]) {
    const single = await fraisier(ws, args);
    const esm = await fraisier(ws, args, { FRAISIER_SINGLE_FILE: '0' });
    assert.ok(cacheStatus(single.stderr), `${args.join(' ')}: ran from the one file\n${single.stderr}`);
    assert.is(single.code, esm.code, `${args.join(' ')}\n${single.out}`);
    assert.is(single.stdout, esm.stdout, args.join(' '));
    assert.is(single.stderr.replace(/^\[trace\].*\n/gm, ''), esm.stderr.replace(/^\[trace\].*\n/gm, ''), args.join(' '));
  }
  assert.match((await fraisier(ws, ['--help'])).stdout, 'fraisier deploy <fraise> <env>');
});

test.run();
