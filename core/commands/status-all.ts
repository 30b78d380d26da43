import type { StatusAllRow } from '../report.js';
import type { StoreCommand } from './types.js';

/** `fraisier status-all`: every fraise and environment of the config, from the state store (no SSH). */
export const statusAll: StoreCommand = {
  name: 'status-all',
  describe: 'every fraise and environment: live version and lock (from the history, no SSH)',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  options: {},
  async run(ctx, _args, io) {
    const [{ formatStatusAll, summarizeLock, toJson }, { Locks }] = await Promise.all([import('../report.js'), import('../state/lock.js')]);
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
        rows.push({ fraise, environment, version: await store.currentVersion(fraise, environment), lock: lock ? summarizeLock(lock, now) : null });
      }
      io.out((io.json ? toJson(rows, 2) : formatStatusAll(rows, now)) + '\n');
      return 0;
    });
  },
};
