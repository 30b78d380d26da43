import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCodeFor, waitLockOption } from '../../core/cli.js';
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

test.run();
