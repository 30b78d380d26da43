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
}

declare module '../core/registry.js' {
  interface NormalizedEnvironment extends Partial<CoolifyNormalized> {}
}

registry.registerProvider({
  name: 'coolify',
  keys: CoolifyYamlSchema.properties,
  aliases: { application: 'application_id', applications: 'application_id', app_id: 'application_id', token: 'token_env' },
  normalize(block, ctx): CoolifyNormalized {
    const options = coolifyFromYaml(block, { file: ctx.file, path: ctx.dotted(ctx.segs) });
    ctx.secret(options.token!.reveal());
    return { coolify: options };
  },
  create(env) {
    return coolify(env.coolify);
  },
});
