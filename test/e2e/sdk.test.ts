/**
 * End to end: a typed deploy.ts run with `npx tsx deploy.ts production ...`, and the same file imported
 * from other Node code as an API (which must not start the command line).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { allHosts, lab, repoRoot, resetHosts, run } from './helpers.js';

let env: LabEnv;
let dir: string;
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  dir = mkdtempSync(join(tmpdir(), 'fraisier-sdk-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(
    join(dir, 'deploy.ts'),
    `import { bareMetal, defineDeploy, http, rolling } from ${JSON.stringify(join(repoRoot, 'index.ts'))};

export default defineDeploy({
  name: 'app',
  environments: {
    production: {
      provider: bareMetal({
        hosts: ['h1', 'h2', 'h3'],
        appPath: '/srv/app',
        source: { type: 'git', repo: ${JSON.stringify(env.appRepo)} },
        service: { type: 'supervisor', program: 'app' },
        ssh: { configFile: ${JSON.stringify(env.sshConfig)} },
      }),
      strategy: rolling({ batchSize: 3 }),
      health: { checks: [http({ url: 'http://localhost:8000/health', expectBody: 'ok' })], retries: 10, retryDelay: '250ms', timeout: '2s' },
    },
  },
});
`,
  );
});

test('npx tsx deploy.ts production --version v1.0.0 deploys', async () => {
  const r = await run(tsx, ['deploy.ts', 'production', '--version', 'v1.0.0'], { cwd: dir });
  assert.is(r.code, 0, r.out);
  assert.match(r.stdout, 'Deployment successful! (none) → v1.0.0');
  for (const h of await allHosts(env)) assert.is(h.serving, 'v1.0.0');
});

test('the branch is deployed by default and named by its short sha', async () => {
  const r = await run(tsx, ['deploy.ts', 'production', '--json'], { cwd: dir });
  assert.is(r.code, 0, r.out);
  const result = JSON.parse(r.stdout);
  assert.match(result.toVersion, /^[0-9a-f]{7}$/, 'main has no tag: short sha');
  for (const h of await allHosts(env)) {
    assert.is(h.current, result.toVersion);
    assert.is(h.serving, 'v2.1.0-dev');
  }
});

test('status, history and rollback from the script', async () => {
  const s = await run(tsx, ['deploy.ts', 'production', 'status'], { cwd: dir });
  assert.is(s.code, 0, s.out);
  assert.match(s.stdout, /h1\s+[0-9a-f]{7}/);
  const h = await run(tsx, ['deploy.ts', 'production', 'history', '--json'], { cwd: dir });
  const rows = JSON.parse(h.stdout);
  assert.is(rows.length, 2);
  assert.equal(
    rows.map((r: { status: string }) => r.status),
    ['succeeded', 'succeeded'],
  );
  const rb = await run(tsx, ['deploy.ts', 'production', 'rollback'], { cwd: dir });
  assert.is(rb.code, 0, rb.out);
  for (const st of await allHosts(env)) assert.is(st.serving, 'v1.0.0');
});

test('a wrong environment name is a usage error naming the choices', async () => {
  const r = await run(tsx, ['deploy.ts', 'prod'], { cwd: dir });
  assert.is(r.code, 2, r.out);
  assert.match(r.stderr, 'production');
});

test('importing deploy.ts from other code gives the API and does not start the CLI', async () => {
  writeFileSync(
    join(dir, 'embed.ts'),
    `import app from './deploy.ts';
const result = await app.deploy('production', { version: 'v1.1.0' }, { sinks: [] });
const history = await app.history({ limit: 1 });
console.log(JSON.stringify({ status: result.status, to: result.toVersion, last: history[0].toVersion, envs: app.environments }));
`,
  );
  const r = await run(tsx, ['embed.ts', 'production', 'rollback'], { cwd: dir });
  assert.is(r.code, 0, r.out);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, `only the embedding script printed: ${r.stdout}`);
  assert.equal(JSON.parse(lines[0]!), { status: 'succeeded', to: 'v1.1.0', last: 'v1.1.0', envs: ['production'] });
  for (const st of await allHosts(env)) assert.is(st.serving, 'v1.1.0');
});

test.run();
