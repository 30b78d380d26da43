/**
 * The local executor (LB hosts on this machine, the `local` target): a command runs in a plain bash,
 * never one that sources the user's ~/.bashrc. Node's stdio pipes are sockets, and a top-level bash
 * (SHLVL 0 or unset) with a socket on stdin thinks sshd started it and reads ~/.bashrc (where pyenv,
 * nvm or a slow prompt set-up live).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { command, raw } from '../../../core/exec/command.js';
import { LocalExecutor } from '../../../core/exec/local.js';

test('a local command does not read ~/.bashrc, even when started with SHLVL=0', async () => {
  const home = mkdtempSync(join(tmpdir(), 'fraisier-home-'));
  const saved = { HOME: process.env['HOME'], SHLVL: process.env['SHLVL'] };
  try {
    writeFileSync(join(home, '.bashrc'), 'from_bashrc() { :; }\necho BASHRC-READ >&2\n');
    process.env['HOME'] = home;
    process.env['SHLVL'] = '0';
    const r = await new LocalExecutor().run(command(raw('type -t from_bashrc || echo none')), { check: false });
    assert.is(r.stdout.trim(), 'none');
    assert.not.match(r.stderr, 'BASHRC-READ');
    assert.is(r.code, 0);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(home, { recursive: true, force: true });
  }
});

test('onStdout: chunks go to the caller and none is kept; a sink that throws stops the command and is its error', async () => {
  const local = new LocalExecutor();
  const seen: Buffer[] = [];
  const r = await local.run(command(raw('printf "a%.0s" $(seq 1 100000)')), { onStdout: (d) => seen.push(d) });
  assert.is(Buffer.concat(seen).length, 100_000);
  assert.is(r.stdout, '');
  // `yes` never ends by itself: the run settles only because the throwing sink stopped it
  const boom = new Error('sink full');
  let calls = 0;
  const err = await local
    .run(command(raw('yes')), {
      onStdout: () => {
        calls++;
        throw boom;
      },
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.is(err, boom);
  assert.is(calls, 1);
});

test.run();
