/**
 * The Coolify provider from a typed deploy.ts run as a user runs it (`npx tsx deploy.ts production ...`),
 * against the simulator: exit codes, `--json`, and the token never printed on stdout or stderr.
 * No SSH lab: the simulator is a local HTTP server.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCoolifySim, type CoolifySim } from '../support/coolify-sim.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
const TOKEN = '7|cli-secret-token-value';

let sim: CoolifySim;
let dir: string;

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, args, { cwd: dir, env: { ...process.env, FORCE_COLOR: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // generous: the machine may be loaded
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr, out: stdout + stderr });
    });
  });
}

test.before(async () => {
  sim = await startCoolifySim({ 'app-a': 'v1', 'app-b': 'v1' }, { tokens: { [TOKEN]: ['read', 'write', 'deploy'] } });
  dir = mkdtempSync(join(tmpdir(), 'fraisier-coolify-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(
    join(dir, 'deploy.ts'),
    `import { coolify, defineDeploy, rolling } from ${JSON.stringify(join(repoRoot, 'index.ts'))};

export default defineDeploy({
  name: 'web',
  environments: {
    production: {
      provider: coolify({ url: process.env.SIM_URL!, applications: ['app-a', 'app-b'], pollInterval: '50ms', timeout: '5m' }),
      strategy: rolling({ batchSize: 1 }),
    },
  },
});
`,
  );
});

test.after(async () => {
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ SIM_URL: sim.url, COOLIFY_TOKEN: TOKEN });

test('deploy --json: exit 0, the result names both applications on v2, and the token appears nowhere', async () => {
  const r = await run(['deploy.ts', 'production', '--version', 'v2', '--json'], env());
  assert.is(r.code, 0, r.out);
  const result = JSON.parse(r.stdout);
  assert.is(result.status, 'succeeded');
  assert.equal(
    result.targets.map((t: { name: string; toVersion: string }) => [t.name, t.toVersion]),
    [
      ['app-a', 'v2'],
      ['app-b', 'v2'],
    ],
  );
  assert.not.ok(r.out.includes('cli-secret-token-value'), 'token printed');
  assert.is(sim.apps.get('app-b')!.running, 'v2');
});

test('a failed Coolify deployment: exit 1, rolled back, history says so; the token appears nowhere', async () => {
  sim.failing.add('v3');
  const r = await run(['deploy.ts', 'production', '--version', 'v3', '--json'], env());
  assert.is(r.code, 1, r.out);
  const result = JSON.parse(r.stdout);
  assert.is(result.status, 'rolled_back');
  assert.match(result.error.message, /Coolify deployment .* of app-a \(v3\) failed/);
  assert.is(sim.apps.get('app-a')!.running, 'v2');
  assert.is(sim.setting('app-a'), 'v2');
  const h = await run(['deploy.ts', 'production', 'history', '--json'], env());
  assert.equal(
    JSON.parse(h.stdout).map((d: { status: string; toVersion: string }) => [d.status, d.toVersion]),
    [
      ['rolled_back', 'v3'],
      ['succeeded', 'v2'],
    ],
  );
  assert.not.ok((r.out + h.out).includes('cli-secret-token-value'));
});

test('dry run from the script: prints the calls, sends no PATCH or POST', async () => {
  const before = sim.mutations().length;
  const r = await run(['deploy.ts', 'production', '--version', 'v4', '--dry-run'], env());
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /would send: PATCH \/api\/v1\/applications\/app-a \{"git_commit_sha":"v4"\}/);
  assert.match(r.out, /would send: POST \/api\/v1\/deploy\?uuid=app-b/);
  assert.is(sim.mutations().length, before);
  assert.not.ok(r.out.includes('cli-secret-token-value'));
});

test("a token without the deploy ability: the server's message, exit 1, the version setting put back", async () => {
  sim.tokens['8|no-deploy-token'] = ['read', 'write'];
  const r = await run(['deploy.ts', 'production', '--version', 'v5'], { SIM_URL: sim.url, COOLIFY_TOKEN: '8|no-deploy-token' });
  assert.is(r.code, 1, r.out);
  assert.match(r.out, /Missing required permissions: deploy/);
  assert.is(sim.setting('app-a'), 'v2');
  assert.not.ok(r.out.includes('no-deploy-token'));
});

test('COOLIFY_TOKEN unset: exit 2, one line naming the variable (no stack trace), and nothing sent', async () => {
  const before = sim.requests.length;
  const r = await run(['deploy.ts', 'production', '--version', 'v6'], { SIM_URL: sim.url, COOLIFY_TOKEN: '' });
  // bad input: exit 2 with one line naming the variable, no stack trace
  assert.is(r.code, 2, r.out);
  assert.match(r.out, /error\[E_CONFIG\].*COOLIFY_TOKEN is not set/);
  assert.not.match(r.out, /\n\s+at /);
  assert.is(sim.requests.length, before);
});

test.run();
