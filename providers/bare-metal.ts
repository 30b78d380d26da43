import { registry, type BuildContext } from '../core/registry.js';
import type { LoadedConfig, NormalizedEnvironment } from '../core/config/load.js';
import type { BareMetalYaml } from './bare-metal.yaml.js';
import { execFile } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { command, type Command } from '../core/exec/command.js';
import { bareMetalCommands, script, SPACE_PROBE } from './bare-metal.scripts.js';
import type { ExecResult, Executor, RunOptions } from '../core/exec/executor.js';
import { DryRunExecutor } from '../core/exec/recording.js';
import { SshExecutor, commandError, type SshOptions } from '../core/exec/ssh.js';
import { FraisierError, TargetErrors, asFraisierError } from '../core/errors.js';
import { appPathProblem, hostProblem, normalAppPath, sharedListProblem } from '../core/config/checks.js';
import type { DeployContext, Provider, ProviderSession, Target } from '../core/types.js';
import { trace } from '../core/trace.js';

/** Releases come from a git repository, fetched on each host (Capistrano's `repo/` mirror). */
export interface GitSource {
  type: 'git';
  /** Repository URL or path as seen from the hosts. */
  repo: string;
  /** Deployed when no version is given. Default `main`. */
  branch?: string;
}

/** Releases come from a directory built on this machine, streamed to each host as tar over SSH. */
export interface ArtifactSource {
  type: 'artifact';
  /** Local directory to ship (relative to the current directory). */
  dir: string;
}

/** How the service is restarted after the switch. */
export type ServiceManager =
  /** `systemctl restart <unit>`, through `sudo -n` when the SSH user is not root. */
  | { type: 'systemd'; unit: string }
  /** `supervisorctl restart <program>`. */
  | { type: 'supervisor'; program: string }
  /** Your own shell command, run in `<appPath>/current`. */
  | { type: 'command'; restart: string };

/** Options of the bare_metal provider. */
export interface BareMetalOptions {
  /** SSH hosts: aliases from your SSH config, or `user@host:port`. */
  hosts: string[];
  /** Where releases live on each host: `<appPath>/releases/<version>`, `<appPath>/current`, `<appPath>/shared`. */
  appPath: string;
  source: GitSource | ArtifactSource;
  service: ServiceManager;
  /** Releases kept on each host (the live one and the previous one are always kept). Default 5. */
  keepReleases?: number;
  /** Paths inside each release that are symlinks into `<appPath>/shared/` (logs, uploads, .env). */
  shared?: string[];
  /** Shell command run inside a new release directory before it goes live (e.g. `npm ci --omit=dev`). */
  build?: string;
  /** SSH config, known_hosts and host key checking. */
  ssh?: SshOptions;
  /** How a host is reached. Default: one SSH connection per host ({@link SshExecutor}). Tests pass recording executors. */
  connect?: (host: string) => Promise<Executor>;
}

// The scripts and the commands built from them live in bare-metal.scripts.ts (checked by shellcheck).
export { bareMetalCommands, script };

export interface SshTarget extends Target {
  readonly kind: 'ssh';
  /** The host as given: alias or user@host:port. */
  readonly host: string;
}

const DISK_FULL = /No space left on device|ENOSPC|Disk quota exceeded|EDQUOT/i;

/**
 * A command's output that says the host's disk is full (git, tar, mkdir all print `No space left on
 * device`): the error says so, with the host and the path, instead of the last line of git's complaint.
 * Undefined when the output says nothing of the kind.
 */
export function diskFullError(
  host: string,
  app: string,
  what: string,
  output: string,
  probe?: { dir: string; availKb: number | null; full: boolean },
): FraisierError | undefined {
  const said = output.split('\n').find((l) => DISK_FULL.test(l));
  if (!said && !probe?.full) return undefined;
  // git often says only "failed to write new configuration file": then the probe's write test tells
  const line = said ?? `${probe!.dir} has ${probe!.availKb ?? 0} KB free and a test write there failed`;
  // `error: could not write config file /srv/app/repo/config: No space left on device` → that path
  const path = /(?:^|[\s'"])(\/[^\s:'"]+)[:'"]?[^/]*(?:No space left|Disk quota)/i.exec(line)?.[1];
  const quota = /quota/i.test(line);
  return new FraisierError(
    'E_COMMAND',
    `${quota ? 'disk quota exceeded' : 'no space left on device'} on ${host} under ${path ?? app} while ${what}: ${line.trim()}`,
    {
      target: host,
      step: what.startsWith('resolving') ? 'resolve' : what.startsWith('switching') ? 'activate' : 'prepare',
      hint: `free space on ${host} (df -h ${app}; old releases are in ${app}/releases), then deploy again`,
    },
  );
}

/** Runs {@link SPACE_PROBE} on a host; null when it could not run. */
async function probeSpace(e: Executor, app: string): Promise<{ dir: string; availKb: number | null; full: boolean } | undefined> {
  const r = await e.run({ ...script(SPACE_PROBE, app), label: 'check free disk space' }, { check: false }).catch(() => null);
  if (!r || r.code !== 0) return undefined;
  const value = (k: string) =>
    r.stdout
      .split('\n')
      .find((l) => l.startsWith(`${k}=`))
      ?.slice(k.length + 1);
  const avail = value('avail');
  return { dir: value('dir') ?? app, availKb: avail && /^\d+$/.test(avail) ? Number(avail) : null, full: value('full') === '1' || avail === '0' };
}

/** The disk-full error for a failed command's output on a host (asking the host when the output does not say), or undefined. */
async function diskFull(e: Executor, host: string, app: string, what: string, output: string): Promise<FraisierError | undefined> {
  return diskFullError(host, app, what, output) ?? diskFullError(host, app, what, output, await probeSpace(e, app));
}

/**
 * Resolves a ref with `git ls-remote` run on the host: reads the repository, writes nothing (dry runs).
 * Tags and branches resolve; a sha is named by its first 7 characters.
 */
async function resolveRemotely(e: Executor, repo: string, wanted: string, host: string): Promise<string> {
  const r = await e.run({ ...command('git', 'ls-remote', '--', repo), readOnly: true, label: `git ls-remote ${repo}` }, { check: false });
  if (r.code !== 0) throw new FraisierError('E_VERSION', `cannot list ${repo} from ${host}: ${r.stderr.trim().split('\n').pop() ?? ''}`, { target: host });
  const tags = new Map<string, string>();
  const heads = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [sha, name] = line.trim().split(/\s+/);
    if (!sha || !name) continue;
    if (name.startsWith('refs/tags/')) {
      const tag = name.slice('refs/tags/'.length);
      if (tag.endsWith('^{}')) tags.set(tag.slice(0, -3), sha);
      else if (!tags.has(tag)) tags.set(tag, sha);
    } else if (name.startsWith('refs/heads/')) heads.set(name.slice('refs/heads/'.length), sha);
  }
  if (tags.has(wanted)) return wanted;
  const sha = heads.get(wanted) ?? (/^[0-9a-f]{7,40}$/.test(wanted) ? wanted : undefined);
  if (!sha) throw new FraisierError('E_VERSION', `cannot resolve ${JSON.stringify(wanted)} in ${repo}: no such tag or branch`, { target: host });
  const tag = [...tags.entries()]
    .filter(([name, s]) => s === sha && !name.includes('/'))
    .map(([name]) => name)
    .sort()
    .pop();
  return tag ?? sha.slice(0, 7);
}

/**
 * Resolves a tag or branch name from `git ls-remote` lines (`<sha>\t<refname>`) as the host would with
 * its mirror (bareMetalCommands.resolveRef): a tag before a branch of the same name; the version is the
 * highest version-sorted tag (without "/") on that commit, else the commit's first 7 characters. Null when
 * the name is neither a tag nor a branch (a sha, `main~1`...): the host resolves it.
 */
export function resolveFromRefs(lines: readonly string[], wanted: string): { sha: string; version: string } | null {
  const tags = new Map<string, string>();
  const heads = new Map<string, string>();
  for (const line of lines) {
    const [sha, name] = line.trim().split(/\s+/);
    if (!sha || !name || !/^[0-9a-f]{40,64}$/.test(sha)) continue;
    if (name.startsWith('refs/tags/')) {
      const tag = name.slice('refs/tags/'.length);
      // an annotated tag's commit is the peeled line (`^{}`), listed after the tag object's
      if (tag.endsWith('^{}')) tags.set(tag.slice(0, -3), sha);
      else if (!tags.has(tag)) tags.set(tag, sha);
    } else if (name.startsWith('refs/heads/')) heads.set(name.slice('refs/heads/'.length), sha);
  }
  const sha = tags.get(wanted) ?? heads.get(wanted);
  if (!sha) return null;
  const tag = [...tags.entries()]
    .filter(([name, s]) => s === sha && !name.includes('/'))
    .map(([name]) => name)
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }))[0];
  return { sha, version: tag ?? sha.slice(0, 7) };
}

/** A content hash of a directory: the default version of an artifact release. */
function hashDir(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      const r = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) walk(p, r);
      else {
        h.update(`${r}\0${st.mode & 0o777}\0`);
        h.update(readFileSync(p));
      }
    }
  };
  walk(dir, '');
  return h.digest('hex').slice(0, 12);
}

/**
 * The bare_metal provider: releases on SSH hosts in `<appPath>/releases/<version>`, made live by an
 * atomic `current` symlink switch and a restart by systemd, supervisor or your command. One SSH
 * connection per host per deployment; every host is checked before any host changes.
 */
export function bareMetal(options: BareMetalOptions): Provider & { readonly targets: readonly SshTarget[] } {
  if (!options.hosts || options.hosts.length === 0) throw new FraisierError('E_CONFIG', 'bareMetal: hosts must list at least one SSH host', { key: 'hosts' });
  const appPathIssue =
    typeof options.appPath === 'string' ? appPathProblem(options.appPath) : `expected an absolute path, got ${JSON.stringify(options.appPath)}`;
  if (appPathIssue) throw new FraisierError('E_CONFIG', `bareMetal: appPath: ${appPathIssue}`, { key: 'appPath' });
  const seen = new Set<string>();
  options.hosts.forEach((h, i) => {
    const problem = hostProblem(h);
    if (problem) throw new FraisierError('E_CONFIG', `bareMetal: hosts[${i}]: ${problem}`, { key: `hosts[${i}]` });
    if (seen.has(h)) throw new FraisierError('E_CONFIG', `bareMetal: host ${h} is listed twice`, { key: 'hosts' });
    seen.add(h);
  });
  const sharedIssue = sharedListProblem(options.shared ?? []);
  if (sharedIssue)
    throw new FraisierError('E_CONFIG', `bareMetal: shared[${sharedIssue.index}]: ${sharedIssue.problem}`, { key: `shared[${sharedIssue.index}]` });
  const app = normalAppPath(options.appPath);
  const keep = Math.max(2, options.keepReleases ?? 5);
  const shared = options.shared ?? [];
  const build = options.build ?? '';
  const targets: SshTarget[] = options.hosts.map((h) => ({ name: h, kind: 'ssh', host: h }));
  const executors = new Map<string, Executor>();
  const sudo = new Map<string, boolean>();
  /** What preflight saw live on each target; forgotten at the target's first activation. */
  const live = new Map<string, string | null>();
  /** The releases preflight listed on each target (ProviderSession.listing); each list is used once. */
  const listed = new Map<string, string[]>();
  let revision = '';
  const archives = new Map<string, Promise<string>>();

  /** The artifact directory as one tar file per version, built once per deployment and streamed to every host. */
  function artifactArchive(version: string): Promise<string> {
    let p = archives.get(version);
    if (!p) {
      const dir = resolvePath((options.source as ArtifactSource).dir);
      const file = join(mkdtempSync(join(tmpdir(), 'fraisier-artifact-')), `${version}.tar`);
      p = new Promise<string>((res, rej) => {
        execFile('tar', ['-C', dir, '-cf', file, '.'], (err, _o, stderr) =>
          err ? rej(new FraisierError('E_CONFIG', `cannot archive ${dir}: ${stderr || err.message}`, { key: 'source.dir' })) : res(file),
        );
      });
      archives.set(version, p);
    }
    return p;
  }

  const exec = (t: Target): Executor => {
    const e = executors.get(t.name);
    if (!e) throw new FraisierError('E_UNREACHABLE', `no connection to ${t.name} (provider not opened)`, { target: t.name });
    return e;
  };

  /** The repository's refs (`<sha> <refname>`), listed by the first host's preflight; null when not listed. */
  let listedRefs: string[] | null = null;
  /**
   * A one-host deployment's preflight, resolution and prepare in one round trip (session.prepareNext):
   * the ref it resolved, and the command's result, read by resolveVersion and prepare. Null otherwise.
   */
  let folded: { wanted: string; result: ExecResult; version: string | null; prepared: boolean; checksMs: number } | null = null;

  /**
   * Runs {@link bareMetalCommands.preflightPrepareGit} on the only host. Throws the preflight error when a
   * check failed (nothing changed); any other outcome is kept for resolveVersion and prepare to report
   * as they would have.
   */
  async function preflightPrepare(t: SshTarget, e: Executor, repo: string, wanted: string): Promise<void> {
    const cmd = bareMetalCommands.preflightPrepareGit(app, options.service, repo, wanted, build, shared);
    const r = await e.run(cmd, { check: false });
    const lines = r.stdout.split('\n');
    const value = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
    // an answer without the checks' lines (not this script's): nothing is kept, the usual round trips follow
    if (value('uid') === undefined) return preflight(t, e);
    sudo.set(t.name, value('uid') !== '0');
    live.set(t.name, value('current') ?? null);
    const problems = lines.filter((l) => l.startsWith('problem=')).map((l) => l.slice('problem='.length));
    if (problems.length > 0)
      throw new FraisierError('E_PREFLIGHT', `preflight failed on ${t.name}: ${problems.join('; ')}`, { target: t.name, step: 'preflight' });
    if (!lines.includes('checked=ok')) return;
    const [sha, short, tag] = (value('resolved') ?? '').trim().split(/\s+/);
    const version = sha ? tag || short || wanted : null;
    if (sha) revision = sha;
    // the checks' share of the round trip (from the host's clock), so the prepare phase times the prepare only
    const [from, to] = (value('checks-ns') ?? '').split(' ');
    const checksMs = from && to && /^\d+$/.test(from) && /^\d+$/.test(to) ? Number((BigInt(to) - BigInt(from)) / 1_000_000n) : 0;
    folded = { wanted, result: r, version, prepared: version !== null && r.code === 0 && !lines.includes('prepared=no'), checksMs };
    trace('preflight, version and prepare in one command');
  }

  /** The error of a resolution on the host that failed (a full disk is named as such); a dry run without a mirror names the ref itself. */
  async function failedResolution(e: Executor, host: string, wanted: string, r: ExecResult, dryRun: boolean): Promise<string> {
    const repo = (options.source as GitSource).repo;
    if (r.code !== 0) {
      const full = await diskFull(e, host, app, `resolving ${wanted} (git fetch into ${app}/repo)`, r.stderr + '\n' + r.stdout);
      if (full) throw full;
    }
    if (dryRun && r.code === 0) return wanted;
    throw new FraisierError(
      'E_VERSION',
      `cannot resolve ${JSON.stringify(wanted)} in ${repo} (on ${host}): ${(r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? ''}`,
      {
        target: host,
        hint: 'check the tag, branch or sha exists and was pushed',
      },
    );
  }

  async function preflight(t: SshTarget, e: Executor, refsOf?: string, listReleases = false): Promise<void> {
    const r = await e.run(bareMetalCommands.preflight(app, options.source.type === 'git', options.service, refsOf, listReleases));
    const all = r.stdout.split('\n');
    // the releases come last, after `releases=ok`: every line before it is the checks' (or the refs')
    const mark = listReleases ? all.indexOf('releases=ok') : -1;
    const lines = mark < 0 ? all : all.slice(0, mark);
    if (refsOf && lines.includes('refs=ok')) listedRefs = lines.filter((l) => l.startsWith('ref=')).map((l) => l.slice('ref='.length));
    // as `releases` reads them: names, no dot files (a release being unpacked)
    if (mark >= 0)
      listed.set(
        t.name,
        all
          .slice(mark + 1)
          .map((n) => n.trim())
          .filter((n) => n && !n.startsWith('.')),
      );
    const value = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
    sudo.set(t.name, value('uid') !== '0');
    live.set(t.name, value('current') ?? null);
    const problems = lines.filter((l) => l.startsWith('problem=')).map((l) => l.slice('problem='.length));
    if (problems.length > 0)
      throw new FraisierError('E_PREFLIGHT', `preflight failed on ${t.name}: ${problems.join('; ')}`, { target: t.name, step: 'preflight' });
  }

  return {
    name: 'provider:bare-metal',
    targets,

    async open(session: ProviderSession) {
      // one function for the run, so a warning (host key checking off) is printed once, not per host
      // listing (`fraisier status`): the preflight is the only command per host, so no persistent shell
      // (its session would be opened on each host for nothing); the CLI starts status's early connections
      // with the same setting (core/cli.ts), so that they are the ones taken here
      const ssh: SshOptions = { warn: (m) => session.log.warn(m), ...options.ssh, ...(session.listing ? { persistentShell: false } : {}) };
      listedRefs = null;
      folded = null;
      // one host, its prepare next: preflight, resolution and prepare in one round trip (a failed check changes nothing)
      const fold =
        session.prepareNext && session.resolving && !session.dryRun && targets.length === 1 && options.source.type === 'git' ? options.source : undefined;
      listed.clear();
      // the first host's preflight also lists the repository's refs (read-only) when a version is resolved next
      const refsOf = session.resolving && !session.dryRun && options.source.type === 'git' ? options.source.repo : undefined;
      const opened = await Promise.allSettled(
        targets.map(async (t, i) => {
          const real = options.connect ? await options.connect(t.host) : await SshExecutor.connect(t.host, ssh);
          const e: Executor = session.dryRun ? new DryRunExecutor(t.name, (l) => session.log.info(l), real) : real;
          executors.set(t.name, e);
          if (fold) await preflightPrepare(t, e, fold.repo, session.resolving?.ref ?? fold.branch ?? 'main');
          else await preflight(t, e, i === 0 ? refsOf : undefined, session.listing === true);
        }),
      );
      const failures = new Map<string, FraisierError>();
      opened.forEach((o, i) => {
        if (o.status === 'rejected') failures.set(targets[i]!.name, asFraisierError(o.reason, 'E_PREFLIGHT', { target: targets[i]!.name }));
      });
      if (failures.size > 0) {
        const first = [...failures.values()][0]!;
        throw new TargetErrors(failures, { step: 'preflight', ...(first.hint ? {} : { hint: 'no host was changed' }) });
      }
    },

    async resolveVersion(ref, ctx) {
      if (options.source.type === 'artifact') {
        return ref ?? hashDir(resolvePath(options.source.dir));
      }
      const wanted = ref ?? options.source.branch ?? 'main';
      const first = targets[0]!;
      const e = exec(first);
      if (ctx.dryRun) return resolveRemotely(e, options.source.repo, wanted, first.name);
      // resolved by open's one round trip: its answer, or its error as the resolution round trip reports it
      const f = folded?.wanted === wanted ? folded : null;
      if (f?.version) return f.version;
      if (f) return failedResolution(e, first.name, wanted, f.result, false);
      // a tag or branch found in the refs the first host's preflight listed: no round trip (the first
      // host's prepare fetches the commit); anything else (a sha, an expression) is resolved on the host
      const listed = listedRefs ? resolveFromRefs(listedRefs, wanted) : null;
      if (listed) {
        revision = listed.sha;
        return listed.version;
      }
      const real = e instanceof DryRunExecutor ? null : e;
      // Resolving needs the mirror; in a dry run without a mirror we name the ref itself.
      const r = await (real ?? e).run({ ...bareMetalCommands.resolveRef(app, options.source.repo, wanted), readOnly: true }, { check: false });
      if (r.code !== 0 || !r.stdout.trim()) return failedResolution(real ?? e, first.name, wanted, r, ctx.dryRun);
      const [sha, short, tag] = r.stdout.trim().split(/\s+/);
      revision = sha ?? '';
      return tag || short || wanted;
    },

    async currentRelease(t) {
      if (live.has(t.name)) return live.get(t.name)!;
      const r = await exec(t).run(bareMetalCommands.current(app), { check: false });
      if (r.code !== 0) return null;
      const link = r.stdout.trim();
      return link ? (link.split('/').pop() ?? null) : null;
    },

    async releases(t) {
      const known = listed.get(t.name);
      if (known) {
        listed.delete(t.name);
        return known;
      }
      const r = await exec(t).run(bareMetalCommands.releases(app));
      return r.stdout
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => s && !s.startsWith('.'));
    },

    async prepare(t, version, ctx: DeployContext) {
      const e = exec(t);
      /** Runs a prepare command; a full disk is named as such. */
      const prepareRun = async (cmd: Command, input?: RunOptions['input']) => {
        const r = await e.run(cmd, { check: false, ...(input ? { input } : {}) });
        if (r.code === 0) return;
        throw (await diskFull(e, t.name, app, `preparing release ${version}`, r.stderr + '\n' + r.stdout)) ?? commandError(t.name, cmd, r);
      };
      if (options.source.type === 'git') {
        // already built by open's one round trip: its outcome, reported as this prepare would report it
        const f = folded && ctx.kind === 'deploy' && folded.version === version ? folded : null;
        if (f) {
          folded = null;
          if (f.prepared) {
            ctx.time(t, 'prepare', Math.max(0, f.result.durationMs - f.checksMs));
            return;
          }
          if (f.result.code !== 0) {
            const cmd = bareMetalCommands.prepareGit(app, version, revision, options.source.repo, build, shared);
            // the checks' and the resolution's lines are not the prepare's output
            const r = { ...f.result, stdout: f.result.stdout.replace(/^(uid|current|checked|checks-ns|mirror|resolved)=.*\n?/gm, '') };
            throw (await diskFull(e, t.name, app, `preparing release ${version}`, r.stderr + '\n' + r.stdout)) ?? commandError(t.name, cmd, r);
          }
        }
        await prepareRun(bareMetalCommands.prepareGit(app, version, ctx.kind === 'deploy' ? revision : '', options.source.repo, build, shared));
        return;
      }
      const has = await e.run(bareMetalCommands.hasRelease(app, version), { check: false });
      if (has.code === 0) return;
      if (ctx.kind === 'rollback') throw new FraisierError('E_NOT_FOUND', `release ${version} is not on ${t.name}`, { target: t.name });
      const archive = await artifactArchive(version);
      await prepareRun(bareMetalCommands.prepareArtifact(app, version, build, shared), createReadStream(archive));
    },

    prunesOnActivate: true,

    async activate(t, version, ctx, prune) {
      live.delete(t.name);
      const r = await exec(t).run(
        bareMetalCommands.activate(app, version, options.service, sudo.get(t.name) ?? false, prune ? { keep, protect: prune.protect } : undefined),
        { check: false },
      );
      if (r.code !== 0) {
        const full = await diskFull(exec(t), t.name, app, `switching to ${version}`, r.stderr + '\n' + r.stdout);
        if (full) throw full;
        const why = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' ');
        throw new FraisierError('E_COMMAND', r.code === 4 ? `restart failed on ${t.name}: ${why}` : `switch to ${version} failed on ${t.name}: ${why}`, {
          target: t.name,
          step: 'activate',
        });
      }
      ctx.log.info(`switched to ${version} and restarted`, t.name);
      const cleanup = r.stdout.split('\n').find((l) => l.startsWith('cleanup-failed='));
      if (cleanup !== undefined) ctx.log.warn(`cleanup of old releases failed: ${cleanup.slice('cleanup-failed='.length) || 'no reason given'}`, t.name);
    },

    async finalize(t, ctx) {
      const protect = [ctx.version];
      const prev = ctx.states.get(t.name)?.fromVersion;
      if (prev) protect.push(prev);
      await exec(t).run(bareMetalCommands.cleanup(app, keep, protect));
    },

    executor: exec,

    async close() {
      await Promise.all([...executors.values()].map((e) => e.close()));
      executors.clear();
      for (const p of archives.values()) {
        const file = await p.catch(() => null);
        if (file) rmSync(join(file, '..'), { recursive: true, force: true });
      }
      archives.clear();
    },
  };
}

registry.registerProvider('bare_metal', ({ env, config }: BuildContext<NormalizedEnvironment & BareMetalYaml>) => {
  const c = config as LoadedConfig;
  return bareMetal({
    hosts: env.instances,
    appPath: env.appPath,
    source: env.source,
    service: env.service,
    ...(env.keepReleases !== undefined ? { keepReleases: env.keepReleases } : {}),
    ...(env.shared ? { shared: env.shared } : {}),
    ...(env.build ? { build: env.build } : {}),
    ssh: c.ssh,
  });
});
