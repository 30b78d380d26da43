/**
 * The nginx source's read from another host (plugins/metrics/nginx.ts): plain or compressed on the host
 * (`gzip -1`, inflated as it arrives), whole or in chunks of any size, it gives the same measurements
 * (error rate, exact percentiles, raw samples) on the same log: lines of nginx-lb's format and of others,
 * a line cut at the end of a read, a rotation. Without gzip on the host the read is plain; a read or a
 * gzip failing half-way is a source error naming the host and the file, and adds nothing.
 * The "host" is this machine, reached through a LocalExecutor (the SSH path is in test/e2e/analysis-nginx).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MetricName, MetricSource } from '../../core/analysis/types.js';
import type { Command } from '../../core/exec/command.js';
import type { ExecResult, Executor, RunOptions } from '../../core/exec/executor.js';
import { LocalExecutor } from '../../core/exec/local.js';
import { nginxSource } from '../../plugins/metrics/nginx.js';

const servers = { h1: '10.0.0.1:8000', h2: '10.0.0.2:8000', h3: '10.0.0.3:8000' };
const logged: string[] = [];
const ctx = {
  log: { info: (m: string) => logged.push(m), warn: () => {}, error: () => {} },
  traffic: null,
  canary: [{ name: 'h1', kind: 'ssh' }],
  stable: [
    { name: 'h2', kind: 'ssh' },
    { name: 'h3', kind: 'ssh' },
  ],
} as never;
const METRICS: MetricName[] = ['error_rate', 'response_latency_p50', 'response_latency_p99'];

/** A line exactly as nginx-lb's log_format writes it. */
const nginxLine = (msec: string, status: string, addr: string, rt: string) =>
  `{"msec":"${msec}","status":"${status}","upstream_addr":"${addr}","upstream_response_time":"${rt}","request_time":"0.004"}`;

/** `n` requests from `t0` (epoch s), every kind of line the source meets mixed in. */
function block(t0: number, n: number): string {
  const out: string[] = [];
  const addrs = Object.values(servers);
  for (let i = 0; i < n; i++) {
    const msec = (t0 + i / 1000).toFixed(3);
    const addr = addrs[i % 3]!;
    const status = i % 7 === 0 ? '502' : i % 11 === 0 ? '404' : '200';
    const rt = (((i * 7919) % 997) / 1000).toFixed(3);
    if (i % 50 === 1)
      out.push(nginxLine(msec, status, `${addrs[(i + 1) % 3]}, ${addr}`, `0.001, ${rt}`)); // retried
    else if (i % 50 === 2)
      out.push(nginxLine(msec, '502', addr, '-')); // no answer
    else if (i % 50 === 3)
      out.push(`{"status":"${status}","msec":"${msec}","upstream_response_time":"${rt}","upstream_addr":"${addr}"}`); // another order
    else if (i % 50 === 4)
      out.push(`{"msec":"${msec}","status":"${status}","upstream_addr":"${addr}","upstream_response_time":"${rt}","path":"/\\x\\"y"}`); // escapes
    else if (i % 50 === 5) out.push('not json at all', '');
    else out.push(nginxLine(msec, status, addr, rt));
  }
  return `${out.join('\n')}\n`;
}

/** Wraps an executor: records each command's last argument, and hands stdout to onStdout in pieces of every size. */
class ChunkingExecutor implements Executor {
  readonly name = 'nginx';
  readonly stats = { commands: 0, busyMs: 0 };
  readonly modes: string[] = [];
  private seed = 7;
  constructor(
    private readonly inner: Executor,
    private readonly pieces: boolean,
  ) {}
  async run(cmd: Command, options: RunOptions = {}): Promise<ExecResult> {
    this.modes.push(String(cmd.steps[0]!.at(-1)));
    if (!this.pieces || !options.onStdout) return this.inner.run(cmd, options);
    const { onStdout, ...rest } = options;
    const r = await this.inner.run(cmd, { ...rest, stdoutChunks: true });
    const all = Buffer.concat(r.stdoutChunks ?? []);
    for (let i = 0; i < all.length; ) {
      this.seed = (this.seed * 1103515245 + 12345) % 2 ** 31;
      const n = 1 + (this.seed % 3000);
      onStdout(all.subarray(i, i + n));
      i += n;
    }
    return { ...r, stdoutChunks: [] };
  }
  connectTcp(): never {
    throw new Error('not used');
  }
  async close(): Promise<void> {}
}

/** Every measurement of both pools over `(since, until]`, raw samples included. */
async function measureAll(source: MetricSource, since: number, until: number) {
  const out: Record<string, unknown> = {};
  for (const [pool, targets] of [
    ['canary', [{ name: 'h1', kind: 'ssh' as const }]],
    [
      'stable',
      [
        { name: 'h2', kind: 'ssh' as const },
        { name: 'h3', kind: 'ssh' as const },
      ],
    ],
  ] as const) {
    for (const metric of METRICS) {
      const m = await source.measure({ metric, pool, targets, version: 'v', since, until }, ctx);
      out[`${pool} ${metric}`] = { value: m.value, samples: m.samples, values: m.values ? [...m.values] : null };
    }
  }
  return out;
}

/** A directory with sh, stat, tail, head and cat, and a `gzip` given as a script (or none), to put first on PATH. */
function fakeBin(dir: string, gzip: string | null): string {
  mkdirSync(dir, { recursive: true });
  for (const tool of ['sh', 'stat', 'tail', 'head', 'cat'])
    symlinkSync(
      execFileSync('sh', ['-c', `command -v ${tool}`])
        .toString()
        .trim(),
      `${dir}/${tool}`,
    );
  if (gzip !== null) {
    writeFileSync(`${dir}/gzip`, `#!/bin/sh\n${gzip}\n`);
    chmodSync(`${dir}/gzip`, 0o755);
  }
  return dir;
}

/** An executor whose commands see only `bin` on PATH. */
function withPath(inner: Executor, bin: string): Executor {
  return {
    name: inner.name,
    stats: inner.stats,
    run: (cmd, o) => inner.run({ ...cmd, env: { ...cmd.env, PATH: bin } }, o),
    connectTcp: (h, p) => inner.connectTcp(h, p),
    close: () => inner.close(),
  };
}

test('plain or compressed, whole or in pieces of any size: every measurement the same, over cut lines and a rotation', async () => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const file = `${dir}/access.json`;
  try {
    writeFileSync(file, block(990, 300)); // before the start: skipped by every reader
    const readers: Record<string, { source: MetricSource; exec: ChunkingExecutor | null }> = {
      file: { source: nginxSource({ accessLog: file, servers }), exec: null },
      ...Object.fromEntries(
        (
          [
            ['plain', false, false],
            ['plain in pieces', false, true],
            ['gzip', true, false],
            ['gzip in pieces', true, true],
          ] as const
        ).map(([name, compress, pieces]) => {
          const exec = new ChunkingExecutor(new LocalExecutor('nginx'), pieces);
          return [name, { source: nginxSource({ accessLog: file, servers, compress, connect: async () => exec }), exec }];
        }),
      ),
    };
    for (const r of Object.values(readers)) await r.source.start!(ctx);
    const rounds: [string, () => void, number, number][] = [
      [
        'a block and half a line',
        () => appendFileSync(file, `${block(1000, 3000)}${nginxLine('1003.500', '500', servers.h1, '0.900').slice(0, 50)}`),
        999_000,
        1004_000,
      ],
      [
        'the rest of the line and more',
        () => appendFileSync(file, `${nginxLine('1003.500', '500', servers.h1, '0.900').slice(50)}\n${block(1004, 2000)}`),
        1003_000,
        1007_000,
      ],
      ['nothing new', () => {}, 1000_000, 1007_500],
      ['rotated: a shorter file', () => writeFileSync(file, block(1010, 500)), 1007_000, 1011_000],
    ];
    for (const [what, write, since, until] of rounds) {
      write();
      const all: Record<string, Record<string, unknown>> = {};
      for (const [name, r] of Object.entries(readers)) all[name] = await measureAll(r.source, since, until);
      for (const name of Object.keys(readers)) assert.equal(all[name], all['file'], `${what}: ${name} measures what the file read measures`);
      assert.ok((all['file']!['canary error_rate'] as { samples: number }).samples > 0 || what === 'nothing new', `${what}: requests counted`);
    }
    const cut = (await measureAll(readers['gzip']!.source, 1003_400, 1003_600))['canary error_rate'] as { samples: number; value: number };
    assert.ok(cut.samples > 0, 'the line cut at the end of a read was counted once, whole');
    assert.equal(readers['gzip']!.exec!.modes, ['yes', 'gzip', 'gzip', 'gzip', 'gzip', 'gzip'], 'the start asks for gzip, every read is compressed');
    assert.equal(readers['plain']!.exec!.modes, ['no', 'plain', 'plain', 'plain', 'plain']);
    for (const r of Object.values(readers)) await r.source.stop!();
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
});

test('no gzip on the host: the read is plain, with the same measurements', async () => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const file = `${dir}/access.json`;
  try {
    writeFileSync(file, '');
    const exec = new ChunkingExecutor(withPath(new LocalExecutor('nginx'), fakeBin(`${dir}/bin`, null)), true);
    const source = nginxSource({ accessLog: file, servers, compress: true, connect: async () => exec });
    const reference = nginxSource({ accessLog: file, servers });
    await source.start!(ctx);
    await reference.start!(ctx);
    appendFileSync(file, block(1000, 2000));
    assert.equal(await measureAll(source, 999_000, 1003_000), await measureAll(reference, 999_000, 1003_000));
    assert.equal(exec.modes, ['yes', 'plain'], 'gzip was asked for, not found at the start, and the read is plain');
    assert.equal(logged.at(-1), `source:nginx: reading ${file} on nginx uncompressed (no gzip on the host)`);
    await source.stop!();
    await reference.stop!();
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
});

test('a read or a gzip failing half-way is a source error naming the host and the file, and adds nothing', async () => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const file = `${dir}/access.json`;
  const gzipPath = execFileSync('sh', ['-c', 'command -v gzip']).toString().trim();
  try {
    writeFileSync(file, '');
    const cases: [string, string, RegExp][] = [
      ['gzip dies half-way', `${gzipPath} -1 | head -c 3000; exit 1`, /reading .*access\.json on local: exited \d+/],
      ['gzip stops half-way, exit 0', `${gzipPath} -1 | head -c 3000; cat > /dev/null`, /reading .*access\.json on local: gzip: unexpected end of file/],
    ];
    for (const [what, script, error] of cases) {
      const bin = fakeBin(`${dir}/bin-${cases.findIndex((c) => c[0] === what)}`, script);
      let broken = true;
      const inner = new LocalExecutor('nginx');
      const exec: Executor = { ...withPath(inner, bin), run: (cmd, o) => (broken ? withPath(inner, bin).run(cmd, o) : inner.run(cmd, o)) };
      const source = nginxSource({ accessLog: file, servers, compress: true, connect: async () => exec });
      const reference = nginxSource({ accessLog: file, servers });
      await source.start!(ctx);
      await reference.start!(ctx);
      appendFileSync(file, block(1000, 3000));
      const err = await source
        .measure({ metric: 'error_rate', pool: 'canary', targets: [{ name: 'h1', kind: 'ssh' }], version: 'v', since: 999_000, until: 1004_000 }, ctx)
        .then(
          () => null,
          (e: Error) => e,
        );
      assert.ok(err, `${what}: the round fails`);
      assert.is(err!.name, 'MetricSourceError', what);
      assert.match(err!.message, error, what);
      broken = false; // the host's gzip works again: the next round reads the same bytes, each request once
      assert.equal(await measureAll(source, 999_000, 1005_000), await measureAll(reference, 999_000, 1005_000), `${what}: then every request once`);
      await source.stop!();
      await reference.stop!();
    }
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
});

test('a read that prints nothing (not even the size line) is a source error, not a read from the start of the file', async () => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const file = `${dir}/access.json`;
  try {
    writeFileSync(file, block(990, 100));
    const inner = new LocalExecutor('nginx');
    let silent = false;
    const exec: Executor = {
      name: 'nginx',
      stats: inner.stats,
      connectTcp: (h, p) => inner.connectTcp(h, p),
      close: async () => {},
      run: async (cmd, o) => (silent ? { code: 0, stdout: '', stderr: '', stdoutChunks: [], durationMs: 0 } : inner.run(cmd, o)),
    };
    const source = nginxSource({ accessLog: file, servers, connect: async () => exec });
    const reference = nginxSource({ accessLog: file, servers });
    await source.start!(ctx);
    await reference.start!(ctx);
    appendFileSync(file, block(1000, 100));
    silent = true;
    const q = {
      metric: 'error_rate' as const,
      pool: 'canary' as const,
      targets: [{ name: 'h1', kind: 'ssh' as const }],
      version: 'v',
      since: 0,
      until: 1001_000,
    };
    await source.measure(q, ctx).then(
      () => assert.unreachable('a silent read must fail'),
      (e: Error) => assert.match(e.message, /reading .*access\.json on local: the read printed nothing/),
    );
    silent = false;
    assert.equal(await measureAll(source, 0, 1002_000), await measureAll(reference, 0, 1002_000), 'then the lines since the start, once');
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
});

test.run();
