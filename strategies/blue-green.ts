import { constants as osConstants } from 'node:os';
import { registry, type BuildContext } from '../core/registry.js';
import type { NormalizedEnvironment } from '../core/config/load.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, asFraisierError } from '../core/errors.js';
import { runProcess } from '../core/exec/process.js';
import type { DeployContext, Strategy, StrategyRunner, Target, TrafficSwitch } from '../core/types.js';
import { bakeFromYaml, bakeMs as checkBake, runBake, type BakeOptions } from './bake.js';
import { runBatch } from './rolling.js';

/** The two colours of a blue-green environment. */
export type Colour = 'blue' | 'green';

/** What a verification function or command is told about the idle colour it checks. */
export interface VerifyInfo {
  /** The colour just deployed, not yet live. */
  colour: Colour;
  /** Its targets. */
  targets: string[];
  /** `http://<address>` of each target, from the traffic plugin's server addresses. */
  urls: string[];
  /** The release it runs. */
  version: string;
  /** Aborted on Ctrl-C and on the verification timeout. */
  signal: AbortSignal;
}

/** Options of {@link blueGreen}. */
export interface BlueGreenOptions {
  /** Target names of the blue colour. Every target of the environment is in exactly one colour. */
  blue: readonly string[];
  /** Target names of the green colour. */
  green: readonly string[];
  /**
   * Checks the idle colour after its health checks and before the switch; a failure (non-zero exit,
   * a throw, the timeout) means no switch. A shell command runs on the deploying machine, in `cwd`, with
   * `FRAISIER_IDLE_COLOUR`, `FRAISIER_IDLE_URL` (the first target's), `FRAISIER_IDLE_URLS` (space
   * separated), `FRAISIER_VERSION`, `FRAISIER_FRAISE` and `FRAISIER_ENVIRONMENT` in its environment;
   * a function gets the same as {@link VerifyInfo}. Default: none.
   */
  verify?: string | ((info: VerifyInfo) => Promise<void>);
  /** Longest the verification may take; the command's whole process group is then killed. Default `'5m'`. */
  verifyTimeout?: Duration;
  /** Working directory of a verification command. Default: the current directory. */
  cwd?: string;
  /**
   * Bake time: after the switch, the analysis watches the new colour for `duration` while the old colour
   * keeps its release, ready (not stopped, not pruned). A failed verdict (or Ctrl-C) switches all traffic
   * back to the old colour at once, then the new colour's targets are rolled back and the deployment is
   * recorded as rolled back. An inconclusive verdict only warns. Same options as rolling's bake (absolute
   * limits only); see docs/blue-green.md. Default: none (the deployment ends at the switch).
   */
  bake?: BakeOptions;
}

const COLOURS: readonly Colour[] = ['blue', 'green'];

/** Runs a verification command in its own process group; its output goes to the log line by line. */
async function runVerifyCommand(command: string, env: Record<string, string>, cwd: string | undefined, timeoutMs: number, ctx: DeployContext): Promise<void> {
  let tail: string[] = [];
  const r = await runProcess(['sh', '-c', command], {
    cwd,
    env: { ...process.env, ...env },
    timeoutMs,
    signal: ctx.signal,
    until: 'close',
    onLine: (line) => {
      ctx.log.info(`verify: ${line}`);
      tail = [...tail, line].slice(-5);
    },
  });
  if (r.spawnError) throw new FraisierError('E_COMMAND', `blue-green: cannot run the verification command: ${r.spawnError}`, { step: 'verify' });
  if (r.code === 0 && !r.timedOut && !r.interrupted) return;
  const why = r.timedOut
    ? `timed out after ${timeoutMs} ms`
    : r.interrupted
      ? 'interrupted'
      : r.code > 128
        ? `signal ${signalName(r.code - 128)}`
        : `exit ${r.code}`;
  throw new FraisierError('E_COMMAND', `blue-green: the verification command failed (${why}): ${command}${tail.length ? `\n${tail.join('\n')}` : ''}`, {
    step: 'verify',
    hint: 'the live colour was not switched; fix the release or the verification and deploy again',
  });
}

function signalName(n: number): string {
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0] ?? String(n);
}

/**
 * Blue-green deployment: two colours of targets behind a traffic plugin (nginx-lb). The idle colour gets
 * the release (all its targets in parallel) and its health checks, then the optional verification, and
 * only then does the traffic plugin switch every new request to it in one step. The previous colour keeps
 * running the previous release: `rollback` finds it already there, checks its health and switches back
 * (no restart, no redeploy). A failure before the switch leaves the live colour untouched; the Deployer
 * rolls the idle colour's targets back.
 */
export function blueGreen(options: BlueGreenOptions): Strategy {
  const pools: Record<Colour, readonly string[]> = { blue: options?.blue ?? [], green: options?.green ?? [] };
  for (const c of COLOURS) {
    if (!Array.isArray(pools[c]) || pools[c].length === 0) {
      throw new FraisierError('E_CONFIG', `blue-green: ${c} must list at least one target, got ${JSON.stringify(pools[c])}`, { key: c });
    }
  }
  const both = pools.blue.filter((t) => pools.green.includes(t));
  if (both.length > 0) throw new FraisierError('E_CONFIG', `blue-green: ${both.join(', ')} cannot be both blue and green`, { key: 'green' });
  const verifyMs = toMs(options.verifyTimeout ?? '5m', 'verifyTimeout');
  const bake = options.bake;
  const bakeMs = checkBake(bake, 'blue-green');

  async function verify(colour: Colour, targets: readonly Target[], ctx: DeployContext): Promise<void> {
    if (!options.verify) return;
    const urls = targets
      .map((t) => ctx.traffic?.addressOf(t))
      .filter((a): a is string => !!a)
      .map((a) => `http://${a}`);
    const label = typeof options.verify === 'string' ? options.verify : 'verification function';
    if (ctx.dryRun) {
      ctx.log.info(`would verify ${colour} (${urls.join(' ')}) with: ${label}`);
      return;
    }
    ctx.log.info(`Verifying ${colour} (${urls.join(' ') || targets.map((t) => t.name).join(', ')}): ${label}`);
    const started = performance.now();
    if (typeof options.verify === 'string') {
      await runVerifyCommand(
        options.verify,
        {
          FRAISIER_IDLE_COLOUR: colour,
          FRAISIER_IDLE_URL: urls[0] ?? '',
          FRAISIER_IDLE_URLS: urls.join(' '),
          FRAISIER_VERSION: ctx.version,
          FRAISIER_FRAISE: ctx.fraise,
          FRAISIER_ENVIRONMENT: ctx.environment,
        },
        options.cwd,
        verifyMs,
        ctx,
      );
    } else {
      const controller = new AbortController();
      const onAbort = () => controller.abort(ctx.signal.reason);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          options.verify({ colour, targets: targets.map((t) => t.name), urls, version: ctx.version, signal: controller.signal }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              controller.abort();
              reject(new Error(`timed out after ${verifyMs} ms`));
            }, verifyMs);
          }),
        ]);
      } catch (err) {
        throw new FraisierError('E_COMMAND', `blue-green: verification of ${colour} failed: ${asFraisierError(err).message}`, {
          step: 'verify',
          hint: 'the live colour was not switched',
        });
      } finally {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onAbort);
      }
    }
    ctx.log.info(`Verification of ${colour} passed in ${Math.round(performance.now() - started)} ms`);
  }

  /**
   * The instant rollback after a failed bake: all traffic back to the old colour, which still runs the
   * previous release; the Deployer then rolls the new colour's targets back. A failed switch is logged
   * (the Deployer's rollback hook puts the traffic plugin's pool back too).
   */
  async function switchBack(ctx: DeployContext, traffic: TrafficSwitch, colour: Colour, targets: readonly Target[], why: Error): Promise<void> {
    try {
      await ctx.fence();
      const started = performance.now();
      await traffic.switchTo(colour, targets, ctx);
      ctx.log.warn(
        `Traffic switched back to ${colour} (${targets.map((t) => t.name).join(', ')}, ${ctx.previousVersion ?? 'its release'}) in ${Math.round(performance.now() - started)} ms after: ${why.message}`,
      );
    } catch (err) {
      ctx.log.error(`could not switch the traffic back to ${colour}: ${asFraisierError(err).message}`);
    }
  }

  return {
    name: 'strategy:blue-green',
    async run(ctx: DeployContext, runner: StrategyRunner) {
      const traffic = ctx.traffic;
      if (!traffic) {
        throw new FraisierError(
          'E_CONFIG',
          'blue-green needs a traffic plugin that switches pools (nginx-lb: load_balancer in fraises.yaml, nginxLb() in deploy.ts)',
          {
            key: 'plugins',
          },
        );
      }
      const names = new Set(ctx.targets.map((t) => t.name));
      const unknown = [...pools.blue, ...pools.green].filter((t) => !names.has(t));
      const orphans = [...names].filter((t) => !pools.blue.includes(t) && !pools.green.includes(t));
      if (unknown.length > 0 || orphans.length > 0) {
        throw new FraisierError(
          'E_CONFIG',
          `blue-green: the colours must split the environment's targets (${[...names].join(', ')}) exactly${unknown.length ? `; not a target: ${unknown.join(', ')}` : ''}${orphans.length ? `; in no colour: ${orphans.join(', ')}` : ''}`,
          { key: 'blue' },
        );
      }
      const byColour = (c: Colour) => ctx.targets.filter((t) => pools[c].includes(t.name));

      const live = await traffic.livePool(ctx);
      if (live && !COLOURS.includes(live.pool as Colour)) {
        throw new FraisierError('E_PREFLIGHT', `blue-green: the live pool recorded by ${traffic.name} is ${JSON.stringify(live.pool)}, not blue or green`, {
          hint: 'was the upstream written by another strategy? switch it with a rolling deploy first',
        });
      }
      const liveColour = (live?.pool as Colour | undefined) ?? null;
      const idle: Colour = liveColour === 'blue' ? 'green' : 'blue';
      const targets = byColour(idle);
      ctx.log.info(
        liveColour
          ? `Live colour: ${liveColour} (${pools[liveColour].join(', ')}); ${ctx.kind === 'rollback' ? 'rolling back' : 'deploying'} ${ctx.version} to ${idle} (${targets.map((t) => t.name).join(', ')})`
          : `No live colour recorded yet: deploying ${ctx.version} to ${idle} (${targets.map((t) => t.name).join(', ')}), then switching all traffic to it`,
      );

      // 1. The idle colour: a target already running the release is only health-checked (the instant
      //    rollback); the others get the release and their health checks, all in parallel.
      await runBatch(
        targets,
        (t) => {
          const from = ctx.states.get(t.name)?.fromVersion ?? null;
          if (from === ctx.version) {
            ctx.log.info(`${ctx.version} is already live here (idle ${idle}): health check only, no restart`, t.name);
            return runner.checkTarget(t);
          }
          return runner.deployTarget(t);
        },
        `${idle}`,
      );
      ctx.checkAborted();

      // 2. Verification against the idle colour, still without user traffic.
      await verify(idle, targets, ctx);
      ctx.checkAborted();

      // 3. One switch.
      ctx.log.info(`Switching all traffic to ${idle}`);
      await ctx.fence(); // the switch changes the load balancer: only while the lock is still ours
      const started = performance.now();
      await traffic.switchTo(idle, targets, ctx);
      const ms = performance.now() - started;
      for (const t of targets) ctx.time(t, 'switch', ms);
      ctx.log.info(
        `Traffic switched to ${idle} in ${Math.round(ms)} ms${liveColour ? ` (${liveColour} keeps ${ctx.previousVersion ?? 'its release'} for an instant rollback)` : ''}`,
      );

      // 4. Bake: the analysis watches the new colour; the old one stays ready for the switch back.
      if (!bake || ctx.kind === 'rollback') return;
      try {
        await runBake(ctx, bake, bakeMs, targets);
      } catch (err) {
        const e = asFraisierError(err);
        if (liveColour && e.code !== 'E_LOCKED' && !ctx.dryRun) await switchBack(ctx, traffic, liveColour, byColour(liveColour), e);
        else if (!liveColour) ctx.log.warn(`no colour to switch back to (${idle} was the first live colour): its targets are rolled back in place`);
        throw e;
      }
      if (liveColour) ctx.log.info(`Bake of ${idle} passed: ${liveColour} is retired`);
    },
  };
}

registry.registerStrategy('blue_green', ({ env, config }: BuildContext<NormalizedEnvironment>) => {
  const bg = env.strategy.type === 'blue_green' ? env.strategy : null;
  if (!bg) throw new FraisierError('E_CONFIG', 'blue_green: missing blue_green_config', { key: `${env.keyPath}.blue_green_config` });
  return blueGreen({
    blue: bg.blue,
    green: bg.green,
    ...(bg.verifyCommand !== undefined ? { verify: bg.verifyCommand } : {}),
    ...(bg.verifyTimeoutMs !== undefined ? { verifyTimeout: bg.verifyTimeoutMs } : {}),
    cwd: (config as { baseDir: string }).baseDir,
    ...(bg.bake ? { bake: bakeFromYaml(bg.bake, env, config) } : {}),
  });
});
