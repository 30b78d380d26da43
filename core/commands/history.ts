import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier history [--fraise F] [--env E]`, `npx tsx deploy.ts <env> history` (that fraise and
 * environment): past deployments, newest first. `--id N`: one deployment in full, with its result per
 * target and every event it recorded (each step, measurement and verdict of a canary), oldest first.
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
    id: { type: 'string', describe: 'one deployment in full: its targets and every event (measurements, verdicts)' },
  },
  async run(ctx, args, io) {
    if (args['id'] !== undefined) {
      const [{ formatDeployment, toJson }, { countOption }, { FraisierError }] = await Promise.all([
        import('../report.js'),
        import('./support.js'),
        import('../errors.js'),
      ]);
      const id = countOption('id', args['id'], 1);
      const d = await ctx.readStore((store) => store.deployment(id));
      if (!d) throw new FraisierError('E_NOT_FOUND', `no deployment #${id} in the state store`, { hint: 'fraisier history lists them' });
      io.out(`${io.json ? toJson(d, 2) : formatDeployment(d)}\n`);
      return 0;
    }
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
