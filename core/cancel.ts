/**
 * `fraisier cancel`: asks the running deployment of an environment to stop, from any process or machine
 * sharing the state store. The request is written on the lock row; the holder reads it with its next
 * lock renewal, stops after its current step and rolls back what it touched, as Ctrl-C does. Cancelling
 * never touches a host.
 */
import { hostname, userInfo } from 'node:os';
import { Locks, holderAlive, ownerString, type LockInfo } from './state/lock.js';
import type { StateStore } from './state/store.js';

/** Options of {@link requestCancel}. */
export interface CancelOptions {
  /** Why, stored with the request and shown in the history (`cancelled by alice@laptop:4242 (reason)`). */
  reason?: string;
  /** Who asks, as the history names them. Default: `user@host:pid` of this process. */
  by?: string;
}

/** What {@link requestCancel} found and did. */
export interface CancelOutcome {
  /**
   * `requested`: the request is recorded (or one was already there: `lock.cancel.by` names who asked
   * first); `not_running`: no deployment holds the environment's lock; `holder_dead`: a lock is left by
   * a deployer that is gone (`why`), nothing was recorded: remove it with `fraisier unlock`;
   * `not_cancellable`: `fraisier migrate` holds the lock (it does not read cancel requests), nothing recorded.
   */
  outcome: 'requested' | 'not_running' | 'holder_dead' | 'not_cancellable';
  fraise: string;
  environment: string;
  /** The lock as found (after the request, when recorded); null when there is none. */
  lock: LockInfo | null;
  /** For `holder_dead` and `not_cancellable`: why. */
  why?: string;
}

/** `user@host:pid` of this process: who a cancel request names by default. */
export function thisProcess(): string {
  return ownerString({ user: userInfo().username, host: hostname(), pid: process.pid });
}

/**
 * Records a cancel request for the deployment running in fraise+environment, if one runs and its holder
 * looks alive ({@link holderAlive}: its pid runs on this machine, or its lock was renewed within its TTL).
 */
export async function requestCancel(store: StateStore, fraise: string, environment: string, options: CancelOptions = {}): Promise<CancelOutcome> {
  const locks = new Locks(store);
  const seen = await locks.getWithNow(fraise, environment);
  if (seen.info === undefined) return { outcome: 'not_running', fraise, environment, lock: null };
  const host = hostname();
  if (holderAlive(seen.info, seen.now, host) === null) {
    const o = seen.info.owner;
    const why =
      o.host === host
        ? `its deployer (pid ${o.pid}) is no longer running on this machine`
        : `its lock expired ${Math.max(0, Math.round((seen.now - seen.info.expiresAt) / 1000))} s ago without being renewed`;
    return { outcome: 'holder_dead', fraise, environment, lock: seen.info, why };
  }
  if (seen.info.reason?.startsWith('migrate ')) {
    const why = 'fraisier migrate holds the lock; a migration is not cancelled half-way: it releases the lock when its migrations are done';
    return { outcome: 'not_cancellable', fraise, environment, lock: seen.info, why };
  }
  const lock = await locks.requestCancel(fraise, environment, options.by ?? thisProcess(), options.reason?.trim() || null);
  if (lock === undefined) return { outcome: 'not_running', fraise, environment, lock: null };
  return { outcome: 'requested', fraise, environment, lock };
}
