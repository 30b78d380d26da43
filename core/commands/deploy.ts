import type { EnvironmentCommand } from './types.js';
import { stringArg } from './types.js';

export const WAIT_LOCK_DESCRIBE = 'if another deployment holds the lock, wait for it (up to SECONDS, default 600) instead of failing';

/** `fraisier deploy <fraise> <env>`, `npx tsx deploy.ts <env> [deploy]`: deploys a release. */
export const deploy: EnvironmentCommand = {
  name: 'deploy',
  describe: 'deploy a release',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: true,
  usesTargets: true,
  options: {
    version: { type: 'string', describe: 'git ref (tag, branch, sha) or artifact version; default: the configured branch' },
    force: { type: 'boolean', default: false, describe: 'skip health checks (emergency)' },
    'dry-run': { type: 'boolean', default: false, describe: 'print the plan, change nothing' },
    'wait-lock': { type: 'string', describe: WAIT_LOCK_DESCRIBE },
    provider: { type: 'string', describe: 'multi-provider environments: only this provider (by its name)' },
  },
  async run(app, env, args, io) {
    const { finish, waitLockOption } = await import('./support.js');
    const version = stringArg(args, 'version');
    const waitLock = waitLockOption(args['wait-lock']);
    const provider = stringArg(args, 'provider');
    const result = await app.deploy(
      env,
      {
        ...(version !== undefined ? { version } : {}),
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
