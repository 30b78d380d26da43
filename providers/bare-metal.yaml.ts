/**
 * The YAML of the bare_metal provider: the keys it owns in an environment block of fraises.yaml, their
 * normalizer and (with providers/bare-metal.ts, which adds the factory) its registration.
 */
import path from 'node:path';
import { Type } from '../core/typebox.js';
import { appPathProblem, branchProblem, hostProblem, normalAppPath, sharedListProblem } from '../core/config/checks.js';
import { NonEmptyString } from '../core/config/schema.js';
import { registry, type Segment } from '../core/registry.js';

/** Keys of an environment block owned by bare_metal. */
export const BARE_METAL_KEYS = {
  /** SSH hosts (names from the ssh config or `user@host`). */
  instances: Type.Array(NonEmptyString(), { minItems: 1, uniqueItems: true, expected: 'a non-empty list of distinct host names' }),
  /** Absolute directory on the hosts; required here or at fraise level. */
  app_path: Type.Optional(NonEmptyString()),
  /** Git repository to deploy; overrides the fraise-level one. Exclusive with `artifact_dir`. */
  git_repo: Type.Optional(NonEmptyString()),
  /** Branch to deploy; overrides the fraise-level one. Default `main`. */
  branch: Type.Optional(NonEmptyString()),
  /** Local directory to ship instead of git (relative to the config file). */
  artifact_dir: Type.Optional(NonEmptyString()),
  /** systemd unit to restart. Exactly one of the three service keys. */
  systemd_service: Type.Optional(NonEmptyString()),
  /** supervisor program to restart. */
  supervisor_program: Type.Optional(NonEmptyString()),
  /** Shell command that restarts the app. */
  restart_command: Type.Optional(NonEmptyString()),
  /** Releases kept on each host. */
  keep_releases: Type.Optional(Type.Integer({ minimum: 2 })),
  /** Paths shared between releases (linked into each one). */
  shared: Type.Optional(Type.Array(NonEmptyString())),
  /** Command run in the release directory before activation. */
  build_command: Type.Optional(NonEmptyString()),
};

/** Keys also accepted at fraise level, as defaults of every environment (the original Fraisier's form). */
export const BARE_METAL_FRAISE_KEYS = {
  /** Default `git_repo` of the environments. */
  git_repo: Type.Optional(NonEmptyString()),
  /** Default `branch` of the environments. */
  branch: Type.Optional(NonEmptyString()),
  /** Default `app_path` of the environments. */
  app_path: Type.Optional(NonEmptyString()),
};

/** What bare_metal's normalizer adds to a normalized environment. */
export interface BareMetalYaml {
  /** SSH hosts, in deployment order. */
  instances: string[];
  /** Absolute directory on the hosts. */
  appPath: string;
  /** What is deployed: a git branch (default `main`) or a local directory resolved against the config's directory. */
  source: { type: 'git'; repo: string; branch: string } | { type: 'artifact'; dir: string };
  /** How the app is restarted after activation. */
  service: { type: 'systemd'; unit: string } | { type: 'supervisor'; program: string } | { type: 'command'; restart: string };
  keepReleases?: number;
  shared?: string[];
  /** `build_command`. */
  build?: string;
}

declare module '../core/registry.js' {
  interface NormalizedEnvironment extends Partial<BareMetalYaml> {}
}

registry.registerProvider({
  name: 'bare_metal',
  default: true,
  keys: BARE_METAL_KEYS,
  fraiseKeys: BARE_METAL_FRAISE_KEYS,
  aliases: { hosts: 'instances', servers: 'instances' },
  normalize(e, ctx): BareMetalYaml {
    const segs = ctx.segs;
    const at = ctx.at;
    const fraise = ctx.fraiseRaw as { git_repo?: string; branch?: string; app_path?: string };
    const fraiseSegs = ctx.fraiseSegs;

    // service: exactly one
    const serviceKeys = (['systemd_service', 'supervisor_program', 'restart_command'] as const).filter((k) => e[k] !== undefined);
    if (serviceKeys.length !== 1) {
      const problem =
        serviceKeys.length === 0
          ? 'missing a restart method: set exactly one of systemd_service, supervisor_program, restart_command'
          : `set exactly one of systemd_service, supervisor_program, restart_command; found ${serviceKeys.join(' and ')}`;
      throw ctx.error(segs, problem, serviceKeys.length > 1 ? { lineAt: at(serviceKeys[1]!) } : {});
    }
    const service: BareMetalYaml['service'] =
      e.systemd_service !== undefined
        ? { type: 'systemd', unit: e.systemd_service }
        : e.supervisor_program !== undefined
          ? { type: 'supervisor', program: e.supervisor_program }
          : { type: 'command', restart: e.restart_command! };

    // source: exactly one after merging. An environment's own artifact_dir replaces an inherited git_repo
    // (fraise-level keys are defaults); both set on the environment itself is an error.
    const repo = e.artifact_dir !== undefined && e.git_repo === undefined ? undefined : (e.git_repo ?? fraise.git_repo);
    let source: BareMetalYaml['source'];
    if (repo !== undefined && e.artifact_dir !== undefined) {
      throw ctx.error(segs, 'set exactly one source: git_repo or artifact_dir, not both', { lineAt: at('artifact_dir') });
    } else if (repo !== undefined) {
      const branch = e.branch ?? fraise.branch ?? 'main';
      const branchIssue = branchProblem(branch);
      if (branchIssue) {
        throw ctx.error(e.branch !== undefined ? at('branch') : [...fraiseSegs, 'branch'], branchIssue, {
          hint: 'branch names follow `git check-ref-format --branch`: e.g. main, release/1.2',
        });
      }
      source = { type: 'git', repo, branch };
    } else if (e.artifact_dir !== undefined) {
      source = { type: 'artifact', dir: path.resolve(ctx.baseDir, e.artifact_dir) };
    } else {
      throw ctx.error(segs, `missing a source: set git_repo (here or in ${ctx.dotted(fraiseSegs)}) or artifact_dir`);
    }

    // app_path: required after merging, absolute
    const appPath = e.app_path ?? fraise.app_path;
    if (appPath === undefined) {
      throw ctx.error(segs, `missing required key "app_path"`, { hint: `set app_path here or as a default in ${ctx.dotted(fraiseSegs)}` });
    }
    const appPathIssue = appPathProblem(appPath);
    if (appPathIssue) {
      const where: Segment[] = e.app_path !== undefined ? at('app_path') : [...fraiseSegs, 'app_path'];
      throw ctx.error(where, appPathIssue);
    }

    // instances: SSH host names, checked here so that a name with shell metacharacters never reaches a
    // connection (or the history)
    e.instances.forEach((h, i) => {
      const problem = hostProblem(h);
      if (problem) throw ctx.error(at('instances', i), problem, { hint: 'name the host as in your ssh config (Host ...), or user@host:port' });
    });
    if (e.shared !== undefined) {
      const bad = sharedListProblem(e.shared);
      if (bad) {
        throw ctx.error(at('shared', bad.index), bad.problem, {
          hint: 'a shared path is linked from <app_path>/shared/<path> into each release: it names a file or directory inside the release',
        });
      }
    }
    return {
      instances: [...e.instances],
      appPath: normalAppPath(appPath),
      source,
      service,
      ...(e.keep_releases !== undefined ? { keepReleases: e.keep_releases } : {}),
      ...(e.shared !== undefined ? { shared: [...e.shared] } : {}),
      ...(e.build_command !== undefined ? { build: e.build_command } : {}),
    };
  },
});
