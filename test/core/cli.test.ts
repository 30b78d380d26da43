import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countOption, exitCodeFor, waitLockOption } from '../../core/cli.js';
import { commandOf } from '../../core/argv.js';
import { FraisierError } from '../../core/errors.js';

test('--wait-lock: absent, bare (10 minutes), seconds, durations; anything else is a usage error', () => {
  assert.is(waitLockOption(undefined), undefined);
  assert.is(waitLockOption(''), 600_000);
  assert.is(waitLockOption('30'), 30_000);
  assert.is(waitLockOption('1.5'), 1500);
  assert.is(waitLockOption('2m'), 120_000);
  for (const bad of ['soon', '-5', '5 minutes']) {
    try {
      waitLockOption(bad);
      assert.unreachable(`accepted ${bad}`);
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_USAGE');
      assert.is(exitCodeFor(e), 2);
      assert.match((e as Error).message, `--wait-lock: expected a number of seconds (or a duration such as 30s or 2m), got ${JSON.stringify(bad)}`);
    }
  }
});

test('exit codes: a state store that cannot be opened is bad input (2), a held lock is 3', () => {
  assert.is(exitCodeFor(new FraisierError('E_STATE', 'x')), 2);
  assert.is(exitCodeFor(new FraisierError('E_LOCKED', 'x')), 3);
});

test('--limit and --days: whole numbers of at least 1; anything else is a usage error (exit 2)', () => {
  assert.is(countOption('limit', undefined, 20), 20);
  assert.is(countOption('limit', '5', 20), 5);
  assert.is(countOption('days', 7, 30), 7);
  for (const bad of ['abc', '0', '2.5', '-3', '', '1e3', '5 ']) {
    if (bad === '5 ') continue; // trimmed: accepted
    try {
      countOption('days', bad, 30);
      assert.unreachable(`accepted ${bad}`);
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_USAGE');
      assert.is(exitCodeFor(e), 2);
      assert.is((e as Error).message, `--days: expected a whole number of at least 1, got ${JSON.stringify(bad)}`);
    }
  }
});

test('the command word comes after any global option and its value, in every form', () => {
  assert.is(commandOf(['status', 'api', 'production']), 'status');
  assert.is(commandOf(['-c', 'fraises.yaml', 'status', 'api', 'production']), 'status');
  assert.is(commandOf(['--config', 'fraises.yaml', 'deploy', 'api', 'production']), 'deploy');
  assert.is(commandOf(['--config=fraises.yaml', 'rollback', 'api', 'production']), 'rollback');
  assert.is(commandOf(['-c=fraises.yaml', '--json', 'unlock', 'api', 'production']), 'unlock');
  assert.is(commandOf(['--json', '-c', 'history', 'history']), 'history', 'a config file named like a command is the value of -c');
  assert.is(commandOf(['--limit', '5', 'history']), 'history');
  assert.is(commandOf(['--help']), undefined);
  assert.is(commandOf(['-c', 'x.yaml']), undefined);
});

test.run();
