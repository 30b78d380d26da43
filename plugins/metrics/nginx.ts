/**
 * The nginx metric source: analysis with no monitoring system at all. The nginx-lb plugin's `accessLog`
 * option makes nginx write one JSON object per request (`msec`, `status`, `upstream_addr`,
 * `upstream_response_time`); this source reads, from the load balancer's host, only the bytes appended
 * since it started (`tail -c +N` over the existing SSH connection, or locally), and computes the error
 * rate and latency percentiles of each pool, by upstream address.
 */
import { command } from '../../core/exec/command.js';
import type { Executor } from '../../core/exec/executor.js';
import { LocalExecutor } from '../../core/exec/local.js';
import { SshExecutor, type SshOptions } from '../../core/exec/ssh.js';
import { FraisierError } from '../../core/errors.js';
import { percentile } from '../../core/analysis/stats.js';
import { type AnalysisContext, type Measurement, type MetricName, type MetricQuery, type MetricSource, MetricSourceError } from '../../core/analysis/types.js';
import type { Target } from '../../core/types.js';

/** Options of {@link nginxSource}. */
export interface NginxSourceOptions {
  /** The JSON access log written by nginx-lb's `accessLog` option (absolute path on the nginx host). */
  readonly accessLog: string;
  /** Where nginx runs: `'local'` (default) or an SSH host alias. */
  readonly host?: string;
  /** SSH options for `host`. */
  readonly ssh?: SshOptions;
  /** How the nginx host is reached (tests pass their own executor). Default: local, or SSH to `host`. */
  readonly connect?: () => Promise<Executor>;
  /** Upstream address per target name (`{ h1: '10.0.0.11:8000' }`); default: the traffic plugin's `addressOf`. */
  readonly servers?: Readonly<Record<string, string>>;
}

/** One request of the access log. */
export interface AccessLogEntry {
  /** Epoch ms when nginx logged it. */
  readonly at: number;
  readonly status: number;
  /** The upstream that answered last (nginx lists every one it tried). */
  readonly address: string;
  /** Time of that last upstream's answer, in ms; NaN when there was none. */
  readonly latencyMs: number;
}

const LATENCY = /^response_latency_p(\d{1,2}(?:\.\d+)?)$/;

/** The last item of nginx's comma-separated lists (`$upstream_addr` after retries: `a:80, b:80`). */
function last(v: string): string {
  const i = v.lastIndexOf(',');
  return (i < 0 ? v : v.slice(i + 1)).trim();
}

/** The string value of `"key":"..."` in one line, or null (fast path: no escapes in our fields). */
function field(line: string, key: string): string | null {
  const k = line.indexOf(key);
  if (k < 0) return null;
  const v = k + key.length;
  const q = line.indexOf('"', v);
  return q < 0 ? null : line.slice(v, q);
}

function entry(
  msec: string | undefined | null,
  status: string | undefined | null,
  addr: string | undefined | null,
  rt: string | undefined | null,
): AccessLogEntry | null {
  const at = Number(msec) * 1000;
  const code = Number(status);
  if (!addr || !Number.isFinite(at) || !Number.isFinite(code) || msec === '' || status === '') return null;
  const address = last(addr);
  if (address === '' || address === '-') return null;
  const t = Number(last(rt ?? '-'));
  return { at, status: code, address, latencyMs: Number.isFinite(t) && rt !== '' ? t * 1000 : Number.NaN };
}

/**
 * Parses the lines of the JSON access log (the fields nginx-lb's `log_format` writes, in any order);
 * lines that are not ours are skipped. Reads the four fields by position, without building a JSON object
 * per line (100,000 lines per round must stay cheap), and falls back to `JSON.parse` for a line with escapes.
 */
export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (end - start >= 2 && text.charCodeAt(start) === 123 /* { */) {
      const line = text.slice(start, end);
      let e: AccessLogEntry | null = null;
      const addr = field(line, '"upstream_addr":"');
      if (addr !== null && !addr.includes('\\')) {
        e = entry(field(line, '"msec":"'), field(line, '"status":"'), addr, field(line, '"upstream_response_time":"'));
      } else if (line.includes('\\')) {
        try {
          const v = JSON.parse(line) as Record<string, string | undefined>;
          e = entry(v['msec'], v['status'], v['upstream_addr'], v['upstream_response_time']);
        } catch {
          // not ours
        }
      }
      if (e) out.push(e);
    }
    start = end + 1;
  }
  return out;
}

/** The entries in `(since, until]`, grouped by upstream address (one pass, shared by every query of a round). */
export function byAddress(entries: readonly AccessLogEntry[], since: number, until: number): Map<string, AccessLogEntry[]> {
  const out = new Map<string, AccessLogEntry[]>();
  for (const e of entries) {
    if (e.at <= since || e.at > until) continue;
    const list = out.get(e.address);
    if (list) list.push(e);
    else out.set(e.address, [e]);
  }
  return out;
}

/** One metric over the entries of `addresses` in `(since, until]`: what the source returns. */
export function summarise(
  entries: readonly AccessLogEntry[] | ReadonlyMap<string, readonly AccessLogEntry[]>,
  addresses: ReadonlySet<string>,
  metric: MetricName,
  since: number,
  until: number,
): Measurement {
  const grouped = Array.isArray(entries) ? byAddress(entries, since, until) : (entries as ReadonlyMap<string, readonly AccessLogEntry[]>);
  const mine = [...addresses].flatMap((a) => grouped.get(a) ?? []);
  if (mine.length === 0) return { value: Number.NaN, samples: 0, values: [] };
  if (metric === 'error_rate') return { value: (100 * mine.filter((e) => e.status >= 500).length) / mine.length, samples: mine.length };
  const q = LATENCY.exec(metric);
  if (!q) throw new MetricSourceError('source:nginx', `the nginx source does not measure ${metric}`);
  const values = mine.filter((e) => Number.isFinite(e.latencyMs)).map((e) => e.latencyMs);
  return { value: percentile(values, Number(q[1])), samples: values.length, values };
}

/** Prints `<size> <offset used>` then the bytes of `file` from `offset` (from 0 if the file shrank: rotated). */
export function readSinceCommand(file: string, offset: number) {
  return {
    ...command(
      'sh',
      '-c',
      'f=$1; off=$2; if [ ! -e "$f" ]; then echo "0 0"; exit 0; fi; size=$(stat -c %s "$f"); if [ "$size" -lt "$off" ]; then off=0; fi; echo "$size $off"; if [ "$size" -gt "$off" ]; then tail -c +"$((off + 1))" "$f" | head -c "$((size - off))"; fi',
      'sh',
      file,
      String(offset),
    ),
    label: `read ${file}`,
    readOnly: true,
  };
}

/**
 * Creates the nginx source. It provides `error_rate` (percent of requests answered 5xx by nginx, per
 * upstream address) and `response_latency_pNN` (ms, `$upstream_response_time`; raw samples included).
 * A read that fails (the host unreachable, the file unreadable) is a {@link MetricSourceError}.
 */
export function nginxSource(options: NginxSourceOptions): MetricSource {
  if (typeof options?.accessLog !== 'string' || !options.accessLog.startsWith('/')) {
    throw new FraisierError(
      'E_CONFIG',
      `source:nginx: accessLog must be the absolute path of nginx-lb's JSON access log, got ${JSON.stringify(options?.accessLog)}`,
      { key: 'access_log' },
    );
  }
  const file = options.accessLog;
  let exec: Executor | null = null;
  let offset = 0;
  let entries: AccessLogEntry[] = [];
  let traffic: AnalysisContext['traffic'] = null;
  let reading: { until: number; p: Promise<Map<string, AccessLogEntry[]>> } | null = null;

  async function readNew(): Promise<void> {
    if (!exec) throw new MetricSourceError('source:nginx', 'metric source unavailable: the nginx source was not started');
    let r: Awaited<ReturnType<Executor['run']>>;
    try {
      r = await exec.run(readSinceCommand(file, offset), { check: false, timeoutMs: 30_000 });
    } catch (err) {
      throw new MetricSourceError(
        'source:nginx',
        `metric source unavailable: reading ${file} on ${options.host ?? 'local'}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (r.code !== 0)
      throw new MetricSourceError('source:nginx', `metric source unavailable: reading ${file} exited ${r.code}: ${r.stderr.trim().slice(0, 200)}`);
    const nl = r.stdout.indexOf('\n');
    const head = (nl < 0 ? r.stdout : r.stdout.slice(0, nl)).split(' ').map(Number);
    const from = head[1] ?? 0;
    const data = nl < 0 ? '' : r.stdout.slice(nl + 1);
    // only whole lines: a line nginx is still writing is read next time
    const complete = data.lastIndexOf('\n') + 1;
    for (const e of parseAccessLog(data.slice(0, complete))) entries.push(e);
    offset = from + Buffer.byteLength(data.slice(0, complete));
  }

  function addressOf(t: Target): string | null {
    return options.servers?.[t.name] ?? traffic?.addressOf(t) ?? null;
  }

  return {
    name: 'source:nginx',
    provides(metric: MetricName) {
      return metric === 'error_rate' || LATENCY.test(metric);
    },
    async start(ctx: AnalysisContext) {
      traffic = ctx.traffic;
      for (const t of [...ctx.canary, ...ctx.stable]) {
        if (!addressOf(t))
          throw new FraisierError('E_CONFIG', `source:nginx: no upstream address for ${t.name}: give servers, or use it with the nginx-lb plugin`, {
            key: 'servers',
          });
      }
      try {
        exec = options.connect
          ? await options.connect()
          : !options.host || options.host === 'local'
            ? new LocalExecutor('nginx')
            : await SshExecutor.connect(options.host, options.ssh ?? {});
      } catch (err) {
        throw new MetricSourceError(
          'source:nginx',
          `metric source unavailable: cannot reach the nginx host ${options.host ?? 'local'}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      // only what nginx logs from now on counts: skip what the file already holds
      const r = await exec.run(
        { ...command('sh', '-c', 'if [ -e "$1" ]; then stat -c %s "$1"; else echo 0; fi', 'sh', file), label: `size of ${file}`, readOnly: true },
        { check: false },
      );
      if (r.code !== 0)
        throw new MetricSourceError('source:nginx', `metric source unavailable: cannot read the size of ${file}: ${r.stderr.trim().slice(0, 200)}`);
      offset = Number(r.stdout.trim()) || 0;
    },
    async measure(q: MetricQuery): Promise<Measurement> {
      // one read per round, shared by every metric and both pools
      if (!reading || reading.until !== q.until) {
        entries = entries.filter((e) => e.at > q.since - 60_000);
        reading = { until: q.until, p: readNew().then(() => byAddress(entries, q.since, q.until)) };
      }
      const grouped = await reading.p;
      const addresses = new Set(q.targets.map((t) => addressOf(t)).filter((a): a is string => a !== null));
      return summarise(grouped, addresses, q.metric, q.since, q.until);
    },
    async stop() {
      const e = exec;
      exec = null;
      if (e && !options.connect) await e.close().catch(() => undefined);
    },
  };
}
