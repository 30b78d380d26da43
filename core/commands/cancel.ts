import type { EnvironmentCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier cancel <fraise> <env>`, `npx tsx deploy.ts <env> cancel`: asks the running deployment to stop
 * and roll back (from any machine sharing the state store). Exit 0: asked; 1: nothing runs (or a migration
 * holds the lock); 3: the lock
 * was left by a deployer that is gone (`fraisier unlock`). Touches no host.
 */
export const cancel: EnvironmentCommand = {
  name: 'cancel',
  describe: 'ask the running deployment to stop after its current step and roll back (from any machine; touches no host)',
  scope: 'environment',
  frontEnds: ['fraisier', 'script'],
  changesHosts: false,
  // builds the fraise from fraises.yaml (its state store setting), but connects to no target
  usesTargets: true,
  options: {
    reason: { type: 'string', describe: 'why; the history shows it after "cancelled by user@host:pid"' },
  },
  async run(app, env, args, io) {
    const [{ requestCancel }, { toJson }, { ownerString, cancelledBy }] = await Promise.all([
      import('../cancel.js'),
      import('../report.js'),
      import('../state/lock.js'),
    ]);
    const reason = stringArg(args, 'reason');
    const r = await app.withStore({}, (store) => requestCancel(store, app.name, env, reason !== undefined ? { reason } : {}));
    const where = `${app.name}/${env}`;
    if (io.json) io.out(`${toJson(r, 2)}\n`);
    if (r.outcome === 'not_running') {
      if (!io.json) io.out(`Nothing to cancel: no deployment of ${where} is running (its lock is free)\n`);
      return 1;
    }
    const holder = ownerString(r.lock!.owner);
    if (r.outcome === 'not_cancellable') {
      if (!io.json) io.err(`Not cancelled: ${r.why} (held by ${holder})\n`);
      return 1;
    }
    if (r.outcome === 'holder_dead') {
      if (!io.json)
        io.err(
          `The deployment of ${where} held by ${holder} is not running any more: ${r.why}. Nothing to cancel.\n` +
            `Its lock is left behind; remove it with: fraisier unlock ${app.name} ${env}\n` +
            `(then fraisier status ${app.name} ${env} shows what each host runs; fraisier rollback ${app.name} ${env} puts the previous release back)\n`,
        );
      return 3;
    }
    if (!io.json) {
      const c = r.lock!.cancel!;
      const step = r.lock!.step ? ` (now: ${r.lock!.step})` : '';
      io.out(
        `Asked the deployment of ${where} held by ${holder}${step} to stop: ${cancelledBy(c)}.\n` +
          'It stops at its next lock renewal (a third of its lock TTL: 20 s by default) after its current step, rolls back what it touched and releases the lock.\n' +
          `Follow it with: fraisier status-all; fraisier history --fraise ${app.name} --env ${env}\n`,
      );
    }
    return 0;
  },
};
