import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FraisierError } from '../../../core/errors.js';
import { findConfig, loadConfig, parseConfig } from '../../../core/config/load.js';

const FILE = 'conf/fraises.yaml';
const BASE = path.dirname(path.resolve(FILE));

/** Runs `fn`, asserts it throws an E_CONFIG FraisierError, and returns it. */
function configError(fn: () => unknown): FraisierError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_CONFIG');
    return err as FraisierError;
  }
  assert.unreachable('expected an E_CONFIG error');
  throw new Error('unreachable');
}

const BASE_ENV = 'instances: [h1]\napp_path: /srv/api\ngit_repo: https://example.com/api.git\nsystemd_service: api.service';

/**
 * A minimal config whose production environment holds `base` then `extra`. Line 4 is `production:`,
 * `base` (4 lines by default) is lines 5-8, so `extra` starts at line 9.
 */
function withEnv(extra: string, base = BASE_ENV): string {
  const body = `${base}\n${extra}`
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => `        ${l}`)
    .join('\n');
  return `fraises:\n  api:\n    environments:\n      production:\n${body}\n`;
}

const FULL = `
state: { path: .fraisier/state.db }
ssh: { config: ~/.ssh/config, known_hosts: ~/.ssh/known_hosts, strict_host_key_checking: true, connect_timeout: 10 }
fraises:
  api:
    type: api
    description: The public API
    git_repo: https://example.com/api.git
    branch: main
    app_path: /srv/api
    environments:
      production:
        provider: bare_metal
        instances: [h1, h2, h3]
        branch: release
        systemd_service: api.service
        keep_releases: 5
        shared: [log, .env]
        build_command: "npm ci --omit=dev"
        deployment_strategy: rolling
        rolling_config:
          batch_size: 2
          wait_between_batches: 30s
          health_check_retries: 5
          rollback_on_health_check_failure: false
        health_check_type: http
        health_check_url: http://localhost:8000/health
        health_check_timeout: 500ms
        health_check_expect: "ok"
        rollback_config:
          enabled: true
          health_check_retries: 4
          retry_delay: 1
          max_consecutive_failures: 3
          rollback_timeout: 2m
      staging:
        instances: [s1]
        app_path: /srv/api-staging
        artifact_dir: ./dist
        restart_command: "sudo systemctl restart api"
        health_check_port: 8000
  worker:
    environments:
      production:
        instances: [w1]
        app_path: /srv/worker
        git_repo: https://example.com/worker.git
        supervisor_program: worker
        health_check_type: exec
        health_check_command: "curl -fsS localhost:8000/health"
`;

test('a full config normalizes to the expected object', () => {
  const c = parseConfig(FULL, FILE, {});
  assert.is(c.file, path.resolve(FILE));
  assert.is(c.baseDir, BASE);
  assert.equal(c.state, { path: path.join(BASE, '.fraisier/state.db') });
  assert.equal(c.ssh, { configFile: '~/.ssh/config', knownHostsFile: '~/.ssh/known_hosts', strictHostKeyChecking: true, connectTimeout: 10 });
  assert.equal(c.secrets, []);
  assert.is(c.raw.fraises.api!.environments.production!.keep_releases, 5);
  assert.equal(c.fraises, {
    api: {
      name: 'api',
      type: 'api',
      description: 'The public API',
      environments: {
        production: {
          name: 'production',
          keyPath: 'fraises.api.environments.production',
          provider: 'bare_metal',
          instances: ['h1', 'h2', 'h3'],
          appPath: '/srv/api',
          source: { type: 'git', repo: 'https://example.com/api.git', branch: 'release' },
          service: { type: 'systemd', unit: 'api.service' },
          keepReleases: 5,
          shared: ['log', '.env'],
          build: 'npm ci --omit=dev',
          strategy: { type: 'rolling', batchSize: 2, waitBetweenBatchesMs: 30_000 },
          health: {
            check: { type: 'http', url: 'http://localhost:8000/health', expectBody: 'ok' },
            retries: 4,
            retryDelayMs: 1000,
            timeoutMs: 500,
            maxConsecutiveFailures: 3,
          },
          rollback: { enabled: true, onHealthCheckFailure: false, timeoutMs: 120_000 },
        },
        staging: {
          name: 'staging',
          keyPath: 'fraises.api.environments.staging',
          provider: 'bare_metal',
          instances: ['s1'],
          appPath: '/srv/api-staging',
          source: { type: 'artifact', dir: path.join(BASE, 'dist') },
          service: { type: 'command', restart: 'sudo systemctl restart api' },
          strategy: { type: 'rolling', batchSize: 1, waitBetweenBatchesMs: 0 },
          health: { check: { type: 'tcp', port: 8000 }, retries: 3, retryDelayMs: 2000, timeoutMs: 5000 },
          rollback: { enabled: true, onHealthCheckFailure: true, timeoutMs: 300_000 },
        },
      },
    },
    worker: {
      name: 'worker',
      environments: {
        production: {
          name: 'production',
          keyPath: 'fraises.worker.environments.production',
          provider: 'bare_metal',
          instances: ['w1'],
          appPath: '/srv/worker',
          source: { type: 'git', repo: 'https://example.com/worker.git', branch: 'main' },
          service: { type: 'supervisor', program: 'worker' },
          strategy: { type: 'rolling', batchSize: 1, waitBetweenBatchesMs: 0 },
          health: { check: { type: 'exec', command: 'curl -fsS localhost:8000/health' }, retries: 3, retryDelayMs: 2000, timeoutMs: 5000 },
          rollback: { enabled: true, onHealthCheckFailure: true, timeoutMs: 300_000 },
        },
      },
    },
  });
});

test("the original Fraisier's form: health_check block, fraise-level git_repo/branch/app_path", () => {
  const c = parseConfig(
    `fraises:
  api:
    git_repo: git@github.com:acme/api.git
    branch: production
    app_path: /var/www/api
    environments:
      production:
        instances: [web1]
        systemd_service: api
        health_check:
          url: http://localhost:8000/health
          timeout: 10
          retries: 7
          retry_delay: 3
`,
    FILE,
    {},
  );
  const env = c.fraises.api!.environments.production!;
  assert.equal(env.source, { type: 'git', repo: 'git@github.com:acme/api.git', branch: 'production' });
  assert.is(env.appPath, '/var/www/api');
  assert.equal(env.service, { type: 'systemd', unit: 'api' });
  assert.equal(env.health, { check: { type: 'http', url: 'http://localhost:8000/health' }, retries: 7, retryDelayMs: 3000, timeoutMs: 10_000 });
  assert.is(c.fraises.api!.type, undefined);
  assert.equal(c.state, {});
  assert.equal(c.ssh, {});
});

test('an unknown key names the file, the dotted key path, the line and the expected keys', () => {
  const err = configError(() => parseConfig(withEnv('rolling_config:\n  batch_sise: 1'), FILE, {}));
  const key = 'fraises.api.environments.production.rolling_config.batch_sise';
  assert.is(err.file, FILE);
  assert.is(err.key, key);
  assert.ok(err.message.startsWith(`${FILE}: ${key}: unknown key "batch_sise"; expected one of: batch_size, wait_between_batches,`), err.message);
  assert.ok(err.message.includes('health_check_retries, rollback_on_health_check_failure'), err.message);
  assert.ok(err.message.endsWith('(line 10)'), err.message);
  assert.is(err.hint, 'did you mean "batch_size"?');
});

test('`hosts` is not an alias of `instances`: it is an unknown key with a hint', () => {
  const err = configError(() => parseConfig(withEnv('', 'hosts: [h1]\napp_path: /srv/api\ngit_repo: x\nsystemd_service: api'), FILE, {}));
  assert.is(err.key, 'fraises.api.environments.production.hosts');
  assert.is(err.hint, 'did you mean "instances"?');
});

test('a wrong type says what was expected and what was found', () => {
  const err = configError(() => parseConfig(withEnv('rolling_config:\n  batch_size: two'), FILE, {}));
  assert.is(err.key, 'fraises.api.environments.production.rolling_config.batch_size');
  assert.is(err.message, `${FILE}: fraises.api.environments.production.rolling_config.batch_size: expected an integer >= 1, got "two" (line 10)`);

  const dur = configError(() => parseConfig(withEnv('health_check_url: http://x\nhealth_check_timeout: soon'), FILE, {}));
  assert.is(dur.key, 'fraises.api.environments.production.health_check_timeout');
  assert.match(dur.message, /expected a duration: a number of seconds, or a string such as "500ms", "30s" or "2m", got "soon"/);

  const kind = configError(() => parseConfig(withEnv('health_check_type: ping'), FILE, {}));
  assert.match(kind.message, /health_check_type: expected one of: http, tcp, exec, got "ping"/);
});

test('missing instances', () => {
  const err = configError(() => parseConfig(withEnv('', 'app_path: /srv/api\ngit_repo: x\nsystemd_service: api'), FILE, {}));
  assert.is(err.key, 'fraises.api.environments.production');
  assert.is(err.message, `${FILE}: fraises.api.environments.production: missing required key "instances" (line 4)`);

  const empty = configError(() => parseConfig(withEnv('', 'instances: []\napp_path: /srv/api\ngit_repo: x\nsystemd_service: api'), FILE, {}));
  assert.is(empty.key, 'fraises.api.environments.production.instances');
  assert.match(empty.message, /expected a non-empty list of distinct host names, got a list/);
});

test('malformed YAML gives file, line and column', () => {
  const err = configError(() => parseConfig('fraises:\n  api:\n    environments: [\n  bad: "x\n', FILE, {}));
  assert.is(err.file, FILE);
  assert.match(err.message, new RegExp(`^${FILE.replace('.', '\\.')}:\\d+:\\d+: invalid YAML: `));

  const tab = configError(() => parseConfig('fraises:\n  api:\n    type: a\n   description: b: c\n', FILE, {}));
  assert.match(tab.message, /^conf\/fraises\.yaml:4:\d+: invalid YAML: /);
});

test('unknown strategy and provider name the known ones', () => {
  const s = configError(() => parseConfig(withEnv('deployment_strategy: shadow'), FILE, {}));
  assert.is(s.key, 'fraises.api.environments.production.deployment_strategy');
  assert.match(s.message, /unknown deployment strategy "shadow"; known strategies: rolling, canary, blue_green \(line 9\)$/);

  const p = configError(() => parseConfig(withEnv('provider: k8s'), FILE, {}));
  assert.is(p.key, 'fraises.api.environments.production.provider');
  assert.match(p.message, /unknown provider "k8s"; known providers: bare_metal/);

  // coolify is a known provider now: bare_metal's keys under it are unknown keys, naming coolify's
  const c = configError(() => parseConfig(withEnv('provider: coolify'), FILE, {}));
  assert.match(c.message, /unknown key "\w+"; expected one of: provider, url, application_id, token_env/);
});

test('exactly one of systemd_service, supervisor_program, restart_command', () => {
  const both = configError(() => parseConfig(withEnv('supervisor_program: api'), FILE, {}));
  assert.is(both.key, 'fraises.api.environments.production');
  assert.match(
    both.message,
    /set exactly one of systemd_service, supervisor_program, restart_command; found systemd_service and supervisor_program \(line 9\)$/,
  );

  const none = configError(() => parseConfig(withEnv('', 'instances: [h1]\napp_path: /srv/api\ngit_repo: x'), FILE, {}));
  assert.match(none.message, /missing a restart method/);
});

test('other semantic checks: source, app_path, health check completeness', () => {
  const twoSources = configError(() => parseConfig(withEnv('artifact_dir: ./dist'), FILE, {}));
  assert.match(twoSources.message, /set exactly one source: git_repo or artifact_dir, not both/);

  const noSource = configError(() => parseConfig(withEnv('', 'instances: [h1]\napp_path: /srv/api\nsystemd_service: api'), FILE, {}));
  assert.match(noSource.message, /missing a source/);

  const relative = configError(() => parseConfig(withEnv('', 'instances: [h1]\napp_path: srv/api\ngit_repo: x\nsystemd_service: api'), FILE, {}));
  assert.is(relative.key, 'fraises.api.environments.production.app_path');
  assert.match(relative.message, /expected an absolute path/);

  const noPath = configError(() => parseConfig(withEnv('', 'instances: [h1]\ngit_repo: x\nsystemd_service: api'), FILE, {}));
  assert.match(noPath.message, /missing required key "app_path"/);

  const http = configError(() => parseConfig(withEnv('health_check_type: http\nhealth_check_port: 80'), FILE, {}));
  assert.match(http.message, /a http health check needs health_check_url/);

  const tcp = configError(() => parseConfig(withEnv('health_check_type: tcp'), FILE, {}));
  assert.match(tcp.message, /a tcp health check needs health_check_port/);

  const exec = configError(() => parseConfig(withEnv('health_check_type: exec\nhealth_check_url: http://x'), FILE, {}));
  assert.match(exec.message, /a exec health check needs health_check_command/);

  const twice = configError(() => parseConfig(withEnv('health_check_url: http://a\nhealth_check:\n  url: http://b'), FILE, {}));
  assert.match(twice.message, /set either health_check_url or health_check\.url, not both/);
});

test('empty fraises is an error', () => {
  const err = configError(() => parseConfig('fraises: {}\n', FILE, {}));
  assert.is(err.key, 'fraises');
  assert.match(err.message, /fraises: expected at least one fraise/);

  const missing = configError(() => parseConfig('state: { path: x.db }\n', FILE, {}));
  assert.match(missing.message, /missing required key "fraises"/);

  const blank = configError(() => parseConfig('', FILE, {}));
  assert.match(blank.message, /expected a mapping with a "fraises" key/);
});

test('interpolation: ${VAR}, ${VAR:-default}, $${VAR} escape, numbers from unquoted values', () => {
  const c = parseConfig(
    withEnv(`branch: \${BRANCH:-main}
build_command: "echo \${GREETING} $\${HOME}"
health_check_port: \${PORT}
keep_releases: \${KEEP:-3}`),
    FILE,
    { GREETING: 'hello', PORT: '8080' },
  );
  const env = c.fraises.api!.environments.production!;
  assert.equal(env.source, { type: 'git', repo: 'https://example.com/api.git', branch: 'main' });
  assert.is(env.build, 'echo hello ${HOME}');
  assert.equal(env.health?.check, { type: 'tcp', port: 8080 });
  assert.is(env.keepReleases, 3);
});

test('a missing variable without default names the file, key path and variable', () => {
  const err = configError(() => parseConfig(withEnv('build_command: "make ${TARGET}"'), FILE, {}));
  assert.is(err.file, FILE);
  assert.is(err.key, 'fraises.api.environments.production.build_command');
  assert.match(err.message, /build_command: environment variable TARGET is not set \(line 9\)$/);
});

test('values of PASSWORD/SECRET/TOKEN/KEY variables are reported as secrets', () => {
  const c = parseConfig(
    withEnv(`build_command: "deploy --token \${DEPLOY_TOKEN} --user \${USER_NAME} --pw \${DB_PASSWORD:-fallback-pw}"
shared: ["\${API_KEY}", "\${DEPLOY_TOKEN}"]`),
    FILE,
    { DEPLOY_TOKEN: 'tok-123', USER_NAME: 'bob', API_KEY: 'k-456' },
  );
  assert.equal(c.secrets.sort(), ['fallback-pw', 'k-456', 'tok-123']);
  assert.is(c.fraises.api!.environments.production!.build, 'deploy --token tok-123 --user bob --pw fallback-pw');
});

const MINIMAL = `fraises:\n  api:\n    environments:\n      production:\n        instances: [h1]\n        app_path: /srv/api\n        git_repo: https://example.com/api.git\n        systemd_service: api.service\n`;

test('state.url: a PostgreSQL URL is kept as written and its password becomes a secret', () => {
  const c = parseConfig(`state:\n  url: postgres://deploy:\${PGPASSWORD}@db.internal:5432/fraisier\n${MINIMAL}`, FILE, { PGPASSWORD: 'pa55-w0rd' });
  assert.equal(c.state, { url: 'postgres://deploy:pa55-w0rd@db.internal:5432/fraisier' });
  assert.ok(c.secrets.includes('pa55-w0rd'), 'the password is redacted from every log line');
  const percent = parseConfig(`state: { url: "postgresql://deploy:s%3Acret@db/fraisier?sslmode=require" }\n${MINIMAL}`, FILE, {});
  assert.ok(percent.secrets.includes('s:cret'));
});

test('state.url: a malformed URL names file, key and expected form, and never shows the password', () => {
  const cases: [string, RegExp][] = [
    ['mysql://root:hunter2@db/x', /the scheme is "mysql"/],
    ['postgres://deploy:hunter2@db.internal:5432', /no database name/],
    ['deploy:hunter2@db.internal/fraisier', /not a URL|the scheme/],
    ['postgres://deploy:hunter2@db.internal:notaport/x', /not a URL/],
    ['postgres://deploy:hun/ter@2@db.internal/x', /not a URL/], // an unencoded "/" in the password
  ];
  for (const [url, problem] of cases) {
    const e = configError(() => parseConfig(`state:\n  url: "${url}"\n${MINIMAL}`, FILE, {}));
    assert.match(e.message, 'conf/fraises.yaml: state.url: expected a PostgreSQL URL such as postgres://user:password@host:5432/database, got');
    assert.match(e.message, problem);
    assert.match(e.message, '(line 2)');
    assert.is(e.key, 'state.url');
    assert.not.match(e.message, /hunter2|hun\/ter|ter@2/, `password hidden in: ${e.message}`);
    // a URL that parses is shown with *** for its password; one that does not is not shown at all
    assert.match(e.message, /:\*\*\*@|\(connection string hidden: [^)]+\)/);
  }
});

test('state.url of the wrong type, and path with url, are errors naming the key', () => {
  const num = configError(() => parseConfig(`state:\n  url: 5432\n${MINIMAL}`, FILE, {}));
  assert.is(num.message, 'conf/fraises.yaml: state.url: expected a PostgreSQL URL such as postgres://user:password@host:5432/database, got 5432 (line 2)');
  const list = configError(() => parseConfig(`state:\n  url: [a, b]\n${MINIMAL}`, FILE, {}));
  assert.match(list.message, 'state.url: expected a PostgreSQL URL such as postgres://user:password@host:5432/database, got a list');
  const both = configError(() => parseConfig(`state:\n  path: x.db\n  url: postgres://u@db/x\n${MINIMAL}`, FILE, {}));
  assert.match(both.message, 'conf/fraises.yaml: state.url: state.path and state.url are exclusive');
  const typo = configError(() => parseConfig(`state:\n  uri: postgres://u@db/x\n${MINIMAL}`, FILE, {}));
  assert.match(typo.message, 'state.uri: unknown key "uri"; expected one of: path, url');
});

test('findConfig: explicit, then FRAISIER_CONFIG, then ./fraises.yaml', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-config-'));
  try {
    const local = path.join(dir, 'fraises.yaml');
    const other = path.join(dir, 'other.yaml');
    const explicit = path.join(dir, 'explicit.yaml');
    for (const f of [local, other, explicit]) fs.writeFileSync(f, FULL);

    assert.is(findConfig('explicit.yaml', { FRAISIER_CONFIG: other }, dir), explicit);
    assert.is(findConfig(undefined, { FRAISIER_CONFIG: other }, dir), other);
    assert.is(findConfig(undefined, {}, dir), local);

    const missingExplicit = configError(() => findConfig('nope.yaml', { FRAISIER_CONFIG: other }, dir));
    assert.match(missingExplicit.message, /nope\.yaml/);
    const missingEnv = configError(() => findConfig(undefined, { FRAISIER_CONFIG: path.join(dir, 'gone.yaml') }, dir));
    assert.match(missingEnv.message, /gone\.yaml \(from FRAISIER_CONFIG\)/);
    fs.rmSync(local);
    const none = configError(() => findConfig(undefined, {}, dir));
    assert.ok(none.message.includes(local), none.message);

    const loaded = loadConfig(other, {});
    assert.is(loaded.file, other);
    assert.equal(Object.keys(loaded.fraises), ['api', 'worker']);
    assert.match(configError(() => loadConfig(path.join(dir, 'gone.yaml'), {})).message, /file not found/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const LB = `fraises:
  api:
    git_repo: /r.git
    app_path: /srv/api
    environments:
      production:
        instances: [h1, h2]
        supervisor_program: api
        load_balancer:
          type: nginx
          file: /etc/nginx/conf.d/api-upstream.conf
          servers: { h1: "10.0.0.1:8000", h2: "10.0.0.2:8000" }
          drain_timeout: 3
`;

test('load_balancer: nginx normalizes, bare drain_timeout in seconds', () => {
  const env = parseConfig(LB, FILE, {}).fraises['api']!.environments['production']!;
  assert.equal(env.loadBalancer, {
    type: 'nginx',
    file: '/etc/nginx/conf.d/api-upstream.conf',
    servers: { h1: '10.0.0.1:8000', h2: '10.0.0.2:8000' },
    drainTimeoutMs: 3000,
  });
});

test('load_balancer: every instance needs a server; only nginx and haproxy are known', () => {
  const a = configError(() => parseConfig(LB.replace(', h2: "10.0.0.2:8000"', ''), FILE, {}));
  assert.match(a.message, 'fraises.api.environments.production.load_balancer.servers');
  assert.match(a.message, 'h2');
  const b = configError(() => parseConfig(LB.replace('type: nginx', 'type: traefik'), FILE, {}));
  assert.match(b.message, 'load_balancer.type');
  assert.match(b.message, '"nginx" or "haproxy"');
});

const HAPROXY_LB = `fraises:
  api:
    git_repo: /r.git
    app_path: /srv/api
    environments:
      production:
        instances: [h1, h2]
        supervisor_program: api
        load_balancer:
          type: haproxy
          socket: /run/haproxy/admin.sock
          backend: api_be
          servers: { h2: app2 }
          host: lb1
          drain_timeout: 8s
`;

test('load_balancer: haproxy normalizes (socket, backend, server names, drain_timeout)', () => {
  const env = parseConfig(HAPROXY_LB, FILE, {}).fraises['api']!.environments['production']!;
  assert.equal(env.loadBalancer, {
    type: 'haproxy',
    socket: '/run/haproxy/admin.sock',
    servers: { h2: 'app2' },
    backend: 'api_be',
    host: 'lb1',
    drainTimeoutMs: 8000,
  });
});

test('load_balancer: haproxy needs an absolute socket and refuses nginx options; nginx refuses haproxy options and passive drain normalizes', () => {
  const a = configError(() => parseConfig(HAPROXY_LB.replace('          socket: /run/haproxy/admin.sock\n', ''), FILE, {}));
  assert.match(a.message, 'type: haproxy needs socket');
  const b = configError(() => parseConfig(HAPROXY_LB.replace('socket: /run/haproxy/admin.sock', 'socket: admin.sock'), FILE, {}));
  assert.match(b.message, 'load_balancer.socket');
  assert.match(b.message, 'expected an absolute path');
  const c = configError(() => parseConfig(HAPROXY_LB.replace('backend: api_be', 'file: /etc/x.conf'), FILE, {}));
  assert.match(c.message, 'load_balancer.file');
  assert.match(c.message, 'file is an nginx option');
  const d = configError(() => parseConfig(LB.replace('drain_timeout: 3', 'socket: /run/haproxy/admin.sock'), FILE, {}));
  assert.match(d.message, 'socket is a haproxy option');
  const e = configError(() => parseConfig(LB.replace('drain_timeout: 3', 'drain: sometimes'), FILE, {}));
  assert.match(e.message, 'load_balancer.drain');
  const env = parseConfig(LB.replace('drain_timeout: 3', 'drain: passive\n          max_fails: 2\n          fail_timeout: 4s'), FILE, {}).fraises['api']!
    .environments['production']!;
  assert.equal(env.loadBalancer, {
    type: 'nginx',
    file: '/etc/nginx/conf.d/api-upstream.conf',
    servers: { h1: '10.0.0.1:8000', h2: '10.0.0.2:8000' },
    drain: 'passive',
    maxFails: 2,
    failTimeoutMs: 4000,
  });
});

const LB_BLOCK = (servers: string, target = '') =>
  `load_balancer:\n  type: nginx\n  file: /etc/nginx/fraisier/api.conf\n  servers: { ${servers} }${target ? `\n  target: ${target}` : ''}`;

test('deployment_strategy blue_green: the colours, the verification and the load balancer', () => {
  const yaml = withEnv(
    `deployment_strategy: blue_green\nblue_green_config:\n  blue: [h1]\n  green: [h2]\n  verify_command: ./e2e.sh\n  verify_timeout: 90s\n${LB_BLOCK('h1: 10.0.0.1:8000, h2: 10.0.0.2:8000')}`,
    BASE_ENV.replace('instances: [h1]', 'instances: [h1, h2]'),
  );
  const env = parseConfig(yaml, FILE, {}).fraises['api']!.environments['production']!;
  assert.equal(env.strategy, { type: 'blue_green', blue: ['h1'], green: ['h2'], verifyCommand: './e2e.sh', verifyTimeoutMs: 90_000 });
  assert.equal(env.instances, ['h1', 'h2']);
});

test('blue_green mistakes name the key: missing colours, no load balancer, a host in no colour, colours without the strategy', () => {
  const two = BASE_ENV.replace('instances: [h1]', 'instances: [h1, h2]');
  const lb = LB_BLOCK('h1: 10.0.0.1:8000, h2: 10.0.0.2:8000');
  const a = configError(() => parseConfig(withEnv(`deployment_strategy: blue_green\n${lb}`, two), FILE, {}));
  assert.match(a.message, 'needs blue_green_config with blue: [...] and green: [...]');
  const b = configError(() => parseConfig(withEnv('deployment_strategy: blue_green\nblue_green_config: { blue: [h1], green: [h2] }', two), FILE, {}));
  assert.match(b.message, 'needs a load_balancer');
  assert.is(b.key, 'fraises.api.environments.production.deployment_strategy');
  const c = configError(() => parseConfig(withEnv(`deployment_strategy: blue_green\nblue_green_config: { blue: [h1], green: [h3] }\n${lb}`, two), FILE, {}));
  assert.match(c.message, 'h3 is not in instances (h1, h2)');
  const d = configError(() => parseConfig(withEnv(`deployment_strategy: blue_green\nblue_green_config: { blue: [h1], green: [h1] }\n${lb}`, two), FILE, {}));
  assert.match(d.message, 'h1 cannot be both blue and green');
  const e = configError(() => parseConfig(withEnv(`blue_green_config: { blue: [h1], green: [h2] }\n${lb}`, two), FILE, {}));
  assert.match(e.message, 'set deployment_strategy: blue_green');
  const f = configError(() =>
    parseConfig(withEnv(`deployment_strategy: blue_green\nblue_green_config: { blue: [h1], green: [h2], verify: x }\n${lb}`, two), FILE, {}),
  );
  assert.is(f.key, 'fraises.api.environments.production.blue_green_config.verify');
});

/** The seed's form: production_blue and production_green, each with load_balancer.target. */
function colourPair(blueExtra = '', greenExtra = ''): string {
  const env = (name: string, host: string, colour: string, extra: string) =>
    [
      `      ${name}:`,
      ...`instances: [${host}]\n${LB_BLOCK(`${host}: 10.0.0.${host.slice(1)}:8000`, colour)}${extra ? `\n${extra}` : ''}`
        .split('\n')
        .map((l) => `        ${l}`),
    ].join('\n');
  return `fraises:\n  api:\n    git_repo: https://example.com/api.git\n    app_path: /srv/api\n    supervisor_program: api\n    environments:\n${env('production_blue', 'h1', 'blue', blueExtra)}\n${env('production_green', 'h2', 'green', greenExtra)}\n`
    .replace('    supervisor_program: api\n', '')
    .replace(/(instances: \[h\d\])/g, '$1\n        supervisor_program: api');
}

test("the seed's production_blue / production_green pair becomes one blue-green environment `production`", () => {
  const config = parseConfig(colourPair('blue_green_config: { verify_command: ./e2e.sh }'), FILE, {});
  const envs = config.fraises['api']!.environments;
  assert.equal(Object.keys(envs), ['production']);
  const p = envs['production']!;
  assert.equal(p.strategy, { type: 'blue_green', blue: ['h1'], green: ['h2'], verifyCommand: './e2e.sh' });
  assert.equal(p.instances, ['h1', 'h2']);
  assert.equal(p.loadBalancer!.servers, { h1: '10.0.0.1:8000', h2: '10.0.0.2:8000' });
  assert.is(p.loadBalancer!.target, undefined);
});

test('a colour without its mate, a misnamed colour, or colours that differ beyond their hosts: clear errors', () => {
  const lone = colourPair().replace(/ {6}production_green:[\s\S]*$/, '');
  const a = configError(() => parseConfig(lone, FILE, {}));
  assert.match(a.message, 'production_blue is the blue colour of production, but there is no production_green environment with load_balancer.target: green');
  const b = configError(() => parseConfig(colourPair().replace('production_blue:', 'prod_a:'), FILE, {}));
  assert.match(b.message, 'must be named <name>_blue');
  const c = configError(() => parseConfig(colourPair('', 'keep_releases: 3'), FILE, {}));
  assert.match(c.message, 'production_blue and production_green must differ only in instances and load_balancer.servers');
});

test('shared: relative paths inside the release only; file, key, line and what was expected', () => {
  const cases: [string, RegExp][] = [
    ['../../../../tmp/victim', /a "\.\." component leaves the release directory/],
    ['../v1.0.0', /a "\.\." component leaves the release directory/],
    ['log/../../x', /a "\.\." component/],
    ['/etc', /got the absolute path "\/etc"/],
    ['./log', /remove the "\." component/],
    ['log//x', /empty component/],
    ['log/', /empty component/],
    ['.fraisier-release', /a file Fraisier writes in every release/],
  ];
  for (const [p, problem] of cases) {
    const e = configError(() => parseConfig(withEnv(`shared: [log, ${JSON.stringify(p)}]`), FILE, {}));
    assert.is(e.file, FILE);
    assert.is(e.key, 'fraises.api.environments.production.shared[1]', p);
    assert.match(e.message, 'conf/fraises.yaml: fraises.api.environments.production.shared[1]: ');
    assert.match(e.message, problem, e.message);
    assert.match(e.message, /\(line 9\)$/);
  }
  const empty = configError(() => parseConfig(withEnv('shared: [""]'), FILE, {}));
  assert.match(empty.message, 'shared[0]: expected a non-empty string, got ""');
  const nested = configError(() => parseConfig(withEnv('shared: [storage, storage/uploads]'), FILE, {}));
  assert.match(nested.message, 'shared[1]: "storage/uploads" is inside "storage", which is shared already');
  const twice = configError(() => parseConfig(withEnv('shared: [log, log]'), FILE, {}));
  assert.match(twice.message, '"log" is listed twice');
  const ok = parseConfig(withEnv('shared: [log, storage/uploads, .env, storage-old]'), FILE, {});
  assert.equal(ok.fraises.api!.environments.production!.shared, ['log', 'storage/uploads', '.env', 'storage-old']);
});

test('app_path: "/" and paths not in normal form are refused, naming the directory they really are', () => {
  const at = (p: string) => withEnv('', `instances: [h1]\napp_path: "${p}"\ngit_repo: x\nsystemd_service: api`);
  const dotdot = configError(() => parseConfig(at('/srv/../tmp/x'), FILE, {}));
  assert.is(dotdot.key, 'fraises.api.environments.production.app_path');
  assert.is(
    dotdot.message,
    'conf/fraises.yaml: fraises.api.environments.production.app_path: "/srv/../tmp/x" is not in normal form: it names "/tmp/x"; write "/tmp/x" (no ".", ".." or empty components) (line 6)',
  );
  const root = configError(() => parseConfig(at('/'), FILE, {}));
  assert.match(root.message, 'app_path: "/" is the root directory');
  const up = configError(() => parseConfig(at('/..'), FILE, {}));
  assert.match(up.message, 'app_path: "/.." is the root directory');
  const doubled = configError(() => parseConfig(at('/srv//api'), FILE, {}));
  assert.match(doubled.message, 'it names "/srv/api"');
  const dot = configError(() => parseConfig(at('/srv/./api'), FILE, {}));
  assert.match(dot.message, 'it names "/srv/api"');
  const fraiseLevel = configError(() =>
    parseConfig(
      'fraises:\n  api:\n    app_path: /srv/app/..\n    environments:\n      production:\n        instances: [h1]\n        git_repo: x\n        systemd_service: api\n',
      FILE,
      {},
    ),
  );
  assert.is(fraiseLevel.key, 'fraises.api.app_path');
  assert.match(fraiseLevel.message, /it names "\/srv".*\(line 3\)$/);
  // one trailing slash is only dropped
  assert.is(parseConfig(at('/srv/api/'), FILE, {}).fraises.api!.environments.production!.appPath, '/srv/api');
});

test('instances with shell metacharacters or spaces are refused at load, naming the item and its line', () => {
  for (const h of ['h1;touch /tmp/pwned', '$(id)', 'h1 h2', '`id`', 'h1|x', '-oProxyCommand=x']) {
    const e = configError(() =>
      parseConfig(withEnv('', `instances: [h1, ${JSON.stringify(h)}]\napp_path: /srv/api\ngit_repo: x\nsystemd_service: api`), FILE, {}),
    );
    assert.is(e.key, 'fraises.api.environments.production.instances[1]', h);
    assert.match(e.message, `instances[1]: ${JSON.stringify(h)} is not a host name: expected host, user@host or user@host:port`);
    assert.match(e.message, /\(line 5\)$/);
  }
  const ok = parseConfig(
    withEnv('', 'instances: [h1, deploy@web-2.example.com, root@10.0.0.3:2222]\napp_path: /srv/api\ngit_repo: x\nsystemd_service: api'),
    FILE,
    {},
  );
  assert.equal(ok.fraises.api!.environments.production!.instances, ['h1', 'deploy@web-2.example.com', 'root@10.0.0.3:2222']);
  const lb = configError(() =>
    parseConfig(withEnv('load_balancer:\n  type: nginx\n  file: /etc/nginx/up.conf\n  host: "lb;id"\n  servers: { h1: "10.0.0.1:80" }'), FILE, {}),
  );
  assert.is(lb.key, 'fraises.api.environments.production.load_balancer.host');
});

test('branch names follow git check-ref-format, checked at load (before any host is asked)', () => {
  const bad: [string, RegExp][] = [
    ['feature..x', /contains "\.\."/],
    ['a b', /contains a space/],
    ['topic~1', /contains "~"/],
    ['x^', /contains "\^"/],
    ['a:b', /contains ":"/],
    ['wild*', /contains "\*"/],
    ['-rf', /starts with "-"/],
    ['main.lock', /ends with "\.lock"/],
    ['.hidden', /starts with "\."/],
    ['rel/', /empty component/],
    ['a@{1}', /contains "@\{"/],
    ['@', /"@" alone/],
    ['end.', /ends with "\."/],
  ];
  for (const [b, problem] of bad) {
    const e = configError(() => parseConfig(withEnv(`branch: ${JSON.stringify(b)}`), FILE, {}));
    assert.is(e.key, 'fraises.api.environments.production.branch', b);
    assert.match(e.message, `branch: ${JSON.stringify(b)} is not a valid git branch name`);
    assert.match(e.message, problem, e.message);
    assert.match(e.message, /\(line 9\)$/);
  }
  const fraiseLevel = configError(() =>
    parseConfig(
      'fraises:\n  api:\n    branch: "x..y"\n    environments:\n      production:\n        instances: [h1]\n        app_path: /srv/api\n        git_repo: x\n        systemd_service: api\n',
      FILE,
      {},
    ),
  );
  assert.is(fraiseLevel.key, 'fraises.api.branch');
  assert.match(fraiseLevel.message, /\(line 3\)$/);
  for (const b of ['main', 'release/1.2', 'feature/JIRA-12_x', 'v1.0']) {
    assert.equal(parseConfig(withEnv(`branch: ${b}`), FILE, {}).fraises.api!.environments.production!.source, {
      type: 'git',
      repo: 'https://example.com/api.git',
      branch: b,
    });
  }
});

test('an invalid health check URL: E_CONFIG with the key and the line', () => {
  const cases: [string, string, RegExp][] = [
    ['health_check_url: "not a url"', 'health_check_url', /got "not a url" \(not a URL\)/],
    ['health_check_url: "https://localhost/health"', 'health_check_url', /https:\/\/ is not supported/],
    ['health_check:\n  url: "localhost:8000/health"', 'health_check.url', /localhost:/],
    ['health_check:\n  url: "http//localhost/health"', 'health_check.url', /not a URL/],
  ];
  for (const [yaml, key, problem] of cases) {
    const e = configError(() => parseConfig(withEnv(yaml), FILE, {}));
    assert.is(e.key, `fraises.api.environments.production.${key}`, yaml);
    assert.match(e.message, 'expected an http:// URL such as http://localhost:8000/health');
    assert.match(e.message, problem, e.message);
    assert.match(e.message, /\(line (9|10)\)$/);
  }
});

test('a secret interpolated into a wrong value is never shown in the error', () => {
  const secretValue = 'not-a-number-s3cr3t';
  const keep = configError(() => parseConfig(withEnv('keep_releases: ${KEEP_SECRET}'), FILE, { KEEP_SECRET: secretValue }));
  assert.not.match(keep.message, secretValue);
  assert.match(keep.message, 'keep_releases: expected an integer >= 2, got [REDACTED] (from ${KEEP_SECRET}) (line 9)');
  const short = configError(() => parseConfig(withEnv('keep_releases: ${KEEP_SECRET}'), FILE, { KEEP_SECRET: 'x1' }));
  assert.not.match(short.message, '"x1"');
  assert.match(short.message, 'got [REDACTED]');
  const dur = configError(() => parseConfig(withEnv('health_check_port: 80\nhealth_check_timeout: "${API_TOKEN}"'), FILE, { API_TOKEN: 'tok-99 s' }));
  assert.not.match(dur.message, 'tok-99');
  const inUrl = configError(() => parseConfig(withEnv('health_check_url: "${HEALTH_TOKEN}:8000/x"'), FILE, { HEALTH_TOKEN: 'ht-secret-1' }));
  assert.not.match(inUrl.message, 'ht-secret-1');
  assert.match(inUrl.message, '[REDACTED]');
  const shared = configError(() => parseConfig(withEnv('shared: ["../${SHARE_KEY}"]'), FILE, { SHARE_KEY: 'sk-abcdef' }));
  assert.not.match(shared.message, 'sk-abcdef');
  const whole = configError(() => parseConfig('${CONFIG_SECRET}\n', FILE, { CONFIG_SECRET: 'whole-file-secret' }));
  assert.not.match(whole.message, 'whole-file-secret');
});

test.run();
