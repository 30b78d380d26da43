import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier stats [--fraise F] [--days N]`, `npx tsx deploy.ts <env> stats` (the whole fraise): success
 * and rollback rates, mean and p95 duration; with `deployment_slo` in fraises.yaml, each objective
 * against what was measured in the same window (`--json`: an `slo` field per row).
 */
export const stats: StoreCommand = {
  name: 'stats',
  describe: 'success rate, rollback rate, mean and p95 duration (and each deployment_slo objective)',
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
    const objectives = Object.entries(ctx.config?.slo ?? {}).filter(([f]) => !fraise || f === fraise);
    return ctx.readStore(async (store) => {
      const rows = await store.stats({ ...(fraise ? { fraise } : {}), days });
      if (objectives.length === 0) {
        io.out(`${io.json ? toJson(rows, 2) : formatStats(rows, days)}\n`);
        return 0;
      }
      const { evaluate, formatSlo, measure } = await import('../slo.js');
      const measures = await measure(store, { ...(fraise ? { fraise } : {}), days });
      const reports = objectives.map(([f, o]) =>
        evaluate(
          o,
          measures.find((m) => m.fraise === f),
          f,
        ),
      );
      if (io.json) {
        const withSlo = rows.map((r) => ({ ...r, slo: reports.find((x) => x.fraise === r.fraise)?.results ?? [] }));
        // a fraise with objectives but no deployment in the window still shows its objectives
        for (const x of reports) if (!rows.some((r) => r.fraise === x.fraise)) withSlo.push({ ...emptyRow(x.fraise), slo: x.results });
        io.out(`${toJson(withSlo, 2)}\n`);
      } else {
        io.out(`${formatStats(rows, days)}\n\nSLO (last ${days} days):\n${formatSlo(reports, days)}\n`);
      }
      return 0;
    });
  },
};

function emptyRow(fraise: string) {
  return { fraise, total: 0, succeeded: 0, failed: 0, rolledBack: 0, successRate: 0, rollbackRate: 0, meanMs: null, p95Ms: null };
}
