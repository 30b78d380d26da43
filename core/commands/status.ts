import type { EnvironmentCommand } from './types.js';

/** `fraisier status <fraise> <env>`, `npx tsx deploy.ts <env> status`: what runs on each target. */
export const status: EnvironmentCommand = {
  name: 'status',
  describe: 'what is live on each target, and the lock',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: false,
  usesTargets: true,
  connects: true,
  options: {},
  async run(app, env, _args, io) {
    const { formatStatus, toJson } = await import('../report.js');
    const report = await app.status(env, { sinks: io.sinks });
    io.out((io.json ? toJson(report, 2) : formatStatus(report)) + '\n');
    // some target unreachable or failing its checks: exit 1
    return report.targets.some((t) => t.error) ? 1 : 0;
  },
};
