import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { all, command, quote, raw, render } from '../../../core/exec/command.js';
import { redact, secret } from '../../../core/secret.js';
import { script, bareMetal, bareMetalCommands } from '../../../providers/bare-metal.js';
import { validateVersion } from '../../../core/deployer.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { FraisierError } from '../../../core/errors.js';
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
  for (const v of ['v1; rm -rf /', '$(id)', '`id`', 'a\'b"c', 'x\ny', '*', '-n', '$HOME', '\\']) {
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
  assert.ok(
    render(bareMetalCommands.activate('/srv/app', 'v1.2.0', { type: 'systemd', unit: 'api.service' }, true)).endsWith(
      'fraisier /srv/app v1.2.0 systemd api.service 1',
    ),
  );
  assert.ok(
    render(bareMetalCommands.activate('/srv/app', 'v1.2.0', { type: 'supervisor', program: 'api' }, false)).endsWith(
      'fraisier /srv/app v1.2.0 supervisor api 0',
    ),
  );
});

test('versions with shell metacharacters are refused before anything runs', () => {
  for (const bad of ['v1; rm -rf /', '$(id)', '`id`', 'a b', '-rf', '../etc', 'v1|x', 'v1&&x', '']) {
    assert.throws(
      () => validateVersion(bad),
      (e: Error) => /invalid version/.test(e.message),
      bad,
    );
  }
  for (const good of ['v1.2.3', 'main', 'feature/x', 'abc1234', 'v2.0.0-rc.1+build5']) assert.is(validateVersion(good), good);
});

test('prepare, run in a real shell: a shared path that leaves the release is refused on the host, and nothing outside the release is removed', () => {
  const root = mkdtempSync(join(tmpdir(), 'fraisier-shared-'));
  const app = join(root, 'app');
  const src = join(root, 'src');
  mkdirSync(join(src, 'linkdir'), { recursive: true });
  writeFileSync(join(src, 'index.js'), 'ok');
  mkdirSync(join(root, 'victim'));
  writeFileSync(join(root, 'victim', 'important.txt'), 'keep me');
  mkdirSync(join(app, 'releases', 'v1.0.0'), { recursive: true });
  writeFileSync(join(app, 'releases', 'v1.0.0', '.fraisier-release'), '');
  execFileSync('ln', ['-s', join(root, 'victim'), join(src, 'escape')]); // a symlink shipped in the release
  const tar = execFileSync('tar', ['-C', src, '-cf', '-', '.']);
  const prepare = (v: string, shared: string[]) =>
    spawnSync('sh', ['-c', render(bareMetalCommands.prepareArtifact(app, v, '', shared), { reveal: true })], { input: tar, encoding: 'utf8' });
  for (const bad of ['../../../victim', '../v1.0.0', '/etc', '', 'log/../..', './log', 'a//b', 'escape/important.txt']) {
    const r = prepare('v2.0.0', ['log', bad]);
    assert.is(r.status, 5, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, `refusing shared path '${bad}'`);
    assert.is(readFileSync(join(root, 'victim', 'important.txt'), 'utf8'), 'keep me', `${bad}: the victim survives`);
    assert.ok(existsSync(join(app, 'releases', 'v1.0.0', '.fraisier-release')), `${bad}: the kept release is untouched`);
    assert.ok(!lstatSync(join(app, 'releases', 'v1.0.0')).isSymbolicLink());
    assert.ok(!existsSync(join(app, 'releases', 'v2.0.0')), `${bad}: no new release`);
    assert.equal(readdirSync(join(app, 'releases')), ['v1.0.0'], 'no temporary directory left');
  }
  const ok = prepare('v2.0.0', ['log', 'storage/uploads']);
  assert.is(ok.status, 0, ok.stderr);
  assert.is(readlinkSync(join(app, 'releases', 'v2.0.0', 'storage', 'uploads')), join(app, 'shared', 'storage', 'uploads'));
  assert.ok(statSync(join(app, 'shared', 'log')).isDirectory());
});

test('bareMetal(): hosts, appPath and shared are checked when the provider is made, before any connection', () => {
  const base = { hosts: ['h1'], appPath: '/srv/app', source: { type: 'git' as const, repo: 'x' }, service: { type: 'command' as const, restart: 'true' } };
  const refused = (o: Partial<typeof base> & { shared?: string[] }, key: string, text: string) => {
    try {
      bareMetal({ ...base, ...o });
      assert.unreachable(`accepted ${JSON.stringify(o)}`);
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_CONFIG');
      assert.is((e as FraisierError).key, key);
      assert.match((e as Error).message, text);
    }
  };
  refused({ hosts: ['h1', 'h2;id'] }, 'hosts[1]', '"h2;id" is not a host name');
  refused({ appPath: '/' }, 'appPath', 'is the root directory');
  refused({ appPath: '/srv/../tmp/x' }, 'appPath', 'it names "/tmp/x"');
  refused({ shared: ['../v1.0.0'] }, 'shared[0]', 'a ".." component');
  assert.is(bareMetal({ ...base, appPath: '/srv/app/' }).targets.length, 1);
});

test.run();
