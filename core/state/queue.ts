/**
 * The deployment queue in the state store: scheduled deployments (`deploy --scheduled`, git webhooks)
 * waiting for their time, claimed by one worker each, then finished with the history row of their run.
 * Works on SQLite and PostgreSQL alike. A claim is one `update queue set status = 'running' ... where id =
 * ? and status = 'queued'`: the database runs it atomically, so of several workers racing for an item
 * (on one SQLite file, or on a shared PostgreSQL database) exactly one updates the row; the others see
 * zero rows updated and move on.
 */
import type { QueueRow } from './schema.js';
import type { StateStore } from './store.js';
import { redact } from '../secret.js';

/** Where a queued deployment is. `queued`: waiting; `running`: claimed by a worker; then its outcome. */
export type QueueStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'rolled_back' | 'lock_lost' | 'cancelled' | 'canary';

/** The deploy flags a queued item is run with. */
export interface QueueFlags {
  /** `--force`: no health checks, and the deploy windows do not hold it back. */
  force?: boolean;
  /** `--wait-lock` given with `--scheduled`: how long the run waits for another deployment's lock, ms. */
  waitLockMs?: number;
}

/** What is known when a deployment is queued. */
export interface NewQueueItem {
  fraise: string;
  environment: string;
  /** The exact release, resolved when it was queued: that is what runs, even if the branch moves. */
  version: string;
  /** What was asked for (`main`, `v1.2.0`), or null for the configured branch. */
  ref: string | null;
  flags: QueueFlags;
  /** Who asked: `user@host`, or `webhook:github (pusher)`. */
  requestedBy: string;
  /** Epoch ms when it is due. */
  dueAt: number;
}

/** A queued deployment, as `fraisier queue` lists it. */
export interface QueueItem extends NewQueueItem {
  id: number;
  status: QueueStatus;
  queuedAt: number;
  /** The worker that claimed it (`user@host:pid`), or null. */
  claimedBy: string | null;
  claimedAt: number | null;
  finishedAt: number | null;
  /** The history row of its run, or null. */
  deploymentId: number | null;
  error: string | null;
  /** Why a due item still waits (outside the deploy windows), or null. */
  note: string | null;
}

function toItem(r: QueueRow): QueueItem {
  const n = (v: number | string | null) => (v === null ? null : Number(v));
  return {
    id: Number(r.id),
    fraise: r.fraise,
    environment: r.environment,
    version: r.version,
    ref: r.ref,
    flags: JSON.parse(r.flags) as QueueFlags,
    requestedBy: r.requested_by,
    dueAt: Number(r.due_at),
    status: r.status as QueueStatus,
    queuedAt: Number(r.queued_at),
    claimedBy: r.claimed_by,
    claimedAt: n(r.claimed_at),
    finishedAt: n(r.finished_at),
    deploymentId: n(r.deployment_id),
    error: r.error,
    note: r.note,
  };
}

/** The queue of one state store. Times come from the store's clock (`store.now`). */
export class Queue {
  constructor(private readonly store: StateStore) {}

  /** Queues a deployment. @returns its id. */
  async add(item: NewQueueItem): Promise<number> {
    const row = await this.store.db
      .insertInto('queue')
      .values({
        fraise: item.fraise,
        environment: item.environment,
        version: item.version,
        ref: item.ref,
        flags: JSON.stringify(item.flags),
        requested_by: item.requestedBy,
        queued_at: this.store.now(),
        due_at: item.dueAt,
        status: 'queued',
        claimed_by: null,
        claimed_at: null,
        finished_at: null,
        deployment_id: null,
        error: null,
        note: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }

  /** One item, or undefined. */
  async get(id: number): Promise<QueueItem | undefined> {
    const row = await this.store.db.selectFrom('queue').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toItem(row) : undefined;
  }

  /**
   * Items by due time (then id). Default: those still to run (`queued`, `running`); `all`: every item,
   * newest first, at most `limit` (default 50).
   */
  async list(q: { all?: boolean; limit?: number; fraise?: string; environment?: string } = {}): Promise<QueueItem[]> {
    let query = this.store.db.selectFrom('queue').selectAll();
    if (q.fraise !== undefined) query = query.where('fraise', '=', q.fraise);
    if (q.environment !== undefined) query = query.where('environment', '=', q.environment);
    if (!q.all) query = query.where('status', 'in', ['queued', 'running']).orderBy('due_at').orderBy('id');
    else query = query.orderBy('id', 'desc');
    const rows = await query.limit(q.limit ?? (q.all ? 50 : 1000)).execute();
    return rows.map(toItem);
  }

  /** The `queued` items due at `now` or before, oldest due first. */
  async due(now: number): Promise<QueueItem[]> {
    const rows = await this.store.db
      .selectFrom('queue')
      .selectAll()
      .where('status', '=', 'queued')
      .where('due_at', '<=', now)
      .orderBy('due_at')
      .orderBy('id')
      .execute();
    return rows.map(toItem);
  }

  /**
   * Claims a queued item for `worker`: one atomic `update ... where id = ? and status = 'queued'`.
   * @returns the claimed item, or undefined when another worker claimed it (or it was cancelled) first.
   */
  async claim(id: number, worker: string): Promise<QueueItem | undefined> {
    const row = await this.store.db
      .updateTable('queue')
      .set({ status: 'running', claimed_by: worker, claimed_at: this.store.now(), note: null })
      .where('id', '=', id)
      .where('status', '=', 'queued')
      .returningAll()
      .executeTakeFirst();
    return row ? toItem(row) : undefined;
  }

  /** Records the outcome of a claimed item (its error stored redacted). */
  async finish(
    id: number,
    outcome: { status: Exclude<QueueStatus, 'queued' | 'running'>; deploymentId?: number | null; error?: string | null },
  ): Promise<void> {
    await this.store.db
      .updateTable('queue')
      .set({
        status: outcome.status,
        finished_at: this.store.now(),
        deployment_id: outcome.deploymentId ?? null,
        error: outcome.error == null ? null : redact(outcome.error),
      })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .execute();
  }

  /**
   * Marks a `running` item claimed by `worker` as `failed` with `error`: its worker stopped without
   * finishing it (killed with SIGKILL, the machine rebooted). Only that claim is touched, so an item
   * another worker finished or re-claimed in the meantime stays as it is.
   * @returns whether the item was marked.
   */
  async abandon(id: number, worker: string, error: string): Promise<boolean> {
    const r = await this.store.db
      .updateTable('queue')
      .set({ status: 'failed', finished_at: this.store.now(), error: redact(error) })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', worker)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Sets (or clears) why a due item still waits. Only on a `queued` item. */
  async note(id: number, note: string | null): Promise<void> {
    await this.store.db.updateTable('queue').set({ note }).where('id', '=', id).where('status', '=', 'queued').execute();
  }

  /**
   * Cancels a queued item (one atomic update, so a worker cannot claim it at the same moment).
   * @returns `cancelled`, or why not: `missing`, or the item's status (`running`, `succeeded`, ...).
   */
  async cancel(id: number): Promise<{ result: 'cancelled' | 'missing' | QueueStatus; item?: QueueItem }> {
    const row = await this.store.db
      .updateTable('queue')
      .set({ status: 'cancelled', finished_at: this.store.now() })
      .where('id', '=', id)
      .where('status', '=', 'queued')
      .returningAll()
      .executeTakeFirst();
    if (row) return { result: 'cancelled', item: toItem(row) };
    const item = await this.get(id);
    return item ? { result: item.status, item } : { result: 'missing' };
  }
}
