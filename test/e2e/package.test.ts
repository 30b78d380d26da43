/**
 * The package installs into another project and works from there: `npm pack`, `npm install <tarball>`
 * in a fresh project, then `npx fraisier`, and a deploy.ts importing from 'fraisier' that type-checks
 * and runs against the lab.
 *
 * To keep the suite fast, the install skips install scripts and reuses this checkout's compiled
 * better-sqlite3 binary (same version, same Node): compiling SQLite again proves nothing about Fraisier.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { lab, repoRoot, resetHosts, run } from './helpers.js';

let env: LabEnv;
let proj: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  const work = mkdtempSync(join(tmpdir(), 'fraisier-pkg-'));
  // --ignore-scripts: `prepare` would rebuild dist/ in place (rm -rf dist) under the other test files running
  // at the same time; dist/ is already built (npm ci runs `prepare`).
  const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: repoRoot });
  assert.is(pack.code, 0, pack.out);
  const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  proj = join(work, 'project');
  mkdirSync(proj);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const inst = await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(work, tgz)], {
    cwd: proj,
    timeoutMs: 600_000,
  });
  assert.is(inst.code, 0, inst.out);
  cpSync(join(repoRoot, 'node_modules', 'better-sqlite3', 'build'), join(proj, 'node_modules', 'better-sqlite3', 'build'), { recursive: true });
});

test('npx fraisier runs from the installed package', async () => {
  const v = await run('npx', ['--no-install', 'fraisier', '--version'], { cwd: proj });
  assert.is(v.code, 0, v.out);
  assert.match(v.stdout, /^fraisier \d+\.\d+\.\d+/);
  writeFileSync(
    join(proj, 'fraises.yaml'),
    `ssh: { config: ${env.sshConfig} }\nfraises:\n  app:\n    git_repo: ${env.appRepo}\n    app_path: /srv/app\n    environments:\n      production:\n        instances: [h1, h2, h3]\n        supervisor_program: app\n        rolling_config: { batch_size: 3 }\n        health_check: { url: "http://localhost:8000/health", retries: 10, retry_delay: 0.25 }\n`,
  );
  const d = await run('npx', ['--no-install', 'fraisier', 'deploy', 'app', 'production', '--version', 'v1.0.0'], { cwd: proj });
  assert.is(d.code, 0, d.out);
  const h = await run('npx', ['--no-install', 'fraisier', 'history', '--json'], { cwd: proj });
  assert.is(JSON.parse(h.stdout)[0].toVersion, 'v1.0.0');
});

test("a deploy.ts importing from 'fraisier' type-checks (a wrong option does not) and runs", async () => {
  const good = `import { bareMetal, defineDeploy, rolling, http } from 'fraisier';
export default defineDeploy({
  name: 'app',
  environments: {
    production: {
      provider: bareMetal({ hosts: ['h1', 'h2', 'h3'], appPath: '/srv/app', source: { type: 'git', repo: ${JSON.stringify(env.appRepo)} }, service: { type: 'supervisor', program: 'app' }, ssh: { configFile: ${JSON.stringify(env.sshConfig)} } }),
      strategy: rolling({ batchSize: 3 }),
      health: { checks: [http('http://localhost:8000/health')], retries: 10, retryDelay: '250ms' },
    },
  },
});
`;
  writeFileSync(join(proj, 'deploy.ts'), good);
  writeFileSync(join(proj, 'bad.ts'), good.replace('batchSize: 3', 'batchSize: 3, bachSize: 2'));
  writeFileSync(
    join(proj, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, skipLibCheck: true, types: [] },
      files: ['deploy.ts'],
    }),
  );
  const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');
  const ok = await run(tsc, ['-p', 'tsconfig.json'], { cwd: proj });
  assert.is(ok.code, 0, ok.out);
  writeFileSync(join(proj, 'tsconfig.bad.json'), JSON.stringify({ extends: './tsconfig.json', files: ['bad.ts'] }));
  const bad = await run(tsc, ['-p', 'tsconfig.bad.json'], { cwd: proj });
  assert.is.not(bad.code, 0);
  assert.match(bad.out, 'bachSize');
  const st = await run('npx', ['--no-install', 'tsx', 'deploy.ts', 'production', 'status', '--json'], { cwd: proj });
  assert.is(st.code, 0, st.out);
  assert.equal(
    JSON.parse(st.stdout).targets.map((t: { current: string }) => t.current),
    ['v1.0.0', 'v1.0.0', 'v1.0.0'],
  );
});

test("the test doubles come from 'fraisier/testing', not from the main entry", async () => {
  writeFileSync(
    join(proj, 'doubles.ts'),
    `import * as main from 'fraisier';
import { FakeClock, RecordingExecutor } from 'fraisier/testing';
const host = new RecordingExecutor('h1', { replies: [{ match: /readlink/, result: { stdout: 'v1' } }] });
const clock = new FakeClock(0);
await clock.sleep(60_000);
const r = await host.run(main.command('readlink', '/srv/app/current'));
console.log(JSON.stringify({ stdout: r.stdout, commands: host.commands.length, slept: clock.now() === 60_000, inMain: 'RecordingExecutor' in main || 'FakeClock' in main }));
`,
  );
  writeFileSync(join(proj, 'tsconfig.doubles.json'), JSON.stringify({ extends: './tsconfig.json', files: ['doubles.ts'] }));
  const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');
  const types = await run(tsc, ['-p', 'tsconfig.doubles.json'], { cwd: proj });
  assert.is(types.code, 0, types.out);
  const r = await run('npx', ['--no-install', 'tsx', 'doubles.ts'], { cwd: proj });
  assert.is(r.code, 0, r.out);
  assert.equal(JSON.parse(r.stdout.trim()), { stdout: 'v1', commands: 1, slept: true, inMain: false });
});

test.run();
