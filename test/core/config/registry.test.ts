/**
 * The registry as the YAML loader uses it: a provider registered with its keys is validated and
 * normalized from fraises.yaml like a built-in; names and keys are checked with the registered ones;
 * `plugins:` files are imported by openConfig, with clear errors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Type } from '@sinclair/typebox';
import { FraisierError } from '../../../core/errors.js';
import { openConfig, parseConfig } from '../../../core/config/load.js';
import { registry } from '../../../core/registry.js';

const FILE = 'conf/fraises.yaml';

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

async function asyncConfigError(p: Promise<unknown>): Promise<FraisierError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_CONFIG');
    return err as FraisierError;
  }
  assert.unreachable('expected an E_CONFIG error');
  throw new Error('unreachable');
}

registry.registerProvider({
  name: 'tiny_cloud',
  keys: { tiny_apps: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), tiny_region: Type.Optional(Type.String()) },
  normalize(block, ctx) {
    if (block.tiny_region === 'mars') throw ctx.error(ctx.at('tiny_region'), 'no data centre on mars');
    return { tinyApps: block.tiny_apps, tinyRegion: block.tiny_region ?? 'eu', keys: Object.keys(ctx.raw) };
  },
});

const tiny = (extra = '') => `fraises:\n  web:\n    environments:\n      production:\n        provider: tiny_cloud\n        tiny_apps: [a, b]\n${extra}`;

test('a registered provider is loaded from YAML with its own keys, the envelope (strategy, health) still applies', () => {
  const env = parseConfig(tiny('        health_check_port: 8080\n'), FILE, {}).fraises.web!.environments.production! as unknown as Record<string, unknown>;
  assert.is(env['provider'], 'tiny_cloud');
  assert.equal(env['tinyApps'], ['a', 'b']);
  assert.is(env['tinyRegion'], 'eu');
  assert.equal(env['strategy'], { type: 'rolling', batchSize: 1, waitBetweenBatchesMs: 0 });
  assert.equal(env['health'], { check: { type: 'tcp', port: 8080 }, retries: 3, retryDelayMs: 2000, timeoutMs: 5000 });
  // bare_metal's keys are not required (nor allowed) for another provider
  assert.is(env['instances'], undefined);
});

test("a registered provider's keys: unknown key with its keys and a guess, wrong type, missing key, its own checks", () => {
  const typo = configError(() => parseConfig(tiny().replace('tiny_apps:', 'tiny_aps:'), FILE, {}));
  assert.is(typo.key, 'fraises.web.environments.production.tiny_aps');
  assert.match(typo.message, 'unknown key "tiny_aps"; expected one of: provider, tiny_apps, tiny_region, deployment_strategy,');
  assert.is(typo.hint, 'did you mean "tiny_apps"?');
  const bareMetalKey = configError(() => parseConfig(tiny('        app_path: /srv/x\n'), FILE, {}));
  assert.match(bareMetalKey.message, 'unknown key "app_path"');
  const missing = configError(() => parseConfig(tiny().replace('        tiny_apps: [a, b]\n', ''), FILE, {}));
  assert.is(missing.message, `${FILE}: fraises.web.environments.production: missing required key "tiny_apps" (line 4)`);
  const wrong = configError(() => parseConfig(tiny('        tiny_region: [x]\n'), FILE, {}));
  assert.is(wrong.message, `${FILE}: fraises.web.environments.production.tiny_region: expected a string, got a list (line 7)`);
  const own = configError(() => parseConfig(tiny('        tiny_region: mars\n'), FILE, {}));
  assert.is(own.message, `${FILE}: fraises.web.environments.production.tiny_region: no data centre on mars (line 7)`);
});

test('unknown names list the registered ones with a guess: provider, strategy, load_balancer type', () => {
  const p = configError(() => parseConfig(tiny().replace('provider: tiny_cloud', 'provider: tiny_clod'), FILE, {}));
  assert.match(p.message, 'unknown provider "tiny_clod"; known providers: bare_metal, coolify, tiny_cloud');
  assert.is(p.hint, 'did you mean "tiny_cloud"?');
  const s = configError(() => parseConfig(tiny('        deployment_strategy: rollin\n'), FILE, {}));
  assert.match(s.message, 'unknown deployment strategy "rollin"; known strategies: rolling, canary, blue_green');
  assert.is(s.hint, 'did you mean "rolling"?');
  const lb = configError(() =>
    parseConfig(
      'fraises:\n  api:\n    environments:\n      production:\n        instances: [h1]\n        app_path: /srv/api\n        git_repo: x\n        systemd_service: api\n        load_balancer: { type: ngnix, file: /x, servers: { h1: "1.2.3.4:80" } }\n',
      FILE,
      {},
    ),
  );
  assert.match(lb.message, 'load_balancer.type: expected "nginx" or "haproxy", got "ngnix" (line 9)');
  assert.is(lb.hint, 'did you mean "nginx"?');
});

test('a provider registered with a factory only is usable from YAML, with the envelope keys only', () => {
  registry.registerProvider('factory_only', () => {
    throw new Error('not built in this test');
  });
  const env = parseConfig('fraises:\n  web:\n    environments:\n      production:\n        provider: factory_only\n', FILE, {}).fraises.web!.environments
    .production!;
  assert.is(env.provider, 'factory_only');
  const extra = configError(() =>
    parseConfig('fraises:\n  web:\n    environments:\n      production:\n        provider: factory_only\n        instances: [h1]\n', FILE, {}),
  );
  assert.match(extra.message, 'unknown key "instances"');
});

test('plugins: must be a list of names; openConfig imports local files and refuses missing ones or ones that register nothing', async () => {
  const bad = configError(() => parseConfig(`plugins: acme\n${tiny()}`, FILE, {}));
  assert.match(bad.message, 'plugins: expected a list of npm package names or paths of .ts/.js files relative to the config file, got "acme" (line 1)');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-plugins-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'local.mjs'),
      `const { registry } = await import(${JSON.stringify(new URL('../../../core/registry.ts', import.meta.url).href)});\nregistry.registerStrategy({ name: 'one_by_one', keys: {}, normalize: () => ({}) });\n`,
    );
    fs.writeFileSync(path.join(dir, 'nothing.mjs'), 'export const x = 1;\n');
    const write = (name: string, plugins: string, env = '        deployment_strategy: one_by_one\n') => {
      fs.writeFileSync(path.join(dir, name), `plugins: ${plugins}\n${tiny(env)}`);
      return path.join(dir, name);
    };
    const ok = await openConfig(write('ok.yaml', '[./local.mjs]'), {});
    assert.is(ok.fraises.web!.environments.production!.strategy.type, 'one_by_one');

    const missingFile = await asyncConfigError(openConfig(write('a.yaml', '[./gone.js]'), {}));
    assert.match(missingFile.message, 'a.yaml: plugins[0]: cannot find the plugin file "./gone.js"');
    assert.match(missingFile.message, '(line 1)');
    const missingPackage = await asyncConfigError(openConfig(write('b.yaml', '\n  - fraisier-no-such-package-x'), {}));
    assert.is(missingPackage.key, 'plugins[0]');
    assert.match(missingPackage.message, `plugins[0]: cannot find the package "fraisier-no-such-package-x" from ${dir}`);
    assert.match(missingPackage.message, '(line 2)');
    const nothing = await asyncConfigError(openConfig(write('c.yaml', '[./nothing.mjs]'), {}));
    assert.match(nothing.message, 'plugins[0]: "./nothing.mjs" registered nothing');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
