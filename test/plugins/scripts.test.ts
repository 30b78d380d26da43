import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { render } from '../../core/exec/command.js';
import { haproxyLbCommands, haproxyLbScripts } from '../../plugins/haproxy-lb.scripts.js';
import { nginxLbCommands, nginxLbScripts } from '../../plugins/nginx-lb.scripts.js';
import { shC, shellcheck, unexplainedDisables } from '../support/shellcheck.js';

const N = nginxLbScripts;
const H = haproxyLbScripts;

for (const [plugin, scripts] of [
  ['nginx-lb', N],
  ['haproxy-lb', H],
] as const) {
  test(`shellcheck (sh, every severity) finds nothing in the ${plugin} scripts`, () => {
    assert.ok(Object.keys(scripts).length >= 4, 'the scripts are listed');
    for (const [name, text] of Object.entries(scripts)) {
      assert.is(shellcheck(text), '', `${plugin} ${name}`);
      assert.equal(unexplainedDisables(text), [], `${plugin} ${name}: a disabled check needs a reason`);
    }
  });
}

test('shellcheck does report a broken script (the check is live)', () => {
  assert.match(shellcheck('x=$1\nrm -rf $x/*\n'), 'SC2086');
  assert.equal(unexplainedDisables('# shellcheck disable=SC2086\n# shellcheck disable=SC2012 # sorted by time\n'), ['# shellcheck disable=SC2086']);
});

test('nginx-lb commands, whole: fixed scripts with every value a quoted positional parameter', () => {
  const f = '/etc/nginx/fraisier/my app.conf';
  assert.is(render(nginxLbCommands.read(f)), shC(N['READ']!, 'fraisier-nginx', f));
  assert.is(render(nginxLbCommands.read('/etc/nginx/app.conf')), `sh -c 'if [ -f "$1" ]; then cat "$1"; fi' fraisier-nginx /etc/nginx/app.conf`);
  assert.is(
    render(nginxLbCommands.dump('nginx', ['-p', '/srv/ngx', '-c', '/srv/ngx/nginx.conf'])),
    shC(N['DUMP']!, 'fraisier-nginx', 'nginx', '-p', '/srv/ngx', '-c', '/srv/ngx/nginx.conf'),
  );
  assert.is(render(nginxLbCommands.pid('/run/nginx.pid')), shC(N['PID_CHECK']!, 'fraisier-nginx', '/run/nginx.pid'));
  assert.is(
    render(nginxLbCommands.install(f, 'upstream app {\n}\n')),
    `${shC(N['INSTALL']!, 'fraisier-nginx')} '/etc/nginx/fraisier/my app.conf' 'upstream app {\n}\n'`,
  );
  assert.is(render(nginxLbCommands.test('/usr/sbin/nginx', ['-c', '/srv/ngx/nginx.conf'])), '/usr/sbin/nginx -c /srv/ngx/nginx.conf -t -q');
  assert.is(render(nginxLbCommands.restore(f)), shC(N['RESTORE']!, 'fraisier-nginx', f));
  assert.is(render(nginxLbCommands.reload(4242, 5000, true)), `${shC(N['RELOAD']!, 'fraisier-nginx')} 4242 5000 drain`);
  assert.is(render(nginxLbCommands.reload(4242, 0.2, false)), `${shC(N['RELOAD']!, 'fraisier-nginx')} 4242 1 apply`);
});

test('haproxy-lb commands, whole: the runtime-API line is one quoted argument', () => {
  const sock = '/run/haproxy/admin.sock';
  assert.is(
    render(haproxyLbCommands.states('socat', sock, 'app')),
    `${shC(H['RUNTIME']!, 'fraisier-haproxy')} socat /run/haproxy/admin.sock 'show servers state app'`,
  );
  assert.is(render(haproxyLbCommands.level('socat', sock)), `${shC(H['RUNTIME']!, 'fraisier-haproxy')} socat /run/haproxy/admin.sock 'show cli level'`);
  assert.is(
    render(haproxyLbCommands.set('/usr/bin/socat', sock, ['set server app/h1 state drain', 'set weight app/h2 3'])),
    `${shC(H['RUNTIME']!, 'fraisier-haproxy')} /usr/bin/socat /run/haproxy/admin.sock 'set server app/h1 state drain; set weight app/h2 3'`,
  );
  assert.is(
    render(haproxyLbCommands.waitDrained('socat', sock, 'app', 'h1', 2000)),
    `${shC(H['WAIT_DRAINED']!, 'fraisier-haproxy')} socat /run/haproxy/admin.sock app h1 2000`,
  );
  assert.is(
    render(haproxyLbCommands.waitUp('socat', sock, 'app', 'web:1', 0)),
    `${shC(H['WAIT_UP']!, 'fraisier-haproxy')} socat /run/haproxy/admin.sock app web:1 1`,
  );
  assert.is(
    render(haproxyLbCommands.readPool('/run/haproxy/fraisier-app.pool')),
    `sh -c 'if [ -f "$1" ]; then cat "$1"; fi' fraisier-haproxy /run/haproxy/fraisier-app.pool`,
  );
  assert.is(
    render(haproxyLbCommands.writePool('/run/haproxy/fraisier-app.pool', '{"pool":"blue","targets":["h1"]}')),
    `${shC(H['WRITE']!, 'fraisier-haproxy')} /run/haproxy/fraisier-app.pool '{"pool":"blue","targets":["h1"]}'`,
  );
  assert.is(render(haproxyLbCommands.removePool('/run/haproxy/fraisier-app.pool')), `sh -c 'rm -f "$1"' fraisier-haproxy /run/haproxy/fraisier-app.pool`);
});

test.run();
