import { execFileSync } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FraisierError } from '../../core/errors.js';
import { render } from '../../core/exec/command.js';
import { hostReadCommand, parseHostRead } from '../../plugins/metrics/host.js';
import { AccessLogStore, nginxSource, parseAccessLog, readSinceCommand, summarise } from '../../plugins/metrics/nginx.js';
import { percentile } from '../../core/analysis/stats.js';
import { probeUrl } from '../../plugins/metrics/probe.js';
import { renderPromql, unknownVariables } from '../../plugins/metrics/prometheus.js';
import { nginxLb, renderUpstream } from '../../plugins/nginx-lb.js';

const line = (msec: number, status: number, addr: string, rt: string) =>
  JSON.stringify({ msec: msec.toFixed(3), status: String(status), upstream_addr: addr, upstream_response_time: rt, request_time: rt });

test('the access log parser keeps the last upstream tried, skips foreign lines, and per-pool metrics come from it', () => {
  const text = [
    line(1000.5, 200, '10.0.0.1:8000', '0.010'),
    line(1000.6, 500, '10.0.0.1:8000', '0.020'),
    'not json at all',
    line(1000.7, 200, '10.0.0.2:8000, 10.0.0.1:8000', '0.000, 0.030'),
    line(1000.8, 502, '-', '-'),
    line(1000.9, 200, '10.0.0.2:8000', '0.005'),
    '{"msec":"1001.0","status":"200","upstream_addr":"10.0.0.2:8000","upstream_response_time":"-"}',
  ].join('\n');
  const entries = parseAccessLog(text);
  assert.is(entries.length, 5, 'the line without an upstream and the foreign one are skipped');
  assert.equal(entries[2], { at: 1000700, status: 200, address: '10.0.0.1:8000', latencyMs: 30 });
  const canary = new Set(['10.0.0.1:8000']);
  const er = summarise(entries, canary, 'error_rate', 1000_000, 1001_000);
  assert.is(er.samples, 3);
  assert.ok(Math.abs(er.value - 100 / 3) < 1e-9);
  const p50 = summarise(entries, canary, 'response_latency_p50', 1000_000, 1001_000);
  assert.is(p50.value, 20);
  assert.equal(p50.values, [10, 20, 30]);
  const stable = summarise(entries, new Set(['10.0.0.2:8000']), 'response_latency_p99', 1000_000, 1001_000);
  assert.is(stable.samples, 1, 'an answer without an upstream time gives no latency sample');
  assert.ok(Number.isNaN(summarise(entries, canary, 'error_rate', 1000_600, 1000_650).value), 'an empty window is no data');
});

/** A line exactly as nginx-lb's log_format writes it. */
const nginxLine = (msec: string, status: string, addr: string, rt: string) =>
  `{"msec":"${msec}","status":"${status}","upstream_addr":"${addr}","upstream_response_time":"${rt}","request_time":"0.004"}`;

test('the byte scanner gives what the line parser gives: retries, "-", foreign and unknown lines, other field orders, escapes', () => {
  const lines = [
    nginxLine('1000.500', '200', '10.0.0.1:8000', '0.010'),
    nginxLine('1000.600', '503', '10.0.0.1:8000', '0.020'),
    nginxLine('1000.700', '200', '10.0.0.2:8000, 10.0.0.1:8000', '0.000, 0.030'), // nginx retried: the last one answered
    nginxLine('1000.701', '502', '10.0.0.1:8000, 10.0.0.2:8000', '0.001, -'), // the last one did not answer: no latency
    nginxLine('1000.800', '502', '-', '-'), // no upstream: no pool's request
    nginxLine('1000.810', '404', '', ''),
    nginxLine('1000.900', '200', '10.0.0.9:8000', '0.005'), // an upstream no pool knows
    nginxLine('1000.950', '200', '10.0.0.2:8000', '-'),
    nginxLine('1000.960', '200', '10.0.0.2:8000', '0.001 : 0.002'), // an internal redirect: no number
    'not json at all',
    '{"status":"500","msec":"1000.970","upstream_response_time":"0.040","upstream_addr":"10.0.0.1:8000"}', // another order
    '{"msec":"1000.980","status":"500","upstream_addr":"10.0.0.2:8000","upstream_response_time":"0.050","request_time":"0.050","path":"/\\x"y"}', // escapes
    '{"msec":"1000.990","status":"200","upstream_addr":"10.0.0.2:8000"', // cut: no response time field
    '{"msec":"abc","status":"200","upstream_addr":"10.0.0.1:8000","upstream_response_time":"0.001"}',
    '{}',
  ];
  const text = `${lines.join('\n')}\n`;
  const store = new AccessLogStore();
  store.addLines(Buffer.from(text));
  const entries = parseAccessLog(text);
  const canary = new Set(['10.0.0.1:8000']);
  const stable = new Set(['10.0.0.2:8000']);
  const unknown = new Set(['10.0.0.9:8000']);
  for (const pool of [canary, stable, unknown]) {
    for (const metric of ['error_rate', 'response_latency_p50', 'response_latency_p99'] as const) {
      const a = store.summarise(pool, metric, 1000_000, 1001_000);
      const b = summarise(entries, pool, metric, 1000_000, 1001_000);
      assert.equal({ ...a, values: a.values }, { ...b, values: b.values }, `${[...pool]} ${metric}`);
    }
  }
  assert.is(store.summarise(canary, 'error_rate', 1000_000, 1001_000).samples, 4, 'a retried line counts for the last upstream only');
  assert.is(store.summarise(canary, 'error_rate', 1000_000, 1001_000).value, 50, '2 of 4 answered 5xx');
  assert.equal(store.summarise(canary, 'response_latency_p50', 1000_000, 1001_000).values, [10, 20, 30, 40], 'in log order, "-" left out');
  assert.equal(store.summarise(stable, 'response_latency_p50', 1000_000, 1001_000).values, [50]);
  assert.is(store.summarise(stable, 'error_rate', 1000_000, 1001_000).samples, 5, 'requests without a latency still count for the error rate');
  assert.is(store.summarise(stable, 'error_rate', 1000_000, 1001_000).value, 40);
  assert.is(store.summarise(unknown, 'error_rate', 1000_000, 1001_000).samples, 1);
  assert.is(store.size('-'), 0, "a line without an upstream is nobody's");
  assert.ok(Number.isNaN(store.summarise(canary, 'error_rate', 1000_600, 1000_650).value), 'an empty window is no data');
  assert.throws(() => store.summarise(canary, 'cpu_usage', 1000_000, 1001_000), /does not measure cpu_usage/);
});

test('the byte scanner: a line cut between two reads is read whole with the next bytes; percentiles match the sort', () => {
  const all: string[] = [];
  for (let i = 0; i < 500; i++) {
    const addr = i % 3 === 0 ? '10.0.0.1:8000' : '10.0.0.2:8000';
    all.push(nginxLine(`2000.${String(i).padStart(3, '0')}`, i % 7 === 0 ? '500' : '200', addr, (((i * 37) % 101) / 1000).toFixed(3)));
  }
  const bytes = Buffer.from(`${all.join('\n')}\n`);
  const whole = new AccessLogStore();
  whole.addLines(bytes);
  for (const cut of [1, 57, 130, 131, 4000, bytes.length - 1]) {
    // what the source does: whole lines of the first read, the rest again with the second one
    const split = new AccessLogStore();
    const first = bytes.subarray(0, cut);
    const complete = first.lastIndexOf(10) + 1;
    split.addLines(first, 0, complete);
    split.addLines(bytes.subarray(complete));
    for (const metric of ['error_rate', 'response_latency_p99', 'response_latency_p90'] as const) {
      const a = split.summarise(new Set(['10.0.0.1:8000']), metric, 2000_000, 2001_000);
      const b = whole.summarise(new Set(['10.0.0.1:8000']), metric, 2000_000, 2001_000);
      assert.equal([a.value, a.samples], [b.value, b.samples], `cut at ${cut}: ${metric}`);
    }
  }
  const p99 = whole.summarise(new Set(['10.0.0.1:8000', '10.0.0.2:8000']), 'response_latency_p99', 1999_000, 2001_000);
  assert.is(p99.samples, 500);
  assert.is(p99.value, percentile([...p99.values!], 99), 'exact: the same as the sorted percentile');
  // only (since, until]: the first 100 ms hold 100 requests (msec 2000.000 to 2000.099)
  assert.is(whole.summarise(new Set(['10.0.0.1:8000', '10.0.0.2:8000']), 'error_rate', 1999_000, 2000_099).samples, 100);
  whole.prune(2000_099);
  assert.is(whole.size('10.0.0.1:8000') + whole.size('10.0.0.2:8000'), 400, 'pruned up to 2000.099');
});

test('the nginx source on this machine reads only new whole lines of the file, from 0 again after a rotation; the same through an executor', async () => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const file = `${dir}/access.json`;
  const servers = { h1: '10.0.0.1:8000', h2: '10.0.0.2:8000' };
  const ctx = { traffic: null, canary: [{ name: 'h1', kind: 'ssh' }], stable: [{ name: 'h2', kind: 'ssh' }] } as never;
  const q = (since: number, until: number) => ({
    metric: 'error_rate',
    pool: 'canary' as const,
    targets: [{ name: 'h1', kind: 'ssh' as const }],
    version: 'v2',
    since,
    until,
  });
  const { LocalExecutor } = await import('../../core/exec/local.js');
  try {
    for (const connect of [undefined, async () => new LocalExecutor('nginx')]) {
      writeFileSync(file, `${nginxLine('999.000', '500', servers.h1, '0.001')}\n`); // before the start: skipped
      const source = nginxSource({ accessLog: file, servers, ...(connect ? { connect } : {}) });
      await source.start!(ctx);
      const first = nginxLine('1000.100', '500', servers.h1, '0.001');
      const cut = nginxLine('1000.200', '200', servers.h1, '0.001');
      appendFileSync(file, `${first}\n${cut.slice(0, 40)}`); // nginx is writing the second line
      const r1 = await source.measure(q(1000_000, 1001_000), ctx);
      assert.equal([r1.samples, r1.value], [1, 100], `whole lines only (${connect ? 'executor' : 'file'})`);
      appendFileSync(file, `${cut.slice(40)}\n`);
      const r2 = await source.measure(q(1000_000, 1002_000), ctx);
      assert.equal([r2.samples, r2.value], [2, 50], 'the cut line, read whole next round');
      writeFileSync(file, `${nginxLine('1003.000', '200', servers.h1, '0.001')}\n`); // rotated: a shorter file
      const r3 = await source.measure(q(1002_000, 1004_000), ctx);
      assert.equal([r3.samples, r3.value], [1, 0], 'after a rotation, from the start of the new file');
      await source.stop!();
    }
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
});

test('the log reader reads only the bytes after its offset, from 0 again if the file shrank', () => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const f = `${dir}/access log.json`;
  execFileSync('sh', ['-c', 'printf "one\\ntwo\\n" > "$1"', 'sh', f]);
  const run = (off: number) => execFileSync('sh', ['-c', render(readSinceCommand(f, off))]).toString();
  assert.is(run(4), '8 4\ntwo\n');
  assert.is(run(8), '8 8\n');
  assert.is(run(100), '8 0\none\ntwo\n');
  assert.is(execFileSync('sh', ['-c', render(readSinceCommand(`${dir}/missing`, 3))]).toString(), '0 0\n');
  execFileSync('rm', ['-rf', dir]);
});

test('nginx-lb writes the JSON log_format and access_log only when asked, and refuses a bad path', () => {
  const servers = { h1: '10.0.0.1:8000' };
  assert.not.match(renderUpstream('api', servers), /log_format/);
  const text = renderUpstream('api', servers, { accessLog: '/var/log/nginx/api.json' });
  assert.match(
    text,
    /^log_format fraisier_api escape=json '\{"msec":"\$msec","status":"\$status","upstream_addr":"\$upstream_addr","upstream_response_time":"\$upstream_response_time","request_time":"\$request_time"\}';$/m,
  );
  assert.match(text, /^access_log \/var\/log\/nginx\/api\.json fraisier_api;$/m);
  for (const bad of ['relative.json', '/var/log/x y.json', "/var/log/x';.json", '/var/../etc/passwd']) {
    try {
      nginxLb({ file: '/etc/nginx/fraisier/api.conf', servers, accessLog: bad });
      assert.unreachable(bad);
    } catch (e) {
      assert.instance(e, FraisierError);
      assert.is((e as FraisierError).code, 'E_CONFIG');
      assert.match((e as Error).message, /accessLog must be an absolute path/);
    }
  }
  assert.throws(() => nginxSource({ accessLog: 'x.json' }), /accessLog must be the absolute path/);
});

test('PromQL templates: known variables filled, unknown ones named', () => {
  assert.equal(unknownVariables('rate(x{instance=~"{{address}}",v="{{ version }}"}[{{window}}]) {{instance}} {{ pod }}'), ['instance', 'pod']);
  assert.is(
    renderPromql('x{host=~"{{host}}",pool="{{pool}}",v="{{version}}"}[{{window}}]', {
      host: 'h1|h2',
      address: 'a',
      version: 'v1',
      pool: 'canary',
      window: '30s',
    }),
    'x{host=~"h1|h2",pool="canary",v="v1"}[30s]',
  );
});

test('the probe URL: a path goes on the health-check URL, a full URL stays, anything else is a config error', () => {
  assert.is(probeUrl(undefined, 'http://localhost:8000/health').href, 'http://localhost:8000/health');
  assert.is(probeUrl('/', 'http://localhost:8000/health').href, 'http://localhost:8000/');
  assert.is(probeUrl(undefined, undefined).href, 'http://localhost:8000/');
  assert.is(probeUrl('http://127.0.0.1:9000/x?y=1', 'http://localhost:8000/health').href, 'http://127.0.0.1:9000/x?y=1');
  assert.throws(() => probeUrl('https://localhost/', undefined), /expected an http:\/\/ URL/);
  assert.throws(() => probeUrl('not a url', undefined), /expected a URL/);
});

test('the host read finds the process listening on a port and reads its cpu ticks and memory', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const out = execFileSync('sh', ['-c', hostReadCommand(undefined, port)]).toString();
    const r = parseHostRead(out);
    if (r === null) {
      // ss shows other users' pids only to root: without it, "no process" is the honest answer
      assert.is(out.trim(), 'no-process');
    } else {
      assert.is(r.pid, process.pid);
      assert.ok(r.rssKiB > 1024, `node's RSS in KiB: ${out}`);
      assert.ok(r.hz > 0 && r.uptimeS > 0 && r.ticks >= 0, out);
    }
    assert.is(parseHostRead('no-process\n'), null);
    assert.throws(() => parseHostRead('garbage'), /unexpected \/proc read/);
  } finally {
    server.close();
  }
});

test.run();
