import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { render } from '../../core/exec/command.js';
import { bareMetalCommands, bareMetalScripts } from '../../providers/bare-metal.scripts.js';
import { shC, shellcheck, unexplainedDisables } from '../support/shellcheck.js';

const S = bareMetalScripts;

test('shellcheck (sh, every severity) finds nothing in the bare_metal scripts', () => {
  assert.ok(Object.keys(S).length >= 8, 'the scripts are listed');
  for (const [name, text] of Object.entries(S)) {
    assert.is(shellcheck(text), '', name);
    assert.equal(unexplainedDisables(text), [], `${name}: a disabled check needs a reason`);
  }
});

test('bare_metal commands, whole: fixed scripts, every value a quoted positional parameter', () => {
  const app = '/srv/my app';
  assert.is(
    render(bareMetalCommands.preflight(app, true, { type: 'systemd', unit: 'api.service' })),
    `${shC(S['PREFLIGHT']!, 'fraisier')} '/srv/my app' 1 systemd api.service`,
  );
  assert.is(
    render(bareMetalCommands.preflight('/srv/app', false, { type: 'command', restart: 'kill -HUP 1' })),
    `${shC(S['PREFLIGHT']!, 'fraisier')} /srv/app 0 command ''`,
  );
  assert.is(
    render(bareMetalCommands.activate('/srv/app', 'v1.2.0', { type: 'systemd', unit: 'api.service' }, true)),
    `${shC(S['ACTIVATE']!, 'fraisier')} /srv/app v1.2.0 systemd api.service 1`,
  );
  assert.is(
    render(bareMetalCommands.activate('/srv/app', 'v1.2.0', { type: 'supervisor', program: 'api' }, false)),
    `${shC(S['ACTIVATE']!, 'fraisier')} /srv/app v1.2.0 supervisor api 0`,
  );
  assert.is(
    render(bareMetalCommands.activate('/srv/app', 'v1.2.0', { type: 'command', restart: "pkill -f 'node app'" }, false)),
    `${shC(S['ACTIVATE']!, 'fraisier')} /srv/app v1.2.0 command 'pkill -f '\\''node app'\\''' 0`,
  );
  assert.is(render(bareMetalCommands.current(app)), "readlink '/srv/my app/current'");
  assert.is(render(bareMetalCommands.releases('/srv/app')), `${shC(S['RELEASES']!, 'fraisier')} /srv/app`);
  assert.is(render(bareMetalCommands.hasRelease('/srv/app', 'v1.2.0')), 'test -f /srv/app/releases/v1.2.0/.fraisier-release');
  assert.is(
    render(bareMetalCommands.prepareGit('/srv/app', 'v1.2.0', 'a'.repeat(40), 'git@example.com:me/app.git', 'npm ci --omit=dev', ['log', 'public/uploads'])),
    `${shC(S['PREPARE_GIT']!, 'fraisier')} /srv/app v1.2.0 ${'a'.repeat(40)} git@example.com:me/app.git 'npm ci --omit=dev' log public/uploads`,
  );
  assert.is(
    render(bareMetalCommands.prepareGit('/srv/app', 'main', '', '/srv/repo.git', '', [])),
    `${shC(S['PREPARE_GIT']!, 'fraisier')} /srv/app main '' /srv/repo.git ''`,
  );
  assert.is(
    render(bareMetalCommands.prepareArtifact('/srv/app', 'v1.2.0', '', ['.env'])),
    `${shC(S['PREPARE_ARTIFACT']!, 'fraisier')} /srv/app v1.2.0 '' .env`,
  );
  assert.is(render(bareMetalCommands.resolveRef('/srv/app', '/srv/repo.git', 'v1.2.0')), `${shC(S['RESOLVE_REF']!, 'fraisier')} /srv/app /srv/repo.git v1.2.0`);
  assert.is(render(bareMetalCommands.cleanup('/srv/app', 5, ['v1.1.0', 'v1.2.0'])), `${shC(S['CLEANUP']!, 'fraisier')} /srv/app 5 v1.1.0 v1.2.0`);
});

test('the scripts keep values out of the script text: a hostile value reaches the script as one argument', () => {
  const c = bareMetalCommands.cleanup("/srv/app'; touch /tmp/x; '", 1, ['$(id)']);
  assert.is(c.steps[0]![2], S['CLEANUP']);
  assert.equal(c.steps[0]!.slice(3), ['fraisier', "/srv/app'; touch /tmp/x; '", '1', '$(id)']);
});

test.run();
