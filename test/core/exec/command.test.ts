import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { all, command, quote, raw, render } from '../../../core/exec/command.js';
import { redact, secret } from '../../../core/secret.js';
import { script, bareMetalCommands } from '../../../providers/bare-metal.js';
import { validateVersion } from '../../../core/deployer.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

test('activate: atomic switch of current, then the restart, in one command (run in a real shell)', () => {
  const app = mkdtempSync(join(tmpdir(), 'fraisier-activate-'));
  mkdirSync(join(app, 'releases', 'v1'), { recursive: true });
  writeFileSync(join(app, 'releases', 'v1', '.fraisier-release'), '');
  const sh = (cmd: ReturnType<typeof bareMetalCommands.activate>) => spawnSync('sh', ['-c', render(cmd, { reveal: true })], { encoding: 'utf8' });
  const ok = sh(bareMetalCommands.activate(app, 'v1', { type: 'command', restart: 'echo restarted > restarted.txt' }, false));
  assert.is(ok.status, 0, ok.stderr);
  assert.is(readlinkSync(join(app, 'current')), 'releases/v1');
  assert.ok(existsSync(join(app, 'releases', 'v1', 'restarted.txt')), 'restart ran inside the new current');
  assert.ok(!existsSync(join(app, '.current.tmp')));
  const missing = sh(bareMetalCommands.activate(app, 'v2', { type: 'command', restart: 'true' }, false));
  assert.is(missing.status, 3);
  assert.match(missing.stderr, 'release v2 is not on this host');
  assert.is(readlinkSync(join(app, 'current')), 'releases/v1', 'current unchanged');
  const failing = sh(bareMetalCommands.activate(app, 'v1', { type: 'command', restart: 'exit 7' }, false));
  assert.is(failing.status, 4);
});

test('activate names the service manager and sudo as plain arguments', () => {
  assert.ok(render(bareMetalCommands.activate('/srv/app', 'v1.2.0', { type: 'systemd', unit: 'api.service' }, true)).endsWith('fraisier /srv/app v1.2.0 systemd api.service 1'));
  assert.ok(render(bareMetalCommands.activate('/srv/app', 'v1.2.0', { type: 'supervisor', program: 'api' }, false)).endsWith('fraisier /srv/app v1.2.0 supervisor api 0'));
});

test('versions with shell metacharacters are refused before anything runs', () => {
  for (const bad of ['v1; rm -rf /', '$(id)', '`id`', 'a b', '-rf', '../etc', 'v1|x', 'v1&&x', '']) {
    assert.throws(() => validateVersion(bad), (e: Error) => /invalid version/.test(e.message), bad);
  }
  for (const good of ['v1.2.3', 'main', 'feature/x', 'abc1234', 'v2.0.0-rc.1+build5']) assert.is(validateVersion(good), good);
});

test.run();
