/** The YAML of deployment hooks: `pre_deployment_hooks:` and `post_deployment_hooks:`. */
import { Type } from '../core/typebox.js';
import { DurationSchema, NonEmptyString } from '../core/config/schema.js';
import { registry } from '../core/registry.js';

/** How a deployment hook reacts to its own failure (a non-zero exit, a missing command, its timeout). */
export const HOOK_ON_FAILURE = ['abort', 'rollback', 'alert', 'ignore'] as const;

/** What a deployment hook runs. */
export const HOOK_TYPES = ['command', 'script', 'database'] as const;

/** One entry of `pre_deployment_hooks:` / `post_deployment_hooks:`. */
export const HookSchema = Type.Object(
  {
    /** Shown in the output and the history. */
    name: NonEmptyString(),
    /** `command` (default): shell text; `script`: a file to run; `database`: a command that gets the database URL. */
    type: Type.Optional(Type.Union(HOOK_TYPES.map((t) => Type.Literal(t)))),
    /** The shell command, or the script's path for `type: script` (relative to the config file). */
    command: NonEmptyString(),
    /** Killed (its whole process group) after this long. Default 5m. */
    timeout: Type.Optional(DurationSchema),
    /** What a failure does. Default `abort` for pre hooks, `alert` for post hooks. */
    on_failure: Type.Optional(Type.Union(HOOK_ON_FAILURE.map((t) => Type.Literal(t)))),
  },
  { additionalProperties: false },
);

/** One deployment hook. */
export interface NormalizedHook {
  name: string;
  type: 'command' | 'script' | 'database';
  /** Shell text; for `script`, the file's absolute path. */
  command: string;
  /** Default 300000. */
  timeoutMs: number;
  /** Default `abort` (pre) / `alert` (post). */
  onFailure: 'abort' | 'rollback' | 'alert' | 'ignore';
  /** Dotted key of the hook in the file, e.g. `fraises.api.environments.production.pre_deployment_hooks[0]`. */
  keyPath: string;
}

declare module '../core/registry.js' {
  interface NormalizedEnvironment {
    /** `pre_deployment_hooks:` and `post_deployment_hooks:`, in order; absent when neither is set. */
    hooks?: { pre: NormalizedHook[]; post: NormalizedHook[] };
  }
}

const HookList = Type.Array(HookSchema, { expected: 'a list of hooks (name, command, ...)' });

registry.registerPlugin({
  name: 'hooks',
  field: 'hooks',
  keys: { pre_deployment_hooks: Type.Optional(HookList), post_deployment_hooks: Type.Optional(HookList) },
  normalize(block, ctx): { pre: NormalizedHook[]; post: NormalizedHook[] } | undefined {
    const hooks = (key: 'pre_deployment_hooks' | 'post_deployment_hooks'): NormalizedHook[] => {
      const seen = new Set<string>();
      return (block[key] ?? []).map((h, i) => {
        if (seen.has(h.name)) throw ctx.error(ctx.at(key, i, 'name'), `hook name "${h.name}" is used twice in ${key}`);
        seen.add(h.name);
        const type = h.type ?? 'command';
        return {
          name: h.name,
          type,
          command: type === 'script' ? ctx.resolve(h.command) : h.command,
          timeoutMs: h.timeout !== undefined ? ctx.ms(h.timeout, ctx.at(key, i, 'timeout')) : 300_000,
          onFailure: h.on_failure ?? (key === 'pre_deployment_hooks' ? 'abort' : 'alert'),
          keyPath: ctx.dotted(ctx.at(key, i)),
        };
      });
    };
    const pre = hooks('pre_deployment_hooks');
    const post = hooks('post_deployment_hooks');
    return pre.length > 0 || post.length > 0 ? { pre, post } : undefined;
  },
});
