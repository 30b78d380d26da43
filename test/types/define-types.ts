// Type tests: every `@ts-expect-error` line must be an error, or `tsc` fails on the unused directive.
// Checked by test/types/types.test.ts (and by `npm run typecheck`).
import { bareMetal, commandHook, defineDeploy, http, psqlMigration, registry, rolling, Type, type DeployResult } from '../../index.js';

const provider = bareMetal({ hosts: ['h1'], appPath: '/srv/app', source: { type: 'git', repo: '/r.git' }, service: { type: 'supervisor', program: 'app' } });

const app = defineDeploy({
  name: 'api',
  autorun: false,
  environments: {
    production: { provider, strategy: rolling({ batchSize: 2 }) },
    staging: { provider, strategy: rolling() },
  },
});

export async function checks(): Promise<DeployResult> {
  // @ts-expect-error: not an environment of this app
  await app.deploy('prod');
  // @ts-expect-error: a misspelt option
  rolling({ batchsize: 2 });
  // @ts-expect-error: batchSize is a number
  rolling({ batchSize: '2' });
  // @ts-expect-error: a duration needs a unit
  rolling({ waitBetweenBatches: '10 seconds' });
  // @ts-expect-error: unknown service manager
  bareMetal({ hosts: ['h1'], appPath: '/a', source: { type: 'git', repo: 'r' }, service: { type: 'upstart', job: 'x' } });
  // @ts-expect-error: source is required
  bareMetal({ hosts: ['h1'], appPath: '/a', service: { type: 'supervisor', program: 'x' } });
  // @ts-expect-error: health checks are objects from http()/tcp()/exec()
  defineDeploy({ name: 'x', environments: { p: { provider, strategy: rolling(), health: { checks: ['http://x'] } } } });
  // @ts-expect-error: strategy is required
  defineDeploy({ name: 'x', environments: { p: { provider } } });
  // @ts-expect-error: the migrations directory is required
  psqlMigration({ urlEnv: 'DATABASE_URL' });
  // @ts-expect-error: onFailure is one of abort, rollback, alert, ignore
  commandHook({ name: 'x', when: 'preDeploy', command: 'true', onFailure: 'retry' });
  // @ts-expect-error: a hook runs at preDeploy or postDeploy
  commandHook({ name: 'x', when: 'beforeTarget', command: 'true' });
  psqlMigration({ dir: './migrations', urlEnv: 'DATABASE_URL', lockTimeout: '1m' });
  commandHook({ name: 'smoke', when: 'postDeploy', command: './smoke.sh', timeout: '30s', onFailure: 'rollback' });
  http({ url: 'http://localhost:8000/health', expectBody: 'ok' });
  const r = await app.deploy('production', { version: 'v1' });
  // @ts-expect-error: status is a closed union
  if (r.status === 'ok') return r;
  return r;
}

/** A YAML registration is typed from its schema fragment: the normalizer's block and the factory's options. */
export function registration(): void {
  registry.registerProvider({
    name: 'acme_cloud',
    keys: { acme_sites: Type.Array(Type.String({ minLength: 1 })) },
    normalize: (block, ctx) => ({ sites: block.acme_sites.map((s) => ctx.resolve(s)) }),
    create: (options) => (options.sites.length > 0 ? provider : provider),
  });
  registry.registerProvider({
    name: 'acme_typo',
    keys: { acme_sites: Type.Array(Type.String({ minLength: 1 })) },
    // @ts-expect-error: not a key of the schema fragment
    normalize: (block) => ({ sites: block.acme_site }),
  });
}
