import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/** `fraisier state migrate --to <url>`: copies the state store into a new PostgreSQL database. */
export const state: StoreCommand = {
  name: 'state',
  describe: 'state store maintenance: `state migrate --to <url>` copies the history into a new PostgreSQL database',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  positionals: { action: { describe: 'what to do with the state store', choices: ['migrate'] } },
  options: {
    to: { type: 'string', demandOption: true, describe: 'PostgreSQL URL of an empty database to copy the current store into' },
  },
  async run(ctx, args, io) {
    const [{ copyState }, { openStore, redactUrl }, { toJson }] = await Promise.all([
      import('../state/copy.js'),
      import('../state/store.js'),
      import('../report.js'),
    ]);
    const to = stringArg(args, 'to') ?? '';
    const target = await openStore({ url: to });
    try {
      return await ctx.readStore(async (source) => {
        const counts = await copyState(source, target, { toPostgres: true });
        const summary = { ...counts, to: redactUrl(to) };
        io.out(
          (io.json
            ? toJson(summary)
            : `Copied ${counts.deployments} deployment(s), ${counts.targets} target result(s) and ${counts.events} event(s) to ${summary.to}.\n` +
              'Now point every deployer at it: state.url in fraises.yaml (or FRAISIER_DATABASE_URL).') + '\n',
        );
        return 0;
      });
    } finally {
      await target.close();
    }
  },
};
