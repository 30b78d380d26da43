import { request } from 'node:http';
import { command, raw } from './exec/command.js';
import { toMs, type Duration } from './duration.js';
import { healthUrlProblem } from './config/checks.js';
import { FraisierError } from './errors.js';
import type { DeployContext, HealthCheck, HealthFailure, Target } from './types.js';

/** Options of an HTTP health check. */
export interface HttpCheckOptions {
  /**
   * URL as seen from the target, e.g. `http://localhost:8000/health`. It is reached through the target's
   * own connection (a forwarded channel over SSH), never by assuming this machine can route to it.
   */
  url: string;
  /** Text the body must contain. Default: any body. */
  expectBody?: string;
  /** Accepted status codes. Default: any 2xx. */
  expectStatus?: number[];
}

/**
 * Thrown by a probe when nothing listens on the port yet (the connection was refused): the service is
 * still starting. Between attempts, {@link runHealthPolicy} then looks again early instead of waiting
 * the whole `retryDelay` (see "Early looks" in docs/health-checks.md). The built-in `http` and `tcp`
 * checks throw it; your own check may too. Its message stays `Connection refused`.
 */
export class NotListeningError extends Error {
  constructor(message = 'Connection refused') {
    super(message);
    this.name = 'NotListeningError';
  }
}

/** `connectTcp`, with a refused connection turned into a {@link NotListeningError}. */
async function connectOrNotListening(exec: ReturnType<DeployContext['executor']>, host: string, port: number) {
  try {
    return await exec.connectTcp(host, port);
  } catch (err) {
    if (err instanceof Error && /^connection refused$/i.test(err.message)) throw new NotListeningError(err.message);
    throw err;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout();
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** HTTP check: status 2xx (or `expectStatus`), optionally a body containing `expectBody`. */
export function http(options: HttpCheckOptions | string): HealthCheck {
  const opts = typeof options === 'string' ? { url: options } : options;
  const problem = healthUrlProblem(opts.url);
  if (problem)
    throw new FraisierError('E_CONFIG', `http health check url: ${problem}`, {
      key: 'url',
      hint: 'the URL is probed from each target, e.g. http://localhost:8000/health',
    });
  const url = new URL(opts.url);
  const port = Number(url.port || 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return {
    name: `http ${opts.url}`,
    async probe(target: Target, ctx: DeployContext, timeoutMs: number) {
      const exec = ctx.executor(target);
      let destroy = () => {};
      await withTimeout(
        (async () => {
          const socket = await connectOrNotListening(exec, host === 'localhost' ? '127.0.0.1' : host, port);
          destroy = () => socket.destroy();
          const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
            const req = request(
              {
                host,
                port,
                path: url.pathname + url.search,
                method: 'GET',
                createConnection: () => socket as never,
                headers: { host: url.host, connection: 'close' },
              },
              (res) => {
                const chunks: Buffer[] = [];
                res.on('data', (c: Buffer) => chunks.push(c));
                res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
                res.on('error', reject);
              },
            );
            req.on('error', reject);
            req.end();
          });
          socket.destroy();
          const okStatus = opts.expectStatus ? opts.expectStatus.includes(status) : status >= 200 && status < 300;
          if (!okStatus) throw new Error(`HTTP ${status}`);
          if (opts.expectBody !== undefined && !body.includes(opts.expectBody)) throw new Error(`body does not contain ${JSON.stringify(opts.expectBody)}`);
        })(),
        timeoutMs,
        () => destroy(),
      );
    },
  };
}

/** TCP check: something accepts connections on host:port, as seen from the target. */
export function tcp(options: { host?: string; port: number }): HealthCheck {
  const host = options.host ?? '127.0.0.1';
  return {
    name: `tcp ${host}:${options.port}`,
    async probe(target, ctx, timeoutMs) {
      let destroy = () => {};
      await withTimeout(
        connectOrNotListening(ctx.executor(target), host, options.port).then((s) => {
          destroy = () => s.destroy();
          s.destroy();
        }),
        timeoutMs,
        () => destroy(),
      );
    },
  };
}

/** Exec check: a shell command run on the target must exit 0. The command is the user's own shell text. */
export function exec(options: { command: string } | string): HealthCheck {
  const text = typeof options === 'string' ? options : options.command;
  return {
    name: `exec ${text}`,
    async probe(target, ctx, timeoutMs) {
      const r = await ctx.executor(target).run(command(raw(text)), { check: false, timeoutMs });
      if (r.code === 124) throw new Error(`timed out after ${timeoutMs} ms`);
      if (r.code !== 0) throw new Error(`exit ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''}`);
    },
  };
}

/** Checks and the retry policy that judges a target healthy after activation. */
export interface HealthPolicy {
  /** The probes; every one must pass in the same attempt. */
  checks: HealthCheck[];
  /** Attempts before the target is declared unhealthy. Default 3. */
  retries?: number;
  /** Wait between attempts. Default `'2s'`. */
  retryDelay?: Duration;
  /** Limit for one attempt of one probe. Default `'5s'`. */
  timeout?: Duration;
  /** Give up after this many failed attempts in a row, even if `retries` allows more. Default: `retries`. */
  maxConsecutiveFailures?: number;
  /** Wait after activation before the first attempt. Default 0. */
  initialDelay?: Duration;
}

/** First early look after a refused connection; each next one waits twice as long, up to {@link MAX_LOOK_MS}. */
export const FIRST_LOOK_MS = 25;
/**
 * Longest wait between two early looks: a service that starts listening 400 ms after its restart is seen
 * by 425 ms (looks after 25 ms, then every 50 ms), not at 575 ms as with looks 200 ms apart. Each look is
 * one forwarded channel on the open connection, refused at once by the host while nothing listens.
 */
export const MAX_LOOK_MS = 50;

/** Runs a policy against one target, printing each attempt; returns the failure or undefined. */
export async function runHealthPolicy(policy: HealthPolicy, target: Target, ctx: DeployContext): Promise<HealthFailure | undefined> {
  if (policy.checks.length === 0) return undefined;
  const retries = Math.max(1, policy.retries ?? 3);
  const limit = Math.min(retries, policy.maxConsecutiveFailures ?? retries);
  const delay = toMs(policy.retryDelay ?? '2s');
  const timeout = toMs(policy.timeout ?? '5s');
  if (policy.initialDelay) await ctx.clock.sleep(toMs(policy.initialDelay), ctx.signal);

  /** Every check in order; the first failure ends the attempt. */
  const once = async (limitMs: number): Promise<{ failure: HealthFailure; notListening: boolean } | undefined> => {
    for (const check of policy.checks) {
      try {
        await check.probe(target, ctx, limitMs);
      } catch (err) {
        return { failure: { check: check.name, reason: err instanceof Error ? err.message : String(err) }, notListening: err instanceof NotListeningError };
      }
    }
    return undefined;
  };

  /**
   * The wait between two attempts. When the last attempt found nothing listening yet (the service is
   * still starting), look again early, silently, after 25 ms, then every 50 ms, within
   * the same `retryDelay`: true as soon as a look passes (the next attempt passed early). A look that
   * fails any other way ends the looking and the rest of the delay is waited. Never longer than before:
   * the attempts, their count and the total delay are those of the policy.
   */
  const wait = async (notListening: boolean): Promise<boolean> => {
    if (!notListening) {
      await ctx.clock.sleep(delay, ctx.signal);
      return false;
    }
    let waited = 0;
    let step = FIRST_LOOK_MS;
    while (waited < delay) {
      const s = Math.min(step, delay - waited);
      await ctx.clock.sleep(s, ctx.signal);
      waited += s;
      step = Math.min(step * 2, MAX_LOOK_MS);
      if (waited >= delay) break;
      const look = await once(Math.min(timeout, delay - waited));
      if (!look) return true;
      if (!look.notListening) {
        await ctx.clock.sleep(delay - waited, ctx.signal);
        break;
      }
    }
    return false;
  };

  const passed = (attempt: number) => {
    ctx.log.info(`Attempt ${attempt}: OK`, target.name);
    ctx.log.info('Health checks passed!', target.name);
    return undefined;
  };
  let consecutive = 0;
  let last: HealthFailure | undefined;
  for (let attempt = 1; attempt <= retries; attempt++) {
    const r = await once(timeout);
    if (!r) return passed(attempt);
    last = r.failure;
    consecutive++;
    ctx.log.info(`Attempt ${attempt}: FAILED (${last.reason})`, target.name);
    if (consecutive >= limit || attempt === retries) break;
    if (await wait(r.notListening)) return passed(attempt + 1);
  }
  return last;
}
