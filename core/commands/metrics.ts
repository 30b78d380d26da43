import type { StoreCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier metrics [--fraise F] [--textfile PATH]`: the deployment history as Prometheus metrics, on
 * stdout or written atomically to a node_exporter textfile-collector file. With `--json`, stdout gets
 * `{"samples": [{name, labels, value}]}` instead of the text (with `--textfile`, the file written).
 */
export const metrics: StoreCommand = {
  name: 'metrics',
  describe: 'deployment metrics in Prometheus text format (--textfile for node_exporter)',
  scope: 'store',
  frontEnds: ['fraisier', 'script'],
  changesHosts: false,
  usesTargets: false,
  options: {
    fraise: { type: 'string', describe: 'only this fraise', frontEnds: ['fraisier'] },
    textfile: {
      type: 'string',
      describe: "write to this .prom file atomically (node_exporter's textfile collector) instead of stdout",
    },
  },
  async run(ctx, args, io) {
    const [{ metricRows, metricSamples, renderMetrics }, { FraisierError }, fs, path] = await Promise.all([
      import('../metrics.js'),
      import('../errors.js'),
      import('node:fs'),
      import('node:path'),
    ]);
    const fraise = stringArg(args, 'fraise') || ctx.fraise;
    const textfile = stringArg(args, 'textfile');
    if (textfile !== undefined) {
      if (!textfile.endsWith('.prom')) {
        throw new FraisierError('E_USAGE', `--textfile: node_exporter's textfile collector reads only *.prom files, got ${JSON.stringify(textfile)}`, {
          hint: 'e.g. --textfile /var/lib/node_exporter/textfile_collector/fraisier.prom',
        });
      }
      const dir = path.dirname(path.resolve(textfile));
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
        throw new FraisierError('E_USAGE', `--textfile: the directory ${dir} does not exist`, {
          hint: "point it at node_exporter's --collector.textfile.directory",
        });
      }
    }
    const text = await ctx.readStore(async (store) => renderMetrics(await metricRows(store, fraise ? { fraise } : {})));
    if (textfile === undefined) {
      io.out(io.json ? `${JSON.stringify({ samples: metricSamples(text) })}\n` : text);
      return 0;
    }
    // atomic for the collector: written beside the target, then renamed over it
    const target = path.resolve(textfile);
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, text, { mode: 0o644 });
      fs.renameSync(tmp, target);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw new FraisierError('E_USAGE', `--textfile: cannot write ${target}: ${(err as Error).message}`);
    }
    if (io.json) io.out(`${JSON.stringify({ textfile: target, bytes: Buffer.byteLength(text) })}\n`);
    return 0;
  },
};
