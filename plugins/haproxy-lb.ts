/**
 * haproxy-lb: drains, weights and switches pools through HAProxy's runtime API (the admin socket), with
 * no reload at all: HAProxy keeps every client connection open, keep-alive ones included, and only
 * changes where the next request goes.
 *
 * Per target: beforeTarget sets its server to `drain` (no new requests) and waits, bounded by
 * `drainTimeout`, until HAProxy counts no current session on it; afterTarget sets it back to `ready`.
 * A blue-green switch sets the new pool's servers `ready` first, then the other servers `maint`, in one
 * runtime-API call, and records the pool's name in a small file next to the socket (HAProxy has no
 * place for it). The rollback hook puts every drained server back and the live pool back. Semantics are
 * those of HAProxy 2.6 (Debian 12): see docs/haproxy.md.
 */
import type { LoadedConfig, NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, asFraisierError } from '../core/errors.js';
import { haproxyLbCommands } from './haproxy-lb.scripts.js';
import type { Executor } from '../core/exec/executor.js';
import { LocalExecutor } from '../core/exec/local.js';
import { DryRunExecutor } from '../core/exec/recording.js';
import { registry, type BuildContext } from '../core/registry.js';
import { SshExecutor, type SshOptions } from '../core/exec/ssh.js';
import type { DeployContext, Plugin, PluginHost, Target, TrafficSwitch } from '../core/types.js';

export const HAPROXY_LB = 'plugin:haproxy-lb';
// The scripts and the commands built from them live in haproxy-lb.scripts.ts (checked by shellcheck).
export { haproxyLbCommands };

/** Options of {@link haproxyLb}. */
export interface HaproxyLbOptions {
  /** HAProxy's admin socket (absolute path of a `stats socket ... level admin` in haproxy.cfg). */
  socket: string;
  /** The `backend` holding the targets' servers. Default: the fraise name. */
  backend?: string;
  /**
   * HAProxy server name per target, when it differs from the target's name: `{ h1: 'app1' }`.
   * Default: every target's server is named like the target (`server h1 10.0.0.11:8000` in haproxy.cfg).
   */
  servers?: Record<string, string>;
  /** Where HAProxy runs: `'local'` (default) or an SSH host alias, reached with `SshExecutor.connect(host, ssh)`. */
  host?: string;
  ssh?: SshOptions;
  /** The socat binary that talks to the socket (Debian package `socat`). Default `socat`. */
  socat?: string;
  /**
   * Where the live pool's name (blue-green) is recorded. Default: `fraisier-<backend>.pool` next to the
   * socket (a run directory: like HAProxy's own runtime state, it does not survive a reboot).
   */
  poolFile?: string;
  /**
   * Longest wait, after a server is set to `drain`, for its current sessions to reach 0 before the target
   * is restarted. Default `'10s'`. On timeout a warning is logged and the deployment goes on.
   */
  drainTimeout?: Duration;
  /**
   * Longest wait, after a restored server is set back to `ready`, for HAProxy's own health checks to see
   * it up (`show stat` status `UP`, or `no check`) before the next target is drained. Default `'10s'`.
   * On timeout a warning is logged and the deployment goes on.
   */
  upTimeout?: Duration;
  /** How the HAProxy host is reached (tests pass a recording executor). Default: local, or SSH to `host`. */
  connect?: () => Promise<Executor>;
}

/** The plugin object, with the traffic controls other strategies (blue-green, canary) use. */
export interface HaproxyLbPlugin extends Plugin, TrafficSwitch {
  /**
   * Sets the servers' weights over the runtime API, no reload, in one call: `set server ... state ready` +
   * `set weight <backend>/<server> N` (1 to 256) for each weighted server, then `state drain` for a weight
   * of 0 and for every server of the live pool not listed (no new requests). An empty map resets every
   * server of the pool to `ready` at its configured weight (`100%`). During a deployment it uses the
   * deployment's connection; otherwise it opens one (and reads the backend's servers). `ctx` (optional
   * here) is the deployment whose log gets the message.
   */
  setWeights(weights: Readonly<Record<string, number>>, ctx?: DeployContext): Promise<void>;
}

/** One server as `show servers state` reports it. */
export interface ServerState {
  name: string;
  address: string;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
  op: number;
  /** srv_admin_state bits: 0x01/0x02/0x04/0x20/0x40 maintenance, 0x08/0x10 drain. */
  admin: number;
  /** Current user weight. */
  weight: number;
  /** Initial weight (haproxy.cfg's `weight`, 1 by default). */
  iweight?: number;
}

export const isMaint = (s: ServerState) => (s.admin & 0x67) !== 0;
export const isDrain = (s: ServerState) => !isMaint(s) && (s.admin & 0x18) !== 0;

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;
const PATH_RE = /^\/[A-Za-z0-9_./-]+$/;

function checkName(kind: string, v: string, key = kind): void {
  if (typeof v !== 'string' || !NAME_RE.test(v))
    throw new FraisierError('E_CONFIG', `${HAPROXY_LB}: invalid ${kind} ${JSON.stringify(v)}: use letters, digits, _ . : -`, { key });
}

function checkPath(kind: string, v: unknown): asserts v is string {
  if (typeof v !== 'string' || !PATH_RE.test(v)) {
    throw new FraisierError('E_CONFIG', `${HAPROXY_LB}: ${kind} must be an absolute path of letters, digits, _ . / -, got ${JSON.stringify(v)}`, { key: kind });
  }
}

/** Parses `show servers state <backend>` (format 1): one {@link ServerState} per server line. */
export function parseServersState(text: string): ServerState[] {
  const out: ServerState[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 19 || line.startsWith('#') || !/^\d+$/.test(f[0]!)) continue;
    out.push({
      name: f[3]!,
      address: `${f[4]!.includes(':') ? `[${f[4]}]` : f[4]}:${f[18]}`,
      op: Number(f[5]),
      admin: Number(f[6]),
      weight: Number(f[7]),
      iweight: Number(f[8]),
    });
  }
  return out;
}

/**
 * The recorded pool file's content, or null: the live pool, its targets, and (`all`) every target of the
 * environment when it was written, so that `livePool()` outside a deployment knows which servers count.
 */
export function parsePoolFile(text: string): { pool: string; targets: string[]; all?: string[] } | null {
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((t) => typeof t === 'string');
  try {
    const v = JSON.parse(text.trim()) as { pool?: unknown; targets?: unknown; all?: unknown };
    if (typeof v.pool === 'string' && strings(v.targets)) return { pool: v.pool, targets: v.targets, ...(strings(v.all) ? { all: v.all } : {}) };
  } catch {
    /* none, or not ours */
  }
  return null;
}

interface Session {
  exec: Executor;
  states: ServerState[];
  /** The pool recorded when the session opened (checked against the servers' states). */
  live: { pool: string; targets: string[] } | null;
}

/**
 * The haproxy-lb traffic plugin. Taps preDeploy (connect, check the socket and the servers), beforeTarget
 * (drain, wait for sessions to end), afterTarget (ready), rollback (drained servers ready, live pool back)
 * and postDeploy/held/failed (close).
 */
export function haproxyLb(options: HaproxyLbOptions): HaproxyLbPlugin {
  checkPath('socket', options?.socket);
  if (options.backend !== undefined) checkName('backend', options.backend);
  for (const [t, s] of Object.entries(options.servers ?? {})) checkName(`server of ${t}`, s, `servers.${t}`);
  if (options.poolFile !== undefined) checkPath('poolFile', options.poolFile);
  if (options.socat !== undefined && (typeof options.socat !== 'string' || !/^[A-Za-z0-9_./-]+$/.test(options.socat))) {
    throw new FraisierError('E_CONFIG', `${HAPROXY_LB}: invalid socat binary ${JSON.stringify(options.socat)}`, { key: 'socat' });
  }
  const socket = options.socket;
  const socat = options.socat ?? 'socat';
  const drainMs = toMs(options.drainTimeout ?? '10s', 'drainTimeout');
  const upMs = toMs(options.upTimeout ?? '10s', 'upTimeout');

  let backend = options.backend ?? null;
  const serverOf = (t: string) => options.servers?.[t] ?? t;
  const poolFile = () => options.poolFile ?? `${socket.replace(/\/[^/]*$/, '') || '/'}/fraisier-${backend}.pool`.replace(/^\/\//, '/');
  let session: Session | null = null;
  let live: { pool: string; targets: string[] } | null = null;
  let liveAtStart: { pool: string; targets: string[] } | null = null;
  /** Targets this deployment set to drain and has not set back. */
  const drained = new Set<string>();
  /** Targets whose weight setWeights changed (put back to 100% by the rollback and by switchTo). */
  const weighted = new Set<string>();
  /** Targets setWeights drained (weight 0 or not listed): set ready again by the rollback and by switchTo. */
  const zeroed = new Set<string>();
  let allTargets: string[] = [];
  const addresses = new Map<string, string>();
  let log: PluginHost['log'] | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  };
  const needBackend = (): string => {
    if (!backend)
      throw new FraisierError('E_CONFIG', `${HAPROXY_LB}: no backend name: pass the backend option, or add the plugin to a deployment first`, {
        key: 'backend',
      });
    return backend;
  };

  async function connect(): Promise<Executor> {
    try {
      if (options.connect) return await options.connect();
      if (!options.host || options.host === 'local') return new LocalExecutor('haproxy');
      return await SshExecutor.connect(options.host, options.ssh ?? {});
    } catch (err) {
      const e = asFraisierError(err, 'E_UNREACHABLE');
      throw new FraisierError(
        e.code === 'E_HOST_KEY' ? 'E_HOST_KEY' : 'E_PREFLIGHT',
        `${HAPROXY_LB}: cannot reach the HAProxy host ${options.host ?? 'local'}: ${e.message}`,
        {
          step: 'preDeploy',
          cause: err,
        },
      );
    }
  }

  async function readStates(exec: Executor): Promise<ServerState[]> {
    const be = needBackend();
    const r = await exec.run(haproxyLbCommands.states(socat, socket, be), { check: false });
    const out = r.stdout.trim();
    if (r.code !== 0 || /^(Can't find backend|Unknown command|Permission denied)/m.test(out)) {
      const why = (r.stderr.trim() || out || `exit ${r.code}`).split('\n').slice(-3).join('; ');
      throw new FraisierError(
        'E_PREFLIGHT',
        `${HAPROXY_LB}: cannot read backend ${be} from HAProxy's admin socket ${socket} on ${options.host ?? 'this machine'}: ${why}; nothing was changed`,
        {
          step: 'preDeploy',
          hint: `HAProxy must run with 'stats socket ${socket} level admin' and a backend ${be}`,
        },
      );
    }
    return parseServersState(r.stdout);
  }

  /** The live pool, from the recorded file checked against what HAProxy routes to now. */
  function livePoolFrom(
    states: ServerState[],
    recorded: { pool: string; targets: string[] } | null,
    targets: readonly string[],
  ): { pool: string; targets: string[] } | null {
    const inService = targets.filter((t) => {
      const s = states.find((x) => x.name === serverOf(t));
      return s !== undefined && !isMaint(s);
    });
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
    if (
      recorded &&
      same(
        recorded.targets.filter((t) => targets.includes(t)),
        inService,
      )
    )
      return { pool: recorded.pool, targets: recorded.targets };
    // HAProxy restarted (its config puts every server back in service) or nothing was ever switched.
    if (inService.length === targets.length) return null;
    throw new FraisierError(
      'E_PREFLIGHT',
      `${HAPROXY_LB}: backend ${needBackend()} has ${targets
        .filter((t) => !inService.includes(t))
        .map(serverOf)
        .join(
          ', ',
        )} in maintenance, but ${recorded ? `${poolFile()} records pool ${recorded.pool} (${recorded.targets.join(', ')})` : `no live pool is recorded in ${poolFile()}`}`,
      { step: 'preDeploy', hint: `set the servers' states by hand (set server ${needBackend()}/<server> state ready|maint) or remove ${poolFile()}` },
    );
  }

  async function open(ctx: DeployContext): Promise<Session> {
    const real = await connect();
    try {
      const lv = await real.run(haproxyLbCommands.level(socat, socket), { check: false });
      if (lv.code === 0 && /^(user|operator)$/m.test(lv.stdout.trim())) {
        throw new FraisierError(
          'E_PREFLIGHT',
          `${HAPROXY_LB}: HAProxy's socket ${socket} is at level ${lv.stdout.trim()}: changing servers needs level admin; nothing was changed`,
          {
            step: 'preDeploy',
            hint: `in haproxy.cfg: stats socket ${socket} mode 600 level admin`,
          },
        );
      }
      const states = await readStates(real);
      const missing = ctx.targets.filter((t) => !states.some((s) => s.name === serverOf(t.name)));
      if (missing.length > 0) {
        throw new FraisierError(
          'E_PREFLIGHT',
          `${HAPROXY_LB}: backend ${needBackend()} has no server ${missing.map((t) => serverOf(t.name)).join(', ')} (for ${missing.map((t) => t.name).join(', ')}; it has ${states.map((s) => s.name).join(', ') || 'none'}); nothing was changed`,
          { step: 'preDeploy', key: 'servers', hint: 'name the servers in haproxy.cfg like the targets, or map them with the servers option' },
        );
      }
      const pf = await real.run(haproxyLbCommands.readPool(poolFile()), { check: false });
      const current = livePoolFrom(
        states,
        parsePoolFile(pf.stdout),
        ctx.targets.map((t) => t.name),
      );
      if (ctx.dryRun) {
        await real.close().catch(() => {});
        return { exec: new DryRunExecutor(real.name, (line) => ctx.log.info(line)), states, live: current };
      }
      return { exec: real, states, live: current };
    } catch (err) {
      await real.close().catch(() => {});
      throw err;
    }
  }

  async function close(): Promise<void> {
    const s = session;
    session = null;
    await s?.exec.close().catch(() => {});
  }

  /** Runs `set ...` lines; HAProxy answers a failed one with a message (and a successful one with nothing). */
  async function set(exec: Executor, lines: string[], why: string, target?: Target): Promise<void> {
    if (lines.length === 0) return;
    const r = await exec.run(haproxyLbCommands.set(socat, socket, lines), { check: false });
    const answer = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    if (r.code !== 0 || answer.length > 0) {
      throw new FraisierError(
        'E_COMMAND',
        `${HAPROXY_LB}: HAProxy refused ${why}: ${(answer.join('; ') || r.stderr.trim() || `exit ${r.code}`).slice(0, 500)}`,
        {
          step: 'haproxy',
          ...(target ? { target: target.name } : {}),
          hint: `check backend ${needBackend()}, its servers and the socket's level (admin) in haproxy.cfg`,
        },
      );
    }
  }

  const srv = (t: string) => `${needBackend()}/${serverOf(t)}`;
  /** `set server` lines that route to `pool` only (ready first, then maint: never zero servers), or to every target. */
  const routeLines = (pool: { targets: string[] } | null): string[] => {
    const on = pool ? allTargets.filter((t) => pool.targets.includes(t)) : allTargets;
    const off = pool ? allTargets.filter((t) => !pool.targets.includes(t)) : [];
    return [...on.map((t) => `set server ${srv(t)} state ready`), ...off.map((t) => `set server ${srv(t)} state maint`)];
  };

  async function recordPool(exec: Executor, pool: { pool: string; targets: string[] } | null): Promise<void> {
    if (pool) await exec.run(haproxyLbCommands.writePool(poolFile(), JSON.stringify({ pool: pool.pool, targets: pool.targets, all: allTargets })));
    else await exec.run(haproxyLbCommands.removePool(poolFile()));
  }

  function need(): Session {
    if (!session) throw new FraisierError('E_COMMAND', `${HAPROXY_LB}: no connection to HAProxy (preDeploy did not run)`, { step: 'haproxy' });
    return session;
  }

  const idle = (t: Target) => live !== null && !live.targets.includes(t.name);

  const plugin: HaproxyLbPlugin = {
    name: HAPROXY_LB,
    apply(host: PluginHost): void {
      backend = options.backend ?? host.fraise;
      checkName('backend', backend);
      log = host.log;
      host.useTraffic(plugin);
      const { hooks } = host;

      hooks.preDeploy.tapPromise(HAPROXY_LB, async (ctx) => {
        await close();
        drained.clear();
        weighted.clear();
        allTargets = ctx.targets.map((t) => t.name);
        session = await open(ctx);
        addresses.clear();
        for (const t of allTargets) {
          const s = session.states.find((x) => x.name === serverOf(t));
          if (s) addresses.set(t, s.address);
        }
        live = session.live;
        liveAtStart = live;
      });

      hooks.beforeTarget.tapPromise(HAPROXY_LB, (target, ctx) =>
        serial(async () => {
          const s = need();
          if (idle(target)) return; // outside the live pool: it gets no traffic, nothing to drain
          const others = allTargets.filter((t) => t !== target.name && !drained.has(t) && !(live && !live.targets.includes(t)));
          if (others.length === 0) ctx.log.warn(`every server of backend ${needBackend()} is draining: HAProxy answers 503 until one is back`, target.name);
          const started = performance.now();
          drained.add(target.name);
          await set(s.exec, [`set server ${srv(target.name)} state drain`], `to drain ${srv(target.name)}`, target);
          const r = await s.exec.run(haproxyLbCommands.waitDrained(socat, socket, needBackend(), serverOf(target.name), drainMs));
          const ms = Math.round(performance.now() - started);
          ctx.time(target, 'drain', ms);
          const out = r.stdout.trim();
          if (out.startsWith('timeout'))
            ctx.log.warn(
              `haproxy ${srv(target.name)}: ${out.split(' ')[1] ?? 'some'} session(s) still open after ${drainMs} ms (drainTimeout): going on`,
              target.name,
            );
          else ctx.log.info(`haproxy ${srv(target.name)}: drained in ${ms} ms (no reload)`, target.name);
        }),
      );

      hooks.afterTarget.tapPromise(HAPROXY_LB, (target, ctx) =>
        serial(async () => {
          if (!drained.has(target.name)) return;
          const s = need();
          // A server setWeights had taken out (weight 0: a canary host before step 1) comes back with weight
          // 0: up, but no request until the next setWeights (the rollback puts it back to 100%).
          const keepOut = zeroed.has(target.name);
          await set(
            s.exec,
            [...(keepOut ? [`set weight ${srv(target.name)} 0`] : []), `set server ${srv(target.name)} state ready`],
            `to set ${srv(target.name)} ready`,
            target,
          );
          if (keepOut) weighted.add(target.name);
          drained.delete(target.name);
          // HAProxy's own health checks may still count the server down (it was stopped long enough to
          // fail them): wait until it routes to it again, so the next target is not drained too early.
          const r = await s.exec.run(haproxyLbCommands.waitUp(socat, socket, needBackend(), serverOf(target.name), upMs));
          const out = r.stdout.trim();
          if (out.startsWith('timeout'))
            ctx.log.warn(
              `haproxy ${srv(target.name)}: ready, but HAProxy still reports it ${out.slice('timeout '.length)} after ${upMs} ms (upTimeout): going on`,
              target.name,
            );
          else ctx.log.info(`haproxy ${srv(target.name)}: ready`, target.name);
        }),
      );

      hooks.rollback.tapPromise(HAPROXY_LB, (ctx) =>
        serial(async () => {
          const s = session;
          const switched = live?.pool !== liveAtStart?.pool;
          if (!s || (drained.size === 0 && weighted.size === 0 && zeroed.size === 0 && !switched)) return; // nothing of ours changed
          const lines = [...[...weighted].map((t) => `set weight ${srv(t)} 100%`)];
          if (switched) lines.push(...routeLines(liveAtStart));
          else lines.push(...[...new Set([...drained, ...zeroed])].map((t) => `set server ${srv(t)} state ready`));
          await set(s.exec, lines, switched ? `to route back to pool ${liveAtStart?.pool ?? '(all servers)'}` : 'to set the drained servers ready');
          if (switched) await recordPool(s.exec, liveAtStart);
          drained.clear();
          weighted.clear();
          zeroed.clear();
          live = liveAtStart;
          ctx.log.info(
            switched
              ? `haproxy backend ${needBackend()}: traffic back to pool ${live?.pool ?? '(all servers)'} (rollback)`
              : `haproxy backend ${needBackend()}: every server ready (rollback)`,
          );
        }),
      );

      hooks.postDeploy.tapPromise(HAPROXY_LB, async () => {
        await serial(close);
      });
      // A canary held for promote/rollback: the deployment is not complete, but this run is over.
      hooks.held.tapPromise(HAPROXY_LB, async () => {
        await serial(close);
      });
      hooks.failed.tap(HAPROXY_LB, () => {
        void serial(close);
      });
    },

    addressOf(target: Target): string | null {
      return addresses.get(target.name) ?? null;
    },

    async livePool(): Promise<{ pool: string; targets: string[] } | null> {
      if (session) return live;
      const exec = await connect();
      try {
        const states = await readStates(exec);
        const pf = await exec.run(haproxyLbCommands.readPool(poolFile()), { check: false });
        const recorded = parsePoolFile(pf.stdout);
        // Outside a deployment the targets are those recorded with the pool, or every server of the backend.
        const byServer = new Map(Object.entries(options.servers ?? {}).map(([t, sv]) => [sv, t]));
        const names = recorded?.all ?? states.map((s) => byServer.get(s.name) ?? s.name);
        return livePoolFrom(states, recorded, names);
      } finally {
        await exec.close().catch(() => {});
      }
    },

    switchTo(pool: string, targets: readonly Target[], ctx: DeployContext): Promise<void> {
      return serial(async () => {
        const s = need();
        checkName('pool', pool);
        const previous = live;
        const next = { pool, targets: targets.map((t) => t.name) };
        if (next.targets.length === 0) throw new FraisierError('E_CONFIG', `${HAPROXY_LB}: pool ${pool} has no target`, { key: 'pool' });
        const started = performance.now();
        // After setWeights, the new pool gets an equal split again: every server at its configured weight.
        const changed = (t: string) => {
          const st = s.states.find((x) => x.name === serverOf(t));
          return weighted.has(t) || (st?.iweight !== undefined && st.weight !== st.iweight);
        };
        const reset = allTargets.filter((t) => next.targets.includes(t) && changed(t)).map((t) => `set weight ${srv(t)} 100%`);
        await set(s.exec, [...routeLines(next), ...reset], `to switch to pool ${pool}`);
        live = next;
        for (const t of next.targets) {
          drained.delete(t);
          zeroed.delete(t);
          weighted.delete(t);
        }
        await recordPool(s.exec, next);
        ctx.log.info(
          `haproxy backend ${needBackend()}: traffic switched ${previous ? `from pool ${previous.pool} ` : ''}to pool ${pool} (${next.targets.join(', ')}) in ${Math.round(performance.now() - started)} ms, no reload`,
        );
      });
    },

    async setWeights(next: Readonly<Record<string, number>>, ctx?: DeployContext): Promise<void> {
      const be = needBackend();
      for (const [t, w] of Object.entries(next)) {
        if (!Number.isInteger(w) || w < 0 || w > 256)
          throw new FraisierError('E_CONFIG', `${HAPROXY_LB}: weight of ${t} must be an integer from 0 to 256, got ${JSON.stringify(w)}`, {
            key: `weights.${t}`,
          });
        checkName(`server of ${t}`, serverOf(t), `weights.${t}`);
      }
      const names = Object.keys(next);
      if (names.length > 0 && names.every((t) => next[t] === 0)) {
        throw new FraisierError(
          'E_CONFIG',
          `${HAPROXY_LB}: every server of backend ${be} would have weight 0: a backend needs at least one server with traffic`,
          { key: 'weights' },
        );
      }
      await serial(async () => {
        const borrowed = session;
        const exec = borrowed?.exec ?? (await connect());
        try {
          // The servers that get traffic now: the live pool, or every target (outside a deployment: as recorded, or the backend's servers).
          let targets = allTargets;
          let pool = live;
          if (!borrowed) {
            const states = await readStates(exec);
            const pf = await exec.run(haproxyLbCommands.readPool(poolFile()), { check: false });
            const recorded = parsePoolFile(pf.stdout);
            const byServer = new Map(Object.entries(options.servers ?? {}).map(([t, sv]) => [sv, t]));
            targets = recorded?.all ?? states.map((x) => byServer.get(x.name) ?? x.name);
            pool = livePoolFrom(states, recorded, targets);
          }
          const inPool = pool ? targets.filter((t) => pool!.targets.includes(t)) : targets;
          const unknown = names.filter((t) => !targets.includes(t));
          if (unknown.length > 0) {
            throw new FraisierError(
              'E_CONFIG',
              `${HAPROXY_LB}: weight for unknown target(s) ${unknown.join(', ')} (backend ${be} has ${targets.join(', ') || 'none'})`,
              { key: 'weights' },
            );
          }
          const outside = names.filter((t) => !inPool.includes(t) && next[t] !== 0);
          if (outside.length > 0) {
            throw new FraisierError(
              'E_CONFIG',
              `${HAPROXY_LB}: weight for ${outside.join(', ')}, outside the live pool ${pool?.pool} (${inPool.join(', ')}): switch pools first`,
              { key: 'weights' },
            );
          }
          const reset = names.length === 0;
          const weight = (t: string) => (reset ? 1 : (next[t] ?? 0));
          const on = inPool.filter((t) => weight(t) > 0);
          const off = inPool.filter((t) => weight(t) === 0);
          // ready + weight first, then drain: the backend never has zero servers taking requests.
          const lines = [
            ...on.flatMap((t) => [`set server ${srv(t)} state ready`, `set weight ${srv(t)} ${reset ? '100%' : weight(t)}`]),
            ...off.map((t) => `set server ${srv(t)} state drain`),
          ];
          const summary = reset ? 'reset (every server ready at its configured weight)' : inPool.map((t) => `${t}=${weight(t)}`).join(' ');
          await set(exec, lines, `weights ${summary}`);
          for (const t of on) {
            zeroed.delete(t);
            if (reset) weighted.delete(t);
            else weighted.add(t);
          }
          for (const t of off) zeroed.add(t);
          (ctx?.log ?? log)?.info(`haproxy backend ${be}: weights ${summary}, no reload`);
        } finally {
          if (!borrowed) await exec.close().catch(() => {});
        }
      });
    },
  };
  return plugin;
}

registry.registerPlugin('haproxy', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  const lb = env.loadBalancer!;
  const c = config as LoadedConfig;
  return haproxyLb({
    socket: lb.socket!,
    ...(lb.backend !== undefined ? { backend: lb.backend } : {}),
    ...(lb.servers !== undefined ? { servers: lb.servers } : {}),
    ...(lb.host !== undefined ? { host: lb.host } : {}),
    ...(lb.socat !== undefined ? { socat: lb.socat } : {}),
    ...(lb.poolFile !== undefined ? { poolFile: lb.poolFile } : {}),
    ...(lb.drainTimeoutMs !== undefined ? { drainTimeout: lb.drainTimeoutMs } : {}),
    ssh: c.ssh,
  });
});
