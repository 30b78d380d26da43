/**
 * A provider written outside this repository, published as a package: test/fixtures/acme-provider
 * (`provider: acme_cloud`, its own YAML keys, a peer dependency on fraisier; it "deploys" into local
 * directories). Packed with `npm pack` and installed beside fraisier (also packed) in a fresh project,
 * as a user would. Then:
 * - `fraisier deploy` from fraises.yaml with `plugins: [acme-provider]`;
 * - `npx tsx deploy.ts` importing `acmeCloud` from the package;
 * - a local `.ts` plugin file named in `plugins:`, loaded by the plain `fraisier` command;
 * - the errors: a missing package, a package that registers nothing, a typo in the package's own keys,
 *   the provider without its package: exit 2, the file, the key and the line, and nothing deployed.
 *
 * No lab host is needed: the provider deploys on this machine. Installs are offline-friendly as in
 * package.test.ts (no install scripts, the compiled better-sqlite3 reused).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, run } from './helpers.js';

const LONG = { timeoutMs: 600_000 };
let work: string;
let proj: string;

/** `npm pack` of a directory into `work`; returns the tarball's path. */
async function pack(dir: string): Promise<string> {
  const before = new Set(readdirSync(work));
  // --ignore-scripts: fraisier's `prepare` would rebuild dist/ in place under the test files running at the same
  // time; dist/ is already built (npm ci runs `prepare`).
  const r = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: dir, ...LONG });
  assert.is(r.code, 0, r.out);
  const tgz = readdirSync(work).find((f) => f.endsWith('.tgz') && !before.has(f));
  assert.ok(tgz, r.out);
  return join(work, tgz!);
}

/** `fraisier <args>` as the project's user runs it. */
function fraisier(cwd: string, ...args: string[]) {
  return run('npx', ['--no-install', 'fraisier', ...args], { cwd, ...LONG });
}

/** A directory of the project holding `fraises.yaml` with `yaml`. */
function configDir(name: string, yaml: string): string {
  const dir = join(proj, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'fraises.yaml'), yaml);
  return dir;
}

const live = (site: string) => readlinkSync(join(site, 'current'));

test.before(async () => {
  work = mkdtempSync(join(tmpdir(), 'fraisier-plugin-pkg-'));
  const tarballs = [
    await pack(repoRoot),
    await pack(join(repoRoot, 'test', 'fixtures', 'acme-provider')),
    await pack(join(repoRoot, 'test', 'fixtures', 'acme-nothing')),
  ];
  proj = join(work, 'project');
  mkdirSync(proj);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const inst = await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], { cwd: proj, timeoutMs: 900_000 });
  assert.is(inst.code, 0, inst.out);
  cpSync(join(repoRoot, 'node_modules', 'better-sqlite3', 'build'), join(proj, 'node_modules', 'better-sqlite3', 'build'), { recursive: true });
  mkdirSync(join(proj, 'site'));
  writeFileSync(join(proj, 'site', 'VERSION'), 'v1\n');
  writeFileSync(join(proj, 'site', 'index.html'), '<h1>acme</h1>\n');
});

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});

test('fraises.yaml with plugins: [acme-provider] deploys with provider: acme_cloud through the fraisier command', async () => {
  const dir = configDir(
    'yaml',
    `plugins: [acme-provider]
fraises:
  site:
    environments:
      production:
        provider: acme_cloud
        acme_sites: [www/a, www/b]
        acme_source: ../site
`,
  );
  const d = await fraisier(dir, 'deploy', 'site', 'production');
  assert.is(d.code, 0, d.out);
  for (const site of ['a', 'b']) {
    assert.is(live(join(dir, 'www', site)), 'releases/v1');
    assert.is(readFileSync(join(dir, 'www', site, 'current', 'index.html'), 'utf8'), '<h1>acme</h1>\n');
  }
  const d2 = await fraisier(dir, 'deploy', 'site', 'production', '--version', 'v2');
  assert.is(d2.code, 0, d2.out);
  assert.is(live(join(dir, 'www', 'a')), 'releases/v2');
  const h = await fraisier(dir, 'history', '--json');
  assert.is(h.code, 0, h.out);
  const rows = JSON.parse(h.stdout) as Array<{ toVersion: string; status: string; environment: string }>;
  assert.equal(
    rows.map((r) => [r.toVersion, r.status, r.environment]),
    [
      ['v2', 'succeeded', 'production'],
      ['v1', 'succeeded', 'production'],
    ],
  );
  const rb = await fraisier(dir, 'rollback', 'site', 'production');
  assert.is(rb.code, 0, rb.out);
  assert.is(live(join(dir, 'www', 'b')), 'releases/v1');
});

test('a deploy.ts imports acmeCloud from the package and deploys with tsx', async () => {
  writeFileSync(
    join(proj, 'deploy.ts'),
    `import { defineDeploy, rolling } from 'fraisier';
import { acmeCloud } from 'acme-provider';
export default defineDeploy({
  name: 'site-ts',
  environments: { production: { provider: acmeCloud({ sites: ['www-ts/c'], source: 'site' }), strategy: rolling({ batchSize: 1 }) } },
});
`,
  );
  const d = await run('npx', ['--no-install', 'tsx', 'deploy.ts', 'production', '--version', 'v7'], { cwd: proj, ...LONG });
  assert.is(d.code, 0, d.out);
  assert.is(live(join(proj, 'www-ts', 'c')), 'releases/v7');
  const h = await run('npx', ['--no-install', 'tsx', 'deploy.ts', 'production', 'history', '--json'], { cwd: proj, ...LONG });
  assert.is(h.code, 0, h.out);
  assert.is(JSON.parse(h.stdout)[0].toVersion, 'v7');
});

test('a local .ts file in plugins: is imported by the plain fraisier command and registers its provider', async () => {
  const dir = configDir(
    'local',
    `plugins: [./acme-local.ts]
fraises:
  site:
    environments:
      production:
        provider: acme_local
        local_site: www/l
`,
  );
  writeFileSync(
    join(dir, 'acme-local.ts'),
    `import { registry, Type } from 'fraisier';
import { acmeCloud } from 'acme-provider';
const keys = { local_site: Type.String({ minLength: 1 }) };
registry.registerProvider({
  name: 'acme_local',
  keys,
  normalize: (block, ctx) => ({ site: ctx.resolve(block.local_site), source: ctx.resolve('../site') }),
  create: (o) => acmeCloud({ sites: [o.site], source: o.source }),
});
`,
  );
  const d = await fraisier(dir, 'deploy', 'site', 'production');
  assert.is(d.code, 0, d.out);
  assert.is(live(join(dir, 'www', 'l')), 'releases/v1');
});

test('errors: missing package, a package that registers nothing, a typo in its keys, its provider without it: exit 2, nothing deployed', async () => {
  const env = (extra: string) => `fraises:
  site:
    environments:
      production:
        provider: acme_cloud
        acme_sites: [www/e]
        acme_source: ../site
${extra}`;

  const missing = configDir('missing', `plugins:\n  - acme-provider\n  - acme-missing\n${env('')}`);
  const a = await fraisier(missing, 'deploy', 'site', 'production');
  assert.is(a.code, 2, a.out);
  assert.match(a.stderr, 'fraises.yaml: plugins[1]: cannot find the package "acme-missing"');
  assert.match(a.stderr, '(line 3)');

  const nothing = configDir('nothing', `plugins: [acme-nothing]\n${env('')}`);
  const b = await fraisier(nothing, 'deploy', 'site', 'production');
  assert.is(b.code, 2, b.out);
  assert.match(b.stderr, 'fraises.yaml: plugins[0]: "acme-nothing" registered nothing');
  assert.match(b.stderr, '(line 1)');

  const typo = configDir('typo', `plugins: [acme-provider]\n${env('').replace('acme_sites:', 'acme_site:')}`);
  const c = await fraisier(typo, 'deploy', 'site', 'production');
  assert.is(c.code, 2, c.out);
  assert.match(c.stderr, 'fraises.site.environments.production.acme_site: unknown key "acme_site"; expected one of: provider, acme_sites, acme_source,');
  assert.match(c.stderr, 'did you mean "acme_sites"?');

  const without = configDir('without', env(''));
  const w = await fraisier(without, 'deploy', 'site', 'production');
  assert.is(w.code, 2, w.out);
  assert.match(w.stderr, 'fraises.site.environments.production.provider: unknown provider "acme_cloud"; known providers: bare_metal');
  assert.match(w.stderr, 'plugins:');

  for (const dir of [missing, nothing, typo, without]) assert.not.ok(existsSync(join(dir, 'www')), `${dir}: nothing deployed`);
});

test.run();
