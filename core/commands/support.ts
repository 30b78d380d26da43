/**
 * What the command modules share at run time: option parsing, printing a result, exit statuses. The
 * command modules import it lazily, inside `run`, so that reading the command list stays cheap.
 */
import { toMs } from '../duration.js';
import { FraisierError } from '../errors.js';
import { formatResult, formatResultError, toJson } from '../report.js';
import type { LockInfo } from '../state/lock.js';
import { DEFAULT_LOCK_WAIT_MS, ownerString } from '../state/owner.js';
import type { DeployResult, MigrateReport } from '../types.js';
import type { CommandIo } from './types.js';

/**
 * `--wait-lock[=SECONDS]`: absent → undefined (fail at once when locked); no value → 10 minutes; a
 * number → seconds; `30s`, `2m` → that duration. In milliseconds.
 */
export function waitLockOption(v: unknown): number | undefined {
  if (v === undefined || v === false) return undefined;
  const s = String(v).trim();
  if (s === '' || s === 'true') return DEFAULT_LOCK_WAIT_MS;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  try {
    return toMs(s as `${number}s`, '--wait-lock');
  } catch {
    throw new FraisierError('E_USAGE', `--wait-lock: expected a number of seconds (or a duration such as 30s or 2m), got ${JSON.stringify(s)}`, {
      hint: 'e.g. --wait-lock=300; --wait-lock alone waits up to 10 minutes',
    });
  }
}

/**
 * A whole-number option such as `--limit` or `--days`: absent → `fallback`; digits → that number (at
 * least 1); anything else (`abc`, `0`, `2.5`, `-3`) is a usage error naming the option and the value.
 */
export function countOption(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  const s = String(v).trim();
  if (/^\d+$/.test(s) && Number(s) >= 1 && Number.isSafeInteger(Number(s))) return Number(s);
  throw new FraisierError('E_USAGE', `--${name}: expected a whole number of at least 1, got ${JSON.stringify(String(v))}`, {
    hint: `e.g. --${name} ${fallback}`,
  });
}

/** Prints a deployment's or rollback's result; returns the exit status. */
export function finish(result: DeployResult, io: CommandIo): number {
  io.out((io.json ? toJson(result, 2) : formatResult(result)) + '\n');
  if (result.error) io.err(`${formatResultError(result.error)}\n`);
  // Stopped by a signal: the conventional 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after the cleanup.
  if (result.signal) return 128 + (result.signal === 'SIGHUP' ? 1 : result.signal === 'SIGINT' ? 2 : 15);
  if (result.status === 'lock_lost') return 3;
  // `canary`: stopped with the canary live, as asked (--canary-only, or a step waiting for promote).
  return result.status === 'succeeded' || result.status === 'canary' ? 0 : 1;
}

/** Prints what `migrate` applied or found pending; returns the exit status. */
export function printMigrate(reports: MigrateReport[], io: CommandIo): number {
  if (io.json) io.out(toJson(reports, 2) + '\n');
  else {
    for (const r of reports) {
      io.out(
        r.applied.length > 0
          ? `Applied ${r.applied.length} ${r.phase} migration(s): ${r.applied.join(', ')}\n`
          : r.pending.length > 0
            ? `Pending ${r.phase} migration(s): ${r.pending.join(', ')}\n`
            : `No pending ${r.phase} migrations\n`,
      );
    }
  }
  return 0;
}

/** The warning of `unlock --force` over a holder that looked alive. */
export function warnLiveUnlock(removed: LockInfo & { live: string | null }, io: CommandIo): void {
  io.err(
    `warn: unlocked a live deployment of ${removed.fraise}/${removed.environment} held by ${ownerString(removed.owner)} (${removed.live}): ` +
      'it stops at its next step without touching any host and records lock_lost; its hosts stay as they are\n',
  );
}
