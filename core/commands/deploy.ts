import type { CommandArgs, EnvironmentCommand } from './types.js';
import { stringArg } from './types.js';

/** `--canary-only` / `--complete-rollout` as the Deployer's canary mode; both at once is a usage error. */
async function canaryMode(args: CommandArgs): Promise<'only' | 'complete' | undefined> {
  if (args['canary-only'] && args['complete-rollout']) {
    const { FraisierError } = await import('../errors.js');
    throw new FraisierError('E_USAGE', '--canary-only and --complete-rollout exclude each other', {
      hint: '--canary-only opens a canary; --complete-rollout continues the open one',
    });
  }
  return args['canary-only'] ? 'only' : args['complete-rollout'] ? 'complete' : undefined;
}

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
    'canary-only': {
      type: 'boolean',
      default: false,
      describe: 'canary strategy: deploy the canary hosts, run the analysis for canary_duration, and stop with the canary live',
    },
    'complete-rollout': { type: 'boolean', default: false, describe: "canary strategy: continue the environment's open canary to the full rollout" },
  },
  async run(app, env, args, io) {
    const { finish, waitLockOption } = await import('./support.js');
    const version = stringArg(args, 'version');
    const canary = await canaryMode(args);
    const waitLock = waitLockOption(args['wait-lock']);
    const result = await app.deploy(
      env,
      {
        ...(version !== undefined ? { version } : {}),
        ...(waitLock !== undefined ? { waitLock } : {}),
        ...(canary ? { canary } : {}),
        force: Boolean(args['force']),
        dryRun: Boolean(args['dry-run']),
      },
      { sinks: io.sinks },
    );
    return finish(result, io);
  },
};
