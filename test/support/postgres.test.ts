/**
 * The test suite's private PostgreSQL servers do not outlive the processes that started them: a test
 * process killed before it could stop its server (the runner's timeout kills a file's process group, a
 * runner killed itself) leaves a postmaster and a cluster directory behind; the next `startPostgres()`
 * sweeps them. A real server, started by a child process that is then killed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sweepStaleClusters } from './postgres.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ok()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ok();
}

test('a server whose test process was killed is stopped and its cluster deleted by the next sweep', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-sweep-'));
  chmodSync(dir, 0o755); // the postgres user must reach the cluster inside
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      "import('./test/support/postgres.ts').then(async (m) => { const s = await m.startPostgres(); console.log(JSON.stringify({ dataDir: s.dataDir })); setInterval(() => {}, 1000); })",
    ],
    { cwd: root, env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const dataDir = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /\{"dataDir":"([^"]+)"\}/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`the child exited ${code} before its server was up: ${out}`)));
    });
    const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    assert.ok(alive(postmaster), 'the server runs');
    const base = dirname(dataDir);
    // while its owner lives, the cluster is left alone
    assert.equal(sweepStaleClusters(dir), []);
    assert.ok(alive(postmaster));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(alive(postmaster), 'killing the test process left its server running (what the sweep is for)');
    assert.equal(sweepStaleClusters(dir), [base]);
    assert.ok(await until(() => !alive(postmaster), 20_000), `postmaster ${postmaster} stopped`);
    assert.not.ok(existsSync(base), 'the cluster directory is deleted');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a directory without an owner is kept while young or in use, deleted once old and idle; other names are never touched', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-sweep-'));
  try {
    const young = join(dir, 'fraisier-pg-young');
    const old = join(dir, 'fraisier-pg-old');
    const mine = join(dir, 'fraisier-pg-mine');
    const other = join(dir, 'someone-else');
    for (const d of [young, old, mine, other]) mkdirSync(join(d, 'data'), { recursive: true });
    writeFileSync(join(mine, 'owner'), `${process.pid}\n`); // a live owner: this process
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    for (const d of [old, other]) utimesSync(d, twoHoursAgo, twoHoursAgo);
    // an old postmaster.pid naming a process that is not postgres on this directory (this test's own pid)
    writeFileSync(join(old, 'data', 'postmaster.pid'), `${process.pid}\n`);
    assert.equal(sweepStaleClusters(dir), [old]);
    for (const d of [young, mine, other]) assert.ok(existsSync(d), `${d} kept`);
    assert.ok(alive(process.pid), 'a pid that is not this cluster’s postgres is never signalled');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
