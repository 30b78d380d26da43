/**
 * End to end, the first five minutes: `fraisier init` (no terminal: flags, else a clear error offering
 * the hosts of ~/.ssh/config), `fraisier check` on what it wrote, `check --hosts` against the lab (and
 * an unreachable host), a broken file (exit 2 with key and line), `init --ts` type-checks, and
 * `fraisier completion`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { bin, lab, repoRoot, run } from './helpers.js';

let env: LabEnv;
let home: string;
let dir: string;

test.before(async () => {
  env = await lab();
  home = mkdtempSync(join(tmpdir(), 'fraisier-home-'));
  mkdirSync(join(home, '.ssh'));
  copyFileSync(env.sshConfig, join(home, '.ssh', 'config'));
  dir = mkdtempSync(join(tmpdir(), 'fraisier-init-'));
});

test.after(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

/** `fraisier <args>` in `cwd`, with the lab's ssh config as ~/.ssh/config and no terminal. */
function cli(cwd: string, ...args: string[]) {
  return run(process.execPath, [bin, ...args], { cwd, env: { HOME: home }, timeoutMs: 180_000 });
}

test('init without a terminal and without --host asks nothing: exit 2, offering the hosts of ~/.ssh/config', async () => {
  const r = await cli(dir, 'init', '--repo', env.appRepo);
  assert.is(r.code, 2, r.out);
  assert.match(r.stderr, 'init: which hosts? give --host (no terminal to ask on)');
  assert.match(r.stderr, 'hosts in ~/.ssh/config: h1, h2, h3');
  assert.not.ok(readdirSync(dir).includes('fraises.yaml'), 'nothing written');
});

test('init on a terminal asks, offering the hosts of ~/.ssh/config; answers typed ahead are kept', async () => {
  const tty = mkdtempSync(join(tmpdir(), 'fraisier-tty-'));
  try {
    // `script` gives the command a terminal; every answer is typed at once (a paste)
    const answers = ['api', '', '', env.appRepo, '', '', '', ''].join('\n');
    const r = await run(
      'bash',
      [
        '-c',
        `(printf '%s\\n' "$ANSWERS"; for i in $(seq 300); do [ -e fraises.yaml ] && break; sleep 0.2; done) | script -qec ${JSON.stringify(`${process.execPath} ${bin} init`)} /dev/null`,
      ],
      {
        cwd: tty,
        env: { HOME: home, ANSWERS: answers },
        timeoutMs: 120_000,
      },
    );
    assert.is(r.code, 0, r.out);
    assert.match(r.stdout, 'Hosts in ~/.ssh/config: h1, h2, h3');
    assert.match(r.stdout, 'SSH hosts (comma-separated) [h1]:');
    const yaml = readFileSync(join(tty, 'fraises.yaml'), 'utf8');
    assert.match(yaml, 'instances: [h1]');
    assert.match(yaml, '  api:\n');
    assert.match(yaml, 'systemd_service: api.service');
  } finally {
    rmSync(tty, { recursive: true, force: true });
  }
});

test('init writes a commented fraises.yaml that check validates; a second init refuses to overwrite it', async () => {
  const r = await cli(
    dir,
    'init',
    '--fraise',
    'app',
    '--host',
    'h1,h2',
    '--host',
    'h3',
    '--repo',
    env.appRepo,
    '--app-path',
    '/srv/app',
    '--supervisor',
    'app',
  );
  assert.is(r.code, 0, r.out);
  const yaml = readFileSync(join(dir, 'fraises.yaml'), 'utf8');
  assert.match(yaml, '# fraises.yaml — written by `fraisier init`');
  assert.match(yaml, 'instances: [h1, h2, h3]');
  assert.match(yaml, 'supervisor_program: app');
  const c = await cli(dir, 'check');
  assert.is(c.code, 0, c.out);
  assert.match(c.stdout, /fraises\.yaml: valid \(1 fraise\(s\), 1 environment\(s\)\)/);

  const again = await cli(dir, 'init', '--host', 'h1', '--repo', env.appRepo);
  assert.is(again.code, 2, again.out);
  assert.match(again.stderr, 'exists: not overwritten');
  assert.is(readFileSync(join(dir, 'fraises.yaml'), 'utf8'), yaml, 'unchanged');
});

test('check --hosts runs the read-only preflight on every lab host; an unreachable host fails it (exit 1)', async () => {
  // the lab's hosts answer with their sample app's health endpoint on port 8000
  const good = await cli(dir, 'check', '--hosts');
  assert.is(good.code, 0, good.out);
  for (const h of ['h1', 'h2', 'h3']) assert.match(good.stdout, new RegExp(`ok   app/production ${h}: reachable, preflight passed`));
  assert.match(good.stdout, 'All 3 host check(s) passed');

  const unreachable = env.hosts[0]!.address.replace(/\.\d+$/, '.99'); // in the lab's subnet, nobody there
  const broken = join(dir, 'unreachable.yaml');
  writeFileSync(broken, readFileSync(join(dir, 'fraises.yaml'), 'utf8').replace('instances: [h1, h2, h3]', `instances: [h1, ${unreachable}]`));
  appendFileSync(broken, 'ssh:\n  connect_timeout: 2\n');
  const bad = await cli(dir, '--config', broken, 'check', '--hosts');
  assert.is(bad.code, 1, bad.out);
  assert.match(bad.stdout, /ok {3}app\/production h1: reachable/);
  assert.match(bad.stdout, new RegExp(`FAIL app/production ${unreachable.replace(/\./g, '\\.')}: `));
  assert.match(bad.stdout, '1 of 2 host check(s) failed');
});

test('check on a broken file: exit 2 naming the file, the key and the line', async () => {
  const file = join(dir, 'typo.yaml');
  writeFileSync(file, readFileSync(join(dir, 'fraises.yaml'), 'utf8').replace('batch_size: 1', 'batch_size: none'));
  const r = await cli(dir, '--config', file, 'check');
  assert.is(r.code, 2, r.out);
  assert.match(r.stderr, /typo\.yaml: fraises\.app\.environments\.production\.rolling_config\.batch_size: expected .* \(line \d+\)/);
});

test('init --ts writes a deploy.ts that type-checks against the package', async () => {
  // inside the repository, so that `import 'fraisier'` resolves to this package (its built types)
  const tsDir = mkdtempSync(join(repoRoot, 'test', '.init-ts-'));
  try {
    const r = await cli(tsDir, 'init', '--ts', '--fraise', 'api', '--host', 'web1', '--repo', 'https://git.example.com/api.git', '--environment', 'prod-eu');
    assert.is(r.code, 0, r.out);
    const tsc = await run(
      process.execPath,
      [
        join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--ignoreConfig',
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--skipLibCheck',
        '--types',
        'node',
        'deploy.ts',
      ],
      { cwd: tsDir, timeoutMs: 300_000 },
    );
    assert.is(tsc.code, 0, tsc.out);
    assert.match(readFileSync(join(tsDir, 'deploy.ts'), 'utf8'), "hosts: ['web1']");
  } finally {
    rmSync(tsDir, { recursive: true, force: true });
  }
});

test('completion prints the yargs script; the shell then gets the commands and options', async () => {
  const script = await cli(dir, 'completion', '--shell', 'bash');
  assert.is(script.code, 0, script.out);
  assert.match(script.stdout, '###-begin-fraisier-completions-###');
  assert.match(script.stdout, 'fraisier --get-yargs-completions');
  const words = await cli(dir, '--get-yargs-completions', 'fraisier', '');
  assert.is(words.code, 0, words.out);
  for (const c of ['deploy', 'rollback', 'check', 'init', 'slo', 'metrics']) assert.ok(words.stdout.split('\n').includes(c), `${c} in ${words.stdout}`);
  const options = await cli(dir, '--get-yargs-completions', 'fraisier', 'check', '--');
  assert.ok(options.stdout.split('\n').includes('--hosts'), options.out);
});

test.run();
