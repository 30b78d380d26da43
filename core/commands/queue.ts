import type { StoreCommand } from './types.js';

/** `fraisier queue [--all]`, `fraisier queue cancel <id>`: the scheduled deployments. */
export const queue: StoreCommand = {
  name: 'queue',
  describe: 'scheduled deployments (id, fraise, env, version, due, status, who); `queue cancel <id>` removes a queued one',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  positionals: {
    action: { describe: 'cancel: remove a queued deployment', choices: ['cancel'], optional: true },
    id: { describe: 'the id of the queued deployment to cancel', optional: true },
  },
  options: {
    all: { type: 'boolean', default: false, describe: 'also the finished and cancelled ones (newest first)' },
  },
  async run(ctx, args, io) {
    const [{ Queue }, { formatQueue, waitingNote, windowsOf }, { toJson }, { idArg }, { FraisierError }, { formatInZone }] = await Promise.all([
      import('../state/queue.js'),
      import('../scheduler.js'),
      import('../report.js'),
      import('./schedule-support.js'),
      import('../errors.js'),
      import('../schedule.js'),
    ]);
    if (args['action'] === 'cancel') {
      const id = idArg(args['id']);
      const { openStore, resolveState, storeOptions } = await import('../state/store.js');
      // a writable store: a read-only SQLite file must fail here, not cancel in a private copy
      const store = await openStore(storeOptions(resolveState(ctx.config!.baseDir, ctx.config!.state)));
      try {
        const { result, item } = await new Queue(store).cancel(id);
        if (result === 'missing') throw new FraisierError('E_NOT_FOUND', `no scheduled deployment #${id}`, { hint: 'fraisier queue --all lists them' });
        if (result !== 'cancelled') {
          throw new FraisierError(
            'E_USAGE',
            `#${id} (${item!.fraise}/${item!.environment} ${item!.version}) is ${result}, not queued: only a queued deployment can be cancelled`,
            {
              hint:
                result === 'running'
                  ? `it runs now (claimed by ${item!.claimedBy}); stop a running deployment with Ctrl-C or SIGTERM on its worker`
                  : 'nothing was changed',
            },
          );
        }
        io.out(
          (io.json
            ? toJson({ cancelled: item }, 2)
            : `Cancelled #${id}: ${item!.fraise}/${item!.environment} ${item!.version}, due ${formatInZone(item!.dueAt)}, queued by ${item!.requestedBy}`) +
            '\n',
        );
        return 0;
      } finally {
        await store.close();
      }
    }
    if (args['id'] !== undefined) throw new FraisierError('E_USAGE', `queue takes an id only after cancel: fraisier queue cancel ${String(args['id'])}`);
    return ctx.readStore(async (store) => {
      const now = Date.now();
      const items = await new Queue(store).list({ all: Boolean(args['all']) });
      const shown = await Promise.all(
        items.map(async (i) => ({
          ...i,
          waiting: i.status === 'queued' && !i.flags.force ? waitingNote(await windowsOf(ctx.config, i.fraise, i.environment), Math.max(now, i.dueAt)) : null,
        })),
      );
      io.out((io.json ? toJson(shown, 2) : formatQueue(shown, now)) + '\n');
      return 0;
    });
  },
};
