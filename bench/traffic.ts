/**
 * Traffic: how long the blue-green switch and the blue-green rollback take, and what draining and
 * restoring each host through nginx adds to a rolling deploy. A real nginx (loopback) in front of four
 * bench-lab hosts (blue h1 h2, green h3 h4). `npx tsx bench/traffic.ts`.
 *
 * Switch time, two ways:
 * - internal: the `switch` phase (write the upstream file, `nginx -t`, HUP, until every old worker has
 *   stopped accepting: see the reload script in plugins/nginx-lb.ts);
 * - external: from the moment the strategy decides to switch (its "Switching all traffic" line) to the
 *   start of the last request that a probe loop (4 loops, a new connection per request) saw answered by
 *   the old colour. After that instant every new request got the new colour.
 * The measured switches are pure switches: the idle colour already runs the release (as in a rollback),
 * so the deployment is a health check of the idle colour, then the switch.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeployApp, bareMetal, blueGreen, http, memorySink, nginxLb, rolling, type DeployResult, type LogEntry } from '../index.js';
import { get, startNginx, type Nginx } from '../test/e2e/traffic.js';
import { fmtMs, machine, median, ratio, runMain, runs, saveResult, section, table, withLab, type LabEnv } from './lib.js';

const HOSTS = ['h1', 'h2', 'h3', 'h4'];

interface Probe {
  start: number;
  body: string;
}

/** 4 loops of GET (new connection each) until stopped; every answer with its start time. */
function probe(port: number) {
  let stopped = false;
  const seen: Probe[] = [];
  const loops = Array.from({ length: 4 }, async () => {
    while (!stopped) {
      const start = Date.now();
      const r = await get(port);
      seen.push({ start, body: 'error' in r ? `error ${r.error}` : r.status === 200 ? r.body : `${r.status}` });
    }
  });
  return {
    seen,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return seen;
    },
  };
}

function app(env: LabEnv, ngx: Nginx, servers: Record<string, string>, strategy: 'blue-green' | 'rolling' | 'rolling-no-lb', dir: string) {
  const plugins = strategy === 'rolling-no-lb' ? [] : [nginxLb({ file: ngx.upstreamFile, servers, nginxArgs: ngx.args, upstream: 'app' })];
  return new DeployApp(
    {
      name: 'app',
      state: { path: join(dir, `${strategy}.db`) },
      environments: {
        production: {
          provider: bareMetal({
            hosts: strategy === 'blue-green' ? HOSTS : HOSTS.slice(0, 3),
            appPath: '/srv/app',
            source: { type: 'git', repo: env.appRepo },
            service: { type: 'supervisor', program: 'app' },
            ssh: { configFile: env.sshConfig },
          }),
          strategy: strategy === 'blue-green' ? blueGreen({ blue: ['h1', 'h2'], green: ['h3', 'h4'] }) : rolling({ batchSize: 1 }),
          health: { checks: [http({ url: 'http://localhost:8000/health', expectBody: 'ok' })], retries: 20, retryDelay: '100ms', timeout: '2s' },
          plugins,
        },
      },
    },
    dir,
  );
}

async function timedSwitch(a: DeployApp, port: number, kind: 'deploy' | 'rollback', version: string) {
  const entries: LogEntry[] = [];
  const p = probe(port);
  const runtime = { sinks: [memorySink(entries)], handleSignals: false };
  const r: DeployResult = kind === 'deploy' ? await a.deploy('production', { version }, runtime) : await a.rollback('production', {}, runtime);
  await new Promise((res) => setTimeout(res, 200));
  const seen = await p.stop();
  if (r.status !== 'succeeded') throw new Error(`${kind} ${version}: ${r.status} ${JSON.stringify(r.error)}`);
  const decision = entries.find((e) => e.message.startsWith('Switching all traffic'))!.at;
  const lastOld = Math.max(...seen.filter((s) => s.body !== version).map((s) => s.start));
  const bad = seen.filter((s) => !/^v\d/.test(s.body)).length;
  const internal = Math.max(...r.targets.map((t) => t.phases['switch'] ?? 0));
  return { internal, external: Math.max(0, lastOld - decision), total: r.durationMs, requests: seen.length, bad };
}

export async function main(): Promise<void> {
  const startLoad = section('blue-green switch and rollback through nginx');
  const m = machine();
  const n = runs();
  const out = await withLab(async (env) => {
    const servers = Object.fromEntries(env.hosts.filter((h) => HOSTS.includes(h.name)).map((h) => [h.name, `${h.address}:${env.appPort}`]));
    await Promise.all(
      HOSTS.map((h) => import('./lib.js').then(({ hostExec }) => hostExec(env, h, 'supervisorctl stop app >/dev/null 2>&1; rm -rf /srv/app/*; true'))),
    );
    let ngx = await startNginx('app', servers);
    const dir = mkdtempSync(join(tmpdir(), 'fraisier-bench-traffic-'));
    try {
      const bg = app(env, ngx, servers, 'blue-green', dir);
      // untimed set-up: blue gets v1.0.0, green v1.1.0; green is live
      for (const v of ['v1.0.0', 'v1.1.0']) {
        const r = await bg.deploy('production', { version: v }, { sinks: [], handleSignals: false });
        if (r.status !== 'succeeded') throw new Error(`set-up deploy ${v}: ${JSON.stringify(r.error)}`);
      }
      const rollbacks: Awaited<ReturnType<typeof timedSwitch>>[] = [];
      const forwards: Awaited<ReturnType<typeof timedSwitch>>[] = [];
      for (let i = 0; i < n; i++) {
        const rb = await timedSwitch(bg, ngx.port, 'rollback', 'v1.0.0'); // green → blue
        console.log(
          `  rollback (green → blue): switch ${fmtMs(rb.internal)} internal, ${fmtMs(rb.external)} decision → last old answer; whole rollback ${fmtMs(rb.total)}; ${rb.requests} requests, ${rb.bad} not 200`,
        );
        rollbacks.push(rb);
        const fw = await timedSwitch(bg, ngx.port, 'deploy', 'v1.1.0'); // blue → green (already on v1.1.0)
        console.log(
          `  deploy v1.1.0 (blue → green): switch ${fmtMs(fw.internal)} internal, ${fmtMs(fw.external)} decision → last old answer; whole deploy ${fmtMs(fw.total)}; ${fw.requests} requests, ${fw.bad} not 200`,
        );
        forwards.push(fw);
      }

      section('rolling deploy of 3 hosts: with nginx-lb (drain + restore) and without');
      // A fresh nginx and upstream file: the one above records a blue-green pool, which rolling keeps.
      await ngx.stop();
      ngx = await startNginx('app', servers);
      const withLb = app(env, ngx, servers, 'rolling', dir);
      const withoutLb = app(env, ngx, servers, 'rolling-no-lb', dir);
      const rolled: { lb: number[]; plain: number[]; drain: number[]; restore: number[] } = { lb: [], plain: [], drain: [], restore: [] };
      let v = 'v1.2.0';
      for (let i = 0; i < n; i++) {
        for (const [label, a] of [
          ['nginx-lb', withLb],
          ['no lb', withoutLb],
        ] as const) {
          v = v === 'v1.2.0' ? 'v1.1.0' : 'v1.2.0';
          const r = await a.deploy('production', { version: v }, { sinks: [], handleSignals: false });
          if (r.status !== 'succeeded') throw new Error(`rolling ${label} ${v}: ${JSON.stringify(r.error)}`);
          if (label === 'nginx-lb') {
            rolled.lb.push(r.durationMs);
            for (const t of r.targets) {
              rolled.drain.push(t.phases['drain'] ?? NaN);
              rolled.restore.push(t.phases['nginx'] ?? NaN);
            }
          } else rolled.plain.push(r.durationMs);
          console.log(`  ${label}: ${v} on 3 hosts in ${fmtMs(r.durationMs)}`);
        }
      }
      return { rollbacks, forwards, rolled };
    } finally {
      await ngx.stop();
    }
  });

  const med = (xs: number[]) => median(xs);
  const rb = out.rollbacks;
  const fw = out.forwards;
  const target = (ms: number) => (ms < 200 ? 'met' : 'NOT met');
  const t1 = table(
    [
      'switch',
      'internal (write, nginx -t, reload confirmed), median',
      'decision → last old answer, median (max)',
      'whole command, median',
      'requests seen / not 200',
    ],
    [
      [
        'deploy: blue → green',
        fmtMs(med(fw.map((x) => x.internal))),
        `${fmtMs(med(fw.map((x) => x.external)))} (${fmtMs(Math.max(...fw.map((x) => x.external)))})`,
        fmtMs(med(fw.map((x) => x.total))),
        `${fw.reduce((s, x) => s + x.requests, 0)} / ${fw.reduce((s, x) => s + x.bad, 0)}`,
      ],
      [
        'rollback: green → blue',
        fmtMs(med(rb.map((x) => x.internal))),
        `${fmtMs(med(rb.map((x) => x.external)))} (${fmtMs(Math.max(...rb.map((x) => x.external)))})`,
        fmtMs(med(rb.map((x) => x.total))),
        `${rb.reduce((s, x) => s + x.requests, 0)} / ${rb.reduce((s, x) => s + x.bad, 0)}`,
      ],
    ],
  );
  const lbMs = med(out.rolled.lb);
  const plainMs = med(out.rolled.plain);
  const t2 = table(
    ['rolling, 3 hosts, batch 1', 'median', 'vs no load balancer'],
    [
      ['with nginx-lb (drain before restart, restore after health)', fmtMs(lbMs), ratio(lbMs, plainMs)],
      ['without a load balancer', fmtMs(plainMs), '1.00×'],
    ],
  );
  const perHost = (lbMs - plainMs) / 3;
  const extra = `Added per host: ${fmtMs(perHost)} (difference of the medians / 3); measured inside the deploy, per host: drain median ${fmtMs(med(out.rolled.drain))} (from the HUP that marks the host down until every old worker has finished its requests and exited), restore median ${fmtMs(med(out.rolled.restore))} (HUP that puts it back until the old workers stopped accepting); writing the file and \`nginx -t\` come on top of each.`;
  const verdict = `Target < 200 ms for the switch: deploy ${target(med(fw.map((x) => x.external)))} (${fmtMs(med(fw.map((x) => x.external)))}), rollback ${target(med(rb.map((x) => x.external)))} (${fmtMs(med(rb.map((x) => x.external)))}), decision → last old answer.`;
  console.log(`\n${t1}\n\n${verdict}\n\n${t2}\n\n${extra}`);
  saveResult({
    name: 'traffic',
    order: 4,
    title: 'Traffic: blue-green switch, blue-green rollback, drain and restore',
    date: new Date().toISOString(),
    machine: { ...m, load: startLoad },
    markdown: `A real nginx 1.22 (two workers, loopback) in front of four bench-lab hosts: blue h1 h2, green h3 h4. ${n} runs each.
The timed switches are pure switches: the idle colour already runs the release (a rollback always is one;
the timed deploys redeploy v1.1.0 to green, which still has it), so each is a health check of the idle
colour followed by one switch. "Decision → last old answer": from the strategy's decision to switch to the
start of the last request that a probe loop (4 loops, a new connection per request) saw answered by the old
colour. nginx itself waits 100 ms after starting the new workers before telling the old ones to stop
accepting, so no nginx switch can be faster than that.

${t1}

${verdict}

${t2}

${extra}`,
    raw: out,
  });
}

runMain(import.meta.url, main);
