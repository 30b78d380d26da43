import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { command, raw } from '../../../core/exec/command.js';
import { runsInPlace } from '../../../core/exec/ssh.js';
import { secret } from '../../../core/secret.js';
import { bareMetalCommands } from '../../../providers/bare-metal.scripts.js';

test('plain programs run in the persistent shell itself, without a subshell', () => {
  assert.ok(runsInPlace(command('true')));
  assert.ok(runsInPlace(command('/bin/true')));
  assert.ok(runsInPlace(command('sh', '-c', 'cd /tmp; exit 3', 'fraisier')));
  assert.ok(runsInPlace(command('curl', '-fsS', secret('token'))));
  assert.ok(
    runsInPlace({
      steps: [
        ['mkdir', '-p', '/srv/app'],
        ['ln', '-sfn', 'a', 'b'],
      ],
    }),
  );
  assert.ok(runsInPlace({ ...command('systemctl', 'restart', 'app'), sudo: true }));
  // every bare_metal command is `sh -c <script>` or a plain program
  const svc = { type: 'supervisor', program: 'app' } as const;
  assert.ok(runsInPlace(bareMetalCommands.preflight('/srv/app', true, svc)));
  assert.ok(runsInPlace(bareMetalCommands.activate('/srv/app', 'v1', svc, false)));
  assert.ok(runsInPlace(bareMetalCommands.current('/srv/app')));
});

test('anything that could change the shell runs in a subshell', () => {
  for (const word of ['cd', 'export', 'exit', 'exec', 'set', 'unset', 'eval', '.', 'source', 'trap', 'umask', 'ulimit', 'read', 'shift', 'alias', 'kill']) {
    assert.not.ok(runsInPlace(command(word, 'x')), word);
  }
  // a stateful step anywhere, raw shell text, a working directory or environment variables
  assert.not.ok(
    runsInPlace({
      steps: [
        ['echo', 'a'],
        ['cd', '/tmp'],
      ],
    }),
  );
  assert.not.ok(runsInPlace(command('echo', raw('a; cd /tmp'))));
  assert.not.ok(runsInPlace(command(raw('cd'), '/tmp')));
  assert.not.ok(runsInPlace({ ...command('ls'), cwd: '/tmp' }));
  assert.not.ok(runsInPlace({ ...command('ls'), env: { A: '1' } }));
  // a first word that is not a plain program name (an assignment, a glob, a secret)
  assert.not.ok(runsInPlace(command('A=1')));
  assert.not.ok(runsInPlace(command('l*')));
  assert.not.ok(runsInPlace(command(secret('ls'))));
  assert.not.ok(runsInPlace({ steps: [] }));
});

test.run();
