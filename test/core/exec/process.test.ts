/** core/exec/process.ts: the one local runner of hooks and verification commands. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runProcess } from '../../../core/exec/process.js';

/** 'gone', or the process's state letter (Z for a zombie waiting to be reaped). */
function state(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(')')[1]!.trim().split(' ')[0]!;
  } catch {
    return 'gone';
  }
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('collects the output and the exit status', async () => {
  const r = await runProcess(['bash', '-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 10_000 });
  assert.is(r.code, 3);
  assert.match(r.output, 'out\n');
  assert.match(r.output, 'err\n');
  assert.is(r.timedOut, false);
  assert.is(r.interrupted, false);
  assert.is(r.spawnError, undefined);
});

test('a command that cannot start gives 127 and the reason, and does not throw', async () => {
  const r = await runProcess(['/nonexistent/fraisier-no-such-command'], { timeoutMs: 10_000 });
  assert.is(r.code, 127);
  assert.match(r.spawnError ?? '', 'ENOENT');
});

test('at the timeout the whole process group is killed, background children included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-proc-'));
  const r = await runProcess(['bash', '-c', `sleep 60 & echo $! > ${dir}/bg; sleep 60`], { timeoutMs: 500 });
  assert.is(r.timedOut, true);
  assert.ok(r.code > 128, `killed by a signal (status ${r.code})`);
  const bg = Number(readFileSync(join(dir, 'bg'), 'utf8'));
  await until(() => ['gone', 'Z'].includes(state(bg)));
});

test('with graceMs the group gets SIGTERM first, and can clean up', async () => {
  const r = await runProcess(['bash', '-c', "trap 'echo cleaning up; exit 143' TERM; while :; do sleep 0.05; done"], { timeoutMs: 300, graceMs: 5000 });
  assert.is(r.timedOut, true);
  assert.match(r.output, 'cleaning up');
  assert.is(r.code, 143);
});

test('an abort signal kills the group and says interrupted', async () => {
  const controller = new AbortController();
  const lines: string[] = [];
  const p = runProcess(['bash', '-c', 'echo started; sleep 60'], { timeoutMs: 60_000, signal: controller.signal, onLine: (l) => lines.push(l) });
  await until(() => lines.includes('started'));
  controller.abort();
  const r = await p;
  assert.is(r.interrupted, true);
  assert.is(r.timedOut, false);
});

test('onLine gets each non-empty line once, also a last line without a newline', async () => {
  const lines: string[] = [];
  await runProcess(['bash', '-c', 'printf "a\\n\\nb\\nc"'], { timeoutMs: 10_000, onLine: (l) => lines.push(l), until: 'close' });
  assert.equal(lines, ['a', 'b', 'c']);
});

test("until 'close' waits for a background process holding the output; 'exit' does not", async () => {
  const closed = await runProcess(['bash', '-c', 'echo first; (sleep 0.3; echo late) &'], { timeoutMs: 10_000, until: 'close' });
  assert.match(closed.output, 'late');
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-proc-'));
  const exited = await runProcess(['bash', '-c', `echo first; (sleep 30; echo late) & echo $! > ${dir}/bg`], { timeoutMs: 60_000 });
  assert.match(exited.output, 'first');
  assert.not.match(exited.output, 'late');
  const bg = Number(readFileSync(join(dir, 'bg'), 'utf8'));
  assert.not.equal(state(bg), 'gone', 'the background process is still running: exit did not wait for it');
  process.kill(bg, 'SIGKILL');
});

test.run();
