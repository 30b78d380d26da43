/** A full disk on a host is named as such, with the host and the path (issue 8: "could not set remote.origin.url … was it pushed?"). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diskFullError } from '../../providers/bare-metal.js';

test('git failing on a full disk: the error names the host, the path and what to do', () => {
  const stderr = "error: could not write config file /srv/app/repo/config: No space left on device\nfatal: could not set 'remote.origin.url' to '/tmp/app.git'";
  const e = diskFullError('h2', '/srv/app', 'resolving v1.1.0 (git fetch into /srv/app/repo)', stderr)!;
  assert.ok(e, 'recognised');
  assert.is(e.code, 'E_COMMAND');
  assert.is(e.target, 'h2');
  assert.match(e.message, 'no space left on device on h2 under /srv/app/repo/config while resolving v1.1.0');
  assert.not.match(e.message, 'was it pushed');
  assert.match(e.hint ?? '', 'df -h /srv/app');
});

test('mkdir and tar on a full disk; a quota; and any other failure is not called a full disk', () => {
  assert.match(
    diskFullError('h1', '/srv/app', 'preparing release v1', "mkdir: cannot create directory '/srv/app/releases/.tmp-v1-9': No space left on device")!.message,
    'under /srv/app/releases/.tmp-v1-9 ',
  );
  assert.match(
    diskFullError('h1', '/srv/app', 'preparing release v1', 'tar: ./server.js: Cannot write: No space left on device')!.message,
    'under /srv/app while preparing',
  );
  assert.match(diskFullError('h1', '/srv/app', 'preparing release v1', 'git: write error: Disk quota exceeded')!.message, 'disk quota exceeded on h1');
  assert.is(diskFullError('h1', '/srv/app', 'preparing release v1', 'fatal: repository not found'), undefined);
});

test('git saying only "failed to write new configuration file": the space probe names the full disk', () => {
  const stderr = "error: failed to write new configuration file /srv/app/repo/config.lock\nfatal: could not set 'remote.origin.url' to '/tmp/app.git'";
  assert.is(diskFullError('h2', '/srv/app', 'preparing release v1', stderr), undefined, 'the output alone does not say');
  assert.is(
    diskFullError('h2', '/srv/app', 'preparing release v1', stderr, { dir: '/srv/app', availKb: 900_000, full: false }),
    undefined,
    'space left: not a full disk',
  );
  const e = diskFullError('h2', '/srv/app', 'preparing release v1', stderr, { dir: '/srv/app', availKb: 0, full: true })!;
  assert.is(e.message, 'no space left on device on h2 under /srv/app while preparing release v1: /srv/app has 0 KB free and a test write there failed');
});

test.run();
