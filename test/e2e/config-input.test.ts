/**
 * Hostile and mistaken configuration, end to end through the real CLI and the lab hosts: paths that
 * would escape `app_path`, host and branch names that are not names, an invalid health URL, a secret in
 * a wrong value, bad `--limit` / `--days`, and global options before the command. Each bad input exits 2
 * with an error naming the file, the key and the line; no host changes and no history row is recorded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { render } from '../../core/exec/command.js';
import { bareMetalCommands } from '../../providers/bare-metal.js';
import { bin, fraisier, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;

/** Everything a user would look at on each host, including the victim outside app_path. */
async function snapshot(): Promise<string[]> {
  return Promise.all(
    env.hosts.map(
      async (h) =>
        (
          await hostExec(
            env,
            h.name,
            'readlink /srv/app/current; ls -1a /srv/app /srv/app/releases /srv/app/shared 2>&1; for r in /srv/app/releases/*; do [ -L "$r" ] && echo "SYMLINK $r"; [ -f "$r/.fraisier-release" ] || echo "INCOMPLETE $r"; done; cat /srv/victim/important.txt; ls -la /srv/victim | tail -n +2 | wc -l; supervisorctl pid app',
          )
        ).stdout,
    ),
  );
}

async function historyCount(dir = ws): Promise<number> {
  const r = await fraisier(dir, 'history', '--json', '--limit', '100');
  assert.is(r.code, 0, r.out);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

/** Runs `fn` and checks that every host and the history are exactly as before. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  const rows = await historyCount();
  await fn();
  assert.equal(await snapshot(), before, 'no host changed');
  assert.is(await historyCount(), rows, 'no deployment recorded');
}

/** The lab config with `edit` applied, in the shared workspace's state (same history). */
function variant(edit: (yaml: string) => string): string {
  const dir = workspace(edit(labYaml(env)));
  // the same state file as the main workspace, so "no row recorded" is checked against the real history
  execFileSync('sh', ['-c', `printf 'state:\\n  path: %s\\n' "$1" >> "$2/fraises.yaml"`, 'sh', join(ws, 'fraisier.db'), dir]);
  return dir;
}

const PRODUCTION = 'fraises.app.environments.production';

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  await Promise.all(env.hosts.map((h) => hostExec(env, h.name, 'rm -rf /srv/victim; mkdir -p /srv/victim && echo precious > /srv/victim/important.txt')));
  ws = workspace(`${labYaml(env)}state:\n  path: fraisier.db\n`);
  for (const v of ['v1.0.0', 'v1.1.0']) {
    const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', v);
    assert.is(r.code, 0, r.out);
  }
});

test('shared: ["../../../victim"] is refused at load: the file outside app_path survives on every host', async () => {
  await unchanged(async () => {
    const dir = variant((y) => y.replace('        supervisor_program: app\n', '        supervisor_program: app\n        shared: [log, "../../../victim"]\n'));
    const r = await fraisier(dir, 'deploy', 'app', 'production', '--version', 'v1.2.0');
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, 'error[E_CONFIG]');
    assert.match(r.stderr, `fraises.yaml: ${PRODUCTION}.shared[1]: expected a relative path inside the release`);
    assert.match(r.stderr, 'a ".." component leaves the release directory (line');
  });
  for (const h of env.hosts) assert.is((await hostExec(env, h.name, 'cat /srv/victim/important.txt')).stdout, 'precious\n');
});

test('shared: ["../v1.0.0"] is refused at load: the kept release stays a real release on every host', async () => {
  await unchanged(async () => {
    const dir = variant((y) => y.replace('        supervisor_program: app\n', '        supervisor_program: app\n        shared: ["../v1.0.0"]\n'));
    const r = await fraisier(dir, 'deploy', 'app', 'production', '--version', 'v1.2.0');
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, `${PRODUCTION}.shared[0]`);
  });
  for (const h of env.hosts) {
    const r = await hostExec(
      env,
      h.name,
      'test -d /srv/app/releases/v1.0.0 && ! test -L /srv/app/releases/v1.0.0 && test -f /srv/app/releases/v1.0.0/.fraisier-release && echo intact',
    );
    assert.is(r.stdout, 'intact\n', h.name);
  }
});

test('the host checks shared paths again: the prepare script refuses an escaping path even if no check ran before it', async () => {
  const rev = execFileSync('git', ['-C', env.appRepo, 'rev-parse', 'v1.2.0^{commit}'], { encoding: 'utf8' }).trim();
  const before = await snapshot();
  for (const bad of ['../../../victim', '../v1.0.0', '/srv/victim', 'log/../../../../victim']) {
    const cmd = bareMetalCommands.prepareGit('/srv/app', 'v1.2.0', rev, env.appRepo, '', [bad, 'log']);
    const r = await hostExec(env, 'h1', render(cmd, { reveal: true }));
    assert.is(r.code, 5, `${bad}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, `refusing shared path '${bad}'`);
  }
  const after = await snapshot();
  assert.equal(after, before, 'the victim, the kept release and the releases directory are as they were');
});

test('app_path "/srv/../tmp/x" and "/" are refused at load, naming what the path really is', async () => {
  await unchanged(async () => {
    const a = await fraisier(
      variant((y) => y.replace('app_path: /srv/app', 'app_path: /srv/../tmp/x')),
      'deploy',
      'app',
      'production',
      '--version',
      'v1.2.0',
    );
    assert.is(a.code, 2, a.out);
    assert.match(a.stderr, 'fraises.app.app_path: "/srv/../tmp/x" is not in normal form: it names "/tmp/x"');
    assert.match(a.stderr, /\(line \d+\)/);
    const b = await fraisier(
      variant((y) => y.replace('app_path: /srv/app', 'app_path: /')),
      'deploy',
      'app',
      'production',
      '--version',
      'v1.2.0',
    );
    assert.is(b.code, 2, b.out);
    assert.match(b.stderr, 'fraises.app.app_path: "/" is the root directory');
  });
});

test('an instance name with shell metacharacters: exit 2 at load, no deployment row, no host touched', async () => {
  await unchanged(async () => {
    for (const name of ['h2;touch /srv/pwned', '$(touch /srv/pwned)']) {
      const r = await fraisier(
        variant((y) => y.replace('instances: [h1, h2, h3]', `instances: [h1, ${JSON.stringify(name)}, h3]`)),
        'deploy',
        'app',
        'production',
        '--version',
        'v1.2.0',
      );
      assert.is(r.code, 2, r.out);
      assert.match(r.stderr, `${PRODUCTION}.instances[1]: ${JSON.stringify(name)} is not a host name`);
    }
  });
  for (const h of env.hosts) assert.is((await hostExec(env, h.name, 'test -e /srv/pwned && echo pwned || echo clean')).stdout, 'clean\n');
});

test('a branch name git would refuse is refused at load, before any host is asked', async () => {
  await unchanged(async () => {
    const r = await fraisier(
      variant((y) => y.replace('branch: main', 'branch: "feature..x"')),
      'deploy',
      'app',
      'production',
    );
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, 'error[E_CONFIG]');
    assert.match(r.stderr, 'fraises.app.branch: "feature..x" is not a valid git branch name: it contains ".." (line');
    assert.not.match(r.out, 'Deploying');
  });
});

test('an invalid health URL: E_CONFIG with the key and the line, nothing changed', async () => {
  await unchanged(async () => {
    const r = await fraisier(
      variant((y) => y.replace('url: http://localhost:8000/health', 'url: "localhost 8000/health"')),
      'deploy',
      'app',
      'production',
      '--version',
      'v1.2.0',
    );
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, `error[E_CONFIG] `);
    assert.match(
      r.stderr,
      `${PRODUCTION}.health_check.url: expected an http:// URL such as http://localhost:8000/health, got "localhost 8000/health" (not a URL) (line`,
    );
  });
});

test('a secret interpolated into a wrong value appears in no output channel', async () => {
  const secret = 'kr-7f3a9e-not-a-number';
  const dir = variant((y) => y.replace('        supervisor_program: app\n', '        supervisor_program: app\n        keep_releases: ${KEEP_SECRET}\n'));
  for (const args of [
    ['deploy', 'app', 'production'],
    ['--json', 'deploy', 'app', 'production'],
    ['status', 'app', 'production'],
    ['history', '--json'],
  ]) {
    const r = await run(process.execPath, [bin, ...args], { cwd: dir, env: { KEEP_SECRET: secret } });
    assert.is(r.code, 2, r.out);
    assert.not.match(r.out, secret);
    assert.not.match(r.out, 'kr-7f3a9e');
    assert.match(r.stderr, `${PRODUCTION}.keep_releases: expected an integer >= 2, got [REDACTED] (from \${KEEP_SECRET})`);
  }
});

test('history --limit abc and stats --days abc: a usage error naming the option, exit 2', async () => {
  for (const [args, option] of [
    [['history', '--limit', 'abc'], '--limit'],
    [['history', '--limit=0'], '--limit'],
    [['stats', '--days', 'abc'], '--days'],
    [['stats', '--days', '1.5'], '--days'],
  ] as const) {
    const r = await fraisier(ws, ...args);
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, `error[E_USAGE] ${option}: expected a whole number of at least 1, got`);
    assert.not.match(r.out, 'NaN');
    assert.not.match(r.out, 'datatype mismatch');
  }
  const ok = await fraisier(ws, 'stats', '--days', '7');
  assert.is(ok.code, 0, ok.out);
  assert.match(ok.stdout, /^app\s+2\s/m, 'the two deployments of the last 7 days');
});

test('global options before the command: -c FILE, --config=FILE, --json, from another directory', async () => {
  const elsewhere = workspace('# not the config\n');
  const file = join(ws, 'fraises.yaml');
  const status = await fraisier(elsewhere, '-c', file, 'status', 'app', 'production');
  assert.is(status.code, 0, status.out);
  assert.match(status.stdout, 'v1.1.0');
  const json = await fraisier(elsewhere, `--config=${file}`, '--json', 'status', 'app', 'production');
  assert.is(json.code, 0, json.out);
  assert.equal(
    (JSON.parse(json.stdout) as { targets: { current: string }[] }).targets.map((t) => t.current),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  const history = await fraisier(elsewhere, '--json', '-c', file, 'history', '--limit', '1');
  assert.is(history.code, 0, history.out);
  assert.is((JSON.parse(history.stdout) as { toVersion: string }[])[0]!.toVersion, 'v1.1.0');
  const unlock = await fraisier(elsewhere, '-c', file, 'unlock', 'app', 'production');
  assert.is(unlock.code, 0, unlock.out);
  assert.match(unlock.stdout, 'app/production was not locked');
  const dry = await fraisier(elsewhere, '--config', file, 'deploy', 'app', 'production', '--version', 'v1.2.0', '--dry-run');
  assert.is(dry.code, 0, dry.out);
  assert.match(dry.out, 'v1.2.0');
  const missing = await fraisier(elsewhere, '-c', join(elsewhere, 'nope.yaml'), 'status', 'app', 'production');
  assert.is(missing.code, 2, missing.out);
  assert.match(missing.stderr, 'nope.yaml (from --config)');
});

test.run();
