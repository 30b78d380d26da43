/**
 * No secret reaches any output channel or the state file (issue 8, bugs 7 and 8). Deployments that
 * fail and succeed with secrets in hook output, in a restart's error and in a git URL run on the lab;
 * then stdout, stderr, `--json`, `history`, `history --json`, `status --json`, `status-all --json` and
 * the raw bytes of the SQLite files are searched for every secret value.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { bin, hostState, lab, resetHosts, run, workspace, type Run } from './helpers.js';

const SECRETS = {
  API_TOKEN: 'tok-e2e-8c1f5a0d93',
  DEPLOY_TOKEN: 'dtok-e2e-4be7720c',
  GIT_PASSWORD: 'gitpw-e2e-61d9f3',
};
/** Written in fraises.yaml as it is, not through a variable: only its place in a URL marks it as secret. */
const LITERAL_GIT_PASSWORD = 'litpw-e2e-2a7c55';
/** PostgreSQL state URLs in every form, each with its own password (bug 7). */
const PG_PASSWORDS = [
  'pgpw-e2e-malformed1',
  'pgpw-e2e-query2',
  'pgpw-e2e-userinfo3',
  'pgpw-e2e-stray4',
  'pgpw-e2e-conninfo5',
  'pgpw-e2e-migrate6',
  'pgpw-e2e-yaml7',
];
const ALL = [...Object.values(SECRETS), LITERAL_GIT_PASSWORD, ...PG_PASSWORDS];

/** Generous: on a loaded machine one CLI run can take a minute; the test asserts no time. */
const TIMEOUT = 600_000;
let env: LabEnv;
let dir: string;
const runs: { what: string; r: Run }[] = [];

/** `fraisier <args>` with the secrets in its environment; every run is kept for the final search. */
async function fr(what: string, ...args: string[]): Promise<Run> {
  const r = await run(process.execPath, [bin, ...args], { cwd: dir, env: { ...SECRETS, FRAISIER_DATABASE_URL: '' }, timeoutMs: TIMEOUT });
  runs.push({ what, r });
  return r;
}

function assertNoSecret(text: string | Buffer, where: string): void {
  for (const s of ALL) assert.not.ok(text.includes(s), `${where} holds the secret ${s}:\n${text.toString().slice(0, 3000)}`);
}

const health = "{ url: 'http://localhost:8000/health', expect: ok, timeout: 2, retries: 8, retry_delay: 0.25 }";

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  // the lab's bridge address: nothing listens on port 9 there, so git fails to connect
  const bridge = env.hosts[0]!.address.replace(/\.\d+$/, '.1');
  dir = workspace(`ssh:
  config: ${env.sshConfig}
fraises:
  app:
    git_repo: ${env.appRepo}
    branch: main
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [h1]
        supervisor_program: app
        health_check: ${health}
        pre_deployment_hooks:
          - { name: announce, command: 'echo "announcing with \${API_TOKEN}"' }
      hookfail:
        provider: bare_metal
        instances: [h1]
        supervisor_program: app
        pre_deployment_hooks:
          - { name: leak, command: 'echo "token is \${API_TOKEN}"; exit 1' }
      restartfail:
        provider: bare_metal
        instances: [h2]
        restart_command: 'echo "restart refused for \${DEPLOY_TOKEN}" >&2; exit 1'
      postfail:
        provider: bare_metal
        instances: [h3]
        supervisor_program: app
        health_check: ${health}
        post_deployment_hooks:
          - { name: smoke, command: 'echo "smoke failed with \${API_TOKEN}"; exit 1', on_failure: abort }
  gitapp:
    git_repo: 'https://deploy:\${GIT_PASSWORD}@${bridge}:9/app.git'
    branch: main
    app_path: /srv/gitapp
    environments:
      production:
        provider: bare_metal
        instances: [h1]
        supervisor_program: app
  gitlit:
    git_repo: 'https://deploy:${LITERAL_GIT_PASSWORD}@${bridge}:9/app.git'
    branch: main
    app_path: /srv/gitlit
    environments:
      production:
        provider: bare_metal
        instances: [h1]
        supervisor_program: app
`);
});

test('a succeeding deploy whose hook prints a secret: the output shows [REDACTED]', async () => {
  const r = await fr('deploy production', 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, 'announce: announcing with [REDACTED]');
  assert.is((await hostState(env, 'h1')).current, 'v1.0.0');
  const j = await fr('deploy production --json', 'deploy', 'app', 'production', '--version', 'v1.1.0', '--json');
  assert.is(j.code, 0, j.out);
  assert.is(JSON.parse(j.stdout).status, 'succeeded');
});

test('a failing hook that echoes the token: the final error line and --json show [REDACTED]', async () => {
  const r = await fr('deploy hookfail', 'deploy', 'app', 'hookfail', '--version', 'v1.2.0');
  assert.is(r.code, 1, r.out);
  assert.match(
    r.stderr,
    'error[E_COMMAND] pre-deployment hook leak failed: exited with status 1: token is [REDACTED]; the deployment stopped before any host changed',
  );
  const j = await fr('deploy hookfail --json', 'deploy', 'app', 'hookfail', '--version', 'v1.2.0', '--json');
  assert.is(j.code, 1, j.out);
  assert.match(JSON.parse(j.stdout).error.message, 'token is [REDACTED]');
  assert.is((await hostState(env, 'h1')).current, 'v1.1.0');
});

test('a restart that prints a secret and fails: the per-target reason is redacted', async () => {
  const j = await fr('deploy restartfail --json', 'deploy', 'app', 'restartfail', '--version', 'v1.0.0', '--json');
  assert.is(j.code, 1, j.out);
  const result = JSON.parse(j.stdout) as { targets: { name: string; error: string | null }[] };
  assert.match(result.targets[0]!.error ?? '', 'restart refused for [REDACTED]');
  const r = await fr('deploy restartfail', 'deploy', 'app', 'restartfail', '--version', 'v1.0.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.stderr, /error\[E_COMMAND\].*restart refused for \[REDACTED\]/);
});

test('a post-deployment hook that prints a secret and fails: history error redacted', async () => {
  const r = await fr('deploy postfail', 'deploy', 'app', 'postfail', '--version', 'v1.0.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.stderr, 'smoke failed with [REDACTED]');
});

test('a git_repo with a password, in --dry-run and for real: never shown', async () => {
  for (const fraise of ['gitapp', 'gitlit']) {
    const dry = await fr(`deploy ${fraise} --dry-run`, 'deploy', fraise, 'production', '--dry-run');
    assert.is(dry.code, 1, dry.out);
    assert.match(dry.stderr, /error\[E_VERSION\] cannot list https:\/\/deploy:\[REDACTED\]@/);
    const j = await fr(`deploy ${fraise} --json`, 'deploy', fraise, 'production', '--json');
    assert.is(j.code, 1, j.out);
    assert.match(JSON.parse(j.stdout).error.message, /cannot resolve "main" in https:\/\/deploy:\[REDACTED\]@/);
  }
  const real = await fr('deploy gitapp', 'deploy', 'gitapp', 'production');
  assert.is(real.code, 1, real.out);
  assert.match(real.stderr, /error\[E_VERSION\] cannot resolve "main" in https:\/\/deploy:\[REDACTED\]@/);
});

test('history, history --json, status --json and status-all --json: redacted', async () => {
  const h = await fr('history --json', 'history', '--json', '--limit', '50');
  assert.is(h.code, 0, h.out);
  const rows = JSON.parse(h.stdout) as { environment: string; fraise: string; error: string | null }[];
  assert.ok(
    rows.some((d) => d.environment === 'hookfail' && d.error?.includes('token is [REDACTED]')),
    h.stdout,
  );
  assert.ok(
    rows.some((d) => d.fraise === 'gitapp' && d.error?.includes('deploy:[REDACTED]@')),
    h.stdout,
  );
  await fr('history', 'history', '--limit', '50');
  for (const e of ['production', 'restartfail']) await fr(`status ${e} --json`, 'status', 'app', e, '--json');
  await fr('status restartfail', 'status', 'app', 'restartfail');
  await fr('status-all --json', 'status-all', '--json');
});

test('PostgreSQL state URLs, malformed or unreachable: exit 2, the reason given, the password in no output', async () => {
  const [p1, p2, p3, p4, p5, p6, p7] = PG_PASSWORDS as [string, string, string, string, string, string, string];
  const cases: [string, RegExp][] = [
    [
      `postgres//deploy:${p1}@127.0.0.1:1/fraisier`,
      /invalid state database URL \(not shown: a password in it cannot be told apart\): it must start with postgres:\/\/ or postgresql:\/\//,
    ],
    [
      `postgres://deploy@127.0.0.1:1/fraisier?password=${p2}&sslmode=disable`,
      /cannot connect to the state database postgres:\/\/deploy@127\.0\.0\.1:1\/fraisier\?password=\*\*\*&sslmode=disable: connect ECONNREFUSED/,
    ],
    [
      `postgres://deploy:${p3}@127.0.0.1:1/fraisier`,
      /cannot connect to the state database postgres:\/\/deploy:\*\*\*@127\.0\.0\.1:1\/fraisier: connect ECONNREFUSED/,
    ],
    [`postgres://deploy:12?${p4}@127.0.0.1:1/fraisier`, /invalid state database URL \(not shown: .*\): an "@" after the host/],
    [`host=127.0.0.1 port=1 password=${p5} dbname=fraisier`, /invalid state database URL host=127\.0\.0\.1 port=1 password=\*\*\* dbname=fraisier: not a URL/],
  ];
  for (const [url, message] of cases) {
    for (const args of [['history'], ['history', '--json']]) {
      const r = await run(process.execPath, [bin, ...args], { cwd: dir, env: { ...SECRETS, FRAISIER_DATABASE_URL: url }, timeoutMs: TIMEOUT });
      runs.push({ what: `${args.join(' ')} with FRAISIER_DATABASE_URL=${url}`, r });
      assert.is(r.code, 2, r.out);
      assert.match(r.stderr, 'error[E_STATE]');
      assert.match(r.stderr, message);
    }
  }
  const migrate = await run(process.execPath, [bin, 'state', 'migrate', '--to', `postgres//deploy:${p6}@127.0.0.1:1/x`], {
    cwd: dir,
    env: { ...SECRETS, FRAISIER_DATABASE_URL: '' },
    timeoutMs: TIMEOUT,
  });
  runs.push({ what: 'state migrate --to <malformed>', r: migrate });
  assert.is(migrate.code, 2, migrate.out);
  assert.match(
    migrate.stderr,
    /error\[E_STATE\] invalid state database URL \(not shown: a password in it cannot be told apart\): it must start with postgres:\/\//,
  );
  const yamlDir = workspace(
    `state:\n  url: 'postgres//deploy:${p7}@127.0.0.1:1/fraisier'\nfraises:\n  app:\n    git_repo: ${env.appRepo}\n    app_path: /srv/app\n    environments:\n      production: { provider: bare_metal, instances: [h1], supervisor_program: app }\n`,
  );
  for (const args of [['history'], ['status-all', '--json']]) {
    const r = await run(process.execPath, [bin, ...args], { cwd: yamlDir, env: { FRAISIER_DATABASE_URL: '' }, timeoutMs: TIMEOUT });
    runs.push({ what: `${args.join(' ')} with a malformed state.url`, r });
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, /error\[E_CONFIG\].*state\.url: .*\(connection string hidden/);
  }
});

test('no secret in any output channel of any run, nor in the raw bytes of the state files', () => {
  assert.ok(runs.length >= 16, `only ${runs.length} runs`);
  for (const { what, r } of runs) {
    assertNoSecret(r.stdout, `stdout of \`fraisier ${what}\``);
    assertNoSecret(r.stderr, `stderr of \`fraisier ${what}\``);
  }
  const stateDir = join(dir, '.fraisier');
  const files = readdirSync(stateDir);
  assert.ok(files.includes('state.db'), files.join(', '));
  let redacted = false;
  for (const f of files) {
    const bytes = readFileSync(join(stateDir, f));
    assertNoSecret(bytes, `the bytes of ${f}`);
    if (bytes.includes('[REDACTED]')) redacted = true;
  }
  assert.ok(redacted, 'the state files hold no redacted message at all: the failures were not recorded');
});

test.after(async () => {
  // leave the hosts as the next test file expects them
  await resetHosts(env);
});

test.run();
