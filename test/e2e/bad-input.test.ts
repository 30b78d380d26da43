/**
 * Bad input, end to end: each case gives a clear error and a non-zero exit, and no host changes
 * (same `current`, same releases, same app process).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { fraisier, lab, labYaml, resetHosts, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;

async function snapshot(): Promise<string[]> {
  return Promise.all(
    env.hosts.map(async (h) => (await hostExec(env, h.name, 'readlink /srv/app/current; ls -1a /srv/app/releases; supervisorctl pid app')).stdout),
  );
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(labYaml(env, { batch: 3 }));
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
});

/** Runs a failing command and checks that every host is exactly as before. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await fn();
  assert.equal(await snapshot(), before, 'no host changed');
}

function yamlIn(text: string): string {
  return workspace(text);
}

test('malformed YAML: file, line and column', async () => {
  await unchanged(async () => {
    const dir = yamlIn('fraises:\n  app:\n    environments: [unclosed\n');
    const r = await fraisier(dir, 'deploy', 'app', 'production');
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, /fraises\.yaml:\d+:\d+: invalid YAML/);
  });
});

test('unknown key: names the file, the key path and what was expected', async () => {
  await unchanged(async () => {
    const dir = yamlIn(labYaml(env).replace('batch_size:', 'batch_sise:'));
    const r = await fraisier(dir, 'deploy', 'app', 'production');
    assert.is(r.code, 2, r.out);
    assert.match(r.stderr, 'fraises.yaml');
    assert.match(r.stderr, 'fraises.app.environments.production.rolling_config.batch_sise');
    assert.match(r.stderr, 'batch_size');
  });
});

test('unknown fraise and unknown environment', async () => {
  await unchanged(async () => {
    const a = await fraisier(ws, 'deploy', 'nope', 'production');
    assert.is(a.code, 2, a.out);
    assert.match(a.stderr, 'unknown fraise "nope"');
    const b = await fraisier(ws, 'deploy', 'app', 'staging');
    assert.is(b.code, 2, b.out);
    assert.match(b.stderr, 'no environment "staging"');
    assert.match(b.stderr, 'production');
  });
});

test('unknown strategy and unknown provider name the known ones', async () => {
  await unchanged(async () => {
    const a = await fraisier(yamlIn(labYaml(env).replace('deployment_strategy: rolling', 'deployment_strategy: yolo')), 'deploy', 'app', 'production');
    assert.is(a.code, 2, a.out);
    assert.match(a.stderr, 'yolo');
    assert.match(a.stderr, 'rolling');
    const b = await fraisier(yamlIn(labYaml(env).replace('provider: bare_metal', 'provider: kubernetes')), 'deploy', 'app', 'production');
    assert.is(b.code, 2, b.out);
    assert.match(b.stderr, 'kubernetes');
    assert.match(b.stderr, 'bare_metal');
  });
});

test('a version with shell metacharacters is refused before any connection', async () => {
  await unchanged(async () => {
    for (const v of ['v1; rm -rf /', '$(id)', '`touch /tmp/pwned`']) {
      const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', v);
      assert.is(r.code, 2, r.out);
      assert.match(r.stderr, 'E_VERSION');
    }
  });
});

test('an unknown ref fails cleanly', async () => {
  await unchanged(async () => {
    const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v9.9.9');
    assert.is(r.code, 1, r.out);
    assert.match(r.stderr, 'cannot resolve "v9.9.9"');
  });
});

test('an unreachable host fails the preflight: no host changes, not even the reachable ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-ssh-'));
  const cfg = join(dir, 'ssh_config');
  writeFileSync(cfg, `${readFileSync(env.sshConfig, 'utf8')}\nHost dead\n  HostName 127.0.0.1\n  Port 1\n  User root\n`);
  const yaml = labYaml(env).replace(`config: ${env.sshConfig}`, `config: ${cfg}`).replace('instances: [h1, h2, h3]', 'instances: [h1, h2, dead]');
  await unchanged(async () => {
    const r = await fraisier(yamlIn(yaml), 'deploy', 'app', 'production', '--version', 'v1.1.0');
    assert.is(r.code, 1, r.out);
    assert.match(r.stderr, /cannot connect to dead/);
  });
});

function knownHostsWith(replaceH1: 'changed' | 'missing'): string {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-kh-'));
  const lines = readFileSync(env.knownHosts, 'utf8').split('\n');
  let out: string[];
  if (replaceH1 === 'missing') out = lines.filter((l) => !/(^|,)h1[ ,]/.test(l) && !l.includes(env.hosts[0]!.address));
  else {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
    const other = readFileSync(join(dir, 'other.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    out = lines.map((l) => (/(^|,)h1[ ,]/.test(l) || l.includes(`${env.hosts[0]!.address} `) ? `${l.split(' ')[0]} ${other}` : l));
  }
  writeFileSync(join(dir, 'known_hosts'), out.join('\n'));
  return join(dir, 'known_hosts');
}

test('a changed host key is refused: strict host key checking', async () => {
  const kh = knownHostsWith('changed');
  const yaml = labYaml(env, { sshExtra: `  known_hosts: ${kh}\n` });
  await unchanged(async () => {
    const r = await fraisier(yamlIn(yaml), 'deploy', 'app', 'production', '--version', 'v1.1.0');
    assert.is(r.code, 1, r.out);
    assert.match(r.stderr, 'E_HOST_KEY');
    assert.match(r.stderr, 'CHANGED');
  });
});

test('an unknown host key is refused too', async () => {
  const kh = knownHostsWith('missing');
  const yaml = labYaml(env, { sshExtra: `  known_hosts: ${kh}\n` });
  await unchanged(async () => {
    const r = await fraisier(yamlIn(yaml), 'deploy', 'app', 'production', '--version', 'v1.1.0');
    assert.is(r.code, 1, r.out);
    assert.match(r.stderr, 'E_HOST_KEY');
    assert.match(r.stderr, 'is not in');
  });
});

test('a health check URL nobody listens on: the first host rolls back, the others are untouched', async () => {
  const yaml = labYaml(env, { healthUrl: 'http://localhost:9/health', retries: 2 });
  const dir = yamlIn(yaml);
  const before = await snapshot();
  const r = await fraisier(dir, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.stdout, '[h1] Attempt 1: FAILED (Connection refused)');
  const after = await snapshot();
  assert.equal(after.slice(1), before.slice(1), 'h2 and h3 untouched');
  assert.match(after[0]!, /^releases\/v1\.0\.0\n/, 'h1 back on v1.0.0');
});

test('a service the host does not know fails the preflight', async () => {
  await unchanged(async () => {
    const r = await fraisier(
      yamlIn(labYaml(env).replace('supervisor_program: app', 'supervisor_program: nosuchapp')),
      'deploy',
      'app',
      'production',
      '--version',
      'v1.1.0',
    );
    assert.is(r.code, 1, r.out);
    assert.match(r.stderr, 'supervisor program nosuchapp is not known');
  });
});

test.run();
