import type { EnvironmentCommand } from './types.js';
import { WAIT_LOCK_DESCRIBE } from './deploy.js';

/**
 * `fraisier promote <fraise> <env>`, `npx tsx deploy.ts <env> promote`: continues the environment's open
 * canary (left by `--canary-only` or by a step waiting for promotion) to the full rollout; the same as
 * `deploy --complete-rollout`.
 */
export const promote: EnvironmentCommand = {
  name: 'promote',
  describe: 'continue the open canary (its next steps, then the rest of the fleet)',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: true,
  usesTargets: true,
  connects: true,
  options: {
    force: { type: 'boolean', default: false, describe: 'skip health checks (emergency)' },
    'dry-run': { type: 'boolean', default: false, describe: 'print the plan, change nothing' },
    'wait-lock': { type: 'string', describe: WAIT_LOCK_DESCRIBE },
  },
  async run(app, env, args, io) {
    const { finish, waitLockOption } = await import('./support.js');
    const waitLock = waitLockOption(args['wait-lock']);
    const result = await app.deploy(
      env,
      { ...(waitLock !== undefined ? { waitLock } : {}), canary: 'complete', force: Boolean(args['force']), dryRun: Boolean(args['dry-run']) },
      { sinks: io.sinks },
    );
    return finish(result, io);
  },
};
