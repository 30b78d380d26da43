/**
 * Deployment hooks: commands run on the deploying machine before the hosts change (preDeploy) or after a
 * successful deployment (postDeploy), each with a timeout and an `onFailure` policy. fraises.yaml's
 * `pre_deployment_hooks` / `post_deployment_hooks` become these; in a deploy.ts, `commandHook({...})`.
 * See docs/hooks.md.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig, NormalizedEnvironment } from '../core/config/load.js';
import type { NormalizedHook } from './hooks.yaml.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, PostDeployError } from '../core/errors.js';
import { command as commandOf, render } from '../core/exec/command.js';
import { runProcess } from '../core/exec/process.js';
import type { Logger } from '../core/log.js';
import { registry, type BuildContext } from '../core/registry.js';
import { redact, registerSecret } from '../core/secret.js';
import type { Plugin, PluginHost } from '../core/types.js';

/** What a failed hook does. */
export type HookOnFailure = 'abort' | 'rollback' | 'alert' | 'ignore';

/** Options of {@link commandHook}. */
export interface CommandHookOptions {
  /** Shown in the output and recorded in the history's events. */
  name: string;
  /**
   * When it runs. `preDeploy`: after the lock is taken and the hosts checked, before any host changes
   * (and before migrations). `postDeploy`: after every host is live and healthy, the lock still held.
   */
  when: 'preDeploy' | 'postDeploy';
  /**
   * `command` (default): `command` is shell text run by `bash -c`. `script`: `command` is the path of an
   * executable file (relative to `cwd`), run without a shell. `database`: like `command`, and the
   * database URL must be set in `databaseUrlEnv`; it is also exported as `DATABASE_URL`.
   */
  type?: 'command' | 'script' | 'database';
  /** The shell text, or the script's path. */
  command: string;
  /** Longest run; then the hook's whole process group is killed (SIGTERM, SIGKILL 2 s later) and it counts as failed. Default `'5m'`. */
  timeout?: Duration;
  /**
   * What a failure (non-zero exit, missing command, timeout) does. preDeploy: `abort` and `rollback`
   * stop the deployment before any host changes; `alert` warns (recorded in the history) and goes on;
   * `ignore` goes on. postDeploy: `rollback` rolls every host back (and runs the migrations' down files);
   * `abort` marks the deployment failed and leaves the hosts on the new release; `alert` warns;
   * `ignore` ignores. Default `abort` for preDeploy, `alert` for postDeploy.
   */
  onFailure?: HookOnFailure;
  /** Directory it runs in. Default: the current directory (the fraises.yaml directory for YAML hooks). */
  cwd?: string;
  /** Extra environment variables. The hook also gets this process's environment and `FRAISIER_*`. */
  env?: Record<string, string>;
  /** For `type: 'database'`: the variable holding the database URL. Default `DATABASE_URL`. */
  databaseUrlEnv?: string;
}

/** The commands a hook runs, as argv (tests assert them). */
export function hookArgv(options: Pick<CommandHookOptions, 'type' | 'command' | 'cwd'>): string[] {
  if (options.type === 'script') return [path.resolve(options.cwd ?? process.cwd(), options.command)];
  return ['bash', '-c', options.command];
}

/** Context of one run: names for the environment, and where to log. */
interface HookSubject {
  fraise: string;
  environment: string;
  version: string;
  previousVersion: string | null;
  log: Logger;
}

/**
 * A deployment hook as a plugin: runs a command on the deploying machine at `preDeploy` or `postDeploy`
 * and applies `onFailure`. The same as tapping the hook by hand (see docs/hooks.md).
 */
export function commandHook(options: CommandHookOptions): Plugin {
  if (!options || typeof options.name !== 'string' || options.name === '')
    throw new FraisierError('E_CONFIG', 'commandHook: name is required', { key: 'name' });
  if (typeof options.command !== 'string' || options.command === '')
    throw new FraisierError('E_CONFIG', `hook ${options.name}: command is required`, { key: 'command' });
  if (options.when !== 'preDeploy' && options.when !== 'postDeploy') {
    throw new FraisierError('E_CONFIG', `hook ${options.name}: when must be "preDeploy" or "postDeploy", got ${JSON.stringify(options.when)}`, { key: 'when' });
  }
  const onFailure: HookOnFailure = options.onFailure ?? (options.when === 'preDeploy' ? 'abort' : 'alert');
  if (!['abort', 'rollback', 'alert', 'ignore'].includes(onFailure)) {
    throw new FraisierError('E_CONFIG', `hook ${options.name}: onFailure must be one of abort, rollback, alert, ignore; got ${JSON.stringify(onFailure)}`, {
      key: 'onFailure',
    });
  }
  const timeoutMs = toMs(options.timeout ?? '5m', 'timeout');
  const type = options.type ?? 'command';
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const urlEnv = options.databaseUrlEnv ?? 'DATABASE_URL';
  const name = `plugin:hook:${options.name}`;
  const label = `${options.when === 'preDeploy' ? 'pre' : 'post'}-deployment hook ${options.name}`;

  /** Runs the hook; returns a failure message, or null on success. */
  async function runOnce(s: HookSubject): Promise<string | null> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...options.env,
      FRAISIER_FRAISE: s.fraise,
      FRAISIER_ENVIRONMENT: s.environment,
      FRAISIER_VERSION: s.version,
      FRAISIER_PREVIOUS_VERSION: s.previousVersion ?? '',
      FRAISIER_HOOK: options.name,
    };
    if (type === 'database') {
      const url = env[urlEnv];
      if (!url) return `the environment variable ${urlEnv} (the database URL) is not set`;
      registerSecret(url);
      try {
        const pw = new URL(url).password;
        if (pw) registerSecret(decodeURIComponent(pw));
      } catch {
        /* not a URL */
      }
      env['DATABASE_URL'] = url;
    }
    const argv = hookArgv({ type, command: options.command, cwd });
    if (type === 'script') {
      try {
        accessSync(argv[0]!, constants.F_OK);
      } catch {
        return `script ${argv[0]} does not exist`;
      }
      try {
        accessSync(argv[0]!, constants.X_OK);
      } catch {
        return `script ${argv[0]} is not executable (chmod +x it)`;
      }
    }
    s.log.info(`${label}: ${redact(type === 'script' ? render(commandOf(argv[0]!)) : options.command)}`);
    const started = performance.now();
    const r = await runProcess(argv, { cwd, env, timeoutMs, graceMs: 2000 });
    const ms = Math.round(performance.now() - started);
    const lines = r.output.split('\n').filter((l) => l.trim() !== '');
    for (const line of lines.slice(-20)) s.log.info(`${options.name}: ${line}`);
    if (r.timedOut) return `timed out after ${timeoutMs} ms: its process group (pid ${r.pid}) was killed`;
    if (r.code === 127) return `command not found (exit 127): ${lines.at(-1) ?? options.command}`;
    if (r.code !== 0) return `exited with status ${r.code}${lines.length ? `: ${lines.at(-1)}` : ''}`;
    s.log.info(`${label} ok (${ms} ms)`);
    return null;
  }

  return {
    name,
    apply(host: PluginHost): void {
      if (options.when === 'preDeploy') {
        host.hooks.preDeploy.tapPromise(name, async (ctx) => {
          if (ctx.kind !== 'deploy') return;
          if (ctx.dryRun) {
            ctx.log.info(`[dry-run] ${label}: ${redact(options.command)}`);
            return;
          }
          const failure = await runOnce({
            fraise: ctx.fraise,
            environment: ctx.environment,
            version: ctx.version,
            previousVersion: ctx.previousVersion,
            log: ctx.log,
          });
          if (failure === null) return;
          const message = `${label} failed: ${failure}`;
          if (onFailure === 'abort' || onFailure === 'rollback') {
            throw new FraisierError('E_COMMAND', `${message}; the deployment stopped before any host changed`, { step: `hook:${options.name}` });
          }
          if (onFailure === 'alert') ctx.log.warn(`ALERT: ${message}; going on (on_failure: alert)`);
          else ctx.log.info(`${message}; ignored (on_failure: ignore)`);
        });
      } else {
        host.hooks.postDeploy.tapPromise(name, async (result) => {
          if (result.kind !== 'deploy') return;
          const failure = await runOnce({
            fraise: result.fraise,
            environment: result.environment,
            version: result.toVersion,
            previousVersion: result.fromVersion,
            log: host.log,
          });
          if (failure === null) return;
          const message = `${label} failed: ${failure}`;
          if (onFailure === 'rollback')
            throw new PostDeployError(`${message}; rolling the deployment back (on_failure: rollback)`, { rollback: true, step: `hook:${options.name}` });
          if (onFailure === 'abort')
            throw new PostDeployError(`${message}; the deployment is marked failed, the hosts stay on ${result.toVersion} (on_failure: abort)`, {
              rollback: false,
              step: `hook:${options.name}`,
            });
          if (onFailure === 'alert') host.log.warn(`ALERT: ${message} (on_failure: alert)`);
          else host.log.info(`${message}; ignored (on_failure: ignore)`);
        });
      }
    },
  };
}

/** The plugins for an environment's YAML hooks, pre hooks first, in file order. */
export function hooksFromYaml(hooks: { pre: NormalizedHook[]; post: NormalizedHook[] }, options: { cwd: string; databaseUrlEnv?: string }): Plugin[] {
  const make = (h: NormalizedHook, when: CommandHookOptions['when']) =>
    commandHook({
      name: h.name,
      when,
      type: h.type,
      command: h.command,
      timeout: h.timeoutMs,
      onFailure: h.onFailure,
      cwd: options.cwd,
      ...(options.databaseUrlEnv ? { databaseUrlEnv: options.databaseUrlEnv } : {}),
    });
  return [...hooks.pre.map((h) => make(h, 'preDeploy')), ...hooks.post.map((h) => make(h, 'postDeploy'))];
}

registry.registerPlugin('hooks', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  const plugins = hooksFromYaml(env.hooks ?? { pre: [], post: [] }, {
    cwd: (config as LoadedConfig).baseDir,
    ...(env.database ? { databaseUrlEnv: env.database.urlEnv } : {}),
  });
  return {
    name: 'plugin:hooks',
    apply: (host) => {
      for (const p of plugins) p.apply(host);
    },
  };
});
