import type { EnvironmentCommand } from './types.js';

/** `fraisier migrate <fraise> <env>`, `npx tsx deploy.ts <env> migrate`: migrations outside a deployment. */
export const migrate: EnvironmentCommand = {
  name: 'migrate',
  describe: 'apply pending migrations outside a deployment (default: the cleanup phase)',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: true,
  usesTargets: true,
  options: {
    phase: { type: 'string', choices: ['prepare', 'cleanup'], default: 'cleanup', describe: 'which migration files: cleanup (*.cleanup.sql) or prepare' },
    'dry-run': { type: 'boolean', default: false, describe: 'list the pending migrations, change nothing' },
  },
  async run(app, env, args, io) {
    const { printMigrate } = await import('./support.js');
    const reports = await app.migrate(env, { phase: args['phase'] as 'prepare' | 'cleanup', dryRun: Boolean(args['dry-run']) }, { sinks: io.sinks });
    return printMigrate(reports, io);
  },
};
