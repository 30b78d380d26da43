import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FraisierError } from '../../core/errors.js';
import { render } from '../../core/exec/command.js';
import { hostReadCommand, parseHostRead } from '../../plugins/metrics/host.js';
import { nginxSource, parseAccessLog, readSinceCommand, summarise } from '../../plugins/metrics/nginx.js';
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
