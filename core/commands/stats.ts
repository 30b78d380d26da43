import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/** `fraisier stats [--fraise F]`, `npx tsx deploy.ts <env> stats` (the whole fraise): success and rollback rates. */
export const stats: StoreCommand = {
  name: 'stats',
  describe: 'success rate, rollback rate, mean and p95 duration',
  scope: 'store',
  frontEnds: ['fraisier', 'script'],
  changesHosts: false,
  usesTargets: false,
  options: {
    fraise: { type: 'string', describe: 'only this fraise', frontEnds: ['fraisier'] },
    days: { type: 'string', describe: 'look back this many days', defaultDescription: '30' },
  },
  async run(ctx, args, io) {
    const [{ formatStats, toJson }, { countOption }] = await Promise.all([import('../report.js'), import('./support.js')]);
    const days = countOption('days', args['days'], 30);
    const fraise = stringArg(args, 'fraise') || ctx.fraise;
    return ctx.readStore(async (store) => {
      const rows = await store.stats({ ...(fraise ? { fraise } : {}), days });
      io.out((io.json ? toJson(rows, 2) : formatStats(rows, days)) + '\n');
      return 0;
    });
  },
};
