/**
 * The YAML of the coolify provider: `provider: coolify` in an environment block of fraises.yaml, the keys
 * it owns (those of {@link CoolifyYamlSchema}), their normalizer ({@link coolifyFromYaml}, which reads the
 * API token from `token_env`) and the factory. Errors name the file and the key; a missing token is an
 * E_CONFIG before anything is sent.
 */
import { registry } from '../core/registry.js';
import { coolify, coolifyFromYaml, CoolifyYamlSchema, type CoolifyOptions } from './coolify.js';

/** What coolify's normalizer adds to a normalized environment. */
export interface CoolifyNormalized {
  /** The options of `coolify({...})`, token included (a Secret, redacted everywhere). */
  coolify: CoolifyOptions;
  /** Set when `token_env`'s variable is not set: thrown when the environment is built, not at load. */
  coolifyTokenMissing?: Error;
}

declare module '../core/registry.js' {
  interface NormalizedEnvironment extends Partial<CoolifyNormalized> {}
}

registry.registerProvider({
  name: 'coolify',
  keys: CoolifyYamlSchema.properties,
  aliases: { application: 'application_id', applications: 'application_id', app_id: 'application_id', token: 'token_env' },
  normalize(block, ctx): CoolifyNormalized {
    // The token is read now but required only when this environment is built (a deploy, a status of
    // it): a coolify environment whose token is not set in this shell must not stop `history`, or a
    // deploy of another fraise of the same file.
    const tokenEnv = typeof block.token_env === 'string' ? block.token_env : 'COOLIFY_TOKEN';
    const token = process.env[tokenEnv];
    const options = coolifyFromYaml(block, { file: ctx.file, path: ctx.dotted(ctx.segs) }, token ? process.env : { ...process.env, [tokenEnv]: 'unset' });
    if (!token) {
      const missing = ctx.error(
        ctx.at(block.token_env === undefined ? 'provider' : 'token_env'),
        `the environment variable ${tokenEnv} (the Coolify API token) is not set`,
        {
          hint: `export ${tokenEnv}=<an API token from Coolify (Keys & Tokens > API tokens)>`,
        },
      );
      return { coolify: options, coolifyTokenMissing: missing };
    }
    ctx.secret(token);
    return { coolify: options };
  },
  create(env) {
    if (env.coolifyTokenMissing) throw env.coolifyTokenMissing;
    return coolify(env.coolify);
  },
});
