/**
 * End to end, under load: whole canary deployments through `fraisier deploy` (the CLI) on the lab's three
 * hosts (one canary, two stable) behind a real nginx (foreground, started and stopped by pid by this test)
 * whose upstream file, weights and JSON access log are written by the nginx-lb plugin. wrk (keep-alive)
 * sends GET / through nginx for the whole of each loaded deployment, started and ended by pid. The
 * analysis reads nginx's access log (the `nginx` source): no Prometheus is installed or configured for
 * these runs.
 * - a good release goes through 10 %, 25 % and 50 %: the canary's share of requests, counted AT THE APP
 *   (each host's `http_requests_total` delta over the step), is within ±5 points of each step; after the
 *   promotion every request is answered by the new release;
 * - the 5xx release is aborted at the first analysis round with enough samples: the stable hosts are not
 *   restarted, the canary is back on the old release, and the failed requests wrk saw stay under
 *   canary share × 20 % of its requests (+ a small margin; the figure is printed);
 * - the slow release (+300 ms) is aborted by the p99 latency comparison with the stable pool;
 * - with no traffic at all the analysis is inconclusive and the canary is not promoted;
 * - a Prometheus that is down (a closed port) gives "metric source unavailable", then the
 *   consecutive-error limit aborts the canary.
 * Traffic: loopback (wrk → nginx) and the lab's own addresses (nginx → the hosts' :8000, /metrics reads).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderUpstream } from '../../plugins/nginx-lb.js';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { allHosts, fraisier, fraisierLive, lab, resetHosts, workspace } from './helpers.js';
import { appCounters, freePort, get, type KeepAliveResult, sleep, startKeepAliveLoad } from './traffic.js';

let env: LabEnv;
let dir: string;
let ws: string;
let nginx: ChildProcess | undefined;
let port: number;
const servers: Record<string, string> = {};
const upstreamFile = () => join(dir, 'upstream.conf');
const accessLog = () => join(dir, 'access.json');
const CLI_MS = 600_000; // a canary deployment under load on a loaded 2-core machine takes minutes
const current = async () => (await allHosts(env)).map((h) => h.current);

/** Every host's counters at one moment. */
const snapshot = async () => Object.fromEntries(await Promise.all(env.hosts.map(async (h) => [h.name, await appCounters(h.address, env.appPort)] as const)));
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/** Share (percent) of the GET / answers between two snapshots that `pick` hosts gave, and the total. */
function shareBetween(a: Snapshot, b: Snapshot, pick: (host: string, s: Snapshot) => boolean): { share: number; total: number } {
  let total = 0;
  let picked = 0;
  for (const h of Object.keys(a)) {
    const d = b[h]!.requests - a[h]!.requests;
    total += d;
    if (pick(h, b)) picked += d;
  }
  return { share: total > 0 ? (100 * picked) / total : Number.NaN, total };
}

/** The app's supervisor pid on each host (a restart changes it). */
const pids = async () => Promise.all(env.hosts.map(async (h) => (await hostExec(env, h.name, 'supervisorctl pid app')).stdout.trim()));

/**
 * `fraisier <args>` in the workspace, calling `onLine` with each output line as it is printed (the test
 * follows the canary's steps live); resolves with the exit code and the whole output.
 */
const cli = (args: string[], onLine?: (line: string) => void) => fraisierLive(ws, args, onLine, CLI_MS);

/** The canary fraises.yaml for the lab behind the test nginx (`sources`: an indented `metrics_sources:` block; default the nginx source). */
function yaml(options: { schedule: string; analysis: string; metrics?: string; sources?: string; errorThreshold?: number; batchSize?: number }): string {
  return `ssh:
  config: ${env.sshConfig}
fraises:
  app:
    git_repo: ${env.appRepo}
    branch: main
    app_path: /srv/app
    environments:
      production:
        instances: [h1, h2, h3]
        supervisor_program: app
        deployment_strategy: canary
        canary_config:
          canary_instances: 1
          batch_size: ${options.batchSize ?? 1}
          canary_error_threshold: ${options.errorThreshold ?? 5}
          metrics_to_monitor: ${options.metrics ?? '[error_rate, response_latency_p99]'}
          analysis: { ${options.analysis} }
        traffic_shifting:
          enabled: true
          schedule: ${options.schedule}
${options.sources ?? '        metrics_sources: { nginx: {} }\n'}        health_check:
          url: http://localhost:8000/health
          expect: ok
          timeout: 2
          retries: 16
          retry_delay: 0.25
        load_balancer:
          type: nginx
          upstream: app
          file: ${upstreamFile()}
          access_log: ${accessLog()}
          nginx_args: [-p, ${dir}, -c, ${join(dir, 'nginx.conf')}]
          servers: { ${Object.entries(servers)
            .map(([h, a]) => `${h}: "${a}"`)
            .join(', ')} }
`;
}

const rollingYaml = () =>
  yaml({ schedule: '[{ percentage: 100 }]', analysis: 'interval: 1s' })
    .replace(
      /deployment_strategy: canary[\s\S]*?traffic_shifting:[\s\S]*?schedule: .*\n/,
      'deployment_strategy: rolling\n        rolling_config: { batch_size: 3 }\n',
    )
    .replace('        metrics_sources: { nginx: {} }\n', '')
    .replace(/ {8}load_balancer:[\s\S]*$/, ''); // the first release, all hosts at once, before any traffic: no load balancer needed

/** wrk through nginx: 8 keep-alive connections, a request every 20 ms each (fewer on a loaded machine). */
const load = () => startKeepAliveLoad(port, '127.0.0.1', 8, 20, 1800); // wrk stops itself after 30 min at most
const non2xx = (k: KeepAliveResult) => Object.values(k.non2xx).reduce((a, b) => a + b, 0);
const loadLine = (scenario: string, k: KeepAliveResult) =>
  `  LOAD | ${scenario} | keep-alive (wrk -c8) | requests ${k.requests} | non-2xx ${non2xx(k)}${non2xx(k) ? ` ${JSON.stringify(k.non2xx)}` : ''} | socket errors ${JSON.stringify(k.socketErrors)} | versions ${JSON.stringify(k.versions)}`;

test.before(async () => {
  env = await lab();
  for (const h of env.hosts) servers[h.name] = `${h.address}:${env.appPort}`;
  await resetHosts(env);
  dir = mkdtempSync(join(tmpdir(), 'fraisier-canary-load-'));
  mkdirSync(join(dir, 'tmp'));
  port = await freePort();
  writeFileSync(upstreamFile(), renderUpstream('app', servers));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 1024; }
http {
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  include ${upstreamFile()};
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_connect_timeout 2s; }
  }
}
`,
  );
  ws = workspace(rollingYaml());
  const r = await cli(['deploy', 'app', 'production', '--version', 'v1.0.0']);
  assert.is(r.code, 0, r.out);
  assert.equal(await current(), ['v1.0.0', 'v1.0.0', 'v1.0.0']);
  // nginx starts once the apps answer. Started before, with the apps stopped, its first request would find
  // every server refusing: with max_fails=1 (nginx's default, kept by the plugin at rest) that worker marks
  // them all unavailable for fail_timeout (10 s) and answers `502 no live upstreams` meanwhile, which wrk
  // counted as the first scenario's 502s whenever that scenario began within those 10 s.
  nginx = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr!.on('data', (d) => (stderr += d));
  for (let i = 0; ; i++) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited at start: ${stderr}`);
    const answer = await get(port);
    if ('status' in answer) {
      assert.is(answer.status, 200, `nginx answers, and the apps behind it: ${JSON.stringify(answer)}`);
      break;
    }
    if (i > 200) throw new Error(`nginx did not answer on 127.0.0.1:${port}: ${stderr}`);
    await sleep(50);
  }
});

test.after(async () => {
  if (nginx && nginx.exitCode === null && nginx.pid) {
    const exited = new Promise((r) => nginx!.once('exit', r));
    process.kill(nginx.pid, 'SIGQUIT');
    await Promise.race([exited, sleep(10_000)]);
    if (nginx.exitCode === null) process.kill(nginx.pid, 'SIGKILL');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (env) await resetHosts(env);
});

test('a good release under load: the canary gets 10 %, 25 %, 50 % of the requests counted at the app (±5 points), then the fleet is promoted', async () => {
  writeFileSync(
    join(ws, 'fraises.yaml'),
    yaml({
      schedule: '[{ percentage: 10, duration: 2s }, { percentage: 25, duration: 2s }, { percentage: 50, duration: 2s }, { percentage: 100 }]',
      // a loaded machine may send few requests in a round: inconclusive rounds are tolerated, never a pass
      analysis: 'interval: 1s, min_samples: 5, inconclusive_limit: 100',
      metrics: '[error_rate]',
      batchSize: 2,
    }),
  );
  const wrk = load();
  // Each step's window: from 300 ms after its weights were applied (the reloaded nginx's old workers
  // finish their requests) to the next step's announcement (printed before its weights change).
  const windows: { percent: number; from: Promise<Snapshot>; to?: Promise<Snapshot> }[] = [];
  const r = await cli(['deploy', 'app', 'production', '--version', 'v3.2.0'], (line) => {
    const applied = /canary (\d+)% of requests: weight/.exec(line);
    if (applied) windows.push({ percent: Number(applied[1]), from: sleep(300).then(snapshot) });
    else if (/Step \d+\/\d+:|Promoting v3\.2\.0/.test(line) && windows.length > 0 && !windows.at(-1)!.to) windows.at(-1)!.to = snapshot();
  });
  assert.is(r.code, 0, r.out);
  assert.equal(await current(), ['v3.2.0', 'v3.2.0', 'v3.2.0']);
  // 100 %: after the promotion every request is answered by the new release, on every host.
  const a = await snapshot();
  await sleep(1500);
  const b = await snapshot();
  const k = await wrk.stop();
  console.log(loadLine('canary 10/25/50/100, good release', k));
  const shares = await Promise.all(windows.map(async (w) => ({ percent: w.percent, ...shareBetween(await w.from, await w.to!, (h) => h === 'h1') })));
  const full = shareBetween(a, b, (h, s) => s[h]!.version === 'v3.2.0');
  console.log(
    `  [canary-load] canary share at the app: ${shares.map((s) => `${s.share.toFixed(1)} % for ${s.percent} % (${s.total} requests)`).join(', ')}; ${full.share.toFixed(1)} % on v3.2.0 after the promotion (${full.total} requests)`,
  );
  assert.equal(
    shares.map((s) => s.percent),
    [10, 25, 50],
    r.out,
  );
  for (const s of shares) {
    assert.ok(s.total >= 50, `at least 50 requests in the ${s.percent} % step: ${s.total}`);
    assert.ok(Math.abs(s.share - s.percent) <= 5, `${s.share.toFixed(1)} % of the requests on the canary for ${s.percent} %`);
  }
  assert.ok(full.total >= 20, `requests after the promotion: ${full.total}`);
  assert.is(full.share, 100);
  // A good canary costs users no request: every server taken out is drained first, nginx cannot mark the
  // servers left unavailable meanwhile (max_fails=0 while servers are out or weighted), and the canary
  // gets no request before step 1 (docs/nginx.md, "Canary under keep-alive load").
  assert.is(non2xx(k), 0, `a good canary: no failed request (${JSON.stringify(k.non2xx)})`);
  // Each reload retires the workers, and each retiring worker closes its idle keep-alive connections once
  // (a client's reconnection may still land on the other old worker before it has seen the signal): at
  // most 8 wrk connections × 2 workers errors per reload, whatever the timing. wrk's own timeouts (a
  // loaded machine's) are not counted here.
  const reloads = r.out.split('\n').filter((l) => /; reloaded|still busy after/.test(l)).length;
  const closed = (k.socketErrors['read'] ?? 0) + (k.socketErrors['write'] ?? 0) + (k.socketErrors['connect'] ?? 0);
  console.log(`  [canary-load] good release: ${reloads} nginx reloads, ${closed} keep-alive connections closed under wrk (bound 8 × 2 per reload)`);
  assert.ok(closed <= 16 * reloads, `${closed} socket errors > 8 × 2 × ${reloads} reloads: ${JSON.stringify(k.socketErrors)}`);
  assert.not.match(readFileSync(upstreamFile(), 'utf8'), 'weight=', 'an even split after the promotion');
});

test('the 5xx release under load is aborted at the first round with enough samples; the stable hosts are untouched; wrk saw few failures', async () => {
  writeFileSync(
    join(ws, 'fraises.yaml'),
    yaml({
      schedule: '[{ percentage: 10, duration: 60s }, { percentage: 100 }]',
      analysis: 'interval: 1s, min_samples: 20, inconclusive_limit: 100',
    }),
  );
  const before = await pids();
  const wrk = load();
  const r = await cli(['deploy', 'app', 'production', '--version', 'v3.0.0-errors']);
  const k = await wrk.stop();
  assert.is.not(r.code, 0, r.out);
  assert.match(r.out, 'canary analysis failed');
  const errorLines = r.out.split('\n').filter((l) => /analysis: canary error rate/.test(l));
  const failed = errorLines.findIndex((l) => /: FAIL$/.test(l.trimEnd()));
  assert.ok(failed >= 0, r.out);
  assert.ok(
    errorLines.slice(0, failed).every((l) => /(samples < min 20|no data, 0 samples)\): INCONCLUSIVE/.test(l)),
    `every round before the failed one had too few samples:\n${errorLines.join('\n')}`,
  );
  const verdictAt = r.out.indexOf(errorLines[failed]!);
  const backAt = r.out.indexOf('all traffic back to the stable hosts (h2, h3)');
  const rolledAt = r.out.indexOf('Rolling back h1');
  assert.ok(verdictAt >= 0 && backAt > verdictAt && rolledAt > backAt, `the verdict, then all traffic back to stable, then h1 rolled back:\n${r.out}`);
  assert.equal(await current(), ['v3.2.0', 'v3.2.0', 'v3.2.0'], 'the canary is back on v3.2.0');
  const after = await pids();
  assert.equal(after.slice(1), before.slice(1), 'the stable hosts were not restarted');
  assert.is.not(after[0], before[0], 'the canary host was restarted (twice)');
  // The failed requests users saw: at most the canary's share (10 %) × its error rate (20 %) of them.
  const bound = Math.ceil(0.1 * 0.2 * k.requests) + 10;
  console.log(loadLine('canary 5xx release, aborted', k));
  console.log(
    `  [canary-load] 5xx release: wrk saw ${non2xx(k)} failed of ${k.requests} requests (${((100 * non2xx(k)) / Math.max(1, k.requests)).toFixed(2)} %); bound 10 % × 20 % + 10 = ${bound}`,
  );
  assert.ok(non2xx(k) <= bound, `${non2xx(k)} failed requests > ${bound}: ${JSON.stringify(k.non2xx)}`);
  assert.ok(non2xx(k) > 0, 'the canary did serve its share (some 5xx) before the abort');
  const history = await fraisier(ws, 'history', '--fraise', 'app', '--env', 'production', '--json');
  const rows = JSON.parse(history.stdout) as { toVersion: string; status: string }[];
  assert.equal(`${rows[0]!.toVersion} ${rows[0]!.status}`, 'v3.0.0-errors rolled_back');
});

test('the slow release under load is aborted by the p99 latency comparison with the stable hosts', async () => {
  writeFileSync(
    join(ws, 'fraises.yaml'),
    yaml({
      schedule: '[{ percentage: 25, duration: 60s }, { percentage: 100 }]',
      analysis: 'interval: 1s, min_samples: 10, inconclusive_limit: 100, max_latency_ratio: 1.5',
    }),
  );
  const wrk = load();
  const r = await cli(['deploy', 'app', 'production', '--version', 'v3.1.0-slow']);
  const k = await wrk.stop();
  console.log(loadLine('canary slow release, aborted', k));
  assert.is.not(r.code, 0, r.out);
  const verdict = /analysis: canary p99 \d+ ms vs stable \d+ ms \(limit 1\.5×\): FAIL/.exec(r.out);
  assert.ok(verdict, r.out);
  console.log(`  [canary-load] slow release: ${verdict![0]}`);
  assert.match(r.out, 'canary analysis failed', r.out);
  assert.not.match(r.out, /analysis: canary error rate .*: FAIL/, r.out);
  assert.match(r.out, 'all traffic back to the stable hosts (h2, h3)');
  assert.equal(await current(), ['v3.2.0', 'v3.2.0', 'v3.2.0']);
});

test('no traffic: the analysis is inconclusive and the canary is not promoted', async () => {
  writeFileSync(
    join(ws, 'fraises.yaml'),
    yaml({ schedule: '[{ percentage: 50, duration: 3s }, { percentage: 100 }]', analysis: 'interval: 1s, min_samples: 5' }),
  );
  const r = await cli(['deploy', 'app', 'production', '--version', 'v1.1.0']); // no wrk: nobody sends requests
  try {
    assert.match(r.out, /canary analysis inconclusive.*: not promoting/, r.out);
    assert.match(r.out, /analysis: canary error rate .*\(canary: (no data, 0 samples|[0-4] samples < min 5)\): INCONCLUSIVE/, r.out);
    assert.equal(await current(), ['v1.1.0', 'v3.2.0', 'v3.2.0'], 'the stable hosts are not promoted');
    const history = await fraisier(ws, 'history', '--fraise', 'app', '--env', 'production', '--json');
    const rows = JSON.parse(history.stdout) as { toVersion: string; status: string }[];
    console.log(`  [canary-load] no traffic: exit ${r.code}, history "${rows[0]!.status}"`);
    assert.equal(`${rows[0]!.toVersion} ${rows[0]!.status}`, 'v1.1.0 canary', 'recorded in canary, not succeeded');
    assert.is(r.code, 0, `held for a human (exit 0, like --canary-only): ${r.out}`);
  } finally {
    const rb = await fraisier(ws, 'rollback', 'app', 'production');
    assert.is(rb.code, 0, rb.out);
  }
  assert.equal(await current(), ['v3.2.0', 'v3.2.0', 'v3.2.0']);
});

test('a Prometheus that is down: "metric source unavailable", then the consecutive-error limit aborts the canary', async () => {
  const closed = await freePort(); // nothing listens there
  writeFileSync(
    join(ws, 'fraises.yaml'),
    yaml({
      schedule: '[{ percentage: 10, duration: 60s }, { percentage: 100 }]',
      analysis: 'interval: 1s, consecutive_error_limit: 2',
      metrics: '[error_rate]',
      sources: `        metrics_sources:
          prometheus:
            url: http://fraisier:s3cret-prom@127.0.0.1:${closed}
            timeout: 2s
            metrics:
              error_rate: '100 * sum(rate(http_requests_total{instance=~"{{address}}",code=~"5.."}[{{window}}])) / sum(rate(http_requests_total{instance=~"{{address}}"}[{{window}}]))'
`,
    }),
  );
  const r = await cli(['deploy', 'app', 'production', '--version', 'v1.1.0']);
  assert.is.not(r.code, 0, r.out);
  const unavailable = r.out.split('\n').filter((l) => l.includes('metric source unavailable'));
  console.log(`  [canary-load] Prometheus down: ${unavailable[0]?.trim()}`);
  assert.ok(unavailable.length >= 3, `three error rounds (> consecutive_error_limit 2):\n${r.out}`);
  assert.match(r.out, /canary analysis error/);
  assert.not.match(r.out, 's3cret-prom');
  assert.match(r.out, 'all traffic back to the stable hosts (h2, h3)');
  assert.equal(await current(), ['v3.2.0', 'v3.2.0', 'v3.2.0']);
});

test.run();
