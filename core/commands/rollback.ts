import { WAIT_LOCK_DESCRIBE } from './deploy.js';
import type { EnvironmentCommand } from './types.js';
import { stringArg } from './types.js';

/** `fraisier rollback <fraise> <env>`, `npx tsx deploy.ts <env> rollback`: goes back a release. */
export const rollback: EnvironmentCommand = {
  name: 'rollback',
  describe: 'go back to the previous release (or --to VERSION)',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: true,
  usesTargets: true,
  connects: true,
  options: {
    to: { type: 'string', describe: 'release to go back to; default: the newest earlier release that succeeded' },
    force: { type: 'boolean', default: false, describe: 'skip health checks (emergency)' },
    'dry-run': { type: 'boolean', default: false, describe: 'print the plan, change nothing' },
    'wait-lock': { type: 'string', describe: WAIT_LOCK_DESCRIBE },
    provider: { type: 'string', describe: 'multi-provider environments: only this provider (by its name)' },
  },
  async run(app, env, args, io) {
    const { finish, waitLockOption } = await import('./support.js');
    const to = stringArg(args, 'to');
    const waitLock = waitLockOption(args['wait-lock']);
    const provider = stringArg(args, 'provider');
    const result = await app.rollback(
      env,
      {
        ...(to !== undefined ? { to } : {}),
        ...(waitLock !== undefined ? { waitLock } : {}),
        ...(provider !== undefined ? { provider } : {}),
        force: Boolean(args['force']),
        dryRun: Boolean(args['dry-run']),
      },
      { sinks: io.sinks },
    );
    return finish(result, io);
  },
};
