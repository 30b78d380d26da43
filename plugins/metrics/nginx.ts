/**
 * The nginx metric source: analysis with no monitoring system at all. The nginx-lb plugin's `accessLog`
 * option makes nginx write one JSON object per request (`msec`, `status`, `upstream_addr`,
 * `upstream_response_time`); this source reads, from the load balancer's host, only the bytes appended
 * since it started (`tail -c +N` over the existing SSH connection, or locally), and computes the error
 * rate and latency percentiles of each pool, by upstream address.
 */
import { type FileHandle, open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { command } from '../../core/exec/command.js';
import type { Executor } from '../../core/exec/executor.js';
import { SshExecutor, type SshOptions } from '../../core/exec/ssh.js';
import { FraisierError } from '../../core/errors.js';
import { percentileInPlace } from '../../core/analysis/stats.js';
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
  /**
   * Compress each read on the nginx host (`gzip -1` there, inflated here as the bytes arrive): nginx-lb's
   * JSON lines shrink about 30×, so a read of 100,000 new lines moves ~0.4 MB instead of 13 MB. `'auto'`
   * (default): when nginx is reached over SSH (`host`) and `gzip` is on its PATH (checked once, at the
   * start); `true`: whenever the host has `gzip`, also through `connect`; `false`: never. Without `gzip`
   * the read is plain. The measurements are the same either way. Not used when nginx runs on this machine.
   */
  readonly compress?: boolean | 'auto';
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

/** One line read the slow way (fields in any order, `JSON.parse` for a line with escapes); null when not ours. */
function slowLine(line: string): AccessLogEntry | null {
  const addr = field(line, '"upstream_addr":"');
  if (addr !== null && !addr.includes('\\')) {
    return entry(field(line, '"msec":"'), field(line, '"status":"'), addr, field(line, '"upstream_response_time":"'));
  }
  if (!line.includes('\\')) return null;
  try {
    const v = JSON.parse(line) as Record<string, string | undefined>;
    return entry(v['msec'], v['status'], v['upstream_addr'], v['upstream_response_time']);
  } catch {
    return null; // not ours
  }
}

const bytes = (s: string) => Buffer.from(s, 'latin1');
/** The fixed parts of nginx-lb's `log_format`, in its order (see plugins/nginx-lb.ts). */
const MSEC = bytes('{"msec":"');
const STATUS = bytes('","status":"');
const ADDR = bytes('","upstream_addr":"');
const RT = bytes('","upstream_response_time":"');
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/** The position of the next `"` in `buf[i, e)`, or -1 (a loop: cheaper than a native call for a few bytes). */
function quote(buf: Buffer, i: number, e: number): number {
  for (; i < e; i++) if (buf[i] === 34) return i;
  return -1;
}

/** Whether `buf` holds `lit` at `i` (and before `end`). */
function at(buf: Buffer, i: number, end: number, lit: Buffer): boolean {
  if (i + lit.length > end) return false;
  for (let k = 0; k < lit.length; k++) if (buf[i + k] !== lit[k]) return false;
  return true;
}

/**
 * The value of the decimal `buf[s, e)` (digits, at most one `.`), exactly as `Number()` reads it (the
 * digits as an integer over a power of ten is the correctly rounded double); NaN for anything else.
 */
function decimal(buf: Buffer, s: number, e: number): number {
  let m = 0;
  let digits = 0;
  let frac = -1;
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
      if (frac >= 0) frac++;
    } else if (c === 46 && frac < 0) frac = 0;
    else return Number.NaN;
  }
  if (digits === 0 || digits > 15) return Number.NaN;
  return frac > 0 ? m / POW10[frac]! : m;
}

/** Requests of one upstream address, as columns (no object per request). */
class Column {
  at = new Float64Array(1024);
  status = new Uint16Array(1024);
  latency = new Float64Array(1024);
  n = 0;

  push(at: number, status: number, latencyMs: number): void {
    if (this.n === this.at.length) {
      const grow = <T extends Float64Array | Uint16Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.at = grow(this.at);
      this.status = grow(this.status);
      this.latency = grow(this.latency);
    }
    this.at[this.n] = at;
    this.status[this.n] = status;
    this.latency[this.n] = latencyMs;
    this.n++;
  }

  /** Drops the requests logged at or before `before` (epoch ms). */
  prune(before: number): void {
    let w = 0;
    for (let r = 0; r < this.n; r++) {
      if (this.at[r]! <= before) continue;
      if (w !== r) {
        this.at[w] = this.at[r]!;
        this.status[w] = this.status[r]!;
        this.latency[w] = this.latency[r]!;
      }
      w++;
    }
    this.n = w;
  }
}

/**
 * The requests of the access log read so far, by upstream address, in columns: 100,000 lines per round
 * are scanned byte by byte and aggregated with no string, object or array per line.
 */
export class AccessLogStore {
  private readonly columns = new Map<string, Column>();
  /** The addresses seen, as bytes, to find a line's column without making a string of its address. */
  private known: { bytes: Buffer; column: Column }[] = [];
  private scratch = new Float64Array(1024);

  /** The requests of `address` kept (for tests and the bench). */
  size(address: string): number {
    return this.columns.get(address)?.n ?? 0;
  }

  /** Adds one request. */
  add(e: AccessLogEntry): void {
    this.column(e.address).push(e.at, e.status, e.latencyMs);
  }

  /**
   * Adds the whole lines of `buf[start, end)` (a line cut at `end` is left out: the caller reads it again
   * with the next bytes). A line in nginx-lb's format (the fields in its order, no escapes) is read in
   * place; any other line starting with `{` goes through the field search or `JSON.parse`; other lines
   * are skipped. Returns the number of requests added.
   */
  addLines(buf: Buffer, start = 0, end = buf.length): number {
    let added = 0;
    let s = start;
    while (s < end) {
      let nl = buf.indexOf(10, s);
      if (nl < 0 || nl >= end) nl = end;
      if (nl - s >= 2 && buf[s] === 123 /* { */) {
        if (this.fastLine(buf, s, nl)) added++;
        else {
          const e = slowLine(buf.toString('utf8', s, nl));
          if (e) {
            this.add(e);
            added++;
          }
        }
      }
      s = nl + 1;
    }
    return added;
  }

  /** Reads one line of nginx-lb's exact format; false (nothing added) when it is not one. */
  private fastLine(buf: Buffer, s: number, e: number): boolean {
    let i = s + MSEC.length;
    if (!at(buf, s, e, MSEC)) return false;
    let q = quote(buf, i, e);
    if (q < 0) return false;
    const when = decimal(buf, i, q) * 1000;
    if (!at(buf, q, e, STATUS)) return false;
    i = q + STATUS.length;
    q = quote(buf, i, e);
    if (q < 0) return false;
    const status = decimal(buf, i, q);
    if (!at(buf, q, e, ADDR)) return false;
    i = q + ADDR.length;
    q = quote(buf, i, e);
    if (q < 0) return false;
    // the last upstream tried (`a:80, b:80` after retries), trimmed
    let as = i;
    let ae = q;
    for (let k = q - 1; k >= i; k--) {
      const c = buf[k]!;
      if (c === 92 /* \ */) return false;
      if (c === 44 /* , */) {
        as = k + 1;
        break;
      }
    }
    while (as < ae && buf[as] === 32) as++;
    while (ae > as && buf[ae - 1] === 32) ae--;
    if (!at(buf, q, e, RT)) return false;
    i = q + RT.length;
    q = quote(buf, i, e);
    if (q < 0) return false;
    if (!Number.isFinite(when) || !Number.isInteger(status) || status > 999) return false;
    if (ae === as || (ae - as === 1 && buf[as] === 45) /* - */) return true; // no upstream: not a request of a pool
    let rs = i;
    let re = q;
    for (let k = q - 1; k >= i; k--) {
      if (buf[k] === 44) {
        rs = k + 1;
        break;
      }
    }
    while (rs < re && buf[rs] === 32) rs++;
    while (re > rs && buf[re - 1] === 32) re--;
    const rt = decimal(buf, rs, re);
    // `-` (no answer) is no latency sample; anything else unusual is for the slow path to judge
    if (Number.isNaN(rt) && !(re - rs === 1 && buf[rs] === 45) && re !== rs) return false;
    this.columnAt(buf, as, ae).push(when, status, Number.isFinite(rt) ? rt * 1000 : Number.NaN);
    return true;
  }

  private column(address: string): Column {
    let c = this.columns.get(address);
    if (!c) {
      c = new Column();
      this.columns.set(address, c);
      this.known.push({ bytes: Buffer.from(address, 'utf8'), column: c });
    }
    return c;
  }

  private columnAt(buf: Buffer, s: number, e: number): Column {
    const len = e - s;
    for (const k of this.known) {
      if (k.bytes.length !== len) continue;
      let same = true;
      for (let j = 0; j < len; j++) {
        if (buf[s + j] !== k.bytes[j]) {
          same = false;
          break;
        }
      }
      if (same) return k.column;
    }
    return this.column(buf.toString('utf8', s, e));
  }

  /** Drops the requests logged at or before `before` (epoch ms). */
  prune(before: number): void {
    for (const c of this.columns.values()) c.prune(before);
  }

  /** The number of requests kept per address, to undo what a failed read added ({@link rollback}). */
  mark(): Map<string, number> {
    return new Map([...this.columns].map(([a, c]) => [a, c.n]));
  }

  /** Forgets the requests added since {@link mark} gave `m`. */
  rollback(m: ReadonlyMap<string, number>): void {
    for (const [a, c] of this.columns) c.n = Math.min(c.n, m.get(a) ?? 0);
  }

  /**
   * One metric over the requests of `addresses` in `(since, until]`. Error rate: the share answered 5xx.
   * Latency percentile: exact (selection over the window's latencies), with the raw samples in log order.
   */
  summarise(addresses: ReadonlySet<string>, metric: MetricName, since: number, until: number): Measurement {
    const latencyQ = metric === 'error_rate' ? null : LATENCY.exec(metric);
    if (metric !== 'error_rate' && !latencyQ) throw new MetricSourceError('source:nginx', `the nginx source does not measure ${metric}`);
    let requests = 0;
    let errors = 0;
    let n = 0;
    for (const address of addresses) {
      const c = this.columns.get(address);
      if (!c) continue;
      if (latencyQ && this.scratch.length < n + c.n) {
        const b = new Float64Array(Math.max(this.scratch.length * 2, n + c.n));
        b.set(this.scratch.subarray(0, n));
        this.scratch = b;
      }
      const ats = c.at;
      for (let i = 0; i < c.n; i++) {
        const t = ats[i]!;
        if (t <= since || t > until) continue;
        requests++;
        if (latencyQ) {
          const l = c.latency[i]!;
          if (!Number.isNaN(l)) this.scratch[n++] = l;
        } else if (c.status[i]! >= 500) errors++;
      }
    }
    if (requests === 0) return { value: Number.NaN, samples: 0, values: [] };
    if (!latencyQ) return { value: (100 * errors) / requests, samples: requests };
    // the raw samples (for Mann-Whitney) in log order, made into an array only when asked for
    const raw = this.scratch.slice(0, n);
    let values: number[] | undefined;
    return {
      value: percentileInPlace(this.scratch, n, Number(latencyQ[1])),
      samples: n,
      get values(): readonly number[] {
        values ??= Array.from(raw);
        return values;
      },
    };
  }
}

/**
 * Parses the lines of the JSON access log (the fields nginx-lb's `log_format` writes, in any order);
 * lines that are not ours are skipped. The nginx source itself aggregates into an {@link AccessLogStore}
 * with no object per line; this gives the entries for other uses.
 */
export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (end - start >= 2 && text.charCodeAt(start) === 123 /* { */) {
      const e = slowLine(text.slice(start, end));
      if (e) out.push(e);
    }
    start = end + 1;
  }
  return out;
}

/** One metric over the entries of `addresses` in `(since, until]`, as the source computes it. */
export function summarise(entries: readonly AccessLogEntry[], addresses: ReadonlySet<string>, metric: MetricName, since: number, until: number): Measurement {
  const store = new AccessLogStore();
  for (const e of entries) store.add(e);
  return store.summarise(addresses, metric, since, until);
}

/**
 * Prints `<size> <offset used>` then the bytes of `file` from `offset` (from 0 if the file shrank:
 * rotated) to its end: bytes nginx appends meanwhile may come too, and a line cut at the end is not
 * counted (the offset moves by whole lines only), so no `head -c` bounds the read (one copy of every
 * byte fewer on the host). With `gzip`, all of that goes through `gzip -1` on the host, and the command fails (non-zero)
 * when either the read or gzip does (POSIX sh has no pipefail: each side reports its status).
 */
export function readSinceCommand(file: string, offset: number, gzip = false) {
  return {
    ...command(
      'sh',
      '-c',
      'f=$1; off=$2; r() { if [ ! -e "$f" ]; then echo "0 0"; return 0; fi; size=$(stat -c %s "$f") || return 1; if [ "$size" -lt "$off" ]; then off=0; fi; echo "$size $off"; if [ "$size" -gt "$off" ]; then tail -c +"$((off + 1))" "$f"; fi; }; ' +
        'if [ "$3" != gzip ]; then r; exit; fi; ' +
        '{ st=$( { { r; echo "$?" >&3; } | { gzip -1 >&4; echo "$?" >&3; }; } 3>&1 ); } 4>&1; for s in $st; do [ "$s" = 0 ] || exit "$s"; done',
      'sh',
      file,
      String(offset),
      gzip ? 'gzip' : 'plain',
    ),
    label: `read ${file}`,
    readOnly: true,
  };
}

/**
 * Takes a read's output as it arrives (see {@link readSinceCommand}): the `<size> <offset>` line, then the
 * whole lines, scanned into the store in place, chunk by chunk; only a line cut between two chunks is put
 * together, in a small buffer reused from read to read. A line cut at the end of the read is left out
 * (read again next time, from the offset).
 */
class ReadSink {
  /** The offset the host read from (0 after a rotation), once the first line arrived. */
  from: number | null = null;
  /** Bytes of whole lines scanned: the offset moves by this much. */
  consumed = 0;
  private len = 0;

  constructor(
    private readonly store: AccessLogStore,
    /** The buffer of a cut line (grows for a long line; the caller keeps it for the next read). */
    public pending: Buffer,
  ) {}

  push(d: Buffer): void {
    let s = 0;
    if (this.len > 0 || this.from === null) {
      // the end of the cut line (or of the first line) is this chunk's start
      const nl = d.indexOf(10);
      s = nl < 0 ? d.length : nl + 1;
      this.append(d, 0, s);
      if (nl < 0) return;
      if (this.from === null) this.from = Number(this.pending.toString('latin1', 0, this.len).split(' ')[1]) || 0;
      else {
        this.store.addLines(this.pending, 0, this.len);
        this.consumed += this.len;
      }
      this.len = 0;
    }
    const end = d.lastIndexOf(10) + 1;
    if (end > s) {
      this.store.addLines(d, s, end);
      this.consumed += end - s;
      s = end;
    }
    if (s < d.length) this.append(d, s, d.length);
  }

  private append(d: Buffer, s: number, e: number): void {
    if (this.pending.length < this.len + e - s) {
      const b = Buffer.allocUnsafe(Math.max(this.len + e - s, this.pending.length * 2, 4096));
      this.pending.copy(b, 0, 0, this.len);
      this.pending = b;
    }
    this.len += d.copy(this.pending, this.len, s, e);
  }
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
  const store = new AccessLogStore();
  let buffer: Buffer = Buffer.alloc(0);
  let traffic: AnalysisContext['traffic'] = null;
  let reading: { until: number; p: Promise<void> } | null = null;
  /** nginx runs on this machine and no executor was given: the file is read directly. */
  const local = !options.connect && (!options.host || options.host === 'local');
  let started = false;
  /** Compression asked for (see NginxSourceOptions.compress), and found possible at the start (gzip on the host). */
  const wantGzip = options.compress === true || ((options.compress ?? 'auto') === 'auto' && !options.connect && !local);
  let gzip = false;

  /** nginx on this machine: the file itself, read from the offset into the reused buffer (no process, no pipe). */
  async function readLocal(): Promise<void> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        offset = 0;
        return;
      }
      throw new MetricSourceError('source:nginx', `metric source unavailable: reading ${file} on local: ${(err as Error).message}`);
    }
    try {
      const size = (await fh.stat()).size;
      if (size < offset) offset = 0; // rotated: the new file from its start
      const want = size - offset;
      if (want <= 0) return;
      if (buffer.length < want) buffer = Buffer.allocUnsafe(Math.max(want, buffer.length * 2));
      let end = 0;
      while (end < want) {
        const { bytesRead } = await fh.read(buffer, end, want - end, offset + end);
        if (bytesRead === 0) break;
        end += bytesRead;
      }
      const complete = buffer.subarray(0, end).lastIndexOf(10) + 1;
      store.addLines(buffer, 0, complete);
      offset += complete;
    } catch (err) {
      throw new MetricSourceError('source:nginx', `metric source unavailable: reading ${file} on local: ${(err as Error).message}`);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** The read failed: nothing it added stays (the next round reads the same bytes again). */
  function failed(mark: Map<string, number>, message: string): MetricSourceError {
    store.rollback(mark);
    return new MetricSourceError('source:nginx', `metric source unavailable: reading ${file} on ${options.host ?? 'local'}: ${message}`);
  }

  async function readNew(): Promise<void> {
    if (local) {
      if (!started) throw new MetricSourceError('source:nginx', 'metric source unavailable: the nginx source was not started');
      return readLocal();
    }
    if (!exec) throw new MetricSourceError('source:nginx', 'metric source unavailable: the nginx source was not started');
    const mark = store.mark();
    const sink = new ReadSink(store, buffer);
    // compressed: inflated off the main thread (zlib's thread pool) while the next bytes arrive
    const inflate = gzip ? createGunzip({ chunkSize: 256 * 1024 }) : null;
    let inflated: Promise<void> = Promise.resolve();
    if (inflate) {
      inflate.on('data', (d: Buffer) => sink.push(d));
      inflated = new Promise((resolve, reject) => {
        inflate.on('end', resolve);
        inflate.on('error', reject);
      });
      inflated.catch(() => undefined); // awaited below; an early error must not be unhandled meanwhile
    }
    const feed = inflate ? (d: Buffer) => void inflate.write(d) : (d: Buffer) => sink.push(d);
    let streamed = false;
    let r: Awaited<ReturnType<Executor['run']>>;
    try {
      // the bytes are scanned as they arrive: no 13 MB string, no 13 MB buffer
      r = await exec.run(readSinceCommand(file, offset, gzip), {
        check: false,
        timeoutMs: 30_000,
        stdoutChunks: true,
        onStdout: (d) => {
          streamed = true;
          feed(d);
        },
      });
    } catch (err) {
      inflate?.destroy();
      throw failed(mark, err instanceof Error ? err.message : String(err));
    }
    if (r.code !== 0) {
      inflate?.destroy();
      throw failed(mark, `exited ${r.code}: ${r.stderr.trim().slice(0, 200)}`);
    }
    if (!streamed) {
      // an executor without onStdout: its chunks, or its text (never for compressed bytes)
      if (r.stdoutChunks) for (const c of r.stdoutChunks) feed(c);
      else if (inflate) {
        inflate.destroy();
        throw failed(mark, 'the executor gave text, not bytes: a compressed read needs RunOptions.stdoutChunks (set compress: false)');
      } else feed(Buffer.from(r.stdout, 'utf8'));
    }
    if (inflate) {
      inflate.end();
      try {
        await inflated;
      } catch (err) {
        throw failed(mark, `gzip: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    buffer = sink.pending;
    // no `<size> <offset>` line: the read did not run as written (reading from 0 would count everything twice)
    if (sink.from === null) throw failed(mark, 'the read printed nothing');
    // only whole lines: a line nginx is still writing is read next time
    offset = sink.from + sink.consumed;
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
      if (local) {
        // only what nginx logs from now on counts: skip what the file already holds
        try {
          offset = (await stat(file)).size;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
            throw new MetricSourceError('source:nginx', `metric source unavailable: cannot read the size of ${file}: ${(err as Error).message}`);
          offset = 0;
        }
        started = true;
        return;
      }
      try {
        exec = options.connect ? await options.connect() : await SshExecutor.connect(options.host!, options.ssh ?? {});
      } catch (err) {
        throw new MetricSourceError(
          'source:nginx',
          `metric source unavailable: cannot reach the nginx host ${options.host ?? 'local'}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      // only what nginx logs from now on counts: skip what the file already holds; and is gzip there?
      const r = await exec.run(
        {
          ...command(
            'sh',
            '-c',
            'if [ -e "$1" ]; then stat -c %s "$1" || exit; else echo 0; fi; if [ "$2" = yes ] && command -v gzip >/dev/null 2>&1; then echo gzip; fi',
            'sh',
            file,
            wantGzip ? 'yes' : 'no',
          ),
          label: `size of ${file}`,
          readOnly: true,
        },
        { check: false },
      );
      if (r.code !== 0)
        throw new MetricSourceError('source:nginx', `metric source unavailable: cannot read the size of ${file}: ${r.stderr.trim().slice(0, 200)}`);
      const [size, tool] = r.stdout.trim().split('\n');
      offset = Number(size) || 0;
      gzip = tool === 'gzip';
      // (a hand-made context in a test may have no log)
      ctx.log?.info(
        `source:nginx: reading ${file} on ${options.host ?? exec.name}${gzip ? ', compressed on the host (gzip -1)' : wantGzip ? ' uncompressed (no gzip on the host)' : ''}`,
      );
    },
    async measure(q: MetricQuery): Promise<Measurement> {
      // one read per round, shared by every metric and both pools
      if (!reading || reading.until !== q.until) {
        store.prune(q.since - 60_000);
        reading = { until: q.until, p: readNew() };
      }
      await reading.p;
      const addresses = new Set(q.targets.map((t) => addressOf(t)).filter((a): a is string => a !== null));
      return store.summarise(addresses, q.metric, q.since, q.until);
    },
    async stop() {
      buffer = Buffer.alloc(0);
      gzip = false;
      started = false;
      const e = exec;
      exec = null;
      if (e && !options.connect) await e.close().catch(() => undefined);
    },
  };
}
