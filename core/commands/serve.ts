import type { StoreCommand } from './types.js';

/** `fraisier serve [--listen 127.0.0.1:9000]`: git push webhooks that queue deployments (see docs/webhooks.md). */
export const serve: StoreCommand = {
  name: 'serve',
  describe: 'receive git push webhooks (GitHub, GitLab, Gitea, Bitbucket) and queue a deployment of the pushed commit (until SIGTERM)',
  scope: 'store',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  options: {
    listen: {
      type: 'string',
      describe: 'address to listen on: host:port, or a port (on 127.0.0.1); port 0: a free one, printed',
      defaultDescription: '127.0.0.1:9000',
    },
  },
  async run(ctx, args, io) {
    const [{ FraisierError }, { parseListen, startWebhookServer }, { secret }, { openStore, resolveState, storeOptions }, { toJson }] = await Promise.all([
      import('../errors.js'),
      import('../webhooks.js'),
      import('../secret.js'),
      import('../state/store.js'),
      import('../report.js'),
    ]);
    const config = ctx.config!;
    const hooks = config.raw.webhooks;
    if (!hooks) {
      throw new FraisierError('E_CONFIG', `${config.file}: serve needs a top-level webhooks: block (secret_env and routes)`, {
        file: config.file,
        hint: 'see docs/webhooks.md: webhooks: {secret_env: FRAISIER_WEBHOOK_SECRET, routes: [{branch: main, fraise: api, environment: production}]}',
      });
    }
    const listenArg = args['listen'] === undefined ? '127.0.0.1:9000' : String(args['listen']);
    const listen = parseListen(listenArg);
    if (!listen) {
      throw new FraisierError('E_USAGE', `--listen: expected host:port or a port such as 127.0.0.1:9000 or 0, got ${JSON.stringify(listenArg)}`, {
        hint: 'e.g. --listen 127.0.0.1:9000',
      });
    }
    const value = process.env[hooks.secret_env];
    if (value === undefined || value === '') {
      throw new FraisierError('E_CONFIG', `${config.file}: webhooks.secret_env: the variable ${hooks.secret_env} is not set (or empty)`, {
        file: config.file,
        hint: `export ${hooks.secret_env}=<the secret set in the forge's webhook settings>`,
      });
    }
    const key = secret(value, hooks.secret_env);
    const store = await openStore(storeOptions(resolveState(config.baseDir, config.state)));
    let server: Awaited<ReturnType<typeof startWebhookServer>>;
    try {
      server = await startWebhookServer({
        secret: key,
        routes: hooks.routes,
        store,
        host: listen.host,
        port: listen.port,
        log: (line) => io.err(`${new Date().toISOString()} ${line}\n`),
      });
    } catch (err) {
      await store.close();
      throw new FraisierError('E_USAGE', `--listen ${listenArg}: cannot listen: ${(err as Error).message}`);
    }
    io.out(
      io.json
        ? `${toJson({ listening: server.url, routes: hooks.routes.length })}\n`
        : `Listening on ${server.url} (${hooks.routes.length} route${hooks.routes.length === 1 ? '' : 's'}); a worker runs what it queues: fraisier worker\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        io.err(`${sig}: stopping\n`);
        for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(s, handlers[s]);
        resolve();
      };
      const handlers = { SIGTERM: () => stop('SIGTERM'), SIGINT: () => stop('SIGINT'), SIGHUP: () => stop('SIGHUP') };
      for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, handlers[s]);
    });
    await server.close();
    await store.close();
    return 0;
  },
};
