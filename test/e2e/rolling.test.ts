/**
 * End to end: the `fraisier` command over fraises.yaml deploys the sample app to the lab's three SSH
 * hosts (real sshd, supervisor, git), rolls back on a failed health check, and records the history.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { openStore } from '../../core/state/store.js';
import { Locks } from '../../core/state/lock.js';
import { allHosts, bin, fraisier, HUMAN_DURATION, hostState, lab, labYaml, resetHosts, run, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  const artifact = join('/tmp', `fraisier-artifact-${process.pid}`);
  mkdirSync(artifact, { recursive: true });
  writeFileSync(join(artifact, 'VERSION'), 'art-1\n');
  writeFileSync(join(artifact, 'server.js'), (await hostExec(env, 'h1', `git --git-dir=${env.appRepo} show v1.0.0:server.js`)).stdout);
  ws = workspace(
    labYaml(env, {
      extraEnvs: `      batched:
        instances: [h1, h2, h3]
        supervisor_program: app
        rolling_config: { batch_size: 2 }
        health_check: { url: "http://localhost:8000/health", timeout: 2, retries: 6, retry_delay: 0.25 }
      systemd:
        instances: [h1, h2, h3]
        systemd_service: app.service
        rolling_config: { batch_size: 3 }
        health_check: { url: "http://localhost:8000/health", timeout: 2, retries: 8, retry_delay: 0.25 }
      artifact:
        instances: [h1, h2, h3]
        artifact_dir: ${artifact}
        supervisor_program: app
        rolling_config: { batch_size: 3 }
        health_check: { url: "http://localhost:8000/health", expect: "ok", timeout: 2, retries: 8, retry_delay: 0.25 }
`,
    }),
  );
});

test('first deploy puts v1.0.0 on every host and the app serves it', async () => {
  const r = await run(process.execPath, [bin, 'deploy', 'app', 'production', '--version', 'v1.0.0'], { cwd: ws, env: { FRAISIER_TRACE: 'ssh' } });
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, 'Health checks passed!');
  assert.match(r.stdout, 'Deployment successful! (none) → v1.0.0');
  // the SSH handshakes started before the lock, right after the config was validated, and the provider
  // took those connections (no second one); the first command on a host, the preflight, came after the lock
  const phases = [...r.stderr.matchAll(/^\[trace\] \d+ ms (.*)$/gm)].map((m) => m[1]!);
  const at = (p: string) => phases.indexOf(p);
  assert.ok(at('config read and validated') >= 0 && at('config read and validated') < at('connecting to 3 host(s)'), phases.join('\n'));
  assert.ok(at('connecting to 3 host(s)') < at('lock taken'), phases.join('\n'));
  for (const h of ['h1', 'h2', 'h3']) assert.ok(at(`took the early connection to ${h}`) > at('lock taken'), phases.join('\n'));
  assert.ok(at('lock taken') < at('targets connected and preflight passed'), phases.join('\n'));
  // the SSH code loads and the handshakes start before the package loads (it then loads in steps, so
  // the handshakes progress meanwhile); the key is offered first: no refused "none" attempt
  for (const h of ['h1', 'h2', 'h3']) {
    const trying = phases.findIndex((p) => p.startsWith(`ssh ${h}: Client: Trying`));
    assert.ok(trying >= 0 && trying < at('package loaded'), phases.join('\n'));
    assert.ok(at(`ssh ${h}: Inbound: Received USERAUTH_SUCCESS`) > trying, phases.join('\n'));
    assert.is(at(`ssh ${h}: Inbound: Received USERAUTH_FAILURE`), -1, phases.join('\n'));
  }
  // the handshake's trace never shows a command line (it could hold a secret)
  assert.not.match(r.stderr, /CHANNEL_REQUEST|sh -c|supervisorctl/);
  for (const h of await allHosts(env)) {
    assert.is(h.current, 'v1.0.0');
    assert.is(h.serving, 'v1.0.0');
  }
});

test('deploying the branch names the release by its tag or short sha', async () => {
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.1.0', '--json');
  assert.is(r.code, 0, r.out);
  const result = JSON.parse(r.stdout);
  assert.is(result.status, 'succeeded');
  assert.is(result.fromVersion, 'v1.0.0');
  assert.is(result.toVersion, 'v1.1.0');
  assert.equal(
    result.targets.map((t: { status: string }) => t.status),
    ['healthy', 'healthy', 'healthy'],
  );
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.1.0');
});

test('a broken release fails its health check on h1: h1 is rolled back, h2 and h3 are never touched', async () => {
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v2.0.0-broken');
  assert.is(r.code, 1, r.out);
  assert.match(r.stdout, /\[h1\] Attempt \d+: FAILED \(HTTP 500\)/);
  assert.match(r.out, 'rolled back to v1.1.0');
  const [h1, h2, h3] = await allHosts(env);
  assert.is(h1!.current, 'v1.1.0');
  assert.is(h1!.serving, 'v1.1.0');
  for (const h of [h2!, h3!]) {
    assert.is(h.current, 'v1.1.0');
    assert.ok(!h.releases.includes('v2.0.0-broken'), 'no release dir on an untouched host');
  }
  const hist = JSON.parse((await fraisier(ws, 'history', '--json', '--limit', '1')).stdout);
  assert.is(hist[0].status, 'rolled_back');
  assert.is(hist[0].toVersion, 'v2.0.0-broken');
  const store = await openStore({ path: join(ws, '.fraisier', 'state.db') });
  const full = await store.deployment(hist[0].id);
  await store.close();
  assert.equal(Object.fromEntries(full!.targets.map((t) => [t.target, t.status])), { h1: 'rolled_back', h2: 'untouched', h3: 'untouched' });
  assert.ok(full!.targets.find((t) => t.target === 'h1')!.phases['health']! > 0, 'per-phase timings recorded');
});

test('with batches of 2 both hosts of the failed batch go back; the last host is untouched', async () => {
  const r = await fraisier(ws, 'deploy', 'app', 'batched', '--version', 'v2.0.0-broken');
  assert.is(r.code, 1, r.out);
  const states = await allHosts(env);
  assert.equal(
    states.map((s) => s.current),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  assert.equal(
    states.map((s) => s.serving),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  assert.ok(!states[2]!.releases.includes('v2.0.0-broken'));
});

test('a dry run prints the plan and changes nothing, not even the repository mirror', async () => {
  const before = await allHosts(env);
  await Promise.all(env.hosts.map((h) => hostExec(env, h.name, 'touch /srv/.marker')));
  await new Promise((r) => setTimeout(r, 1100));
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0', '--dry-run');
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, /\[dry-run\] h1: sh -c/);
  assert.match(r.stdout, 'supervisorctl restart');
  assert.match(r.stdout, '→ v1.2.0');
  assert.equal(await allHosts(env), before);
  for (const h of env.hosts) {
    const changed = await hostExec(env, h.name, 'find /srv/app -newer /srv/.marker');
    assert.is(changed.stdout.trim(), '', `${h.name}: files changed by a dry run`);
  }
});

test('rollback goes back to the release before the current one, health-checked', async () => {
  const r = await fraisier(ws, 'rollback', 'app', 'production');
  assert.is(r.code, 0, r.out);
  for (const h of await allHosts(env)) {
    assert.is(h.current, 'v1.0.0');
    assert.is(h.serving, 'v1.0.0');
  }
  const to = await fraisier(ws, 'rollback', 'app', 'production', '--to', 'v1.1.0', '--force');
  assert.is(to.code, 0, to.out);
  assert.not.match(to.stdout, 'Attempt 1');
  for (const h of await allHosts(env)) assert.is(h.current, 'v1.1.0');
});

test('status shows what each host runs; status-all and stats read the history', async () => {
  const s = await fraisier(ws, 'status', 'app', 'production', '--json');
  assert.is(s.code, 0, s.out);
  const report = JSON.parse(s.stdout);
  assert.equal(
    report.targets.map((t: { current: string }) => t.current),
    ['v1.1.0', 'v1.1.0', 'v1.1.0'],
  );
  assert.ok(report.targets[0].releases.includes('v1.0.0'));
  const all = await fraisier(ws, 'status-all');
  assert.match(all.stdout, /app\s+production\s+v1\.1\.0/);
  const stats = JSON.parse((await fraisier(ws, 'stats', '--json')).stdout);
  assert.is(stats[0].fraise, 'app');
  assert.is(stats[0].total, 4);
  assert.is(stats[0].rolledBack, 2);
  assert.ok(stats[0].p95Ms > 0);
});

test('a deploy while another holds the lock fails fast naming the holder, and changes nothing', async () => {
  const store = await openStore({ path: join(ws, '.fraisier', 'state.db') });
  await new Locks(store).acquire('app', 'production', { user: 'alice', host: 'laptop', pid: 4242 }, 'hotfix in progress');
  await store.close();
  const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(r.code, 3, r.out);
  assert.match(r.stderr, 'alice@laptop:4242');
  for (const h of await allHosts(env)) assert.is(h.current, 'v1.1.0');
  const all = await fraisier(ws, 'status-all');
  // owner, reason, age and expiry of the lock
  assert.match(
    all.stdout,
    new RegExp(String.raw`app\s+production\s+v1\.1\.0\s+alice@laptop:4242\s+hotfix in progress\s+${HUMAN_DURATION}\s+in ${HUMAN_DURATION}`),
  );
  // renewed recently (not expired): its holder may be alive, so a plain unlock refuses and changes nothing
  const refused = await fraisier(ws, 'unlock', 'app', 'production');
  assert.is(refused.code, 3, refused.out);
  assert.match(refused.stderr, 'alice@laptop:4242');
  assert.match(refused.stderr, '--force');
  const u = await fraisier(ws, 'unlock', 'app', 'production', '--force');
  assert.is(u.code, 0, u.out);
  assert.match(u.stdout, 'Removed lock');
  assert.match(u.stderr, 'warn: unlocked a live deployment');
  assert.not.match((await fraisier(ws, 'status-all')).stdout, 'alice');
});

test('systemd service manager: restarts through systemctl', async () => {
  const r = await fraisier(ws, 'deploy', 'app', 'systemd', '--version', 'v1.2.0');
  assert.is(r.code, 0, r.out);
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.2.0');
  const log = await hostExec(env, 'h2', 'cat /srv/log/systemctl.log');
  assert.match(log.stdout, 'restart');
});

test('artifact source: a local directory streamed as tar over SSH', async () => {
  const r = await fraisier(ws, 'deploy', 'app', 'artifact');
  assert.is(r.code, 0, r.out);
  const states = await allHosts(env);
  assert.equal(
    states.map((s) => s.serving),
    ['art-1', 'art-1', 'art-1'],
  );
  assert.match(states[0]!.current!, /^[0-9a-f]{12}$/);
});

test('keeps the last releases only, never the live one', async () => {
  const h1 = await hostState(env, 'h1');
  assert.ok(h1.releases.length <= 5, h1.releases.join(' '));
  assert.ok(h1.releases.includes(h1.current!));
});

test.run();
