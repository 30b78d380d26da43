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

/**
 * `fraisier deploy <fraise> <env>`, `npx tsx deploy.ts <env> [deploy]`: deploys a release.
 * `fraisier deploy api etl worker production`: several fraises in parallel ({@link deployAll}).
 */
export const deploy: EnvironmentCommand = {
  name: 'deploy',
  describe: 'deploy a release (several fraises in parallel: fraisier deploy api etl worker production)',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: true,
  usesTargets: true,
  connects: true,
  options: {
    version: { type: 'string', describe: 'git ref (tag, branch, sha) or artifact version; default: the configured branch' },
    force: { type: 'boolean', default: false, describe: 'skip health checks, and deploy outside the deploy windows or in a freeze (emergency)' },
    'dry-run': { type: 'boolean', default: false, describe: 'print the plan, change nothing' },
    'wait-lock': { type: 'string', describe: WAIT_LOCK_DESCRIBE },
    scheduled: {
      type: 'string',
      describe: 'queue it for a worker instead: "+30m", "02:00 UTC", an ISO time or a cron expression; the version is resolved now',
      // the worker builds its apps from fraises.yaml: an item queued by a deploy script could not be run
      frontEnds: ['fraisier'],
    },
    provider: { type: 'string', describe: 'multi-provider environments: only this provider (by its name)' },
    'max-parallel': { type: 'string', describe: 'with several fraises: deploy at most N at once', defaultDescription: 'all', frontEnds: ['fraisier'] },
    'fail-fast': {
      type: 'boolean',
      describe: 'with several fraises: when one fails, cancel the others (they roll back) and skip those not started',
      frontEnds: ['fraisier'],
    },
    'canary-only': {
      type: 'boolean',
      default: false,
      describe: 'canary strategy: deploy the canary hosts, run the analysis for canary_duration, and stop with the canary live',
    },
    'complete-rollout': { type: 'boolean', default: false, describe: "canary strategy: continue the environment's open canary to the full rollout" },
  },
  async run(app, env, args, io) {
    const { countOption, finish, waitLockOption } = await import('./support.js');
    // --max-parallel and --fail-fast have nothing to act on with one fraise; --max-parallel is still checked
    if (args['max-parallel'] !== undefined) countOption('max-parallel', args['max-parallel'], 1);
    const version = stringArg(args, 'version');
    const scheduled = stringArg(args, 'scheduled');
    const canary = await canaryMode(args);
    const provider = stringArg(args, 'provider');
    if (scheduled !== undefined) {
      // a queued item is a plain deploy: refuse what it would not carry rather than drop it
      const dropped = [canary === 'only' && '--canary-only', canary === 'complete' && '--complete-rollout', provider !== undefined && '--provider'].filter(
        Boolean,
      );
      if (dropped.length > 0) {
        const { FraisierError } = await import('../errors.js');
        throw new FraisierError('E_USAGE', `--scheduled does not take ${dropped.join(', ')}: a scheduled item is a plain deploy`);
      }
      const { scheduleDeploy } = await import('../scheduler.js');
      const waitLockMs = waitLockOption(args['wait-lock']);
      return scheduleDeploy(
        app,
        env,
        {
          when: scheduled,
          force: Boolean(args['force']),
          dryRun: Boolean(args['dry-run']),
          ...(version !== undefined ? { version } : {}),
          ...(waitLockMs !== undefined ? { waitLockMs } : {}),
        },
        io,
      );
    }
    if (!args['force']) (await import('../windows.js')).assertWindow(app.deployWindows(env), Date.now(), `deploy of ${app.name} to ${env}`);
    const waitLock = waitLockOption(args['wait-lock']);
    const result = await app.deploy(
      env,
      {
        ...(version !== undefined ? { version } : {}),
        ...(waitLock !== undefined ? { waitLock } : {}),
        ...(provider !== undefined ? { provider } : {}),
        ...(canary ? { canary } : {}),
        force: Boolean(args['force']),
        dryRun: Boolean(args['dry-run']),
      },
      { sinks: io.sinks },
    );
    return finish(result, io);
  },
  async runMany(apps, env, args, io) {
    const [{ countOption, waitLockOption }, { deployAll }, { formatDeployAll, toJson }] = await Promise.all([
      import('./support.js'),
      import('../deploy-all.js'),
      import('../report.js'),
    ]);
    // what runMany does not carry to each fraise is refused, not dropped
    const unsupported = ['scheduled', 'provider', 'canary-only', 'complete-rollout'].filter((o) => args[o] !== undefined && args[o] !== false);
    if (unsupported.length > 0) {
      const { FraisierError } = await import('../errors.js');
      throw new FraisierError('E_USAGE', `${unsupported.map((o) => `--${o}`).join(', ')}: not with several fraises (deploy them one at a time)`);
    }
    const version = stringArg(args, 'version');
    const waitLock = waitLockOption(args['wait-lock']);
    const maxParallel = countOption('max-parallel', args['max-parallel'], apps.length);
    const result = await deployAll(
      apps.map((app) => ({
        app,
        environment: env,
        options: { ...(version !== undefined ? { version } : {}), ...(waitLock !== undefined ? { waitLock } : {}), force: Boolean(args['force']) },
      })),
      { maxParallel, failFast: Boolean(args['fail-fast']), dryRun: Boolean(args['dry-run']), sinks: io.sinks },
    );
    io.out(`${io.json ? toJson(result, 2) : formatDeployAll(result)}\n`);
    return result.ok ? 0 : 1;
  },
};
