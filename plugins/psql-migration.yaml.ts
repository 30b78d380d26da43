/** The YAML of the psql-migration plugin: `database:` with `type: postgresql`. */
import { Type } from '../core/typebox.js';
import { DurationSchema, NonEmptyString } from '../core/config/schema.js';
import { registry } from '../core/registry.js';

/** `database:` — SQL migrations applied before the hosts change. */
export const DatabaseSchema = Type.Object(
  {
    /** Only `postgresql` today. */
    type: Type.Literal('postgresql', { expected: '"postgresql"' }),
    /** Environment variable holding the connection URL. Default `DATABASE_URL`. */
    url_env: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', expected: 'an environment variable name, e.g. DATABASE_URL' })),
    /** Directory of the migration files on the deploying machine, relative to the config file. */
    migrations_dir: NonEmptyString(),
    /** Table recording applied migrations. Default `fraisier_migrations`. */
    table: Type.Optional(Type.String({ pattern: '^(?:[a-z_][a-z0-9_]*\\.)?[a-z_][a-z0-9_]*$', expected: 'a lower-case table name, optionally schema.table' })),
    /** Longest wait for another deployer's migration lock. Default 5m. */
    lock_timeout: Type.Optional(DurationSchema),
    /** Longest wait to connect. Default 10s. */
    connect_timeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

/** `database:` after normalization. */
export interface DatabaseYaml {
  type: 'postgresql';
  /** Default `DATABASE_URL`. */
  urlEnv: string;
  /** Absolute (resolved against the config's directory). */
  migrationsDir: string;
  table?: string;
  lockTimeoutMs?: number;
  connectTimeoutMs?: number;
}

declare module '../core/registry.js' {
  interface NormalizedEnvironment {
    /** `database:` (psql-migration), when present. */
    database?: DatabaseYaml;
  }
}

registry.registerPlugin({
  name: 'postgresql',
  field: 'database',
  variant: 'database',
  keys: { database: Type.Optional(DatabaseSchema) },
  normalize({ database: db }, ctx): DatabaseYaml | undefined {
    if (db === undefined) return undefined;
    const ms = (v: number | string, key: string) => ctx.ms(v, ctx.at('database', key));
    return {
      type: 'postgresql',
      urlEnv: db.url_env ?? 'DATABASE_URL',
      migrationsDir: ctx.resolve(db.migrations_dir),
      ...(db.table !== undefined ? { table: db.table } : {}),
      ...(db.lock_timeout !== undefined ? { lockTimeoutMs: ms(db.lock_timeout, 'lock_timeout') } : {}),
      ...(db.connect_timeout !== undefined ? { connectTimeoutMs: ms(db.connect_timeout, 'connect_timeout') } : {}),
    };
  },
});
