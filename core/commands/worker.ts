import type { StoreCommand } from './types.js';

/** `fraisier worker [--once]`: runs the scheduled deployments when they are due. */
export const worker: StoreCommand = {
  name: 'worker',
  describe: 'run scheduled deployments when due (until SIGTERM; --once: what is due now, then exit)',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: true,
  usesTargets: true,
  options: {
    once: { type: 'boolean', default: false, describe: 'run what is due now, then exit (for cron)' },
    'dry-run': { type: 'boolean', default: false, describe: 'say what is due and would run now, run nothing, change nothing' },
    poll: { type: 'string', describe: 'pause between two looks at the queue: seconds, or 500ms, 30s, 2m', defaultDescription: '10s' },
    'wait-lock': {
      type: 'string',
      describe: 'how long a due deployment waits for a lock held by another deployment (seconds, or 30s, 2m)',
      defaultDescription: '600s',
    },
  },
  async run(ctx, args, io) {
    const [{ runWorker }, { waitLockOption }, { durationOption }] = await Promise.all([
      import('../scheduler.js'),
      import('./support.js'),
      import('./schedule-support.js'),
    ]);
    return runWorker(
      ctx.config,
      {
        once: Boolean(args['once']),
        dryRun: Boolean(args['dry-run']),
        pollMs: durationOption('poll', args['poll'], 10_000),
        waitLockMs: waitLockOption(args['wait-lock']) ?? 600_000,
      },
      io,
    );
  },
};
