/**
 * A state.db that is read-only, corrupt or truncated: an `E_STATE` error naming the file and what to do
 * (never a raw SQLite or EROFS message), and the read-only commands still work on a read-only store.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, cpSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, bin, fraisier, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(labYaml(env, { batch: 3 }));
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

/** `fraisier <args>` in `dir` with `dir/.fraisier` mounted read-only (a private mount namespace: nothing else sees it). */
function readOnlyFraisier(dir: string, ...args: string[]) {
  const state = join(dir, '.fraisier');
  return run(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind -o ro "$1" "$1" && shift && exec "$@"', 'sh', state, process.execPath, bin, ...args],
    { cwd: dir },
  );
}

test('read-only state.db: status, history, stats and status-all still work; deploy says E_STATE with the path', async () => {
  const file = join(ws, '.fraisier', 'state.db');
  const hist = await readOnlyFraisier(ws, 'history');
  assert.is(hist.code, 0, hist.out);
  assert.match(hist.stdout, /app\s+production\s+deploy\s+-\s+v1\.0\.0\s+succeeded/);
  const all = await readOnlyFraisier(ws, 'status-all');
  assert.is(all.code, 0, all.out);
  assert.match(all.stdout, /app\s+production\s+v1\.0\.0/);
  const stats = await readOnlyFraisier(ws, 'stats', '--json');
  assert.is(stats.code, 0, stats.out);
  assert.is(JSON.parse(stats.stdout)[0].total, 1);
  const status = await readOnlyFraisier(ws, 'status', 'app', 'production');
  assert.is(status.code, 0, status.out);
  assert.match(status.stdout, 'app / production: v1.0.0');
  const dep = await readOnlyFraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(dep.code, 2, dep.out);
  assert.match(dep.stderr, `error[E_STATE] the state file ${file} is read-only`);
  assert.match(dep.stderr, 'hint: make it writable, or point state.path');
  assert.not.match(dep.out, /^EROFS/m);
  assert.equal(
    (await allHosts(env)).map((h) => h.serving),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
    'no host changed',
  );
});

for (const [what, damage] of [
  ['corrupt (not a database)', (f: string) => writeFileSync(f, 'this is not a sqlite file\n'.repeat(200))],
  ['truncated', (f: string) => truncateSync(f, 8192)],
] as const) {
  test(`${what} state.db: E_STATE naming the file and what to do, for readers and for deploy; no host changes`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fraisier-e2e-state-'));
    cpSync(ws, dir, { recursive: true });
    const file = join(dir, '.fraisier', 'state.db');
    const before = join(dir, 'before.db');
    copyFileSync(file, before);
    damage(file);
    for (const args of [['history'], ['status-all'], ['deploy', 'app', 'production', '--version', 'v1.1.0']]) {
      const r = await fraisier(dir, ...args);
      assert.is(r.code, 2, `${args.join(' ')}: ${r.out}`);
      assert.match(r.stderr, `error[E_STATE] the state file ${file} is damaged or not a Fraisier state database: `);
      assert.match(r.stderr, `mv ${file} ${file}.broken`);
      assert.not.match(r.out, /^SqliteError/m);
    }
    assert.equal(
      (await allHosts(env)).map((h) => h.serving),
      ['v1.0.0', 'v1.0.0', 'v1.0.0'],
      'no host changed',
    );
  });
}

test.run();
