import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier check [--hosts] [--fraise F]`: validates fraises.yaml (a problem is exit 2 with the file, the
 * key and the line) and builds every environment; with `--hosts`, connects to every target and runs the
 * provider's read-only preflight (exit 1 on any problem). Changes nothing anywhere: not the hosts, not
 * the state store (it is not even opened).
 */
export const check: StoreCommand = {
  name: 'check',
  describe: 'validate fraises.yaml; --hosts also runs the read-only preflight on every host',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: true,
  options: {
    hosts: { type: 'boolean', describe: 'connect to every host and run the read-only preflight', default: false },
    fraise: { type: 'string', describe: 'only this fraise' },
  },
  async run(ctx, args, io) {
    const [{ appFromYaml }, { FraisierError, asFraisierError }, { openStore }, { redact }] = await Promise.all([
      import('../config/build.js'),
      import('../errors.js'),
      import('../state/store.js'),
      import('../secret.js'),
    ]);
    const config = ctx.config!;
    const only = stringArg(args, 'fraise');
    if (only !== undefined && !(only in config.fraises)) {
      throw new FraisierError('E_NOT_FOUND', `--fraise: unknown fraise ${JSON.stringify(only)} in ${config.file}`, {
        hint: `known fraises: ${Object.keys(config.fraises).join(', ')}`,
      });
    }
    const fraises = Object.keys(config.fraises).filter((f) => only === undefined || f === only);
    // Build every environment: what a YAML schema cannot see (a plugin's factory, a missing variable) shows here.
    const apps = fraises.map((f) => {
      const app = appFromYaml(config, f);
      for (const env of app.environments) void (app.definition.environments as Record<string, unknown>)[env];
      return app;
    });
    const places = apps.flatMap((app) => app.environments.map((environment) => ({ app, environment })));
    const summary = `${config.file}: valid (${fraises.length} fraise(s), ${places.length} environment(s))`;
    if (!args['hosts']) {
      io.out(io.json ? `${JSON.stringify({ file: config.file, valid: true, fraises: fraises.length, environments: places.length })}\n` : `${summary}\n`);
      return 0;
    }
    if (!io.json) io.out(`${summary}\n`);
    // the preflight through `status`, against a private in-memory store: the real one is not touched
    const store = await openStore({ path: ':memory:' });
    const rows: { fraise: string; environment: string; target: string; ok: boolean; detail: string }[] = [];
    try {
      for (const { app, environment } of places) {
        try {
          const report = await app.status(environment, { store, sinks: [] });
          for (const t of report.targets) {
            rows.push({
              fraise: app.name,
              environment,
              target: t.name,
              ok: t.error === null,
              detail: t.error ?? `reachable, preflight passed${t.current ? `, running ${t.current}` : ''}`,
            });
          }
        } catch (err) {
          rows.push({ fraise: app.name, environment, target: '-', ok: false, detail: asFraisierError(err).message });
        }
      }
    } finally {
      await store.close();
    }
    const problems = rows.filter((r) => !r.ok).length;
    if (io.json) io.out(`${JSON.stringify({ file: config.file, valid: true, ok: problems === 0, hosts: rows }, null, 2)}\n`);
    else {
      for (const r of rows) io.out(redact(`${r.ok ? 'ok  ' : 'FAIL'} ${r.fraise}/${r.environment} ${r.target}: ${r.detail}\n`));
      io.out(problems === 0 ? `All ${rows.length} host check(s) passed\n` : `${problems} of ${rows.length} host check(s) failed\n`);
    }
    return problems === 0 ? 0 : 1;
  },
};
