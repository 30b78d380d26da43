/**
 * A held environment lock for the length of one piece of work (a deployment, a rollback, `fraisier
 * migrate`): acquire (optionally waiting for a live holder), renew on an interval, notice a loss, the
 * fencing check, release. Both the Deployer and `runMigrate` use it, so a long migration keeps its lock
 * exactly as a long deployment does.
 */
import type { Clock } from './clock.js';
import { FraisierError, asFraisierError } from './errors.js';
import type { Logger } from './log.js';
import { LockHeldError, LockLostError, Locks, ownerString, type CancelRequest, type LockHandle, type LockInfo, type LockOwner } from './state/lock.js';
import type { StateStore } from './state/store.js';

/** Default lock time-to-live: 60 s. */
export const DEFAULT_LOCK_TTL_MS = 60_000;

/** What a {@link LockSession} protects; it words the messages. */
export type LockActivity = 'deployment' | 'migration';

/** Options of {@link LockSession.acquire}. */
export interface LockSessionOptions {
  store: StateStore;
  fraise: string;
  environment: string;
  owner: LockOwner;
  /** Stored with the lock, shown to whoever finds it taken. */
  reason: string;
  /** Where the waiting, takeover and loss messages go. */
  log: Logger;
  /** Lock time-to-live, in ms; renewed every third of it (at least every second). Default 60 000. */
  ttlMs?: number;
  /** How long to wait for a live holder, in ms (0, the default: fail at once with `E_LOCKED`). */
  waitMs?: number;
  /** Pause between attempts while waiting, in ms. Default 1000. */
  pollMs?: number;
  /** What the lock protects (`deployment`, the default, or `migration`): words the messages. */
  activity?: LockActivity;
  /**
   * Times the renewal interval and the fencing check's retries (not the lock's expiry: that is the
   * database's clock). Default: real time, on timers that never keep the process alive.
   */
  clock?: Clock;
  /** Called once, when the lock is found lost, with the `E_LOCKED` error the work should stop with. */
  onLost?: (error: FraisierError) => void;
  /**
   * Called once, when a renewal (or a {@link LockSession.fence}) finds that `fraisier cancel` asked the
   * holder to stop. The request rides on the renewal's own statement: it is seen within the renewal
   * interval (a third of `ttlMs`, at least every second).
   */
  onCancel?: (request: CancelRequest) => void;
}

/** Real time on unref'd timers: a forgotten renewal loop never keeps the process alive. */
const timerClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal!.reason);
      };
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      t.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

const LOST_BY_OTHERS = 'removed with unlock --force, or taken over';

/**
 * One held lock (or none, in a dry run: {@link LockSession.none}). While held it is renewed every third of
 * its TTL; a renewal or a {@link fence} that finds the lock gone marks it lost once: the loss is logged,
 * `onLost` is called, and every later `fence()` rejects with `E_LOCKED`. {@link release} stops renewing and
 * deletes the lock if it is still ours.
 */
export class LockSession {
  readonly #handle: LockHandle | null;
  readonly #o: LockSessionOptions | null;
  readonly #ttlMs: number;
  readonly #clock: Clock;
  readonly #stop = new AbortController();
  #confirmedAt: number;
  #lost: FraisierError | null = null;
  #cancel: CancelRequest | null = null;
  /** The chain of progress writes, so they reach the lock row in the order they were made. */
  #progressWrites: Promise<void> = Promise.resolve();
  #released = false;
  #loop: Promise<void> = Promise.resolve();

  private constructor(handle: LockHandle | null, o: LockSessionOptions | null) {
    this.#handle = handle;
    this.#o = o;
    this.#ttlMs = o?.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    this.#clock = o?.clock ?? timerClock;
    this.#confirmedAt = this.#clock.now();
    if (handle) this.#loop = this.#renewLoop(Math.max(1000, Math.floor(this.#ttlMs / 3)));
  }

  /** A session that holds no lock (a dry run): `fence()` resolves at once, `release()` does nothing. */
  static none(): LockSession {
    return new LockSession(null, null);
  }

  /**
   * Takes the environment's lock. A live holder fails it with `E_LOCKED` naming the holder (after waiting
   * up to `waitMs`, printing whom it waits for); an expired one is taken over, with a warning.
   */
  static async acquire(o: LockSessionOptions): Promise<LockSession> {
    const locks = new Locks(o.store, { ttlMs: o.ttlMs ?? DEFAULT_LOCK_TTL_MS });
    const waitMs = o.waitMs ?? 0;
    let handle: LockHandle;
    try {
      const wait =
        waitMs > 0
          ? {
              timeoutMs: waitMs,
              pollMs: o.pollMs ?? 1000,
              onWait: (h: LockInfo) =>
                o.log.info(
                  `Waiting for the lock of ${o.fraise}/${o.environment}: held by ${ownerString(h.owner)}${h.reason ? ` (${h.reason})` : ''}` +
                    ` since ${new Date(h.acquiredAt).toISOString()}, expires ${new Date(h.expiresAt).toISOString()} unless renewed; giving up in ${Math.round(waitMs / 1000)} s`,
                ),
            }
          : undefined;
      handle = await locks.acquire(o.fraise, o.environment, o.owner, o.reason, wait);
    } catch (err) {
      if (err instanceof LockHeldError) {
        const unlock = `fraisier unlock ${o.fraise} ${o.environment}`;
        throw new FraisierError('E_LOCKED', err.message, {
          hint:
            o.activity === 'migration'
              ? `wait for the deployment to finish, or if its owner is gone: ${unlock}`
              : err.waitedMs > 0
                ? `it is still running; if its owner is gone: ${unlock}`
                : `wait for it (--wait-lock), or if its owner is gone: ${unlock}`,
        });
      }
      throw err;
    }
    if (handle.tookOverFrom) {
      o.log.warn(`took over an expired lock from ${ownerString(handle.tookOverFrom.owner)} (its deployer stopped without releasing it)`);
    }
    return new LockSession(handle, o);
  }

  /**
   * Runs `work` under the environment's lock and releases it afterwards, also when `work` throws. With
   * `dryRun`, takes no lock ({@link none}).
   */
  static async with<T>(o: LockSessionOptions & { dryRun?: boolean }, work: (session: LockSession) => Promise<T>): Promise<T> {
    const session = o.dryRun ? LockSession.none() : await LockSession.acquire(o);
    try {
      return await work(session);
    } finally {
      await session.release();
    }
  }

  /** True when a lock is held (false in a dry run). */
  get held(): boolean {
    return this.#handle !== null;
  }

  /** The lock as held, or null in a dry run. */
  get info(): LockInfo | null {
    return this.#handle?.info ?? null;
  }

  /** The expired holder this session took the lock over from, or null. */
  get tookOverFrom(): LockInfo | null {
    return this.#handle?.tookOverFrom ?? null;
  }

  /** The `fraisier cancel` request seen on the lock, or null. */
  get cancelRequest(): CancelRequest | null {
    return this.#cancel;
  }

  /**
   * Records what the holder is doing now (and the targets it works on) on the lock row, for
   * `status-all`. Best effort: never throws, never waits for the store (a dry run records nothing).
   */
  progress(step: string, targets?: string[]): void {
    const handle = this.#handle;
    if (!handle?.progress || this.#lost || this.#released) return;
    // One write at a time, in order: two updates in flight on a PostgreSQL pool's two connections can
    // commit out of order, and the row would keep the older step.
    this.#progressWrites = this.#progressWrites.then(() => handle.progress!(step, targets)).catch(() => {});
  }

  /** True once the lock was found lost (released by someone else, forced, or taken over). */
  get lost(): boolean {
    return this.#lost !== null;
  }

  /** The `E_LOCKED` error the loss is reported with, or null while the lock is ours. */
  get lostError(): FraisierError | null {
    return this.#lost;
  }

  /**
   * The fencing check: resolves if the lock is still ours (one statement that also renews it), else
   * marks it lost and rejects with `E_LOCKED`. A store that cannot be reached is retried every 500 ms
   * while the lock cannot have expired yet; past that, the lock counts as lost. Resolves at once without
   * a lock (dry run).
   */
  async fence(): Promise<void> {
    if (!this.#handle) return;
    if (this.#lost) throw this.#lost;
    for (;;) {
      try {
        await this.#renew();
        return;
      } catch (err) {
        if (err instanceof LockLostError) {
          this.#lose(LOST_BY_OTHERS);
          break;
        }
        if (this.#clock.now() - this.#confirmedAt > this.#ttlMs - Math.min(5000, this.#ttlMs / 4)) {
          this.#lose(`the state store could not confirm it before it expired: ${asFraisierError(err).message}`);
          break;
        }
        await this.#clock.sleep(500);
      }
    }
    throw this.#lost!;
  }

  /** Stops renewing and deletes the lock if it is still ours. Idempotent; never throws. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#stop.abort();
    await this.#loop.catch(() => {});
    await this.#handle?.release().catch(() => {});
  }

  async #renew(): Promise<void> {
    await this.#handle!.renew();
    this.#confirmedAt = this.#clock.now();
    const cancel = this.#handle!.info.cancel;
    if (cancel && !this.#cancel) {
      this.#cancel = cancel;
      this.#o!.onCancel?.(cancel);
    }
  }

  /** Renews every `everyMs` until released or lost. Errors other than a lost lock (a busy store) wait for the next tick. */
  async #renewLoop(everyMs: number): Promise<void> {
    while (!this.#stop.signal.aborted && !this.#lost) {
      try {
        await this.#clock.sleep(everyMs, this.#stop.signal);
      } catch {
        return;
      }
      if (this.#stop.signal.aborted) return;
      try {
        await this.#renew();
      } catch (err) {
        if (err instanceof LockLostError && !this.#stop.signal.aborted) this.#lose(LOST_BY_OTHERS);
      }
    }
  }

  #lose(why: string): void {
    if (this.#lost) return;
    const o = this.#o!;
    if (o.activity === 'migration') {
      o.log.error(`lost the lock of ${o.fraise}/${o.environment} (${why}): no further migration will run`);
      this.#lost = new FraisierError('E_LOCKED', `the lock of ${o.fraise}/${o.environment} was lost (${why}): no further migration was run`, {
        hint: `fraisier status ${o.fraise} ${o.environment} shows who holds the lock now`,
      });
    } else {
      o.log.error(`lost the deployment lock (${why}): stopping without touching any host again`);
      this.#lost = new FraisierError('E_LOCKED', `the deployment lock was lost while deploying (${why}); no host was touched after that`, {
        hint: `fraisier status ${o.fraise} ${o.environment} shows what each host runs; the lock's new holder owns them`,
      });
    }
    o.onLost?.(this.#lost);
  }
}
