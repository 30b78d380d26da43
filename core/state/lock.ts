/**
 * Deployment locks: at most one deployer per fraise+environment. A lock is a row in the `locks` table
 * with its owner (user, host, pid) and an expiry the holder keeps pushing forward ({@link startRenewal});
 * a crashed deployer stops renewing, its lock expires, and the next deployer takes it over.
 *
 * Every change is one SQL statement (a compare-and-set), so it is atomic across processes sharing the
 * SQLite file (and on PostgreSQL).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { sql } from 'kysely';
import type { LockRow } from './schema.js';
import type { StateStore } from './store.js';
import { DEFAULT_LOCK_WAIT_MS, ownerString, type LockOwner } from './owner.js';

export { DEFAULT_LOCK_WAIT_MS, ownerString, type LockOwner } from './owner.js';

/** Thrown by {@link Locks.unlock} without `force` when the holder looks alive. */
export class LiveHolderError extends Error {
  /** The holder. */
  readonly holder: LockInfo;
  /** Why it looks alive. */
  readonly why: string;
  /** @param holder the holder; @param why why it looks alive. */
  constructor(holder: LockInfo, why: string) {
    super(`${describe(holder)}; not unlocked: ${why}`);
    this.name = 'LiveHolderError';
    this.holder = holder;
    this.why = why;
  }
}

/** A held lock as stored. */
export interface LockInfo {
  /** The fraise locked. */
  fraise: string;
  /** The environment locked. */
  environment: string;
  /** The holder. */
  owner: LockOwner;
  /** Why it was taken (e.g. "deploy v1.4.2"), or null. */
  reason: string | null;
  /** Epoch ms when the holder acquired it. */
  acquiredAt: number;
  /** Epoch ms when it expires unless renewed; at or after this time anyone may take it over. */
  expiresAt: number;
  /** What the holder is doing now (`deploying h2`, `waiting between batches`); absent when not said (or an older deployer). */
  step?: string;
  /** The targets the holder works on; absent when not said. */
  targets?: string[];
  /** A `fraisier cancel` asked the holder to stop: who, why, when; absent when none was asked. */
  cancel?: CancelRequest;
}

/** A `fraisier cancel` request, as stored on the lock row. */
export interface CancelRequest {
  /** Who asked: `user@host:pid`. */
  by: string;
  /** The `--reason` given, or null. */
  reason: string | null;
  /** Epoch ms (the database's clock) when it was asked. */
  at: number;
}

/** `cancelled by alice@laptop:4242 (reason)`: how a cancel request is worded in the history and the output. */
export function cancelledBy(c: CancelRequest): string {
  return `cancelled by ${c.by}${c.reason ? ` (${c.reason})` : ''}`;
}

function describe(info: LockInfo): string {
  return (
    `fraise ${info.fraise}/${info.environment} is locked by ${ownerString(info.owner)}` +
    ` since ${new Date(info.acquiredAt).toISOString()} (expires ${new Date(info.expiresAt).toISOString()})` +
    (info.reason ? `: ${info.reason}` : '')
  );
}

/** Thrown by {@link Locks.acquire} when someone else holds an unexpired lock (after waiting, if asked to wait). */
export class LockHeldError extends Error {
  /** The current holder. */
  readonly holder: LockInfo;
  /** How long we waited for it, in ms (0 when not asked to wait). */
  readonly waitedMs: number;
  /**
   * @param holder the current holder, named in the message.
   * @param waitedMs how long we waited before giving up.
   */
  constructor(holder: LockInfo, waitedMs = 0) {
    super((waitedMs > 0 ? `gave up after waiting ${(waitedMs / 1000).toFixed(1)} s for the lock: ` : '') + describe(holder));
    this.name = 'LockHeldError';
    this.holder = holder;
    this.waitedMs = waitedMs;
  }
}

/** How {@link Locks.acquire} queues behind a live holder instead of failing at once. */
export interface LockWait {
  /** Longest wait, in ms; then {@link LockHeldError} names the holder. */
  timeoutMs: number;
  /** Pause between attempts, in ms. Default 1000. */
  pollMs?: number;
  /** Called before the first pause and whenever the holder changes: print who we wait for. */
  onWait?: (holder: LockInfo) => void;
  /** Stops waiting early (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** Thrown by {@link LockHandle.renew} when the lock is no longer ours (released, taken over, or force-released). */
export class LockLostError extends Error {
  /** The lock that was lost, as we last held it. */
  readonly lost: LockInfo;
  /** @param lost the lock as we last held it. */
  constructor(lost: LockInfo) {
    super(`lock on ${lost.fraise}/${lost.environment} held by ${ownerString(lost.owner)} was lost (released, forced or taken over)`);
    this.name = 'LockLostError';
    this.lost = lost;
  }
}

/** A lock we hold. */
export interface LockHandle {
  /** The lock as we hold it; `expiresAt` follows each successful renew. */
  readonly info: LockInfo;
  /** The expired holder we took the lock over from, or null if the lock was free. */
  readonly tookOverFrom: LockInfo | null;
  /**
   * Extends the expiry to the database's now + ttl. Throws {@link LockLostError} if the lock is no longer
   * ours (the row with our token is gone). Also the deployer's fencing check, run before each step that
   * changes a host.
   */
  renew(): Promise<void>;
  /** Deletes the lock if it is still ours; does nothing otherwise. Idempotent. */
  release(): Promise<void>;
  /**
   * Records what the holder is doing (and, when given, the targets it works on) on the lock row, for
   * `status-all`. Does nothing if the lock is no longer ours.
   */
  progress?(step: string, targets?: string[]): Promise<void>;
}

function cancelOf(r: Pick<LockRow, 'cancel_by' | 'cancel_reason' | 'cancel_at'>): CancelRequest | null {
  return r.cancel_by === null || r.cancel_by === undefined ? null : { by: r.cancel_by, reason: r.cancel_reason ?? null, at: Number(r.cancel_at) };
}

function targetsOf(json: string | null | undefined): string[] | null {
  if (!json) return null;
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.map(String) : null;
  } catch {
    return null;
  }
}

function toInfo(r: LockRow): LockInfo {
  const targets = targetsOf(r.targets);
  const cancel = cancelOf(r);
  return {
    fraise: r.fraise,
    environment: r.environment,
    owner: { user: r.owner_user, host: r.owner_host, pid: Number(r.owner_pid) },
    reason: r.reason,
    acquiredAt: Number(r.acquired_at),
    expiresAt: Number(r.expires_at),
    // set only when there is something to say: a lock taken by a plain acquisition reads as before
    ...(r.step ? { step: r.step } : {}),
    ...(targets ? { targets } : {}),
    ...(cancel ? { cancel } : {}),
  };
}

function previousInfo(r: LockRow): LockInfo | null {
  if (r.prev_owner_user === null || r.prev_owner_host === null || r.prev_owner_pid === null) return null;
  return {
    fraise: r.fraise,
    environment: r.environment,
    owner: { user: r.prev_owner_user, host: r.prev_owner_host, pid: Number(r.prev_owner_pid) },
    reason: r.prev_reason,
    acquiredAt: Number(r.prev_acquired_at),
    expiresAt: Number(r.prev_expires_at),
  };
}

/**
 * Why a lock's holder looks alive, or null: its pid still runs on this machine, or (a holder on another
 * machine, or one whose pid cannot be probed) the lock has not expired by the database's clock, so it
 * was renewed within its TTL.
 */
export function holderAlive(info: LockInfo, databaseNow: number, thisHost: string = hostname()): string | null {
  if (info.owner.host === thisHost) {
    try {
      process.kill(info.owner.pid, 0);
      return `its deployer (pid ${info.owner.pid}) is still running on this machine`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EPERM') return `its deployer (pid ${info.owner.pid}) is still running on this machine`;
      return null;
    }
  }
  if (info.expiresAt > databaseNow)
    return `it was renewed recently (it expires in ${Math.ceil((info.expiresAt - databaseNow) / 1000)} s by the database's clock)`;
  return null;
}

/**
 * Deployment locks stored in a {@link StateStore}. Every time a lock decision depends on (acquire over an
 * expired lock, renew, liveness) is the database's clock ({@link StateStore.clockSql}), never the
 * deployer's: a deployer whose clock runs ahead cannot take over a live lock.
 */
export class Locks {
  readonly #store: StateStore;
  readonly #ttlMs: number;

  /**
   * @param store where the locks live.
   * @param options.ttlMs how long a lock lives without renewal, in ms. Default 60 000.
   */
  constructor(store: StateStore, options: { ttlMs?: number } = {}) {
    this.#store = store;
    this.#ttlMs = options.ttlMs ?? 60_000;
  }

  /**
   * Takes the lock of fraise+environment for `owner`, atomically: inserts the row if there is none;
   * takes it over if the holder's lock has expired (expiresAt <= now; the handle's `tookOverFrom` then
   * names that holder); otherwise throws {@link LockHeldError} naming the holder.
   * The lock is re-entrant for nobody: the same owner acquiring twice gets LockHeldError too.
   *
   * With `wait`, a live holder does not fail the call at once: it polls every `wait.pollMs` until the
   * lock is released or expires (then taken over), or `wait.timeoutMs` has passed (LockHeldError).
   */
  async acquire(fraise: string, environment: string, owner: LockOwner, reason?: string, wait?: LockWait): Promise<LockHandle> {
    if (wait === undefined) return this.#tryAcquire(fraise, environment, owner, reason);
    const started = performance.now();
    let shown: string | null = null;
    for (;;) {
      try {
        return await this.#tryAcquire(fraise, environment, owner, reason);
      } catch (error) {
        if (!(error instanceof LockHeldError)) throw error;
        const waited = performance.now() - started;
        if (waited >= wait.timeoutMs) throw new LockHeldError(error.holder, Math.max(1, Math.round(waited)));
        const who = `${ownerString(error.holder.owner)} ${error.holder.acquiredAt}`;
        if (who !== shown) {
          shown = who;
          wait.onWait?.(error.holder);
        }
        const pause = Math.min(wait.pollMs ?? 1000, Math.max(1, wait.timeoutMs - waited));
        await new Promise<void>((resolve, reject) => {
          if (wait.signal?.aborted) return reject(wait.signal.reason);
          const onAbort = () => {
            clearTimeout(timer);
            reject(wait.signal?.reason);
          };
          const timer = setTimeout(() => {
            wait.signal?.removeEventListener('abort', onAbort);
            resolve();
          }, pause);
          wait.signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
    }
  }

  async #tryAcquire(fraise: string, environment: string, owner: LockOwner, reason?: string): Promise<LockHandle> {
    const db = this.#store.db;
    // A free lock can be taken by someone else between our failed upsert and the read of the holder,
    // and a held one released in that gap: retry a few times in that (rare) case.
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.#store.clockSql();
      const token = randomUUID();
      // One statement: insert, or overwrite an expired row keeping its holder in prev_* (in DO UPDATE SET,
      // `locks.x` is the old value). No row comes back when the existing lock is still valid.
      const won = await db
        .insertInto('locks')
        .values({
          fraise,
          environment,
          owner_user: owner.user,
          owner_host: owner.host,
          owner_pid: owner.pid,
          reason: reason ?? null,
          acquired_at: now,
          expires_at: sql<number>`${now} + ${this.#ttlMs}`,
          token,
          prev_owner_user: null,
          prev_owner_host: null,
          prev_owner_pid: null,
          prev_reason: null,
          prev_acquired_at: null,
          prev_expires_at: null,
        })
        .onConflict((oc) =>
          oc
            .columns(['fraise', 'environment'])
            .doUpdateSet((eb) => ({
              prev_owner_user: eb.ref('locks.owner_user'),
              prev_owner_host: eb.ref('locks.owner_host'),
              prev_owner_pid: eb.ref('locks.owner_pid'),
              prev_reason: eb.ref('locks.reason'),
              prev_acquired_at: eb.ref('locks.acquired_at'),
              prev_expires_at: eb.ref('locks.expires_at'),
              owner_user: eb.ref('excluded.owner_user'),
              owner_host: eb.ref('excluded.owner_host'),
              owner_pid: eb.ref('excluded.owner_pid'),
              reason: eb.ref('excluded.reason'),
              acquired_at: eb.ref('excluded.acquired_at'),
              expires_at: eb.ref('excluded.expires_at'),
              token: eb.ref('excluded.token'),
              // a cancel asked of the expired holder is not the new holder's
              cancel_by: null,
              cancel_reason: null,
              cancel_at: null,
              step: null,
              targets: null,
            }))
            .where('locks.expires_at', '<=', now),
        )
        .returningAll()
        .executeTakeFirst();
      if (won !== undefined && won.token === token) {
        return new Handle(this.#store, this.#ttlMs, toInfo(won), token, previousInfo(won));
      }
      const seen = await this.#getWithNow(fraise, environment);
      if (seen.info !== undefined && seen.info.expiresAt > seen.now) throw new LockHeldError(seen.info);
    }
    throw new Error(`could not acquire lock on ${fraise}/${environment}: it keeps changing hands`);
  }

  /** Every lock row, expired ones included, sorted by fraise then environment. */
  async list(): Promise<LockInfo[]> {
    const rows = await this.#store.db.selectFrom('locks').selectAll().orderBy('fraise').orderBy('environment').execute();
    return rows.map(toInfo);
  }

  /** The lock row of fraise+environment (possibly expired), or undefined if there is none. */
  async get(fraise: string, environment: string): Promise<LockInfo | undefined> {
    const row = await this.#store.db.selectFrom('locks').selectAll().where('fraise', '=', fraise).where('environment', '=', environment).executeTakeFirst();
    return row === undefined ? undefined : toInfo(row);
  }

  /** The lock row (possibly expired, or undefined) and the database's clock, read in one statement. */
  async #getWithNow(fraise: string, environment: string): Promise<{ info: LockInfo | undefined; now: number }> {
    const rows = await this.#store.db
      .selectNoFrom((eb) => [
        this.#store.clockSql().as('db_now'),
        eb.selectFrom('locks').select('token').where('fraise', '=', fraise).where('environment', '=', environment).as('token'),
      ])
      .execute();
    const now = Number(rows[0]!.db_now);
    if (rows[0]!.token === null) return { info: undefined, now };
    return { info: await this.get(fraise, environment), now };
  }

  /**
   * `fraisier unlock`: removes the lock, unless its holder looks alive ({@link holderAlive}: pid alive
   * on this machine, or not expired by the database's clock) and `force` is not set; then it throws
   * {@link LockHeldError} naming the holder and removes nothing.
   * @returns the removed lock with `live` set to why its holder looked alive (a forced unlock of a live
   * holder: that deployer stops at its next step, touching no host), or undefined if there was none.
   */
  async unlock(fraise: string, environment: string, options: { force?: boolean } = {}): Promise<(LockInfo & { live: string | null }) | undefined> {
    const seen = await this.#getWithNow(fraise, environment);
    if (seen.info === undefined) return undefined;
    const live = holderAlive(seen.info, seen.now);
    if (live !== null && !options.force) throw new LiveHolderError(seen.info, live);
    const removed = await this.forceRelease(fraise, environment);
    return removed === undefined ? undefined : { ...removed, live };
  }

  /**
   * `fraisier cancel`: records on the lock row that `by` asks its holder to stop (one statement; the
   * holder reads it with its next renewal). A request already there is kept (the first one asked wins).
   * @returns the lock as it now stands (with `cancel` set), or undefined if fraise+environment is not locked.
   */
  async requestCancel(fraise: string, environment: string, by: string, reason: string | null = null): Promise<LockInfo | undefined> {
    const row = await this.#store.db
      .updateTable('locks')
      .set((eb) => ({
        cancel_by: eb.fn.coalesce('cancel_by', sql<string>`${by}`),
        cancel_reason: sql<string | null>`case when cancel_by is null then ${reason} else cancel_reason end`,
        cancel_at: sql<number>`coalesce(cancel_at, ${this.#store.clockSql()})`,
      }))
      .where('fraise', '=', fraise)
      .where('environment', '=', environment)
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : toInfo(row);
  }

  /** The lock row (possibly expired, or undefined) and the database's clock, read in one statement (for `fraisier cancel`). */
  async getWithNow(fraise: string, environment: string): Promise<{ info: LockInfo | undefined; now: number }> {
    return this.#getWithNow(fraise, environment);
  }

  /** Removes the lock whoever holds it (`fraisier unlock --force`). @returns the removed lock, or undefined if there was none. */
  async forceRelease(fraise: string, environment: string): Promise<LockInfo | undefined> {
    const row = await this.#store.db.deleteFrom('locks').where('fraise', '=', fraise).where('environment', '=', environment).returningAll().executeTakeFirst();
    return row === undefined ? undefined : toInfo(row);
  }
}

class Handle implements LockHandle {
  #info: LockInfo;
  constructor(
    private readonly store: StateStore,
    private readonly ttlMs: number,
    info: LockInfo,
    private readonly token: string,
    readonly tookOverFrom: LockInfo | null,
  ) {
    this.#info = info;
  }

  get info(): LockInfo {
    return this.#info;
  }

  async renew(): Promise<void> {
    const row = await this.store.db
      .updateTable('locks')
      .set({ expires_at: sql<number>`${this.store.clockSql()} + ${this.ttlMs}` })
      .where('fraise', '=', this.#info.fraise)
      .where('environment', '=', this.#info.environment)
      .where('token', '=', this.token)
      .returning(['expires_at', 'cancel_by', 'cancel_reason', 'cancel_at'])
      .executeTakeFirst();
    if (row === undefined) throw new LockLostError(this.#info);
    // the same statement reads a `fraisier cancel` request: no extra round trip per renewal
    const cancel = cancelOf(row);
    this.#info = { ...this.#info, expiresAt: Number(row.expires_at), ...(cancel ? { cancel } : {}) };
  }

  async progress(step: string, targets?: string[]): Promise<void> {
    await this.store.db
      .updateTable('locks')
      .set({ step, ...(targets ? { targets: JSON.stringify(targets) } : {}) })
      .where('fraise', '=', this.#info.fraise)
      .where('environment', '=', this.#info.environment)
      .where('token', '=', this.token)
      .execute();
  }

  async release(): Promise<void> {
    await this.store.db
      .deleteFrom('locks')
      .where('fraise', '=', this.#info.fraise)
      .where('environment', '=', this.#info.environment)
      .where('token', '=', this.token)
      .execute();
  }
}

/** A running renewal loop, from {@link startRenewal}. */
export interface Renewal {
  /** Stops renewing. Does not release the lock. */
  stop(): void;
  /** True once a renew failed because the lock was lost; renewing then stops. */
  readonly lost: boolean;
  /** The last renew error (lost lock or database error), or null. */
  readonly lastError: unknown;
}

/**
 * Renews `handle` every `everyMs` on an unref'd interval (it never keeps the process alive). Errors are
 * swallowed and recorded: a {@link LockLostError} sets `lost` and stops the loop; other errors (a busy
 * database) are kept in `lastError` and the next tick tries again. Pick `everyMs` well under the ttl
 * (a third of it, say).
 */
export function startRenewal(handle: LockHandle, everyMs: number): Renewal {
  let inFlight = false;
  const state: { lost: boolean; lastError: unknown } = { lost: false, lastError: null };
  const timer = setInterval(() => {
    if (inFlight || state.lost) return;
    inFlight = true;
    handle
      .renew()
      .then(() => {
        state.lastError = null;
      })
      .catch((error: unknown) => {
        state.lastError = error;
        if (error instanceof LockLostError) {
          state.lost = true;
          clearInterval(timer);
        }
      })
      .finally(() => {
        inFlight = false;
      });
  }, everyMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    get lost() {
      return state.lost;
    },
    get lastError() {
      return state.lastError;
    },
  };
}
