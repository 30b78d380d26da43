import { registry, type BuildContext } from '../core/registry.js';
import type { LoadedConfig, NormalizedEnvironment } from '../core/config/load.js';
/**
 * nginx-lb: keeps traffic flowing while targets restart, and switches blue-green pools, through an nginx
 * `upstream` file that Fraisier owns (the user's nginx config `include`s it).
 *
 * With `drain: 'reload'` (the default), beforeTarget marks the target's server `down`, validates
 * (`nginx -t`), reloads (HUP to the master) and waits for the old workers to finish their in-flight
 * requests (bounded by `drainTimeout`); afterTarget writes it back up and reloads: two reloads per target,
 * and the new release gets no request before its health checks pass.
 * Every reload retires nginx's workers, and a retiring worker closes its idle keep-alive connections:
 * a client sending on one at that moment gets a socket error. With `drain: 'passive'` a rolling deploy
 * does not reload at all: the file is brought up to date once in preDeploy (only if it differs), every
 * server carries `max_fails=0`, and while a target restarts gracefully nginx's `proxy_next_upstream
 * error` (its default) sends the refused requests to the other servers; the price is that a restarted
 * target takes requests as soon as it listens, before its health checks pass.
 * A blue-green switch is one reload either way; haproxy-lb switches and drains with no reload at all. Semantics are those of nginx 1.22 (Debian 12): see docs/nginx.md.
 */
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, asFraisierError } from '../core/errors.js';
import { nginxLbCommands } from './nginx-lb.scripts.js';
import type { Executor } from '../core/exec/executor.js';
import { LocalExecutor } from '../core/exec/local.js';
import { DryRunExecutor } from '../core/exec/recording.js';
import { SshExecutor, type SshOptions } from '../core/exec/ssh.js';
import type { DeployContext, Plugin, PluginHost, Target, TrafficSwitch } from '../core/types.js';

export const NGINX_LB = 'plugin:nginx-lb';
// The scripts and the commands built from them live in nginx-lb.scripts.ts (checked by shellcheck).
export { nginxLbCommands };

/** Options of {@link nginxLb}. */
export interface NginxLbOptions {
  /** Upstream name in the generated file. Default: the fraise name. */
  upstream?: string;
  /** The generated upstream file (owned by Fraisier; included by the user's nginx config). Absolute path. */
  file: string;
  /** Backend address per target name: `{ h1: '10.200.0.11:8000' }`. Every deployed target needs one. */
  servers: Record<string, string>;
  /** Where nginx runs: `'local'` (default) or an SSH host alias, reached with `SshExecutor.connect(host, ssh)`. */
  host?: string;
  ssh?: SshOptions;
  /** nginx binary. Default `nginx`. */
  nginx?: string;
  /** Extra arguments for every nginx call (`-t`, `-T`), e.g. `['-p', prefix, '-c', conf]`. Default none. */
  nginxArgs?: string[];
  /** nginx's pid file. Default: the `pid` directive of the running config (`nginx -T`), else the compiled-in `--pid-path`. */
  pidFile?: string;
  /**
   * How a target is taken out of the traffic while it restarts.
   * - `'reload'` (default): the server is marked `down` and nginx reloaded before the restart (waiting
   *   for the old workers' in-flight requests, up to `drainTimeout`), and put back with a second reload
   *   after its health checks pass: the new release gets no request before it is healthy. Two reloads per
   *   target, each of which may cost a keep-alive client a socket error (docs/nginx.md).
   * - `'passive'`: no reload. The app must stop gracefully (finish in-flight requests, then close its
   *   port); nginx's `proxy_next_upstream error` (the default) retries refused requests on the other
   *   servers, and `max_fails` (0 by default here, see {@link NginxLbOptions.maxFails}) keeps nginx from
   *   marking servers unavailable in the meantime. Keep-alive clients see nothing, but the target takes
   *   requests as soon as it listens again, before its health checks: a release that fails them serves
   *   some requests until it is rolled back.
   */
  drain?: 'passive' | 'reload';
  /**
   * `max_fails` written on every server line. Default: `0` with `drain: 'passive'` (never mark a server
   * unavailable: a refused connection costs one retry, and a rolling deploy can never leave every server
   * marked failed at once). With `drain: 'reload'`: nginx's own default (1, not written) while every server
   * is up at an even split, and `0` while a deployment has servers out (`down`, weight 0) or weighted, so
   * that one failed request on the servers left (the only one, for a canary whose stable hosts restart)
   * cannot make nginx answer `502 no live upstreams` for `fail_timeout` (docs/nginx.md). Set, it is
   * written as given in every state.
   */
  maxFails?: number;
  /** `fail_timeout` written on every server line (whole seconds). Default: nginx's (10s). */
  failTimeout?: Duration;
  /**
   * With `drain: 'reload'`: longest wait, after a reload that marked a server down, for the old workers to
   * finish their in-flight requests and exit before the target is restarted. Default `'5s'`. On timeout a
   * warning is logged and the deployment goes on.
   */
  drainTimeout?: Duration;
  /** How the nginx host is reached (tests pass a recording executor). Default: local, or SSH to `host`. */
  connect?: () => Promise<Executor>;
  /**
   * Absolute path of a JSON access log for metric analysis (the `nginx` metric source). Default: none
   * (nothing is written). When set, the generated file also holds a `log_format fraisier_<upstream>` (one
   * JSON object per request: `msec`, `status`, `upstream_addr`, `upstream_response_time`, `request_time`)
   * and an http-level `access_log <path> fraisier_<upstream>;`, which applies to every server block that
   * has no `access_log` of its own (add the same line to one that has).
   */
  accessLog?: string;
}

/** Options of {@link renderUpstream}. */
export interface RenderOptions {
  /** Target names whose server is written with `down`. */
  down?: ReadonlySet<string>;
  /** Integer weight per target name; missing means nginx's default (1); 0 writes the server `down` (no new requests). */
  weights?: Readonly<Record<string, number>>;
  /**
   * Blue-green: only these targets' servers are written (the others are left out), and the file records
   * the pool's name so the next deployment (and `fraisier status`) knows which pool is live.
   */
  live?: { pool: string; targets: readonly string[] };
  /** `max_fails=N` on every server line (non-negative integer). Default: none written (nginx's 1). */
  maxFails?: number;
  /** `fail_timeout=Ns` on every server line (whole seconds, at least 1). Default: none written (nginx's 10s). */
  failTimeoutS?: number;
  /** Also write a JSON `log_format` and an `access_log` to this absolute path (see {@link NginxLbOptions.accessLog}). */
  accessLog?: string;
}

/** The plugin object, with the traffic controls other strategies (blue-green, canary) use. */
export interface NginxLbPlugin extends Plugin, TrafficSwitch {
  /**
   * Sets the servers' weights and applies them at once: write, `nginx -t`, reload (resolves once the new
   * workers serve). `weight=N` on each server line; a weight of 0, or a server of the pool not listed, is
   * written `down` (no new requests). An empty map resets to an equal split. During a deployment it uses
   * the deployment's connection; otherwise it opens one and closes it. `ctx` (optional here) is the
   * deployment whose log gets the message.
   */
  setWeights(weights: Readonly<Record<string, number>>, ctx?: DeployContext): Promise<void>;
  /** The upstream text the plugin would write now. */
  render(): string;
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
// host:port, IPv4, [IPv6]:port or unix:/path. Nothing that could end the directive or open a block.
const ADDRESS_RE = /^(?:unix:\/[A-Za-z0-9_./-]+|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?|[A-Za-z0-9_.-]+(?::\d{1,5})?)$/;

function checkName(kind: string, v: string): void {
  if (!NAME_RE.test(v)) throw new FraisierError('E_CONFIG', `${NGINX_LB}: invalid ${kind} ${JSON.stringify(v)}: use letters, digits, _ . -`, { key: kind });
}

function checkAddress(target: string, v: string): void {
  if (typeof v !== 'string' || !ADDRESS_RE.test(v)) {
    throw new FraisierError(
      'E_CONFIG',
      `${NGINX_LB}: invalid server address for ${target}: ${JSON.stringify(v)} (expected host:port, [ipv6]:port or unix:/path)`,
      {
        key: `servers.${target}`,
      },
    );
  }
}

/**
 * Renders an nginx `upstream` block, one `server` line per target in the order of `servers`.
 * A weight of 0 writes the server `down` (nginx rejects `weight=0`); weights must be non-negative integers.
 * Throws if every server would be left out or have weight 0 (an upstream with no server to send new
 * requests to is a config error; servers marked `down` for a drain are allowed, with a warning by the plugin).
 */
export function renderUpstream(name: string, servers: Readonly<Record<string, string>>, options: RenderOptions = {}): string {
  checkName('upstream', name);
  const down = options.down ?? new Set<string>();
  const weights = options.weights ?? {};
  const live = options.live ?? null;
  if (live) {
    checkName('pool', live.pool);
    const unknown = live.targets.filter((t) => !(t in servers));
    if (unknown.length > 0) {
      throw new FraisierError(
        'E_CONFIG',
        `${NGINX_LB}: pool ${live.pool} names target(s) without a server address: ${unknown.join(', ')} (servers: ${Object.keys(servers).join(', ')})`,
        { key: 'servers' },
      );
    }
  }
  for (const [t, w] of Object.entries(weights)) {
    if (!(t in servers))
      throw new FraisierError('E_CONFIG', `${NGINX_LB}: weight for unknown target ${JSON.stringify(t)} (servers: ${Object.keys(servers).join(', ')})`, {
        key: 'weights',
      });
    if (!Number.isInteger(w) || w < 0)
      throw new FraisierError('E_CONFIG', `${NGINX_LB}: weight of ${t} must be a non-negative integer, got ${JSON.stringify(w)}`, { key: `weights.${t}` });
  }
  const { maxFails, failTimeoutS } = options;
  if (maxFails !== undefined && (!Number.isInteger(maxFails) || maxFails < 0)) {
    throw new FraisierError('E_CONFIG', `${NGINX_LB}: maxFails must be a non-negative integer, got ${JSON.stringify(maxFails)}`, { key: 'max_fails' });
  }
  if (failTimeoutS !== undefined && (!Number.isInteger(failTimeoutS) || failTimeoutS < 1)) {
    throw new FraisierError('E_CONFIG', `${NGINX_LB}: failTimeout must be a whole number of seconds, at least 1, got ${JSON.stringify(failTimeoutS)}`, {
      key: 'fail_timeout',
    });
  }
  const lines: string[] = [];
  const included: string[] = [];
  for (const [t, addr] of Object.entries(servers)) {
    checkAddress(t, addr);
    const w = weights[t];
    if (live && !live.targets.includes(t)) continue;
    included.push(t);
    const params = [
      w !== undefined && w !== 0 && w !== 1 ? `weight=${w}` : '',
      maxFails !== undefined ? `max_fails=${maxFails}` : '',
      failTimeoutS !== undefined ? `fail_timeout=${failTimeoutS}s` : '',
      down.has(t) || w === 0 ? 'down' : '',
    ].filter(Boolean);
    lines.push(`    server ${addr}${params.length ? ` ${params.join(' ')}` : ''}; # ${t}`);
  }
  if (lines.length === 0 || included.every((t) => weights[t] === 0)) {
    const why = lines.length === 0 ? `pool ${live!.pool} leaves every server of upstream ${name} out` : `every server of upstream ${name} has weight 0`;
    throw new FraisierError('E_CONFIG', `${NGINX_LB}: ${why}: an upstream needs at least one server`, { key: 'weights' });
  }
  const marker = live ? `${LIVE_MARKER} ${JSON.stringify({ pool: live.pool, targets: [...live.targets] })}\n` : '';
  const log = options.accessLog !== undefined ? accessLogLines(name, options.accessLog) : '';
  return `# Generated by Fraisier (${NGINX_LB}). Do not edit: rewritten on every deployment.\n${marker}${log}upstream ${name} {\n${lines.join('\n')}\n}\n`;
}

const LIVE_MARKER = '# fraisier:live-pool';

const LOG_PATH_RE = /^\/[A-Za-z0-9_./-]+$/;

/** The JSON access log's `log_format` and `access_log` lines (read by the `nginx` metric source). */
export function accessLogLines(upstream: string, path: string): string {
  if (typeof path !== 'string' || !LOG_PATH_RE.test(path) || path.includes('..')) {
    throw new FraisierError('E_CONFIG', `${NGINX_LB}: accessLog must be an absolute path of letters, digits, _ . / -, got ${JSON.stringify(path)}`, {
      key: 'access_log',
    });
  }
  const format =
    '{"msec":"$msec","status":"$status","upstream_addr":"$upstream_addr","upstream_response_time":"$upstream_response_time","request_time":"$request_time"}';
  return `log_format fraisier_${upstream} escape=json '${format}';\naccess_log ${path} fraisier_${upstream};\n`;
}

/** The live pool recorded in a generated upstream file, or null (no pool switched to, or no file). */
export function parseLivePool(text: string): { pool: string; targets: string[] } | null {
  const line = text.split('\n').find((l) => l.startsWith(`${LIVE_MARKER} `));
  if (!line) return null;
  try {
    const v = JSON.parse(line.slice(LIVE_MARKER.length + 1)) as { pool?: unknown; targets?: unknown };
    if (typeof v.pool === 'string' && Array.isArray(v.targets) && v.targets.every((t) => typeof t === 'string'))
      return { pool: v.pool, targets: v.targets as string[] };
  } catch {
    /* not ours */
  }
  return null;
}

/** Finds the pid file from `nginx -T` + `nginx -V` output (see {@link nginxLbCommands.dump}). */
export function pidFileFrom(output: string, nginxArgs: string[] = []): string | null {
  const [config = '', build = ''] = output.split('#---fraisier---');
  // The first file `nginx -T` prints is the main config; `pid` is only valid there.
  const files = config.split(/^# configuration file .*:$/m).filter((s) => s.trim() !== '');
  const main = (files[0] ?? '').replace(/#.*$/gm, '');
  const m = /(?:^|[;{}\s])pid\s+("[^"]+"|'[^']+'|[^;\s]+)\s*;/.exec(main);
  let pid = m ? m[1]!.replace(/^["']|["']$/g, '') : (/--pid-path=(\S+)/.exec(build)?.[1] ?? null);
  if (!pid) return null;
  if (!pid.startsWith('/')) {
    const p = nginxArgs.indexOf('-p');
    const prefix = p >= 0 ? nginxArgs[p + 1] : /--prefix=(\S+)/.exec(build)?.[1];
    if (!prefix) return null;
    pid = `${prefix.replace(/\/+$/, '')}/${pid}`;
  }
  return pid;
}

interface Session {
  exec: Executor;
  /** Closed by the plugin (false when borrowed). */
  own: boolean;
  pid: number;
  /** Last text successfully applied in this session. */
  applied: string | null;
  /** True once anything was written and reloaded. */
  changed: boolean;
  /** The live pool recorded in the file when the session opened. */
  live: { pool: string; targets: string[] } | null;
  /** The file's text when the session opened ('' when there was none). */
  text: string;
}

/**
 * The nginx-lb traffic plugin. Taps preDeploy (connect, check nginx runs), beforeTarget (mark down,
 * reload, drain), afterTarget (mark up, reload), rollback (everything up) and postDeploy/held/failed (close).
 */
export function nginxLb(options: NginxLbOptions): NginxLbPlugin {
  if (!options || typeof options.file !== 'string' || !options.file.startsWith('/')) {
    throw new FraisierError('E_CONFIG', `${NGINX_LB}: file must be an absolute path, got ${JSON.stringify(options?.file)}`, { key: 'file' });
  }
  if (!options.servers || Object.keys(options.servers).length === 0) {
    throw new FraisierError('E_CONFIG', `${NGINX_LB}: servers must name at least one target's backend address`, { key: 'servers' });
  }
  for (const [t, a] of Object.entries(options.servers)) checkAddress(t, a);
  if (options.upstream !== undefined) checkName('upstream', options.upstream);
  const nginx = options.nginx ?? 'nginx';
  const nginxArgs = options.nginxArgs ?? [];
  const mode = options.drain ?? 'reload';
  if (mode !== 'passive' && mode !== 'reload') {
    throw new FraisierError('E_CONFIG', `${NGINX_LB}: drain must be "passive" or "reload", got ${JSON.stringify(mode)}`, { key: 'drain' });
  }
  const maxFails = options.maxFails ?? (mode === 'passive' ? 0 : undefined);
  const failTimeoutS = options.failTimeout !== undefined ? toMs(options.failTimeout, 'failTimeout') / 1000 : undefined;
  const serverParams = { ...(maxFails !== undefined ? { maxFails } : {}), ...(failTimeoutS !== undefined ? { failTimeoutS } : {}) };
  if (options.accessLog !== undefined) accessLogLines('fraisier', options.accessLog); // validates the path now
  renderUpstream('fraisier', options.servers, serverParams); // validates maxFails and failTimeout now
  const drainMs = toMs(options.drainTimeout ?? '5s', 'drainTimeout');
  // The reload must show new workers within this; it is only an upper bound.
  const applyMs = Math.max(drainMs, 5000);

  let upstream = options.upstream ?? null;
  let weights: Record<string, number> = {};
  const down = new Set<string>();
  /** Blue-green: the pool written to the file (null: every server is in the upstream). */
  let live: { pool: string; targets: string[] } | null = null;
  /** The pool live when this deployment started, put back by the rollback hook. */
  let liveAtStart: { pool: string; targets: string[] } | null = null;
  let session: Session | null = null;
  /** Marked down by this deployment (a target that failed before being marked needs no restore). */
  const marked = new Set<string>();
  let queue: Promise<unknown> = Promise.resolve();
  /** Runs nginx changes one at a time (a batch's targets call beforeTarget in parallel). */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  };

  let log: PluginHost['log'] | null = null;
  const label = () => `nginx upstream ${upstream ?? '?'}`;
  const render = () => {
    if (!upstream)
      throw new FraisierError('E_CONFIG', `${NGINX_LB}: no upstream name: pass the upstream option, or add the plugin to a deployment first`, {
        key: 'upstream',
      });
    // While a deployment has taken servers out of the traffic (down, weight 0) or shifted it (weights),
    // nginx must not mark the servers left unavailable: with its default max_fails=1, one failed request
    // on the only server left (a canary promoted with both stable hosts restarting) would answer
    // `502 no live upstreams` to every request of that worker for fail_timeout (10 s). max_fails=0 then
    // (unless maxFails is set), the user's or nginx's default again once every server is back at rest.
    const shifted = down.size > 0 || Object.values(weights).some((w) => w !== 1);
    const params = session !== null && shifted && options.maxFails === undefined ? { ...serverParams, maxFails: 0 } : serverParams;
    return renderUpstream(upstream, options.servers, {
      down,
      weights,
      ...params,
      ...(live ? { live } : {}),
      ...(options.accessLog !== undefined ? { accessLog: options.accessLog } : {}),
    });
  };
  /** Targets that get no traffic now (outside the live pool): nothing to drain. */
  const idle = (t: Target) => live !== null && !live.targets.includes(t.name);
  async function readFile(exec: Executor): Promise<string> {
    const r = await exec.run(nginxLbCommands.read(options.file), { check: false });
    if (r.code !== 0)
      throw new FraisierError('E_PREFLIGHT', `${NGINX_LB}: cannot read ${options.file}: ${r.stderr.trim() || `exit ${r.code}`}`, { step: 'preDeploy' });
    return r.stdout;
  }
  const readLive = async (exec: Executor) => parseLivePool(await readFile(exec));

  async function connect(): Promise<Executor> {
    if (options.connect) return options.connect();
    if (!options.host || options.host === 'local') return new LocalExecutor('nginx');
    return SshExecutor.connect(options.host, options.ssh ?? {});
  }

  async function open(ctx: DeployContext | null): Promise<Session> {
    let real: Executor;
    try {
      real = await connect();
    } catch (err) {
      const e = asFraisierError(err, 'E_UNREACHABLE');
      throw new FraisierError(
        e.code === 'E_HOST_KEY' ? 'E_HOST_KEY' : 'E_PREFLIGHT',
        `${NGINX_LB}: cannot reach the nginx host ${options.host ?? 'local'}: ${e.message}`,
        {
          step: 'preDeploy',
          cause: err,
        },
      );
    }
    const exec = real;
    try {
      let pidFile = options.pidFile ?? null;
      if (!pidFile) {
        const dump = await exec.run(nginxLbCommands.dump(nginx, nginxArgs), { check: false });
        pidFile = pidFileFrom(dump.stdout, nginxArgs);
        if (!pidFile)
          throw new FraisierError('E_PREFLIGHT', `${NGINX_LB}: cannot find nginx's pid file (no pid directive, no --pid-path)`, {
            hint: 'set the pidFile option',
            step: 'preDeploy',
          });
      }
      const r = await exec.run(nginxLbCommands.pid(pidFile), { check: false });
      const pid = Number(r.stdout.trim());
      if (r.code !== 0 || !Number.isInteger(pid) || pid <= 0) {
        const why = (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').slice(-3).join('; ');
        throw new FraisierError('E_PREFLIGHT', `${NGINX_LB}: nginx is not running on ${options.host ?? 'this machine'}: ${why}; nothing was changed`, {
          step: 'preDeploy',
          hint: `start nginx (its config must include ${options.file}), or set pidFile if it uses another pid file`,
        });
      }
      const text = await readFile(exec);
      const current = parseLivePool(text);
      if (ctx?.dryRun) {
        // A dry run has no closing hook (no postDeploy, no failed): keep no connection, print the plan.
        await real.close().catch(() => {});
        return { exec: new DryRunExecutor(real.name, (line) => ctx.log.info(line)), own: true, pid, applied: null, changed: false, live: current, text };
      }
      return { exec, own: true, pid, applied: null, changed: false, live: current, text };
    } catch (err) {
      await exec.close().catch(() => {});
      throw err;
    }
  }

  async function close(): Promise<void> {
    const s = session;
    session = null;
    if (s?.own) await s.exec.close().catch(() => {});
  }

  /** Writes the upstream as it should be now, validates it, reloads; `drain` waits for old workers. */
  async function apply(s: Session, context: DeployContext | null, why: string, drain: boolean, target?: Target): Promise<void> {
    const ctx = context ?? (log ? { log, time: () => {} } : null);
    const text = render();
    if (text === s.applied) {
      // Nothing to write (the target is already out of the traffic, e.g. a weight of 0), but a reload
      // without drain took it out: its old workers may still be serving requests on it. Wait for them.
      if (drain) await settle(s, ctx, why, target);
      return;
    }
    if (down.size > 0 && Object.keys(options.servers).every((t) => down.has(t) || weights[t] === 0)) {
      ctx?.log.warn(`every server of ${label()} is down: nginx answers 502 until one is back`, target?.name ?? null);
    }
    await s.exec.run(nginxLbCommands.install(options.file, text));
    const t = await s.exec.run(nginxLbCommands.test(nginx, nginxArgs), { check: false });
    if (t.code !== 0) {
      let restored = 'the previous file was restored';
      try {
        await s.exec.run(nginxLbCommands.restore(options.file));
      } catch (err) {
        restored = `restoring the previous file FAILED (${asFraisierError(err).message}); fix ${options.file} by hand`;
      }
      const msg = (t.stderr.trim() || t.stdout.trim() || `exit ${t.code}`)
        .split('\n')
        .filter((l) => !/test failed$/.test(l))
        .slice(-5)
        .join('\n');
      throw new FraisierError(
        'E_COMMAND',
        `${NGINX_LB}: nginx -t rejected the new ${label()} (${why}); ${restored}, nginx still serves its current configuration:\n${msg}`,
        {
          step: 'nginx',
          ...(target ? { target: target.name } : {}),
          hint: `check the servers option (addresses must resolve) and ${options.file}`,
        },
      );
    }
    const started = performance.now();
    const r = await s.exec.run(nginxLbCommands.reload(s.pid, drain ? drainMs : applyMs, drain));
    s.applied = text;
    s.changed = true;
    const ms = Math.round(performance.now() - started);
    const out = r.stdout.trim();
    if (target && ctx) ctx.time(target, drain ? 'drain' : 'nginx', performance.now() - started);
    if (out.startsWith('timeout')) {
      ctx?.log.warn(
        `${label()}: ${why}; ${out.split(' ')[1] ?? 'some'} old nginx worker(s) still busy after ${drainMs} ms (drainTimeout): going on`,
        target?.name ?? null,
      );
    } else {
      ctx?.log.info(`${label()}: ${why}; reloaded${drain ? `, drained in ${ms} ms` : ''}`, target?.name ?? null);
    }
  }

  /** Waits, with no reload, for the old workers of earlier reloads to finish their requests and exit. */
  async function settle(s: Session, ctx: Pick<DeployContext, 'log' | 'time'> | null, why: string, target?: Target): Promise<void> {
    const started = performance.now();
    const r = await s.exec.run(nginxLbCommands.settle(s.pid, drainMs));
    const out = r.stdout.trim();
    if (target && ctx) ctx.time(target, 'drain', performance.now() - started);
    if (out.startsWith('timeout')) {
      ctx?.log.warn(
        `${label()}: ${why}; ${out.split(' ')[1] ?? 'some'} old nginx worker(s) still busy after ${drainMs} ms (drainTimeout): going on`,
        target?.name ?? null,
      );
    } else {
      ctx?.log.info(`${label()}: ${why} (already out of the traffic); drained in ${Math.round(performance.now() - started)} ms`, target?.name ?? null);
    }
  }

  function need(): Session {
    if (!session) throw new FraisierError('E_COMMAND', `${NGINX_LB}: no connection to nginx (preDeploy did not run)`, { step: 'nginx' });
    return session;
  }

  const plugin: NginxLbPlugin = {
    name: NGINX_LB,
    render,
    apply(host: PluginHost): void {
      upstream = options.upstream ?? host.fraise;
      checkName('upstream', upstream);
      log = host.log;
      host.useTraffic(plugin);
      const { hooks } = host;

      hooks.preDeploy.tapPromise(NGINX_LB, async (ctx) => {
        const missing = ctx.targets.filter((t) => !(t.name in options.servers)).map((t) => t.name);
        if (missing.length > 0) {
          throw new FraisierError(
            'E_PREFLIGHT',
            `${NGINX_LB}: no server address for ${missing.join(', ')} in servers (has ${Object.keys(options.servers).join(', ')}); nothing was changed`,
            {
              step: 'preDeploy',
              key: 'servers',
            },
          );
        }
        await close();
        down.clear();
        marked.clear();
        session = await open(ctx);
        // The pool live now (blue-green) is kept as it is by every later write, and put back on rollback.
        live = session.live;
        liveAtStart = live;
        // Passive drain: the targets are never written down, so the file must already hold every server
        // with its max_fails; one reload here only if it does not (a first deployment, a changed option).
        if (mode === 'passive' && render() !== session.text) {
          await serial(() => apply(session!, ctx, 'upstream file brought up to date', false));
        }
      });

      hooks.beforeTarget.tapPromise(NGINX_LB, (target, ctx) =>
        serial(async () => {
          const s = need();
          if (idle(target)) return; // outside the live pool: it gets no traffic, nothing to drain
          if (mode === 'passive') return; // no reload: nginx retries refused requests on the other servers
          down.add(target.name);
          try {
            await apply(s, ctx, `${target.name} marked down`, true, target);
          } catch (err) {
            down.delete(target.name);
            throw err;
          }
          marked.add(target.name);
        }),
      );

      hooks.afterTarget.tapPromise(NGINX_LB, (target, ctx) =>
        serial(async () => {
          if (!marked.has(target.name) && !down.has(target.name)) return; // never drained: nothing to restore
          const s = need();
          down.delete(target.name);
          await apply(s, ctx, `${target.name} back up`, false, target);
          marked.delete(target.name);
        }),
      );

      hooks.rollback.tapPromise(NGINX_LB, (ctx) =>
        serial(async () => {
          const s = session;
          if (!s || (!s.changed && down.size === 0)) return; // nothing of ours changed
          down.clear();
          weights = {};
          marked.clear();
          const switched = live?.pool !== liveAtStart?.pool;
          live = liveAtStart;
          await apply(s, ctx, switched ? `traffic back to pool ${live?.pool ?? '(all servers)'} (rollback)` : 'every server back up (rollback)', false);
        }),
      );

      hooks.postDeploy.tapPromise(NGINX_LB, async () => {
        await serial(close);
      });
      // A canary held for promote/rollback: the deployment is not complete, but this run is over.
      hooks.held.tapPromise(NGINX_LB, async () => {
        await serial(close);
      });
      hooks.failed.tap(NGINX_LB, () => {
        void serial(close);
      });
    },

    addressOf(target: Target): string | null {
      return options.servers[target.name] ?? null;
    },

    async livePool(): Promise<{ pool: string; targets: string[] } | null> {
      if (session) return live;
      let exec: Executor;
      try {
        exec = await connect();
      } catch (err) {
        throw new FraisierError('E_UNREACHABLE', `${NGINX_LB}: cannot reach the nginx host ${options.host ?? 'local'}: ${asFraisierError(err).message}`, {
          cause: err,
        });
      }
      try {
        return await readLive(exec);
      } finally {
        await exec.close().catch(() => {});
      }
    },

    switchTo(pool: string, targets: readonly Target[], ctx: DeployContext): Promise<void> {
      return serial(async () => {
        const s = need();
        const previous = live;
        const previousWeights = weights;
        live = { pool, targets: targets.map((t) => t.name) };
        weights = {}; // a switch sends an equal split to the new pool
        try {
          await apply(s, ctx, `traffic switched ${previous ? `from pool ${previous.pool} ` : ''}to pool ${pool} (${live.targets.join(', ')})`, false);
        } catch (err) {
          live = previous;
          weights = previousWeights;
          throw err;
        }
      });
    },

    async setWeights(next: Readonly<Record<string, number>>, ctx?: DeployContext): Promise<void> {
      const previous = weights;
      // A server of the pool that is not listed gets no new requests (weight 0: `down`); {} resets.
      const pool = live?.targets ?? Object.keys(options.servers);
      const outside = Object.keys(next).filter((t) => t in options.servers && !pool.includes(t) && next[t] !== 0);
      if (outside.length > 0) {
        throw new FraisierError(
          'E_CONFIG',
          `${NGINX_LB}: weight for ${outside.join(', ')}, outside the live pool ${live?.pool} (${pool.join(', ')}): switch pools first`,
          { key: 'weights' },
        );
      }
      weights = Object.keys(next).length === 0 ? {} : { ...Object.fromEntries(pool.map((t) => [t, 0])), ...next };
      try {
        render(); // validates before anything runs
      } catch (err) {
        weights = previous;
        throw err;
      }
      await serial(async () => {
        const borrowed = session;
        const s = borrowed ?? (await open(null));
        try {
          await apply(
            s,
            ctx ?? null,
            `weights ${
              Object.entries(weights)
                .map(([t, w]) => `${t}=${w}`)
                .join(' ') || 'reset'
            }`,
            false,
          );
        } catch (err) {
          weights = previous;
          throw err;
        } finally {
          if (!borrowed) await s.exec.close().catch(() => {});
        }
      });
    },
  };
  return plugin;
}

registry.registerPlugin('nginx', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  const lb = env.loadBalancer!;
  const c = config as LoadedConfig;
  return nginxLb({
    file: lb.file!,
    servers: lb.servers!,
    ...(lb.drain !== undefined ? { drain: lb.drain } : {}),
    ...(lb.maxFails !== undefined ? { maxFails: lb.maxFails } : {}),
    ...(lb.failTimeoutMs !== undefined ? { failTimeout: lb.failTimeoutMs } : {}),
    ...(lb.upstream !== undefined ? { upstream: lb.upstream } : {}),
    ...(lb.host !== undefined ? { host: lb.host } : {}),
    ...(lb.nginx !== undefined ? { nginx: lb.nginx } : {}),
    ...(lb.nginxArgs !== undefined ? { nginxArgs: lb.nginxArgs } : {}),
    ...(lb.pidFile !== undefined ? { pidFile: lb.pidFile } : {}),
    ...(lb.drainTimeoutMs !== undefined ? { drainTimeout: lb.drainTimeoutMs } : {}),
    ...(lb.accessLog !== undefined ? { accessLog: lb.accessLog } : {}),
    ssh: c.ssh,
  });
});
