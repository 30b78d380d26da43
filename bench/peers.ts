/**
 * Fraisier against its peers, in one run, on the same lab hosts, interleaved (the order of the tools
 * rotates every run): `fraisier deploy` (the CLI over fraises.yaml), the plain bash loop (one `ssh` per
 * call, bench/rolling-baseline.sh), the same bash loop through an OpenSSH ControlMaster kept warm from the
 * previous run, and Capistrano and Ansible when they are installed (Debian `capistrano`, `ansible`; the
 * bench installs nothing). Every tool does the same job: a fresh release directory (deleted untimed before
 * each run), a fetch, the atomic `current` switch, `supervisorctl restart app`, and a health check of
 * http://localhost:8000/health from the host, 20 tries 200 ms apart.
 *
 * `npx tsx bench/peers.ts`; BENCH_RUNS (default 3), BENCH_PEERS_HOSTS (default "3,12"; "3,12,48" needs
 * a 48-host lab: BENCH_LAB_HOSTS=48), BENCH_PEERS_BATCHES (default "1,4"), BENCH_PEERS_BASELINE (another
 * build's bin/fraisier.js, run side by side as the tool `before`), BENCH_PEERS_SKIP (cells left out, e.g.
 * `ansible:48:1`), BENCH_PEERS_BRINGUP=1 (time `lab.sh up N` from nothing first). Every tool runs under
 * `/usr/bin/time` when it is installed (Debian `time`): Fraisier's peak RSS and each tool's local CPU time.
 * Writes bench/results/peers.json, docs/benchmarks.md and docs/benchmarks-peers.svg.
 * `npx tsx bench/peers-48.ts` is issue 13's goal 3 in one command (12 and 48 hosts, batches 1, 4, 12).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SshExecutor, bareMetal, defineDeploy, http, rolling, type Executor } from '../index.js';
import {
  benchDir,
  benchYaml,
  fmtS,
  labDown,
  labIsUp,
  machine,
  median,
  ratio,
  repoRoot,
  runMain,
  saveResult,
  section,
  table,
  withLab,
  type LabEnv,
} from './lib.js';

const N = Number(process.env['BENCH_RUNS'] ?? 3);
const HOSTS = (process.env['BENCH_PEERS_HOSTS'] ?? '3,12').split(',').map(Number);
const BATCHES = (process.env['BENCH_PEERS_BATCHES'] ?? '1,4').split(',').map(Number);
/**
 * Another Fraisier build to run side by side with this one (its `bin/fraisier.js`, e.g. a checkout of
 * main, built): the tool `before`, for before/after ratios of a change in one run.
 */
const BASELINE = process.env['BENCH_PEERS_BASELINE'] ?? '';
/** Tools to run, by key: fraisier, bash, cm, cap, ansible (default: all, those installed); `before` with BENCH_PEERS_BASELINE. */
const TOOLS = [...(process.env['BENCH_PEERS_TOOLS'] ?? 'fraisier,bash,cm,cap,ansible').split(','), ...(BASELINE ? ['before'] : [])];
/** Result name: several runs (e.g. one per host count) can sit side by side in docs/benchmarks.md. */
const NAME = process.env['BENCH_PEERS_NAME'] ?? 'peers';
/**
 * Cells to leave out, comma-separated `tool[:hosts[:batch]]` (tool keys as in BENCH_PEERS_TOOLS, `*` for
 * any): `ansible:48:1` skips Ansible at 48 hosts, batch 1 (minutes per run), and shows "skipped" there.
 */
const SKIP = (process.env['BENCH_PEERS_SKIP'] ?? '')
  .split(',')
  .map((x) => x.trim())
  .filter(Boolean)
  .map((x) => x.split(':'));
const skipped = (key: string, hosts: number, batch: number) =>
  SKIP.some(([t, h, b]) => (t === key || t === '*') && (!h || h === '*' || Number(h) === hosts) && (!b || b === '*' || Number(b) === batch));
/**
 * Runs per configuration of the slow peers, Capistrano and Ansible (default BENCH_RUNS): at 48 hosts one run
 * of each takes minutes, so `BENCH_RUNS=3 BENCH_PEERS_SLOW_RUNS=1` keeps three runs of the others.
 */
const SLOW_RUNS = Number(process.env['BENCH_PEERS_SLOW_RUNS'] ?? N);
/** BENCH_PEERS_BRINGUP=1: bring the bench lab down, then time `lab.sh up N` from nothing (N = BENCH_LAB_HOSTS). */
const BRINGUP = process.env['BENCH_PEERS_BRINGUP'] === '1';
/** Fraisier's peak RSS target at 48 hosts (issue 13, goal 3). */
const RSS_TARGET_MB = 150;
/** GNU time (Debian `time`): wraps every tool run for its peak RSS and CPU time, when installed. */
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : '';

interface Tool {
  key: string;
  name: string;
  /** A slow peer (Capistrano, Ansible): runs BENCH_PEERS_SLOW_RUNS times per configuration. */
  slow?: boolean;
  /** Untimed set-up for a configuration (files, warm sockets). */
  setup?(hosts: string[], batch: number): Promise<void> | void;
  run(hosts: string[], batch: number, version: string): Promise<Usage>;
}

/**
 * What one run cost on this machine, from GNU time (`getrusage` of the waited process tree): the peak RSS of
 * the largest single process (KB) and the CPU seconds (user + system) of the tool and of every child it
 * waited for. Daemons the tool does not wait for (a persisted ControlMaster) are not counted.
 */
interface Usage {
  rssKb: number;
  cpuS: number;
}

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; usage?: boolean } = {}): Promise<Usage> {
  // `/usr/bin/time -o FILE` writes its figures to a file of its own: the tool's output stays untouched
  const usageFile = opts.usage && GNU_TIME ? join(tmpdir(), `fraisier-bench-usage-${process.pid}-${Math.random().toString(36).slice(2)}`) : '';
  const [file, argv] = usageFile ? [GNU_TIME, ['-o', usageFile, '-f', '%M %U %S', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let usage: Usage = { rssKb: NaN, cpuS: NaN };
      if (usageFile) {
        try {
          // the last line: "Command exited with non-zero status N" may come first
          const [m, u, sy] = readFileSync(usageFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
          usage = { rssKb: m!, cpuS: u! + sy! };
        } catch {}
        rmSync(usageFile, { force: true });
      }
      if (code === 0) resolve(usage);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out.slice(-3000)}`));
    });
  });
}

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;

function tools(env: LabEnv, work: string): Tool[] {
  const baseline = join(benchDir, 'rolling-baseline.sh');
  const list: Tool[] = [];
  /** A Fraisier build as a tool: its own workspace per configuration, `bin` run there. */
  const fraisierTool = (key: string, name: string, bin: string): Tool => {
    let dir = '';
    return {
      key,
      name,
      setup(hosts, batch) {
        dir = mkdtempSync(join(work, `${key}-`));
        // a generous handshake budget: 48 handshakes at once on a loaded 2-CPU machine can take over 10 s
        writeFileSync(join(dir, 'fraises.yaml'), benchYaml(env, hosts, batch).replace('ssh:\n', 'ssh:\n  connect_timeout: 60\n'));
      },
      run: (_h, _b, v) => sh(process.execPath, [bin, 'deploy', 'app', 'bench', '--version', v], { cwd: dir, env: { FORCE_COLOR: '0' }, usage: true }),
    };
  };
  list.push(fraisierTool('fraisier', 'Fraisier (`fraisier deploy`)', join(repoRoot, 'bin', 'fraisier.js')));
  if (BASELINE) list.push(fraisierTool('before', 'Fraisier baseline (`BENCH_PEERS_BASELINE`)', BASELINE));
  list.push({
    key: 'bash',
    name: 'bash, one `ssh` per call',
    run: (hosts, batch, v) => sh('bash', [baseline, env.sshConfig, env.appRepo, v, String(batch), ...hosts], { usage: true }),
  });
  // ControlMaster: the lab's ssh config behind a Host * block that multiplexes; sockets persist between runs
  const cmConfig = join(work, 'ssh_config_cm');
  writeFileSync(cmConfig, `Host *\n  ControlMaster auto\n  ControlPath ${work}/cm-%C\n  ControlPersist 600\n\nInclude ${env.sshConfig}\n`);
  list.push({
    key: 'cm',
    name: 'bash + ControlMaster (warm)',
    setup: async (hosts) => {
      await Promise.all(hosts.map((h) => sh('ssh', ['-F', cmConfig, h, 'true'])));
    },
    run: (hosts, batch, v) => sh('bash', [baseline, cmConfig, env.appRepo, v, String(batch), ...hosts], { usage: true }),
  });
  if (has('cap')) {
    const capDir = join(work, 'cap');
    mkdirSync(join(capDir, 'config', 'deploy'), { recursive: true });
    writeFileSync(
      join(capDir, 'Capfile'),
      `require "capistrano/setup"\nrequire "capistrano/deploy"\nrequire "capistrano/scm/git"\ninstall_plugin Capistrano::SCM::Git\nload "${join(benchDir, 'peers', 'rolling.cap')}"\n`,
    );
    writeFileSync(join(capDir, 'config', 'deploy.rb'), `set :application, "app"\n`);
    writeFileSync(
      join(capDir, 'config', 'deploy', 'bench.rb'),
      `ENV.fetch("HOSTS").split(",").each { |h| server h, roles: %w[app] }\nset :ssh_options, { config: ["${env.sshConfig}"] }\n`,
    );
    list.push({
      key: 'cap',
      name: 'Capistrano (Debian)',
      slow: true,
      run: (hosts, batch, v) =>
        sh('cap', ['bench', 'rolling'], {
          cwd: capDir,
          env: { HOSTS: hosts.join(','), BATCH: String(batch), VERSION: v, REPO: env.appRepo },
          usage: true,
        }),
    });
  }
  if (has('ansible-playbook')) {
    const ans = join(work, 'ansible');
    mkdirSync(ans, { recursive: true });
    writeFileSync(
      join(ans, 'ansible.cfg'),
      `[defaults]\nhost_key_checking = True\ngathering = explicit\ninterpreter_python = /usr/bin/python3\nforks = 50\nstdout_callback = null\n\n[ssh_connection]\npipelining = True\nssh_args = -F ${env.sshConfig} -o ControlMaster=auto -o ControlPersist=600 -o ControlPath=${work}/ans-%C\n`,
    );
    list.push({
      key: 'ansible',
      name: 'Ansible (Debian, pipelining, warm)',
      slow: true,
      setup: async (hosts) => {
        writeFileSync(join(ans, 'hosts'), `[app]\n${hosts.join('\n')}\n`);
      },
      run: (_hosts, batch, v) =>
        sh('ansible-playbook', ['-i', join(ans, 'hosts'), join(benchDir, 'peers', 'rolling.yml'), '-e', `version=${v} repo=${env.appRepo} batch=${batch}`], {
          cwd: ans,
          env: { ANSIBLE_CONFIG: join(ans, 'ansible.cfg') },
          usage: true,
        }),
    });
  }
  return list.filter((t) => TOOLS.includes(t.key));
}

/**
 * Round trips per host of one Fraisier deploy (in process through the SDK, untimed, same job as the CLI):
 * every command the executor runs and every health probe (a forwarded channel), counted per host. The SSH
 * handshake (one per host) comes on top. A tag or branch is resolved from the refs the first host's
 * preflight lists (no command of its own); any other ref takes one more command on the first host.
 */
async function fraisierRoundTrips(env: LabEnv, hosts: string[], batch: number, version: string): Promise<{ first: number; other: number; probes: number }> {
  const counts = new Map<string, { commands: number; probes: number }>();
  const counted = async (host: string): Promise<Executor> => {
    const real = await SshExecutor.connect(host, { configFile: env.sshConfig, connectTimeout: 60 });
    const c = { commands: 0, probes: 0 };
    counts.set(host, c);
    return {
      name: real.name,
      stats: real.stats,
      run: (cmd, o) => {
        c.commands++;
        return real.run(cmd, o);
      },
      connectTcp: (h, port) => {
        c.probes++;
        return real.connectTcp(h, port);
      },
      close: () => real.close(),
    };
  };
  const app = defineDeploy({
    name: 'app',
    autorun: false,
    state: { path: join(mkdtempSync(join(tmpdir(), 'fraisier-bench-rt-')), 'state.db') },
    environments: {
      bench: {
        provider: bareMetal({
          hosts,
          appPath: '/srv/app',
          source: { type: 'git', repo: env.appRepo },
          service: { type: 'supervisor', program: 'app' },
          connect: counted,
        }),
        strategy: rolling({ batchSize: batch }),
        health: { checks: [http({ url: 'http://localhost:8000/health' })], retries: 20, retryDelay: '200ms' },
      },
    },
  });
  const r = await app.deploy('bench', { version }, { sinks: [], handleSignals: false });
  if (r.status !== 'succeeded') throw new Error(`round-trip count: the deploy ${r.status}`);
  const per = hosts.map((h) => counts.get(h)!);
  const rest = per.slice(1);
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return { first: per[0]!.commands, other: avg(rest.map((x) => x.commands)), probes: avg(per.map((x) => x.probes)) };
}

async function onHosts(adm: Map<string, SshExecutor>, hosts: string[], text: string): Promise<void> {
  await Promise.all(hosts.map((h) => adm.get(h)!.run({ steps: [['sh', '-c', text]] }, { check: false })));
}

interface Row {
  hosts: number;
  batch: number;
  load: string;
  ms: Record<string, number[]>;
  /** Peak RSS (KB) of each run, per tool (GNU time; for the bash loops, the largest single process). */
  rssKb: Record<string, number[]>;
  /** Local CPU seconds (user + system, the tool and the children it waited for) of each run, per tool. */
  cpuS: Record<string, number[]>;
  /** Tools left out of this configuration by BENCH_PEERS_SKIP. */
  skipped: string[];
  /** Fraisier's remote commands on the first host, the mean on the others, and health probes per host. */
  roundTrips?: { first: number; other: number; probes: number };
}

/**
 * Brings the bench lab down, then times `lab.sh up N` from nothing (FRAISIER_LAB_TIMING=1: the phases it
 * prints to stderr are kept for the report).
 */
async function timeBringUp(n: number): Promise<{ ms: number; phases: [string, number][] }> {
  await labDown();
  const t0 = performance.now();
  const r = spawnSync('bash', [join(repoRoot, 'test/lab/lab.sh'), 'up', String(n)], {
    env: { ...process.env, FRAISIER_LAB_TIMING: '1' },
    encoding: 'utf8',
    timeout: 300_000,
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`lab.sh up ${n} failed (exit ${r.status}):\n${r.stderr}`);
  const phases = [...r.stderr.matchAll(/^lab: (\d+) ms: (.*)$/gm)].map((m) => [m[2]!, Number(m[1])] as [string, number]);
  return { ms, phases };
}

/** Wall time against host count, one line per tool (batch 1 solid, batch 4 dashed, larger batches dotted), as SVG. */
function plot(rows: Row[], names: string[]): string {
  const W = 720;
  const H = 420;
  const L = 60;
  const B = 50;
  const xs = [...new Set(rows.map((r) => r.hosts))].sort((a, b) => a - b);
  const maxX = Math.max(...xs);
  const maxY = Math.max(...rows.flatMap((r) => names.map((n) => median(r.ms[n] ?? []) / 1000).filter(Number.isFinite)), 1);
  const px = (x: number) => L + (x / maxX) * (W - L - 200);
  const py = (y: number) => H - B - (y / maxY) * (H - B - 20);
  const colours = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e'];
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">\n<rect width="${W}" height="${H}" fill="white"/>\n`;
  s += `<line x1="${L}" y1="${H - B}" x2="${W - 200}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="20" x2="${L}" y2="${H - B}" stroke="black"/>\n`;
  for (const x of xs) s += `<text x="${px(x)}" y="${H - B + 18}" text-anchor="middle">${x}</text>\n`;
  for (let i = 0; i <= 4; i++) s += `<text x="${L - 8}" y="${py((maxY * i) / 4) + 4}" text-anchor="end">${((maxY * i) / 4).toFixed(1)} s</text>\n`;
  s += `<text x="${(L + W - 200) / 2}" y="${H - 10}" text-anchor="middle">hosts</text>\n`;
  let ly = 30;
  names.forEach((n, i) => {
    for (const b of [...new Set(rows.map((r) => r.batch))]) {
      const pts = rows.filter((r) => r.batch === b && r.ms[n]?.length).map((r) => `${px(r.hosts).toFixed(1)},${py(median(r.ms[n]!) / 1000).toFixed(1)}`);
      if (pts.length === 0) continue;
      const dash = b === 1 ? '' : b <= 4 ? ' stroke-dasharray="6 4"' : ' stroke-dasharray="2 3"';
      s += `<polyline fill="none" stroke="${colours[i % colours.length]}" stroke-width="2"${dash} points="${pts.join(' ')}"/>\n`;
      s += `<line x1="${W - 190}" y1="${ly}" x2="${W - 165}" y2="${ly}" stroke="${colours[i % colours.length]}" stroke-width="2"${dash}/><text x="${W - 160}" y="${ly + 4}">${n.replace(/[`<>&]/g, '')}, batch ${b}</text>\n`;
      ly += 18;
    }
  });
  return `${s}</svg>\n`;
}

export async function main(): Promise<void> {
  const startLoad = section(`peers: ${HOSTS.join('/')} hosts, batches ${BATCHES.join('/')}, ${N} runs`);
  const tStart = performance.now();
  const m = machine();
  const rows: Row[] = [];
  const work = mkdtempSync(join(tmpdir(), 'fraisier-bench-peers-'));
  const loads: number[] = [];
  let names: string[] = [];
  const keyOf = new Map<string, string>();
  const broken = new Map<string, string>();
  const wasUp = labIsUp();
  let bringUp: { ms: number; phases: [string, number][]; hosts: number; load: string } | undefined;
  try {
    if (BRINGUP) {
      const l = section(`lab bring-up: lab.sh up ${Math.max(...HOSTS)} from nothing`);
      bringUp = { ...(await timeBringUp(Math.max(...HOSTS))), hosts: Math.max(...HOSTS), load: l };
      console.log(`  ${bringUp.hosts} hosts up in ${fmtS(bringUp.ms)}`);
      for (const [p, ms] of bringUp.phases) console.log(`    ${String(ms).padStart(6)} ms: ${p}`);
    }
    await withLab(async (env) => {
      if (Math.max(...HOSTS) > env.hosts.length) throw new Error(`the bench lab has ${env.hosts.length} hosts; set BENCH_LAB_HOSTS=${Math.max(...HOSTS)}`);
      const adm = new Map<string, SshExecutor>();
      await Promise.all(env.hosts.map(async (h) => adm.set(h.name, await SshExecutor.connect(h.name, { configFile: env.sshConfig, connectTimeout: 60 }))));
      const all = tools(env, work);
      names = all.map((t) => t.name);
      for (const t of all) keyOf.set(t.name, t.key);
      console.log(`  tools: ${names.join(', ')}${SKIP.length ? `; skipped: ${process.env['BENCH_PEERS_SKIP']}` : ''}`);
      try {
        for (const n of HOSTS) {
          for (const batch of BATCHES) {
            const load = section(`${n} hosts, batch ${batch}`);
            const hosts = env.hosts.slice(0, n).map((h) => h.name);
            // wipe every host, prime this configuration's hosts with v1.2.0 (untimed)
            await onHosts(adm, [...adm.keys()], 'supervisorctl stop app >/dev/null 2>&1; rm -rf /srv/app/* /srv/app/.[!.]*; true');
            await sh('bash', [join(benchDir, 'rolling-baseline.sh'), env.sshConfig, env.appRepo, 'v1.2.0', String(n), ...hosts]);
            const here = all.filter((t) => !skipped(t.key, n, batch));
            for (const t of here) await t.setup?.(hosts, batch);
            const row: Row = { hosts: n, batch, load, ms: {}, rssKb: {}, cpuS: {}, skipped: all.filter((t) => !here.includes(t)).map((t) => t.name) };
            let v = 'v1.1.0';
            for (let i = 0; i < N; i++) {
              const order = here.map((_, k) => here[(k + i) % here.length]!);
              for (const t of order) {
                if (t.slow && i >= SLOW_RUNS) continue;
                v = v === 'v1.0.0' ? 'v1.1.0' : 'v1.0.0';
                await onHosts(adm, hosts, `rm -rf /srv/app/releases/${v}`);
                loads.push(loadavg()[0]!);
                if (broken.has(t.name)) continue;
                const t0 = performance.now();
                let usage: Usage;
                try {
                  usage = await t.run(hosts, batch, v);
                } catch (err) {
                  // a peer that cannot run here (missing gem, module...) is reported and left out, not fatal
                  broken.set(t.name, err instanceof Error ? err.message.split('\n').slice(0, 6).join(' ') : String(err));
                  console.log(`  ${t.name}: FAILED, left out: ${broken.get(t.name)}`);
                  if (t === all[0]) throw err;
                  continue;
                }
                const ms = performance.now() - t0;
                const add = (m: Record<string, number[]>, x: number) => {
                  m[t.name] = [...(m[t.name] ?? []), x];
                };
                add(row.ms, ms);
                add(row.rssKb, usage.rssKb);
                add(row.cpuS, usage.cpuS);
                const extra = Number.isFinite(usage.rssKb) ? `  (peak RSS ${(usage.rssKb / 1024).toFixed(1)} MB, CPU ${usage.cpuS.toFixed(2)} s)` : '';
                console.log(`  ${t.name.padEnd(36)} ${v}: ${fmtS(ms)}${extra}`);
              }
            }
            if (TOOLS.includes('fraisier') && !skipped('fraisier', n, batch)) {
              await onHosts(adm, hosts, 'rm -rf /srv/app/releases/v1.0.0 /srv/app/releases/v1.1.0');
              row.roundTrips = await fraisierRoundTrips(env, hosts, batch, v === 'v1.0.0' ? 'v1.1.0' : 'v1.0.0');
              const rt = row.roundTrips;
              console.log(
                `  Fraisier round trips: first host ${rt.first} commands, others ${rt.other.toFixed(1)}, health probes ${rt.probes.toFixed(1)} per host (+ 1 SSH handshake each)`,
              );
            }
            rows.push(row);
          }
        }
      } finally {
        await Promise.all([...adm.values()].map((e) => e.close()));
        spawnSync('sh', ['-c', `for s in ${work}/cm-* ${work}/ans-*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null; done; true`]);
      }
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
    // the bring-up left the lab up: down again if it was not up before (withLab saw it up)
    if (BRINGUP && !wasUp) await labDown();
  }
  const totalMs = performance.now() - tStart;
  names = names.filter((n) => rows.some((r) => r.ms[n]?.length));
  const fr = names[0]!;
  const cell = (r: Row, n: string, f: (xs: number[]) => string) => (r.skipped.includes(n) ? 'skipped' : f(r.ms[n] ?? []));
  const head = ['tool', ...rows.map((r) => `${r.hosts} hosts, batch ${r.batch}`)];
  const wall = table(
    head,
    names.map((n) => [n, ...rows.map((r) => cell(r, n, (xs) => fmtS(median(xs))))]),
  );
  const ratios = table(
    ['Fraisier ÷ tool', ...rows.map((r) => `${r.hosts} h, b${r.batch}`)],
    names.slice(1).map((n) => [n, ...rows.map((r) => cell(r, n, () => ratio(median(r.ms[fr] ?? []), median(r.ms[n] ?? []))))]),
  );
  const lo = Math.min(...HOSTS);
  const hi = Math.max(...HOSTS);
  const slopes = table(
    ['tool', ...BATCHES.map((b) => `s per extra host, batch ${b}`)],
    names.map((n) => [
      n,
      ...BATCHES.map((b) => {
        const pts = rows.filter((r) => r.batch === b && r.ms[n]?.length).map((r) => [r.hosts, median(r.ms[n]!) / 1000] as const);
        if (pts.length < 2) return '-';
        const [a, z] = [pts[0]!, pts[pts.length - 1]!];
        return ((z[1] - a[1]) / (z[0] - a[0])).toFixed(3);
      }),
    ]),
  );
  const hasUsage = rows.some((r) => Object.values(r.cpuS).some((xs) => xs.some(Number.isFinite)));
  const cpu = hasUsage
    ? table(
        ['local CPU s per run (per host)', ...rows.map((r) => `${r.hosts} h, b${r.batch}`)],
        names.map((n) => [
          n,
          ...rows.map((r) =>
            cell(r, n, () => {
              const c = median(r.cpuS[n] ?? []);
              return Number.isFinite(c) ? `${c.toFixed(2)} (${(c / r.hosts).toFixed(3)})` : '-';
            }),
          ),
        ]),
      )
    : '';
  const frRss = rows.filter((r) => r.rssKb[fr]?.some(Number.isFinite));
  const rssMaxMb = (r: Row) => Math.max(...r.rssKb[fr]!.filter(Number.isFinite)) / 1024;
  const rss = frRss.length
    ? table(
        ['configuration', 'Fraisier peak RSS, median', 'highest', `target < ${RSS_TARGET_MB} MB`],
        frRss.map((r) => [
          `${r.hosts} hosts, batch ${r.batch}`,
          `${(median(r.rssKb[fr]!) / 1024).toFixed(1)} MB`,
          `${rssMaxMb(r).toFixed(1)} MB`,
          rssMaxMb(r) < RSS_TARGET_MB ? 'met' : 'not met',
        ]),
      )
    : '';
  const batchCheck = HOSTS.flatMap((n) => {
    const b1 = rows.find((r) => r.hosts === n && r.batch === 1);
    if (!b1) return [];
    return BATCHES.filter((b) => b > 1).flatMap((b) => {
      const rb = rows.find((r) => r.hosts === n && r.batch === b);
      return rb ? [`- ${n} hosts: Fraisier batch ${b} ÷ batch 1 = ${ratio(median(rb.ms[fr] ?? []), median(b1.ms[fr] ?? []))}`] : [];
    });
  });
  const trips = rows.some((r) => r.roundTrips)
    ? table(
        ['configuration', 'SSH handshakes per host', 'commands, first host', 'commands, other hosts', 'health probes per host'],
        rows
          .filter((r) => r.roundTrips)
          .map((r) => [`${r.hosts} hosts, batch ${r.batch}`, 1, r.roundTrips!.first, r.roundTrips!.other.toFixed(1), r.roundTrips!.probes.toFixed(1)]),
      )
    : '';
  const bringUpText = bringUp
    ? `**Lab bring-up** (\`lab.sh up ${bringUp.hosts}\` from nothing, timed by the bench, load ${bringUp.load} at its start):
${fmtS(bringUp.ms)} for ${bringUp.hosts} namespace hosts (target: under a minute; ${bringUp.ms < 60_000 ? 'met' : 'not met'}). Phases (ms from the
start of \`lab.sh\`, \`FRAISIER_LAB_TIMING=1\`): ${bringUp.phases.map(([p, ms]) => `${p} ${ms}`).join(', ')}.
`
    : '';
  const skipText = SKIP.length ? `\nLeft out on purpose (\`BENCH_PEERS_SKIP=${process.env['BENCH_PEERS_SKIP']}\`): the cells marked "skipped".\n` : '';
  const cmd =
    NAME === 'peers-48'
      ? '`npx tsx bench/peers-48.ts` (= `BENCH_LAB_HOSTS=48 BENCH_PEERS_HOSTS=12,48 BENCH_PEERS_BATCHES=1,4,12 BENCH_PEERS_BRINGUP=1 BENCH_PEERS_NAME=peers-48 npx tsx bench/peers.ts`)'
      : '`npx tsx bench/peers.ts`';
  writeFileSync(join(repoRoot, 'docs', `benchmarks-${NAME}.svg`), plot(rows, names));
  const loadRange = `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`;
  console.log(`\n${bringUpText}\n${wall}\n\n${ratios}\n\n${slopes}\n\n${cpu}\n\n${rss}\n${batchCheck.join('\n')}\n\n${trips}`);
  console.log(`\nthe whole run took ${(totalMs / 60_000).toFixed(1)} min`);
  saveResult({
    name: NAME,
    order: NAME === 'peers' ? 0 : 0.5,
    title: `Fraisier against its peers: ${HOSTS.join(', ')} hosts`,
    date: new Date().toISOString(),
    machine: { ...m, load: startLoad },
    markdown: `The same rolling job for every tool, on the same lab hosts, in one run (${cmd}): a fresh
release directory (deleted untimed before every run), a fetch, the atomic \`current\` switch,
\`supervisorctl restart app\`, and \`http://localhost:8000/health\` from the host, 20 tries 200 ms apart.
The tools run interleaved (the order rotates every run), ${N} runs each${SLOW_RUNS < N ? ` (Capistrano and Ansible ${SLOW_RUNS})` : ''}, medians. Tools not installed
are left out: ${names.join(', ')} ran here. Fraisier opens fresh SSH connections every run; the
ControlMaster and Ansible columns reuse sockets kept warm from the previous run. The whole run took
${(totalMs / 60_000).toFixed(1)} min.

**Load**: 1-minute load average ${loadRange} during the runs, on ${m.nproc} CPUs shared with the lab
hosts and with other people's work. Compare the ratios within this run, not the absolute times.
${skipText}
${bringUpText}
${wall}

Ratios (below 1.00× Fraisier is faster):

${ratios}

Cost per extra host (slope of the median wall time between ${lo} and ${hi} hosts):

${slopes}
${
  cpu
    ? `
Local CPU per run, median, in seconds (and per host), from GNU time around each tool: the tool's process
and every child it waited for (Fraisier: one Node process; the bash loops: bash, every \`ssh\` client, and
for ControlMaster not the persisted masters, which do the crypto; Capistrano: one Ruby process; Ansible:
its forks and their \`ssh\` clients, not its persisted masters). The lab hosts' sshd, git and node run on
the same CPUs and are not counted.

${cpu}
`
    : ''
}${
  rss
    ? `
Fraisier's peak RSS (\`/usr/bin/time -f %M\` around \`fraisier deploy\`: the maximum resident set of the Node
process, every run measured):

${rss}
`
    : ''
}
Batches:
${batchCheck.join('\n')}

Fraisier's round trips per host, counted in one more (untimed) deploy per configuration: each command is
one round trip over the host's one connection (through its persistent shell), each health probe one
forwarded channel. The bash loop makes 2 or more fresh \`ssh\` logins per host (the deploy, then one per
health poll), each a full handshake.

${trips}

![wall time against host count](benchmarks-${NAME}.svg)
${broken.size ? `\nLeft out (failed on this machine): ${[...broken].map(([n, e]) => `${n}: ${e}`).join('; ')}` : ''}`,
    raw: { rows, loads, broken: Object.fromEntries(broken), bringUp, totalMs, skip: process.env['BENCH_PEERS_SKIP'] ?? '' },
  });
}

runMain(import.meta.url, main);
