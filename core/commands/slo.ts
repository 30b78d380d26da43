import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier slo check [--fraise F] [--days N]`: measures the history against `deployment_slo` and exits 1
 * when an objective is broken (a CI gate), 0 when all hold, 2 when no objective is configured.
 */
export const slo: StoreCommand = {
  name: 'slo',
  describe: 'check the deployment history against deployment_slo (exit 1 when an objective is broken)',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  positionals: { action: { describe: 'what to do', choices: ['check'] } },
  options: {
    fraise: { type: 'string', describe: 'only this fraise' },
    days: { type: 'string', describe: 'look back this many days', defaultDescription: '30' },
  },
  async run(ctx, args, io) {
    const [{ toJson }, { countOption }, { FraisierError }, { evaluate, formatSlo, measure }] = await Promise.all([
      import('../report.js'),
      import('./support.js'),
      import('../errors.js'),
      import('../slo.js'),
    ]);
    const days = countOption('days', args['days'], 30);
    const fraise = stringArg(args, 'fraise');
    const config = ctx.config!;
    if (fraise !== undefined && !(fraise in config.fraises)) {
      throw new FraisierError('E_NOT_FOUND', `--fraise: unknown fraise ${JSON.stringify(fraise)} in ${config.file}`, {
        hint: `known fraises: ${Object.keys(config.fraises).join(', ')}`,
      });
    }
    const objectives = Object.entries(config.slo).filter(([f]) => fraise === undefined || f === fraise);
    if (objectives.length === 0) {
      throw new FraisierError('E_CONFIG', `${config.file}: no deployment_slo${fraise ? ` for ${fraise}` : ''}: nothing to check`, {
        file: config.file,
        key: 'deployment_slo',
        hint: 'add deployment_slo: { success_rate: "99%", error_rate_max: "1%", latency_p99: "10m", rollback_rate: "5%" } at the top of the file or in a fraise',
      });
    }
    return ctx.readStore(async (store) => {
      const measures = await measure(store, { ...(fraise ? { fraise } : {}), days });
      const reports = objectives.map(([f, o]) =>
        evaluate(
          o,
          measures.find((m) => m.fraise === f),
          f,
        ),
      );
      const broken = reports.flatMap((r) => r.results.filter((x) => x.status === 'broken').map((x) => `${r.fraise} ${x.key}`));
      if (io.json) io.out(`${toJson({ days, ok: broken.length === 0, reports }, 2)}\n`);
      else {
        io.out(`${formatSlo(reports, days)}\n`);
        io.out(broken.length === 0 ? `SLO met over the last ${days} days\n` : `SLO broken over the last ${days} days: ${broken.join(', ')}\n`);
      }
      return broken.length === 0 ? 0 : 1;
    });
  },
};
