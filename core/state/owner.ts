/**
 * The lock's plain values (who holds it and how that is written, the default wait), kept apart from the
 * lock code so that printing a lock or parsing `--wait-lock` loads no SQL builder.
 */

/** Who holds a lock. */
export interface LockOwner {
  /** User name of the deployer. */
  user: string;
  /** Host the deployer runs on. */
  host: string;
  /** Process id of the deployer. */
  pid: number;
}

/** `user@host:pid`. */
export function ownerString(o: LockOwner): string {
  return `${o.user}@${o.host}:${o.pid}`;
}

/** How long `waitLock: true` (and `--wait-lock` without a value) waits: 10 minutes. */
export const DEFAULT_LOCK_WAIT_MS = 600_000;
