/**
 * The probe metric source: Fraisier sends synthetic GET requests to every canary and stable host, through
 * the host's own SSH connection (`executor.connectTcp`, so `localhost` is the host's), at a steady rate,
 * and measures the error rate and the latency itself. It needs no load balancer and no monitoring system.
 */
import { request } from 'node:http';
import type { Duplex } from 'node:stream';
import { toMs, type Duration } from '../../core/duration.js';
import { FraisierError } from '../../core/errors.js';
import { percentile } from '../../core/analysis/stats.js';
import { type AnalysisContext, type Measurement, type MetricName, type MetricQuery, type MetricSource, MetricSourceError } from '../../core/analysis/types.js';
import type { Target } from '../../core/types.js';

/** Options of {@link probeSource}. */
export interface ProbeOptions {
  /**
   * Where to send requests, as seen from a host: a full URL (`http://localhost:8000/`) or a path
   * (`/`) on the health-check URL's host and port. Default: the environment's health-check URL
   * (`AnalysisContext.healthUrl`), else `http://localhost:8000/`. A health endpoint often skips the app's
   * real work: a `path` such as `/` measures what users get.
   */
  readonly url?: string;
  /** Requests per second sent to each host. Default 5. */
  readonly rate?: number;
  /** A request without a full answer after this long counts as an error. Default `5s`. */
  readonly timeout?: Duration;
  /** At most this many requests in flight per host; a slower host gets fewer (not more) requests. Default 20. */
  readonly maxInFlight?: number;
}

/** One answered (or failed) request. */
interface Sample {
  readonly target: string;
  /** ctx.now() when the answer completed. */
  readonly at: number;
  readonly error: boolean;
  readonly latencyMs: number;
}

const LATENCY = /^response_latency_p(\d{1,2}(?:\.\d+)?)$/;

/** Resolves the probe's URL: a path goes on the health-check URL's origin. */
export function probeUrl(option: string | undefined, healthUrl: string | undefined): URL {
  const base = healthUrl ?? 'http://localhost:8000/';
  let url: URL;
  try {
    url = option === undefined ? new URL(base) : option.startsWith('/') ? new URL(option, base) : new URL(option);
  } catch {
    throw new FraisierError(
      'E_CONFIG',
      `analysis probe: url: expected a URL such as http://localhost:8000/ or a path such as /, got ${JSON.stringify(option ?? base)}`,
      { key: 'probe.url' },
    );
  }
  if (url.protocol !== 'http:')
    throw new FraisierError('E_CONFIG', `analysis probe: url: expected an http:// URL, got ${JSON.stringify(url.protocol)}`, { key: 'probe.url' });
  return url;
}

/**
 * Creates the probe source. It provides `error_rate` (percent of requests answered 5xx, refused, reset or
 * timed out) and `response_latency_pNN` (milliseconds, from the request sent to the last byte, connection
 * set-up excluded; raw samples included for Mann-Whitney).
 */
export function probeSource(options: ProbeOptions = {}): MetricSource {
  const rate = options.rate ?? 5;
  if (!(Number.isFinite(rate) && rate > 0 && rate <= 1000))
    throw new FraisierError('E_CONFIG', `analysis probe: rate: expected requests per second in (0, 1000], got ${rate}`, { key: 'probe.rate' });
  const timeoutMs = toMs(options.timeout ?? '5s', 'probe.timeout');
  const maxInFlight = options.maxInFlight ?? 20;
  let samples: Sample[] = [];
  const unreachable = new Map<string, string>();
  const timers: NodeJS.Timeout[] = [];
  const inFlight = new Map<string, number>();
  const sockets = new Set<Duplex>();
  let url: URL | null = null;
  let running = false;

  async function once(target: Target, ctx: AnalysisContext, u: URL): Promise<void> {
    const port = Number(u.port || 80);
    let socket: Duplex;
    try {
      socket = await ctx.executor(target).connectTcp(u.hostname, port);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // refused: the app is down, a failure the canary is judged on; anything else: the probe cannot reach it
      if (/refused/i.test(msg)) samples.push({ target: target.name, at: ctx.now(), error: true, latencyMs: 0 });
      else unreachable.set(target.name, msg);
      return;
    }
    sockets.add(socket);
    const t0 = performance.now();
    const status = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(0);
      }, timeoutMs);
      const req = request(
        {
          host: u.hostname,
          port,
          path: u.pathname + u.search,
          method: 'GET',
          createConnection: () => socket as never,
          headers: { host: u.host, connection: 'close', 'user-agent': 'fraisier-probe' },
        },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => {
            clearTimeout(timer);
            resolve(res.statusCode ?? 0);
          });
          res.on('error', () => {
            clearTimeout(timer);
            resolve(0);
          });
        },
      );
      req.on('error', () => {
        clearTimeout(timer);
        resolve(0);
      });
      req.end();
    });
    socket.destroy();
    sockets.delete(socket);
    if (!running) return;
    unreachable.delete(target.name);
    samples.push({ target: target.name, at: ctx.now(), error: status === 0 || status >= 500, latencyMs: performance.now() - t0 });
  }

  return {
    name: 'source:probe',
    provides(metric: MetricName) {
      return metric === 'error_rate' || LATENCY.test(metric);
    },
    async start(ctx: AnalysisContext) {
      url = probeUrl(options.url, ctx.healthUrl);
      running = true;
      const u = url;
      const targets = [...ctx.canary, ...ctx.stable];
      const period = 1000 / rate;
      targets.forEach((target, i) => {
        const tick = () => {
          const n = inFlight.get(target.name) ?? 0;
          if (!running || n >= maxInFlight) return;
          inFlight.set(target.name, n + 1);
          void once(target, ctx, u).finally(() => inFlight.set(target.name, (inFlight.get(target.name) ?? 1) - 1));
        };
        // spread the hosts' first requests over one period, so they do not all fire together
        const first = setTimeout(
          () => {
            tick();
            timers.push(setInterval(tick, period));
          },
          (period * i) / Math.max(1, targets.length),
        );
        timers.push(first);
      });
    },
    async measure(query: MetricQuery): Promise<Measurement> {
      if (!running) throw new MetricSourceError('source:probe', 'metric source unavailable: the probe was not started');
      const names = new Set(query.targets.map((t) => t.name));
      // keep a minute of history before the oldest window asked for
      samples = samples.filter((s) => s.at > query.since - 60_000);
      const mine = samples.filter((s) => names.has(s.target) && s.at > query.since && s.at <= query.until);
      if (mine.length === 0) {
        const down = query.targets.filter((t) => unreachable.has(t.name));
        if (down.length > 0)
          throw new MetricSourceError(
            'source:probe',
            `metric source unavailable: cannot reach ${down.map((t) => `${t.name} (${unreachable.get(t.name)})`).join(', ')}`,
          );
        return { value: Number.NaN, samples: 0, values: [] };
      }
      if (query.metric === 'error_rate') {
        return { value: (100 * mine.filter((s) => s.error).length) / mine.length, samples: mine.length };
      }
      const q = LATENCY.exec(query.metric);
      if (!q) throw new MetricSourceError('source:probe', `the probe does not measure ${query.metric}`);
      const answered = mine.filter((s) => s.latencyMs > 0).map((s) => s.latencyMs);
      return { value: percentile(answered, Number(q[1])), samples: answered.length, values: answered };
    },
    async stop() {
      running = false;
      for (const t of timers) clearTimeout(t);
      timers.length = 0;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}
