/**
 * Helper process for the lock races in lock.test.ts (not a test file itself).
 * argv: <SQLite file or postgres:// URL> <fraise> <open-first|open-after-go>
 * Prints `ready`, then for each stdin line `<environment> <start time, epoch ms>`: sleeps until the start
 * time, tries to acquire fraise/environment, and prints one JSON line: `{ pid, won: true, tookOverPid }`,
 * `{ pid, won: false, holderPid }` or `{ pid, error }`. Exits when stdin ends.
 * `open-first` opens the store before `ready`; `open-after-go` opens it at the first start time, so that
 * all processes also race to create and migrate the file.
 */
import os from 'node:os';
import readline from 'node:readline';
import { openStore } from '../../../core/state/store.js';
import type { StateStore } from '../../../core/state/store.js';
import { LockHeldError, Locks } from '../../../core/state/lock.js';

const [file, fraise, when] = process.argv.slice(2) as [string, string, string];
const options = /^postgres(ql)?:\/\//.test(file) ? { url: file } : { path: file };
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

let store: StateStore | undefined;
try {
  if (when === 'open-first') store = await openStore(options);
  process.stdout.write('ready\n');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [environment, start] = line.split(' ') as [string, string];
    const startAt = Number(start);
    const wait = startAt - Date.now();
    if (wait > 20) await new Promise((r) => setTimeout(r, wait - 20));
    while (Date.now() < startAt) {
      /* spin the last few ms so every process starts together */
    }
    try {
      store ??= await openStore(options);
      const locks = new Locks(store, { ttlMs: 60_000 });
      const handle = await locks.acquire(fraise, environment, { user: 'racer', host: os.hostname(), pid: process.pid }, 'race');
      out({ pid: process.pid, won: true, tookOverPid: handle.tookOverFrom?.owner.pid ?? null });
    } catch (error) {
      if (error instanceof LockHeldError) out({ pid: process.pid, won: false, holderPid: error.holder.owner.pid });
      else out({ pid: process.pid, error: String((error as Error)?.stack ?? error) });
    }
  }
} catch (error) {
  out({ pid: process.pid, error: String((error as Error)?.stack ?? error) });
} finally {
  await store?.close();
}
