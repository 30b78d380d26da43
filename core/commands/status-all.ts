import type { StatusAllRow } from '../report.js';
import type { StoreCommand } from './types.js';

/**
 * `fraisier status-all`: every fraise and environment of the config, from the state store (no SSH), and
 * the deployments running now: holder, step, hosts done and left, elapsed time.
 */
export const statusAll: StoreCommand = {
  name: 'status-all',
  describe: 'every fraise and environment: live version and lock; the running deployments: step, hosts done and left (from the state store, no SSH)',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  options: {},
  async run(ctx, _args, io) {
    const [{ formatActive, formatStatusAll, summarizeLock, toJson }, { Locks, cancelledBy, ownerString }] = await Promise.all([
      import('../report.js'),
      import('../state/lock.js'),
    ]);
    const fraises = ctx.config?.fraises ?? {};
    return ctx.readStore(async (store) => {
      const now = await store.databaseNow(); // a lock's age and expiry by the clock that decides them
      const locks = await new Locks(store).list();
      const places = Object.entries(fraises).flatMap(([fraise, f]) => Object.keys(f.environments).map((environment) => ({ fraise, environment })));
      // locks of places no longer in the config are shown too: they still block whoever shares the store
      for (const l of locks)
        if (!places.some((p) => p.fraise === l.fraise && p.environment === l.environment)) places.push({ fraise: l.fraise, environment: l.environment });
      const rows: StatusAllRow[] = [];
      for (const { fraise, environment } of places) {
        const lock = locks.find((l) => l.fraise === fraise && l.environment === environment);
        const row: StatusAllRow = {
          fraise,
          environment,
          version: await store.currentVersion(fraise, environment),
          lock: lock ? summarizeLock(lock, now) : null,
        };
        if (lock && lock.expiresAt > now) {
          // a live holder: its deployment's row (once recorded) and the targets finished so far
          // (a deployer marks every older `running` row failed right after taking the lock: the newest is its own)
          const current = await store.runningDeployment(fraise, environment);
          const done = (current?.targets ?? []).filter((t) => t.status !== 'untouched').map((t) => ({ target: t.target, status: t.status }));
          row.active = {
            id: current?.id ?? null,
            kind: current?.kind ?? null,
            fromVersion: current?.fromVersion ?? null,
            toVersion: current?.toVersion ?? null,
            holder: ownerString(lock.owner),
            step: lock.step ?? null,
            done,
            left: (lock.targets ?? []).filter((t) => !done.some((d) => d.target === t)),
            elapsedMs: Math.max(0, now - lock.acquiredAt),
            cancelledBy: lock.cancel ? cancelledBy(lock.cancel) : null,
          };
        }
        rows.push(row);
      }
      const active = rows.some((r) => r.active);
      const text = io.json ? toJson(rows, 2) : formatStatusAll(rows, now) + (active ? `\n\n${formatActive(rows)}` : '');
      io.out(`${text}\n`);
      return 0;
    });
  },
};
