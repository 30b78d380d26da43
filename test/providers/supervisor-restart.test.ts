/**
 * The supervisor restart in the bare_metal activate script (issue 13 goal 2): the two XML-RPC calls
 * `supervisorctl restart` makes, sent with curl to supervisord's unix socket, so no Python starts on the
 * host. Run here with the real script and stand-ins on PATH: a `curl` answering as supervisord does (its
 * answers taken from supervisord 4.2), a `supervisorctl` that only says it ran, and a real unix socket.
 * What a user sees must not change: the same `<program>: started` success, the same failure text
 * (`restart failed on <host>: app: stopped app: ERROR (spawn error)`), and supervisorctl itself whenever
 * the shortcut would not talk to the same supervisord the same way. The lab's e2e tests (rolling,
 * round-trips, faults) restart a real supervisord through it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bareMetalScripts } from '../../providers/bare-metal.scripts.js';

const dir = mkdtempSync(join(tmpdir(), 'fraisier-supervisor-rpc-'));
const bin = join(dir, 'bin');
const app = join(dir, 'app');
const sock = join(dir, 'supervisor.sock');
const log = join(dir, 'log');
mkdirSync(bin);
mkdirSync(join(dir, 'etc'));
mkdirSync(join(app, 'releases', 'v1'), { recursive: true });
writeFileSync(join(app, 'releases', 'v1', '.fraisier-release'), '');

const ok = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><boolean>1</boolean></value>\n</param>\n</params>\n</methodResponse>\n";
const fault = (code: number, text: string) =>
  `<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>${code}</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>${text}</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n`;

// curl: logs the method it was asked, answers with the file named after it (none: fails as curl does)
writeFileSync(
  join(bin, 'curl'),
  `#!/bin/sh
for a in "$@"; do case "$a" in *'<methodName>'*) m=\${a#*<methodName>supervisor.}; m=\${m%%</methodName>*};; esac; done
echo "curl $m" >> "${log}"
[ -f "${dir}/answer-$m" ] || { echo "curl: (7) Couldn't connect to server" >&2; exit 7; }
cat "${dir}/answer-$m"
`,
);
writeFileSync(join(bin, 'supervisorctl'), `#!/bin/sh\necho "supervisorctl $*" >> "${log}"\necho "$2: stopped"; echo "$2: started"\n`);
chmodSync(join(bin, 'curl'), 0o755);
chmodSync(join(bin, 'supervisorctl'), 0o755);

/** The config supervisorctl would read (`<bin>/../etc/supervisord.conf`, first in its search order). */
function config(supervisorctl: string): void {
  writeFileSync(join(dir, 'etc', 'supervisord.conf'), `[unix_http_server]\nfile=${sock}\n\n[supervisorctl]\n${supervisorctl}\n\n[program:app]\ncommand=true\n`);
}

/** Runs the activate script for supervisor program `app`; what was called, and what the script said. */
function activate(answers: { stopProcess?: string; startProcess?: string }, program = 'app') {
  rmSync(log, { force: true });
  for (const m of ['stopProcess', 'startProcess'] as const) {
    const f = join(dir, `answer-${m}`);
    rmSync(f, { force: true });
    if (answers[m] !== undefined) writeFileSync(f, answers[m]!);
  }
  const r = spawnSync('sh', ['-c', bareMetalScripts['ACTIVATE']!, 'fraisier', app, 'v1', 'supervisor', program, '0'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` },
  });
  let calls: string[] = [];
  try {
    calls = readFileSync(log, 'utf8').trim().split('\n');
  } catch {}
  return { code: r.status, stderr: r.stderr.trim(), calls };
}

let server: Server;
test.before(async () => {
  server = createServer((s) => s.destroy());
  await new Promise<void>((res) => server.listen(sock, res));
});
test.after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('supervisorctl restart as two XML-RPC calls over the unix socket: no supervisorctl (no Python) runs', () => {
  config(`serverurl=unix://${sock}`);
  const r = activate({ stopProcess: ok, startProcess: ok });
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.calls, ['curl stopProcess', 'curl startProcess']);
  // a stopped program: supervisorctl says "not running", then starts it (success, as before)
  const stopped = activate({ stopProcess: fault(70, 'NOT_RUNNING: app'), startProcess: ok });
  assert.is(stopped.code, 0, stopped.stderr);
  assert.equal(stopped.calls, ['curl stopProcess', 'curl startProcess']);
});

test('a start that fails prints what supervisorctl prints, and the restart fails (exit 4)', () => {
  config(`serverurl=unix://${sock}`);
  const r = activate({ stopProcess: ok, startProcess: fault(50, 'SPAWN_ERROR: app') });
  assert.is(r.code, 4);
  assert.is(r.stderr, 'app: stopped\napp: ERROR (spawn error)');
  const again = activate({ stopProcess: fault(70, 'NOT_RUNNING: app'), startProcess: fault(40, 'ABNORMAL_TERMINATION: app') });
  assert.is(again.code, 4);
  assert.is(again.stderr, 'app: ERROR (not running)\napp: ERROR (abnormal termination)');
});

test('supervisorctl itself whenever the shortcut would not do exactly what it does', () => {
  // a username (supervisorctl would authenticate), another server, a program name that is not plain
  for (const c of [`serverurl=unix://${sock}\nusername=admin\npassword=x`, 'serverurl=http://127.0.0.1:9001', `serverurl=unix://%(here)s/x.sock`]) {
    config(c);
    const r = activate({ stopProcess: ok, startProcess: ok });
    assert.is(r.code, 0, r.stderr);
    assert.equal(r.calls, ['supervisorctl restart app'], c);
  }
  config(`serverurl=unix://${sock}`);
  assert.equal(activate({ stopProcess: ok, startProcess: ok }, 'web:*').calls, ['supervisorctl restart web:*']);
  // an unknown program (nothing stopped): supervisorctl says so in its own words
  assert.equal(activate({ stopProcess: fault(10, 'BAD_NAME: app') }).calls, ['curl stopProcess', 'supervisorctl restart app']);
  // supervisord not answering: supervisorctl reports it as it always did
  assert.equal(activate({}).calls, ['curl stopProcess', 'supervisorctl restart app']);
});

test.run();
