import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier history [--fraise F] [--env E]`, `npx tsx deploy.ts <env> history` (that fraise and
 * environment): past deployments, newest first.
 */
export const history: StoreCommand = {
  name: 'history',
  describe: 'past deployments, newest first',
  scope: 'store',
  frontEnds: ['fraisier', 'script'],
  changesHosts: false,
  usesTargets: false,
  options: {
    fraise: { type: 'string', describe: 'only this fraise', frontEnds: ['fraisier'] },
    env: { type: 'string', describe: 'only this environment', frontEnds: ['fraisier'] },
    limit: { type: 'string', describe: 'rows to show, newest first', defaultDescription: '20' },
  },
  async run(ctx, args, io) {
    const [{ formatHistory, toJson }, { countOption }] = await Promise.all([import('../report.js'), import('./support.js')]);
    const limit = countOption('limit', args['limit'], 20);
    const fraise = stringArg(args, 'fraise') || ctx.fraise;
    const environment = stringArg(args, 'env') || ctx.environment;
    const query = { ...(fraise ? { fraise } : {}), ...(environment ? { environment } : {}), limit };
    const rows = ctx.quickHistory?.(query) ?? (await ctx.readStore((store) => store.history(query)));
    io.out((io.json ? toJson(rows, 2) : formatHistory(rows)) + '\n');
    return 0;
  },
};
