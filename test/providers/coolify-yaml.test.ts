/**
 * The pure normaliser of the `coolify` provider's YAML block (`coolifyFromYaml`) and its typebox schema
 * fragment: every key mapped, every bad value refused with E_CONFIG naming the file and the key.
 */
import { Value } from '@sinclair/typebox/value';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FraisierError, formatError } from '../../core/errors.js';
import { Secret } from '../../core/secret.js';
import { CoolifyYamlSchema, coolify, coolifyFromYaml } from '../../providers/coolify.js';

const env = { COOLIFY_TOKEN: '3|yaml-token-value', OTHER_TOKEN: '4|other-token-value' };
const where = { file: 'fraises.yaml', path: 'fraises.api.environments.production.coolify' };

function refused(block: unknown, e: NodeJS.ProcessEnv = env): FraisierError {
  try {
    coolifyFromYaml(block, where, e);
  } catch (err) {
    assert.instance(err, FraisierError);
    return err as FraisierError;
  }
  throw new Error(`accepted ${JSON.stringify(block)}`);
}

test('maps every key: url, application_id (one or a list), token_env, force_rebuild, poll_interval, timeout', () => {
  const one = coolifyFromYaml({ url: 'https://coolify.example.com', application_id: 'abc123' }, where, env);
  assert.equal(one.applications, ['abc123']);
  assert.is(one.url, 'https://coolify.example.com');
  assert.instance(one.token, Secret);
  assert.is(one.token!.reveal(), '3|yaml-token-value');
  assert.is(one.token!.label, 'COOLIFY_TOKEN');
  assert.not.ok(JSON.stringify(one).includes('yaml-token-value'), 'the token prints as [REDACTED]');
  const all = coolifyFromYaml(
    {
      url: 'https://coolify.example.com',
      application_id: ['abc123', 'def456'],
      token_env: 'OTHER_TOKEN',
      force_rebuild: true,
      poll_interval: 5,
      timeout: '15m',
      use_rollback_endpoint: true,
      health_path: '/health',
    },
    where,
    env,
  );
  assert.equal(
    { ...all, token: all.token!.reveal() },
    {
      url: 'https://coolify.example.com',
      applications: ['abc123', 'def456'],
      token: '4|other-token-value',
      forceRebuild: true,
      useRollbackEndpoint: true,
      pollInterval: 5000, // a bare number is seconds
      timeout: '15m',
      healthPath: '/health',
    },
  );
  // what it returns builds a provider
  const p = coolify(all);
  assert.equal(
    p.targets.map((t) => t.name),
    ['abc123', 'def456'],
  );
});

test('bad input: E_CONFIG naming the file, the key and what was expected', () => {
  const cases: [unknown, string, RegExp][] = [
    [{ url: 'http://coolify.example.com', application_id: 'a' }, 'url', /https:\/\/ URL .*http is allowed only for localhost/],
    [{ url: 'coolify', application_id: 'a' }, 'url', /expected an absolute URL/],
    [{ application_id: 'a' }, 'url', /expected the https:\/\/ URL of the Coolify instance, got undefined/],
    [{ url: 'https://c.example' }, 'application_id', /expected an application UUID, or a list of them, got nothing/],
    [{ url: 'https://c.example', application_id: [] }, 'application_id', /got a list/],
    [{ url: 'https://c.example', application_id: 42 }, 'application_id', /got 42/],
    [{ url: 'https://c.example', application_id: ['a', 'a'] }, 'application_id', /listed twice/],
    [{ url: 'https://c.example', application_id: 'a;rm' }, 'application_id', /letters, digits/],
    [{ url: 'https://c.example', application_id: 'a', token_env: 'NOPE' }, 'token_env', /NOPE \(the Coolify API token\) is not set/],
    [{ url: 'https://c.example', application_id: 'a', token_env: 'bad name' }, 'token_env', /name of an environment variable/],
    [{ url: 'https://c.example', application_id: 'a', force_rebuild: 'yes' }, 'force_rebuild', /expected true or false, got "yes"/],
    [{ url: 'https://c.example', application_id: 'a', poll_interval: 'soon' }, 'poll_interval', /expected a duration/],
    [{ url: 'https://c.example', application_id: 'a', timeout: -1 }, 'timeout', /expected a duration/],
    [{ url: 'https://c.example', application_id: 'a', health_path: 'health' }, 'health_path', /starting with \//],
    [{ url: 'https://c.example', application_id: 'a', applications: ['a'] }, 'applications', /unknown key; expected one of url, application_id/],
  ];
  for (const [block, key, message] of cases) {
    const e = refused(block);
    assert.is(e.code, 'E_CONFIG', JSON.stringify(block));
    assert.is(e.key, `${where.path}.${key}`, JSON.stringify(block));
    assert.is(e.file, 'fraises.yaml');
    assert.match(e.message, message);
    assert.match(formatError(e), new RegExp(`fraises\\.yaml: ${where.path.replace(/\./g, '\\.')}\\.${key}: `));
  }
  const missing = refused({ url: 'https://c.example', application_id: 'a' }, {});
  assert.is(missing.key, `${where.path}.token_env`);
  assert.match(missing.message, /COOLIFY_TOKEN .* is not set/);
  assert.match(refused('coolify').message, /expected a mapping with url and application_id, got "coolify"/);
  // localhost may use http
  assert.is(coolifyFromYaml({ url: 'http://localhost:8000', application_id: 'a' }, where, env).url, 'http://localhost:8000');
});

test('the typebox schema fragment accepts what the normaliser accepts and refuses unknown keys', () => {
  assert.ok(
    Value.Check(CoolifyYamlSchema, {
      url: 'https://c.example',
      application_id: ['a', 'b'],
      token_env: 'T',
      force_rebuild: false,
      poll_interval: '3s',
      timeout: 600,
    }),
  );
  assert.ok(Value.Check(CoolifyYamlSchema, { url: 'https://c.example', application_id: 'a' }));
  assert.not.ok(Value.Check(CoolifyYamlSchema, { url: 'https://c.example', application_id: 'a', typo: 1 }));
  assert.not.ok(Value.Check(CoolifyYamlSchema, { url: 'https://c.example' }));
  assert.not.ok(Value.Check(CoolifyYamlSchema, { url: 'https://c.example', application_id: [] }));
  assert.not.ok(Value.Check(CoolifyYamlSchema, { url: 'https://c.example', application_id: 'a', poll_interval: 'soon' }));
});

test.run();
