/**
 * Copies a state store into another, empty one: how a team moves its history from a SQLite file to a
 * shared PostgreSQL database (`fraisier state migrate --to <url>`). Ids are kept, so deployment numbers
 * stay the same; locks are not copied (a lock belongs to a running deployer), and a store with a live
 * lock is refused.
 */
import { sql } from 'kysely';
import { FraisierError } from '../errors.js';
import { Locks, ownerString } from './lock.js';
import type { StateStore } from './store.js';

/** What {@link copyState} copied. */
export interface CopyCounts {
  deployments: number;
  targets: number;
  events: number;
  /** Scheduled deployments (the queue), whatever their status. */
  queue: number;
}

const CHUNK = 500;

/**
 * Copies every deployment, target result, event and queued deployment of `from` into `to`, in one transaction on `to`.
 * Refuses (`E_STATE`) when `to` already holds deployments, and (`E_LOCKED`) when `from` has an unexpired
 * lock: finish or unlock that deployment first. On PostgreSQL (`toPostgres`), the id sequences are moved
 * past the copied ids.
 */
export async function copyState(from: StateStore, to: StateStore, options: { toPostgres: boolean }): Promise<CopyCounts> {
  const dbNow = await from.databaseNow();
  const live = (await new Locks(from).list()).filter((l) => l.expiresAt > dbNow);
  if (live.length > 0) {
    const l = live[0]!;
    throw new FraisierError(
      'E_LOCKED',
      `${l.fraise}/${l.environment} is locked by ${ownerString(l.owner)}: a deployment is running; copy the state once it has finished`,
      {
        hint: `or, if its owner is gone: fraisier unlock ${l.fraise} ${l.environment}`,
      },
    );
  }
  const existing = await to.db
    .selectFrom('deployments')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  if (Number(existing.n) > 0) {
    throw new FraisierError('E_STATE', `the target store already holds ${Number(existing.n)} deployment(s); refusing to mix histories`, {
      hint: 'copy into a new, empty database',
    });
  }
  const counts: CopyCounts = { deployments: 0, targets: 0, events: 0, queue: 0 };
  await to.db.transaction().execute(async (trx) => {
    for (const table of ['deployments', 'targets', 'events', 'queue'] as const) {
      for (let last = 0; ; ) {
        const rows = await from.db.selectFrom(table).selectAll().where('id', '>', last).orderBy('id').limit(CHUNK).execute();
        if (rows.length === 0) break;
        // bigint columns come back from PostgreSQL as strings; the target takes numbers
        const values = rows.map((r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /(_at|_ms|^id|_id)$/.test(k) ? Number(v) : v])),
        );
        await trx
          .insertInto(table)
          .values(values as never)
          .execute();
        counts[table] += rows.length;
        last = Number(rows[rows.length - 1]!.id);
      }
      if (options.toPostgres) {
        await sql`select setval(pg_get_serial_sequence(${table}, 'id'), coalesce((select max(id) from ${sql.table(table)}), 0) + 1, false)`.execute(trx);
      }
    }
  });
  return counts;
}
