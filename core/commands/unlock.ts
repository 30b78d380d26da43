import type { EnvironmentCommand } from './types.js';

/** `fraisier unlock <fraise> <env>`, `npx tsx deploy.ts <env> unlock`: removes a lock left behind. */
export const unlock: EnvironmentCommand = {
  name: 'unlock',
  describe: 'remove a lock left by a deployer that is gone (a live holder needs --force)',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: false,
  usesTargets: true,
  options: {
    force: { type: 'boolean', default: false, describe: 'remove the lock even if its holder looks alive (it then stops, touching no host)' },
  },
  async run(app, env, args, io) {
    const [{ formatLock, toJson }, { warnLiveUnlock }] = await Promise.all([import('../report.js'), import('./support.js')]);
    const removed = await app.unlock(env, { sinks: io.sinks }, { force: Boolean(args['force']) });
    if (removed?.live) warnLiveUnlock(removed, io);
    io.out(
      (io.json
        ? toJson({ removed: removed ?? null })
        : removed
          ? `Removed lock of ${app.name}/${env} (${formatLock(removed)})`
          : `${app.name}/${env} was not locked`) + '\n',
    );
    return 0;
  },
};
