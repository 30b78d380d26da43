/**
 * The host metric source: CPU and memory of the service on each host, read from /proc over the host's
 * existing SSH connection (one short command per host and round; nothing installed on the host).
 */
import { command as cmd, quote } from '../../core/exec/command.js';
import { FraisierError } from '../../core/errors.js';
import { type AnalysisContext, type Measurement, type MetricName, type MetricQuery, type MetricSource, MetricSourceError } from '../../core/analysis/types.js';
import type { Target } from '../../core/types.js';

/** Options of {@link hostSource}. */
export interface HostSourceOptions {
  /**
   * The service whose main process is measured: a supervisor program (`supervisorctl pid`) or a systemd
   * unit (`MainPID`). Default: `AnalysisContext.service`, else the process listening on `port`.
   */
  readonly service?: { readonly type: 'supervisor' | 'systemd'; readonly name: string };
  /** The TCP port the service listens on, to find its process when no service is known (`ss -ltnp`). Default: the health-check URL's port, else 8000. */
  readonly port?: number;
}

/** One read of a host: the process, its CPU ticks, its resident memory, the host's uptime. */
interface Reading {
  readonly pid: number;
  readonly ticks: number;
  readonly rssKiB: number;
  readonly uptimeS: number;
  readonly hz: number;
}

/** The shell command that prints `pid ticks rss_kib uptime_s hz` for the service's main process. */
export function hostReadCommand(service: HostSourceOptions['service'], port: number): string {
  let pid: string;
  if (service?.type === 'supervisor') pid = `supervisorctl pid ${quote(service.name)}`;
  else if (service?.type === 'systemd') pid = `systemctl show -p MainPID --value ${quote(service.name)}`;
  else pid = `ss -Hltnp ${quote(`sport = :${port}`)} | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2`;
  return [
    `pid=$(${pid} 2>/dev/null)`,
    'case "$pid" in ""|0|*[!0-9]*) echo "no-process"; exit 0;; esac',
    // fields 14-17 of /proc/<pid>/stat: utime stime cutime cstime (after the ")" that ends the command name)
    `ticks=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12+$13+$14+$15}')`,
    `rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")`,
    `echo "$pid $ticks $rss $(cut -d' ' -f1 /proc/uptime) $(getconf CLK_TCK)"`,
  ].join('; ');
}

/** Parses {@link hostReadCommand}'s output; null when no process runs. */
export function parseHostRead(out: string): Reading | null {
  const line = out.trim();
  if (line === 'no-process') return null;
  const [pid, ticks, rss, uptime, hz] = line.split(/\s+/).map(Number);
  if (![pid, ticks, rss, uptime, hz].every((v) => Number.isFinite(v))) throw new Error(`unexpected /proc read: ${JSON.stringify(line.slice(0, 200))}`);
  return { pid: pid!, ticks: ticks!, rssKiB: rss!, uptimeS: uptime!, hz: hz! };
}

/**
 * Creates the host source. It provides `cpu_usage` (percent of one core, averaged over the pool's hosts,
 * over the time since the previous read of that host) and `memory_usage` (resident MiB, averaged over
 * the pool's hosts). A host whose service restarted since the previous read gives no CPU sample that round.
 */
export function hostSource(options: HostSourceOptions = {}): MetricSource {
  const previous = new Map<string, Reading>();
  /** One read per host and window, shared by cpu_usage and memory_usage. */
  const reads = new Map<string, Promise<{ now: Reading | null; before: Reading | undefined }>>();
  let command = hostReadCommand(options.service, options.port ?? 8000);

  function read(target: Target, ctx: AnalysisContext, until: number) {
    const key = `${target.name}@${until}`;
    let p = reads.get(key);
    if (!p) {
      p = (async () => {
        const res = await ctx
          .executor(target)
          .run({ ...cmd('sh', '-c', command), label: 'read the service in /proc', readOnly: true }, { check: false, timeoutMs: 15_000 });
        if (res.code !== 0)
          throw new MetricSourceError(
            'source:host',
            `metric source unavailable: reading /proc on ${target.name} exited ${res.code}: ${res.stderr.trim().slice(0, 200)}`,
          );
        const now = parseHostRead(res.stdout);
        const before = previous.get(target.name);
        if (now) previous.set(target.name, now);
        return { now, before };
      })();
      for (const k of reads.keys()) if (k.startsWith(`${target.name}@`) && k !== key) reads.delete(k);
      reads.set(key, p);
    }
    return p;
  }

  return {
    name: 'source:host',
    provides(metric: MetricName) {
      return metric === 'cpu_usage' || metric === 'memory_usage';
    },
    async start(ctx: AnalysisContext) {
      let port = options.port;
      if (port === undefined && ctx.healthUrl) {
        try {
          const u = new URL(ctx.healthUrl);
          port = Number(u.port || 80);
        } catch {
          throw new FraisierError('E_CONFIG', `analysis host source: cannot read the port of the health-check URL ${JSON.stringify(ctx.healthUrl)}`);
        }
      }
      command = hostReadCommand(options.service ?? ctx.service, port ?? 8000);
      // a first read per host, so the first round's cpu_usage covers the time since the start
      await Promise.all([...ctx.canary, ...ctx.stable].map((t) => read(t, ctx, ctx.now()).catch(() => undefined)));
    },
    async measure(query: MetricQuery, ctx: AnalysisContext): Promise<Measurement> {
      const values: number[] = [];
      for (const r of await Promise.all(query.targets.map((t) => read(t, ctx, query.until)))) {
        if (!r.now) continue;
        if (query.metric === 'memory_usage') values.push(r.now.rssKiB / 1024);
        else if (r.before && r.before.pid === r.now.pid && r.now.uptimeS > r.before.uptimeS) {
          values.push((100 * (r.now.ticks - r.before.ticks)) / r.now.hz / (r.now.uptimeS - r.before.uptimeS));
        }
      }
      if (values.length === 0) return { value: Number.NaN, samples: 0, values };
      return { value: values.reduce((a, b) => a + b, 0) / values.length, samples: values.length, values };
    },
  };
}
