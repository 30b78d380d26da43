/**
 * `provider: coolify` in fraises.yaml, through the `fraisier` command (bin/fraisier.js, the built code:
 * run `npm run build` first) against the Coolify simulator: a rolling deploy of two applications, and
 * bad input (a missing token variable, an http:// URL that is not localhost) refused with exit 2 naming
 * the file and the key, before any request is sent. No SSH lab: the simulator is a local HTTP server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCoolifySim, type CoolifySim } from '../support/coolify-sim.js';
import { bin, run } from '../e2e/helpers.js';

const TOKEN = '7|yaml-secret-token-value';
let sim: CoolifySim;
let dir: string;

function yaml(url: string, extra = ''): string {
  return `fraises:
  web:
    environments:
      production:
        provider: coolify
        url: ${url}
        application_id: [app-a, app-b]
        token_env: WEB_COOLIFY_TOKEN
        poll_interval: 50ms
        timeout: 5m
${extra}        deployment_strategy: rolling
        rolling_config:
          batch_size: 1
`;
}

// generous timeout: the machine may be loaded
const fraisier = (env: NodeJS.ProcessEnv, ...args: string[]) => run(process.execPath, [bin, ...args], { cwd: dir, env, timeoutMs: 300_000 });

test.before(async () => {
  sim = await startCoolifySim({ 'app-a': 'v1', 'app-b': 'v1' }, { tokens: { [TOKEN]: ['read', 'write', 'deploy'] } });
  dir = mkdtempSync(join(tmpdir(), 'fraisier-coolify-yaml-'));
  writeFileSync(join(dir, 'fraises.yaml'), yaml(sim.url));
});

test.after(async () => {
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('fraisier deploy from fraises.yaml: both applications on v2, one at a time, history says so, no token printed', async () => {
  const r = await fraisier({ WEB_COOLIFY_TOKEN: TOKEN }, 'deploy', 'web', 'production', '--version', 'v2');
  assert.is(r.code, 0, r.out);
  assert.is(sim.apps.get('app-a')!.running, 'v2');
  assert.is(sim.apps.get('app-b')!.running, 'v2');
  // rolling, batch 1: app-a's deployment is queued before app-b's
  const deploys = sim.deployments.map((d) => d.application_uuid);
  assert.equal(deploys.slice(-2), ['app-a', 'app-b']);
  const h = await fraisier({ WEB_COOLIFY_TOKEN: TOKEN }, 'history', '--json');
  assert.is(h.code, 0, h.out);
  assert.equal(
    JSON.parse(h.stdout).map((d: { status: string; toVersion: string }) => [d.status, d.toVersion]),
    [['succeeded', 'v2']],
  );
  assert.not.ok((r.out + h.out).includes(TOKEN));
});

test('token variable unset: exit 2 naming fraises.yaml and token_env, nothing sent', async () => {
  const before = sim.requests.length;
  const r = await fraisier({ WEB_COOLIFY_TOKEN: '' }, 'deploy', 'web', 'production', '--version', 'v3');
  assert.is(r.code, 2, r.out);
  assert.match(
    r.out,
    /fraises\.yaml: fraises\.web\.environments\.production\.token_env: the environment variable WEB_COOLIFY_TOKEN \(the Coolify API token\) is not set/,
  );
  assert.is(sim.requests.length, before);
  assert.is(sim.apps.get('app-a')!.running, 'v2');
});

test('token variable unset: history of the same file still works (the token is needed only to build that environment)', async () => {
  const h = await fraisier({ WEB_COOLIFY_TOKEN: '' }, 'history', '--json');
  assert.is(h.code, 0, h.out);
  assert.equal(
    JSON.parse(h.stdout).map((d: { status: string; toVersion: string }) => [d.status, d.toVersion]),
    [['succeeded', 'v2']],
  );
});

test('an http:// URL that is not localhost: exit 2 naming fraises.yaml and url, nothing sent', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'fraisier-coolify-yaml-bad-'));
  try {
    writeFileSync(join(ws, 'fraises.yaml'), yaml('http://coolify.example.com'));
    const before = sim.requests.length;
    const r = await run(process.execPath, [bin, 'deploy', 'web', 'production', '--version', 'v3'], {
      cwd: ws,
      env: { WEB_COOLIFY_TOKEN: TOKEN },
      timeoutMs: 300_000,
    });
    assert.is(r.code, 2, r.out);
    assert.match(r.out, /fraises\.yaml: fraises\.web\.environments\.production\.url: /);
    assert.match(r.out, /https/);
    assert.is(sim.requests.length, before);
    assert.not.ok(r.out.includes(TOKEN));
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test.run();
