/**
 * End to end: blue-green through the real `fraisier` command, with a real nginx (started and stopped by
 * this test) in front of the lab: blue = h1, green = h2 and h3. Steady HTTP load through nginx during the
 * switch and the rollback, from new connections and from wrk's keep-alive connections, must see no non-2xx;
 * a failing idle colour or verification must not switch. A switch is one nginx reload, which may cost a
 * keep-alive client a socket error: those are printed per scenario, not asserted (docs/nginx.md; the
 * haproxy-lb plugin switches with none, test/e2e/haproxy.test.ts).
 * Traffic: loopback (client → nginx) and the lab's own namespace addresses (nginx, curl → hosts' :8000).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { allHosts, fraisier, hostState, lab, resetHosts, type Run } from './helpers.js';
import { loadLines, sample, sleep, startNginx, startTraffic, summary, type Nginx } from './traffic.js';

let env: LabEnv;
let ngx: Nginx;
const servers: Record<string, string> = {};
/** Workspace of the seed form (production_blue / production_green). */
let pairDir: string;
/** Workspace of the one-environment form (deployment_strategy: blue_green), with a verification command. */
let singleDir: string;

const HEALTH = `        health_check:
          url: http://localhost:8000/health
          expect: ok
          timeout: 2
          retries: 8
          retry_delay: 0.25
`;

function lbBlock(hosts: string[], extra = '', serverOverride: Record<string, string> = {}): string {
  return `        load_balancer:
          type: nginx
          upstream: app
          file: ${ngx.upstreamFile}
          nginx_args: [${ngx.args.join(', ')}]
          servers: { ${hosts.map((h) => `${h}: "${serverOverride[h] ?? servers[h]}"`).join(', ')} }
${extra}`;
}

/** The top of both fraises.yaml forms: the lab's ssh config and the app, up to `environments:`. */
const top = () => `ssh:
  config: ${env.sshConfig}
fraises:
  app:
    git_repo: ${env.appRepo}
    app_path: /srv/app
    environments:
`;

function pairYaml(): string {
  return `${top()}      production_blue:
        instances: [h1]
        supervisor_program: app
${HEALTH}${lbBlock(['h1'], '          target: blue\n')}      production_green:
        instances: [h2, h3]
        supervisor_program: app
${HEALTH}${lbBlock(['h2', 'h3'], '          target: green\n')}`;
}

function singleYaml(verify: string, serverOverride: Record<string, string> = {}): string {
  return `${top()}      production:
        instances: [h1, h2, h3]
        supervisor_program: app
        deployment_strategy: blue_green
        blue_green_config:
          blue: [h1]
          green: [h2, h3]
          verify_command: ${JSON.stringify(verify)}
          verify_timeout: 20s
${HEALTH}${lbBlock(['h1', 'h2', 'h3'], '', serverOverride)}`;
}

function dirWith(yaml: string): string {
  const d = mkdtempSync(join(tmpdir(), 'fraisier-bg-'));
  writeFileSync(join(d, 'fraises.yaml'), yaml);
  return d;
}

async function appPid(host: string): Promise<string> {
  return (await hostExec(env, host, 'supervisorctl pid app')).stdout.trim();
}

const switchedIn = (r: Run) => Number(/Traffic switched to \w+ in (\d+) ms/.exec(r.out)?.[1] ?? NaN);

test.before(async () => {
  env = await lab();
  for (const h of env.hosts) servers[h.name] = `${h.address}:${env.appPort}`;
  await resetHosts(env);
  ngx = await startNginx('app', servers);
  pairDir = dirWith(pairYaml());
});

test.after(async () => {
  await ngx?.stop();
});

test('first blue-green deploy: no live colour yet, so blue gets v1.0.0 and all traffic; status shows the live colour', async () => {
  const r = await fraisier(pairDir, 'deploy', 'app', 'production', '--version', 'v1.0.0');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'No live colour recorded yet: deploying v1.0.0 to blue (h1)');
  const [h1, h2, h3] = await allHosts(env);
  assert.is(h1!.serving, 'v1.0.0');
  assert.is(h2!.current, null, 'green untouched');
  assert.is(h3!.current, null, 'green untouched');
  assert.match(ngx.upstream(), '# fraisier:live-pool {"pool":"blue","targets":["h1"]}');
  assert.not.match(ngx.upstream(), servers['h2']!);
  assert.equal(await sample(ngx.port, 10), { '200 v1.0.0': 10 });
  const s = await fraisier(pairDir, 'status', 'app', 'production');
  assert.is(s.code, 0, s.out);
  assert.match(s.stdout, 'live colour: blue (h1)');
});

test('deploying a colour environment alone is refused: it names the blue-green environment', async () => {
  const r = await fraisier(pairDir, 'deploy', 'app', 'production_green', '--version', 'v1.1.0');
  assert.is(r.code, 2, r.out);
  assert.match(r.out, 'production_green is a colour of the blue-green environment production');
  assert.is((await hostState(env, 'h2')).current, null);
});

test('blue-green deploy of v1.1.0 under load: green deployed and health-checked, one switch, zero non-2xx; blue keeps v1.0.0', async () => {
  const h1Pid = await appPid('h1');
  const traffic = startTraffic(ngx.port);
  await sleep(300);
  const started = Date.now();
  const r = await fraisier(pairDir, 'deploy', 'app', 'production', '--version', 'v1.1.0');
  const ms = Date.now() - started;
  await sleep(300);
  const { fresh: load, keepAlive } = await traffic.stop();
  console.log(
    `  [blue-green e2e] deploy v1.0.0 → v1.1.0 (switch blue → green) under load: ${ms} ms, switch ${switchedIn(r)} ms\n${loadLines('nginx-lb: blue-green switch (1 reload)', { fresh: load, keepAlive })}`,
  );
  assert.is(r.code, 0, r.out);
  assert.ok(load.total > 50, `enough requests (${load.total})`);
  assert.equal(load.non2xx, {}, summary(load));
  assert.equal(load.socketErrors, {}, summary(load));
  assert.equal(keepAlive.non2xx, {}, keepAlive.raw);
  assert.equal(await sample(ngx.port, 20), { '200 v1.1.0': 20 }, 'every new request goes to green');
  const [h1, h2, h3] = await allHosts(env);
  assert.is(h1!.serving, 'v1.0.0', 'blue still runs the previous release, ready for an instant rollback');
  assert.is(await appPid('h1'), h1Pid, 'blue was not restarted');
  assert.is(h2!.serving, 'v1.1.0');
  assert.is(h3!.serving, 'v1.1.0');
  assert.match(ngx.upstream(), '"pool":"green"');
  const s = await fraisier(pairDir, 'status', 'app', 'production');
  assert.match(s.stdout, 'live colour: green (h2, h3)');
});

test('`fraisier rollback app production` under load is the instant switch back to blue: no restart, no redeploy, zero non-2xx', async () => {
  const pids = await Promise.all(['h1', 'h2', 'h3'].map(appPid));
  const traffic = startTraffic(ngx.port);
  await sleep(300);
  const started = Date.now();
  const r = await fraisier(pairDir, 'rollback', 'app', 'production');
  const ms = Date.now() - started;
  await sleep(300);
  const { fresh: load, keepAlive } = await traffic.stop();
  console.log(
    `  [blue-green e2e] rollback v1.1.0 → v1.0.0 (switch green → blue) under load: command ${ms} ms, switch ${switchedIn(r)} ms\n${loadLines('nginx-lb: blue-green rollback (1 reload)', { fresh: load, keepAlive })}`,
  );
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'v1.0.0 is already live here (idle blue): health check only, no restart');
  assert.ok(switchedIn(r) >= 0, 'the switch time is reported');
  assert.equal(load.non2xx, {}, summary(load));
  assert.equal(load.socketErrors, {}, summary(load));
  assert.equal(keepAlive.non2xx, {}, keepAlive.raw);
  assert.equal(await sample(ngx.port, 20), { '200 v1.0.0': 20 });
  assert.equal(await Promise.all(['h1', 'h2', 'h3'].map(appPid)), pids, 'no host restarted');
  const [h1, h2] = await allHosts(env);
  assert.is(h1!.current, 'v1.0.0');
  assert.is(h2!.current, 'v1.1.0', 'green keeps its release');
  const s = await fraisier(pairDir, 'status', 'app', 'production');
  assert.match(s.stdout, 'live colour: blue (h1)');
});

test('an idle colour that fails its health check under load: no switch, live colour untouched, green back on v1.1.0', async () => {
  const before = ngx.upstream();
  const workers = ngx.workers();
  const traffic = startTraffic(ngx.port, '127.0.0.1', 2);
  const r = await fraisier(pairDir, 'deploy', 'app', 'production', '--version', 'v2.0.0-broken');
  const { fresh: load, keepAlive } = await traffic.stop();
  console.log(
    `  [blue-green e2e] broken release on idle green under load\n${loadLines('nginx-lb: blue-green, idle colour fails its health check (no reload)', { fresh: load, keepAlive })}`,
  );
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /health check failed on h[23]/);
  assert.is(ngx.upstream(), before, 'the upstream file is unchanged');
  assert.equal(ngx.workers(), workers, 'nginx was not reloaded');
  assert.equal(load.non2xx, {}, summary(load));
  assert.equal(keepAlive.non2xx, {}, keepAlive.raw);
  assert.equal(keepAlive.socketErrors, {}, `no reload, so no keep-alive socket error\n${keepAlive.raw}`);
  assert.equal(Object.keys(load.versions), ['v1.0.0'], 'users only ever saw the live colour');
  assert.equal(Object.keys(keepAlive.versions), ['v1.0.0'], 'keep-alive users too');
  const [h1, h2, h3] = await allHosts(env);
  assert.is(h1!.serving, 'v1.0.0');
  assert.is(h2!.serving, 'v1.1.0', 'green rolled back');
  assert.is(h3!.serving, 'v1.1.0', 'green rolled back');
});

test('deployment_strategy: blue_green with a failing verification command: no switch, green rolled back', async () => {
  singleDir = dirWith(singleYaml('curl -fsS --max-time 5 "$FRAISIER_IDLE_URL/" | grep -qx v9.9.9'));
  const before = ngx.upstream();
  const r = await fraisier(singleDir, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.out, 'Live colour: blue (h1); deploying v1.2.0 to green (h2, h3)');
  assert.match(r.out, /the verification command failed \(exit 1\)/);
  assert.is(ngx.upstream(), before);
  assert.equal(await sample(ngx.port, 10), { '200 v1.0.0': 10 });
  const [, h2, h3] = await allHosts(env);
  assert.is(h2!.serving, 'v1.1.0');
  assert.is(h3!.serving, 'v1.1.0');
});

test('an upstream that nginx -t rejects at the switch: no switch, nginx keeps its config, green rolled back', async () => {
  const dir = dirWith(singleYaml('true', { h3: '127.0.0.1:0' }));
  const before = ngx.upstream();
  const workers = ngx.workers();
  const r = await fraisier(dir, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(r.code, 1, r.out);
  assert.match(r.out, 'nginx -t rejected');
  assert.match(r.out, 'invalid port in upstream "127.0.0.1:0"');
  assert.is(ngx.upstream(), before);
  assert.equal(ngx.workers(), workers);
  assert.equal(await sample(ngx.port, 10), { '200 v1.0.0': 10 });
  assert.is((await hostState(env, 'h3')).serving, 'v1.1.0');
});

test('a passing verification command (it reads the idle URL) lets the switch happen', async () => {
  const dir = dirWith(singleYaml('test "$(curl -fsS --max-time 5 "$FRAISIER_IDLE_URL/")" = "$FRAISIER_VERSION"'));
  const r = await fraisier(dir, 'deploy', 'app', 'production', '--version', 'v1.2.0');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /Verification of green passed/);
  assert.equal(await sample(ngx.port, 10), { '200 v1.2.0': 10 }, `${r.out}\n${ngx.upstream()}`);
  assert.is((await hostState(env, 'h1')).serving, 'v1.0.0');
});

test.run();
