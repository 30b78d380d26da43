import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { all, command, quote, raw, render } from '../../../core/exec/command.js';
import { redact, secret } from '../../../core/secret.js';
import { script, bareMetalCommands } from '../../../providers/bare-metal.js';
import { validateVersion } from '../../../core/deployer.js';
import { execFileSync } from 'node:child_process';

test('quote leaves safe words alone and single-quotes the rest', () => {
  assert.is(quote('releases/v1.2.3'), 'releases/v1.2.3');
  assert.is(quote(''), "''");
  assert.is(quote('a b'), "'a b'");
  assert.is(quote("it's"), `'it'\\''s'`);
  assert.is(quote('$(id)'), "'$(id)'");
});

test('a quoted value survives a real shell unchanged, whatever it holds', () => {
  for (const v of ['v1; rm -rf /', '$(id)', '`id`', "a'b\"c", 'x\ny', '*', '-n', '$HOME', '\\']) {
    const out = execFileSync('sh', ['-c', `printf %s ${quote(v)}`]).toString();
    assert.is(out, v);
  }
});

test('render joins steps with && and puts cwd and env first', () => {
  const c = { ...all(command('ln', '-sfn', 'releases/v 2', 'cur'), command('mv', '-T', 'cur', 'current')), cwd: '/srv/my app', env: { A: 'x y' } };
  assert.is(render(c), "cd '/srv/my app' && export A='x y' && ln -sfn 'releases/v 2' cur && mv -T cur current");
});

test('secrets are redacted when rendered for logs and revealed only for execution', () => {
  const s = secret('hunter22', 'DB_PASSWORD');
  const c = { ...command('psql', raw('-c'), 'select 1'), env: { PGPASSWORD: s } };
  assert.ok(!render(c).includes('hunter22'));
  assert.match(render(c), '[REDACTED]');
  assert.match(render(c, { reveal: true }), 'PGPASSWORD=hunter22');
  assert.is(`${s}`, '[REDACTED]');
  assert.is(JSON.stringify({ s }), '{"s":"[REDACTED]"}');
  assert.is(redact('error: password hunter22 rejected'), 'error: password [REDACTED] rejected');
});

test('scripts take values as positional parameters, never as shell text', () => {
  const evil = "x'; touch /tmp/pwned-fraisier; echo '";
  const c = script('printf "%s|%s" "$1" "$2"', evil, '$(id)');
  const out = execFileSync('sh', ['-c', render(c, { reveal: true })]).toString();
  assert.is(out, `${evil}|$(id)`);
});

test('the switch command is an atomic rename of a temporary link', () => {
  const text = render(bareMetalCommands.switchRelease('/srv/app', 'v1.2.0'));
  assert.match(text, 'ln -sfn "releases/$v" "$app/.current.tmp"');
  assert.match(text, 'mv -T "$app/.current.tmp" "$app/current"');
  assert.ok(text.endsWith("fraisier /srv/app v1.2.0"));
});

test('restart commands for each service manager', () => {
  assert.is(render(bareMetalCommands.restart({ type: 'systemd', unit: 'api.service' }, '/srv/app', false)), 'systemctl restart -- api.service');
  assert.is(render(bareMetalCommands.restart({ type: 'systemd', unit: 'api.service' }, '/srv/app', true)), 'sudo -n systemctl restart -- api.service');
  assert.match(render(bareMetalCommands.restart({ type: 'supervisor', program: 'api' }, '/srv/app', false)), 'supervisorctl restart "$1"');
  assert.is(render(bareMetalCommands.restart({ type: 'command', restart: 'kill -HUP $(cat app.pid)' }, '/srv/app', false)), 'cd /srv/app/current && kill -HUP $(cat app.pid)');
});

test('versions with shell metacharacters are refused before anything runs', () => {
  for (const bad of ['v1; rm -rf /', '$(id)', '`id`', 'a b', '-rf', '../etc', 'v1|x', 'v1&&x', '']) {
    assert.throws(() => validateVersion(bad), (e: Error) => /invalid version/.test(e.message), bad);
  }
  for (const good of ['v1.2.3', 'main', 'feature/x', 'abc1234', 'v2.0.0-rc.1+build5']) assert.is(validateVersion(good), good);
});

test.run();
