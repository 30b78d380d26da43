/**
 * Rolling deploy of the lab's sample app with Fraisier (SDK, in process) against a plain bash + OpenSSH
 * script (bench/rolling-baseline.sh), on 3 and 12 hosts at batch 1 and 4. `npx tsx bench/rolling.ts`.
 *
 * Fairness: before every timed run (untimed) the release about to be deployed is deleted on every host,
 * so both tools always fetch the mirror and re-extract (`git archive | tar -x`); both would skip that when
 * the release exists. Versions alternate v1.0.0 / v1.1.0 so every run really switches and restarts.
 * Between configurations /srv/app is wiped and primed (untimed) with v1.2.0 by the bash script, so
 * every timed run starts from a host with a repo mirror, a live release and a running app.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bareMetal,
  defineDeploy,
  http,
  rolling,
  SshExecutor,
  systemClock,
  type Clock,
  type Executor,
  type ExecResult,
  type HealthCheck,
  type LogEntry,
  type Command,
  type RunOptions,
} from '../index.js';
import { benchDir, runMain, fmtMs, fmtS, machine, median, ratio, runs, saveResult, section, table, withLab, type LabEnv } from './lib.js';

type Kind = 'connect' | 'cmd' | 'probe' | 'wait';
interface Interval {
  kind: Kind;
  host: string;
  start: number;
  end: number;
}
let rec: Interval[] = [];
const now = () => performance.now();
function record(kind: Kind, host: string, start: number): void {
  rec.push({ kind, host, start, end: now() });
}

/** Total length of the union of intervals (time during which at least one of them was in progress). */
function unionMs(xs: Interval[]): number {
  const s = [...xs].sort((a, b) => a.start - b.start);
  let total = 0;
  let cs = -Infinity;
  let ce = -Infinity;
  for (const i of s) {
    if (i.start > ce) {
      if (ce > cs) total += ce - cs;
      cs = i.start;
      ce = i.end;
    } else ce = Math.max(ce, i.end);
  }
  if (ce > cs) total += ce - cs;
  return total;
}

/** The SDK's SshExecutor, timed: every command is recorded as an interval; stats are the real ones. */
class TimedExecutor implements Executor {
  readonly name: string;
  constructor(readonly inner: SshExecutor) {
    this.name = inner.name;
  }
  get stats() {
    return this.inner.stats;
  }
  async run(cmd: Command, options?: RunOptions): Promise<ExecResult> {
    const s = now();
    try {
      return await this.inner.run(cmd, options);
    } finally {
      record('cmd', this.name, s);
    }
  }
  connectTcp(host: string, port: number) {
    return this.inner.connectTcp(host, port);
  }
  close() {
    return this.inner.close();
  }
}

let executors: TimedExecutor[] = [];

function timedCheck(check: HealthCheck): HealthCheck {
  return {
    name: check.name,
    async probe(target, ctx, timeoutMs) {
      const s = now();
      try {
        await check.probe(target, ctx, timeoutMs);
      } finally {
        record('probe', target.name, s);
      }
    },
  };
}

const clock: Clock = {
  now: () => systemClock.now(),
  async sleep(ms, signal) {
    const s = now();
    try {
      await systemClock.sleep(ms, signal);
    } finally {
      record('wait', '-', s);
    }
  },
};

function makeApp(env: LabEnv, hosts: string[], batch: number) {
  const stateDir = mkdtempSync(join(tmpdir(), 'fraisier-bench-state-'));
  return defineDeploy({
    name: 'app',
    autorun: false,
    state: { path: join(stateDir, 'state.db') },
    environments: {
      bench: {
        provider: bareMetal({
          hosts,
          appPath: '/srv/app',
          source: { type: 'git', repo: env.appRepo },
          service: { type: 'supervisor', program: 'app' },
          ssh: { configFile: env.sshConfig },
          connect: async (host) => {
            const s = now();
            const e = new TimedExecutor(await SshExecutor.connect(host, { configFile: env.sshConfig }));
            record('connect', host, s);
            executors.push(e);
            return e;
          },
        }),
        strategy: rolling({ batchSize: batch }),
        health: { checks: [timedCheck(http({ url: 'http://localhost:8000/health' }))], retries: 20, retryDelay: '200ms' },
      },
    },
  });
}

interface FraisierRun {
  wallMs: number;
  connectMs: number;
  cmdMs: number;
  probeMs: number;
  waitMs: number;
  remoteUnionMs: number;
  overheadMs: number;
  busySumMs: number;
  commands: number;
  phases: Record<string, number>;
}

async function fraisierRun(app: ReturnType<typeof makeApp>, version: string): Promise<FraisierRun> {
  rec = [];
  executors = [];
  const lines: string[] = [];
  const sink = (e: LogEntry) => lines.push(`${e.level} ${e.target ?? ''} ${e.message}`);
  const t0 = now();
  const result = await app.deploy('bench', { version }, { sinks: [sink], clock, handleSignals: false });
  const wallMs = now() - t0;
  if (result.status !== 'succeeded') throw new Error(`fraisier deploy ${version} ${result.status}:\n${lines.join('\n')}`);
  const of = (k: Kind) => rec.filter((i) => i.kind === k);
  const remoteUnionMs = unionMs(rec);
  const phases: Record<string, number> = {};
  for (const t of result.targets) for (const [p, ms] of Object.entries(t.phases)) phases[p] = (phases[p] ?? 0) + ms / result.targets.length;
  return {
    wallMs,
    connectMs: unionMs(of('connect')),
    cmdMs: unionMs(of('cmd')),
    probeMs: unionMs(of('probe')),
    waitMs: unionMs(of('wait')),
    remoteUnionMs,
    overheadMs: wallMs - remoteUnionMs,
    busySumMs: executors.reduce((a, e) => a + e.stats.busyMs, 0),
    commands: executors.reduce((a, e) => a + e.stats.commands, 0),
    phases,
  };
}

function bashRun(env: LabEnv, hosts: string[], batch: number, version: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn('bash', [join(benchDir, 'rolling-baseline.sh'), env.sshConfig, env.appRepo, version, String(batch), ...hosts], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(now() - t0) : reject(new Error(`baseline ${version} exited ${code}: ${err}`))));
  });
}

/** Untimed admin connections used to reset hosts between runs. */
async function admin(env: LabEnv): Promise<Map<string, SshExecutor>> {
  const m = new Map<string, SshExecutor>();
  await Promise.all(env.hosts.map(async (h) => m.set(h.name, await SshExecutor.connect(h.name, { configFile: env.sshConfig }))));
  return m;
}

async function onHosts(adm: Map<string, SshExecutor>, hosts: string[], text: string): Promise<void> {
  await Promise.all(hosts.map((h) => adm.get(h)!.run({ steps: [['sh', '-c', text]] }, { check: false })));
}

export async function main(): Promise<void> {
  const N = runs();
  const startLoad = section('rolling deploy: Fraisier vs bash + OpenSSH');
  const m = machine();
  const configs = [
    { hosts: 3, batch: 1 },
    { hosts: 3, batch: 4 },
    { hosts: 12, batch: 1 },
    { hosts: 12, batch: 4 },
  ];
  const rows: { hosts: number; batch: number; load: string; fraisier: FraisierRun[]; bash: number[] }[] = [];
  await withLab(async (env) => {
    const adm = await admin(env);
    try {
      for (const c of configs) {
        const load = section(`rolling ${c.hosts} hosts, batch ${c.batch}, ${N} runs each`);
        const hosts = env.hosts.slice(0, c.hosts).map((h) => h.name);
        // reset every host of the lab, then prime this configuration's hosts with v1.2.0 (untimed)
        await onHosts(adm, [...adm.keys()], 'supervisorctl stop app >/dev/null 2>&1; rm -rf /srv/app/* /srv/app/.[!.]*; true');
        await bashRun(env, hosts, c.hosts, 'v1.2.0');
        const app = makeApp(env, hosts, c.batch);
        const row = { ...c, load, fraisier: [] as FraisierRun[], bash: [] as number[] };
        let v = 'v1.1.0';
        const next = () => (v = v === 'v1.0.0' ? 'v1.1.0' : 'v1.0.0');
        for (let i = 0; i < N; i++) {
          const order = i % 2 === 0 ? ['fraisier', 'bash'] : ['bash', 'fraisier'];
          for (const tool of order) {
            const ver = next();
            await onHosts(adm, hosts, `rm -rf /srv/app/releases/${ver}`);
            if (tool === 'fraisier') {
              const r = await fraisierRun(app, ver);
              row.fraisier.push(r);
              console.log(
                `  fraisier ${ver}: ${fmtS(r.wallMs)}  (connect ${fmtMs(r.connectMs)}, commands ${fmtMs(r.cmdMs)} [${r.commands} cmds, Σbusy ${fmtMs(r.busySumMs)}], probes ${fmtMs(r.probeMs)}, waits ${fmtMs(r.waitMs)}, overhead ${fmtMs(r.overheadMs)})`,
              );
            } else {
              const ms = await bashRun(env, hosts, c.batch, ver);
              row.bash.push(ms);
              console.log(`  bash     ${ver}: ${fmtS(ms)}`);
            }
          }
        }
        rows.push(row);
      }
    } finally {
      await Promise.all([...adm.values()].map((e) => e.close()));
    }
  });

  const med = (rs: FraisierRun[], k: keyof FraisierRun) => median(rs.map((r) => r[k] as number));
  const main = table(
    ['hosts', 'batch', 'Fraisier (median)', 'bash + ssh (median)', 'Fraisier / bash', 'load at start'],
    rows.map((r) => [r.hosts, r.batch, fmtS(med(r.fraisier, 'wallMs')), fmtS(median(r.bash)), ratio(med(r.fraisier, 'wallMs'), median(r.bash)), r.load]),
  );
  const split = table(
    [
      'hosts',
      'batch',
      'wall',
      'SSH connect',
      'remote commands',
      'health probes',
      'retry waits',
      'remote ∪ waits',
      'overhead',
      'overhead / host',
      'commands',
      'Σ busyMs',
    ],
    rows.map((r) => [
      r.hosts,
      r.batch,
      fmtS(med(r.fraisier, 'wallMs')),
      fmtMs(med(r.fraisier, 'connectMs')),
      fmtMs(med(r.fraisier, 'cmdMs')),
      fmtMs(med(r.fraisier, 'probeMs')),
      fmtMs(med(r.fraisier, 'waitMs')),
      fmtMs(med(r.fraisier, 'remoteUnionMs')),
      fmtMs(med(r.fraisier, 'overheadMs')),
      fmtMs(med(r.fraisier, 'overheadMs') / r.hosts, 1),
      med(r.fraisier, 'commands'),
      fmtMs(med(r.fraisier, 'busySumMs')),
    ]),
  );
  const phaseNames = ['prepare', 'activate', 'health'];
  const phases = table(
    ['hosts', 'batch', ...phaseNames.map((p) => `${p} (mean per host)`)],
    rows.map((r) => [r.hosts, r.batch, ...phaseNames.map((p) => fmtMs(median(r.fraisier.map((f) => f.phases[p] ?? NaN))))]),
  );
  console.log(`\n${main}\n\n${split}\n\n${phases}`);
  const markdown = `Rolling deploy of the sample app (alternating v1.0.0 / v1.1.0, so every run switches and restarts),
health check \`http://localhost:8000/health\` with 20 retries, 200 ms apart. ${N} runs per tool and configuration,
Fraisier and bash interleaved (order alternating), medians reported.

Both tools always fetch the mirror and re-extract: before every timed run the release about to be
deployed is deleted on the hosts (untimed). Hosts are wiped and primed with v1.2.0 between configurations.

${main}

**Where Fraisier's time goes** (medians; each column is the *union* over all hosts of the intervals of
that kind, so parallel work on several hosts counts once). *Overhead* = wall − union of every SSH
connect, remote command, health probe and retry wait: the time during which no host was doing anything
for Fraisier and it was not waiting on purpose — local orchestration, SQLite history/lock writes, module work.

${split}

Per-phase wall times recorded by the Deployer (mean over hosts, median over runs):

${phases}`;
  saveResult({
    name: 'rolling',
    order: 3,
    title: 'Rolling deploy: Fraisier vs bash + OpenSSH',
    date: new Date().toISOString(),
    machine: { ...m, load: startLoad },
    markdown,
    raw: rows,
  });
}

runMain(import.meta.url, main);
