/**
 * The fixed cost of a deploy: `fraisier deploy` (the built CLI, bin/fraisier.js) to ONE lab host, against
 * `node -e 0`, interleaved, medians of BENCH_RUNS (default 5). Fixed cost = wall − `node -e 0` − the
 * remote work the CLI itself reports per phase (prepare + activate + health, which include the
 * configured health waits). Then each step of that fixed cost timed on its own in a fresh process
 * (bench/fixed-cost-phases.mjs), and one `--cpu-prof` of a deploy summarised by module. Every deploy runs
 * with `FRAISIER_TRACE=1`: the median time of each phase (core/trace.ts) is printed too.
 * `BENCH_FIXED_BASELINE=<another checkout, built>`: its `bin/fraisier.js` deploys too, interleaved with
 * this one (baseline, this, baseline, ...), and the table gives both and their ratio.
 * `npx tsx bench/fixed-cost.ts` (needs dist/: `npm run build`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchDir, benchYaml, fmtMs, machine, median, repoRoot, runMain, saveResult, section, table, withLab, type LabEnv } from './lib.js';

const N = Number(process.env['BENCH_RUNS'] ?? 5);
const bin = join(repoRoot, 'bin', 'fraisier.js');
const baselineDir = process.env['BENCH_FIXED_BASELINE'];
const baselineBin = baselineDir ? join(baselineDir, 'bin', 'fraisier.js') : undefined;

const yaml = (env: LabEnv) => benchYaml(env, ['h1']);

interface Run {
  wallMs: number;
  /** prepare + activate + health as printed by the CLI (PHASES column). */
  remoteMs: number;
  phases: Record<string, number>;
  /** ms after spawn at which "Deploying ..." was printed (set-up done: store, lock, SSH, preflight, resolve). */
  setupMs: number;
  /** `FRAISIER_TRACE` phases: ms since the process started, by phase (the host name left out). */
  trace: Record<string, number>;
}

function deploy(cwd: string, version: string, extra: string[] = [], path = bin): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...extra, path, 'deploy', 'app', 'bench', '--version', version], {
      cwd,
      env: { ...process.env, FORCE_COLOR: '0', FRAISIER_TRACE: 'ssh' },
    });
    let out = '';
    let setupMs = NaN;
    child.stdout.on('data', (d) => {
      out += d;
      if (Number.isNaN(setupMs) && out.includes('Deploying app')) setupMs = performance.now() - t0;
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) return reject(new Error(`fraisier deploy ${version} exited ${code}:\n${out}`));
      const phases: Record<string, number> = {};
      const line = out.split('\n').find((l) => /^h1\s+healthy/.test(l)) ?? '';
      for (const m of line.matchAll(/(\w+) (\d+)ms/g)) phases[m[1]!] = Number(m[2]);
      const remoteMs = (phases['prepare'] ?? 0) + (phases['activate'] ?? 0) + (phases['health'] ?? 0);
      const trace: Record<string, number> = {};
      for (const m of out.matchAll(/^\[trace\] (\d+) ms (.*)$/gm))
        trace[
          m[2]!
            .replace(/ to h1\b/, '')
            .replace(/^ssh h1: (?:Inbound: |Outbound: )?/, 'ssh: ')
            .replace(/(Trying|ident:) .*/, '$1 …')
            .replace(/\d+ host\(s\)/, 'the hosts')
        ] ??= Number(m[1]);
      resolve({ wallMs, remoteMs, phases, setupMs, trace });
    });
  });
}

function nodeFloor(): number {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  return performance.now() - t0;
}

/** Self time of a .cpuprofile grouped by package / dist module, top entries. */
function profileSummary(dir: string): { wallMs: number; rows: [string, number][] } {
  const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'))!;
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
    nodes: { id: number; callFrame: { url: string; functionName: string } }[];
    samples: number[];
    timeDeltas: number[];
    startTime: number;
    endTime: number;
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName;
    let cat = n.callFrame.url
      ? n.callFrame.url
          .replace(/^file:\/\//, '')
          .replace(/.*node_modules\/([^/]+)\/.*/, 'npm: $1')
          .replace(/.*\/dist\/bundle\/.*/, 'fraisier (dist/bundle)')
          .replace(/.*\/dist\/.*/, 'fraisier (dist, unbundled)')
          .replace(/^node:vm$/, 'compiling dist/bundle/cli.cjs (vm.Script, with the code cache)')
          .replace(/^node:.*/, 'node internals (module loader, streams, ...)')
      : `(${fn || 'native'})`;
    if (['(program)', '(idle)', '(garbage collector)'].includes(fn)) cat = fn === '(idle)' ? '(idle: waiting on the network / hosts)' : fn;
    self.set(cat, (self.get(cat) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  return { wallMs: (p.endTime - p.startTime) / 1000, rows: [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12) };
}

export async function main(): Promise<void> {
  const startLoad = section(`fixed cost of a one-host deploy, ${N} runs`);
  const m = machine();
  await withLab(async (env) => {
    const ws = mkdtempSync(join(tmpdir(), 'fraisier-bench-fixed-'));
    let wsBase = ws;
    try {
      writeFileSync(join(ws, 'fraises.yaml'), yaml(env));
      await deploy(ws, 'v1.2.0'); // untimed: mirror, state file, a live release
      // the baseline in a workspace of its own: each build keeps its validated-config cache (core/config/cache.ts,
      // which records the early connections), where one workspace would have each build invalidate the other's
      if (baselineBin) {
        wsBase = mkdtempSync(join(tmpdir(), 'fraisier-bench-fixed-base-'));
        writeFileSync(join(wsBase, 'fraises.yaml'), yaml(env));
        await deploy(wsBase, 'v1.2.0', [], baselineBin);
      }
      const runs: Run[] = [];
      const baseRuns: Run[] = [];
      const floor: number[] = [];
      let v = 'v1.1.0';
      const next = () => (v = v === 'v1.0.0' ? 'v1.1.0' : 'v1.0.0');
      for (let i = 0; i < N; i++) {
        floor.push(nodeFloor());
        if (baselineBin) {
          const b = await deploy(wsBase, next(), [], baselineBin);
          baseRuns.push(b);
          console.log(`  baseline deploy ${v}: ${fmtMs(b.wallMs)} (set-up until "Deploying" ${fmtMs(b.setupMs)}, remote phases ${fmtMs(b.remoteMs)})`);
        }
        const r = await deploy(ws, next());
        runs.push(r);
        console.log(`  deploy ${v}: ${fmtMs(r.wallMs)} (set-up until "Deploying" ${fmtMs(r.setupMs)}, remote phases ${fmtMs(r.remoteMs)})`);
      }
      const steps: Record<string, number>[] = [];
      for (let i = 0; i < N; i++) {
        const r = spawnSync(
          process.execPath,
          [join(benchDir, 'fixed-cost-phases.mjs'), join(ws, 'fraises.yaml'), join(ws, '.fraisier', 'state.db'), 'h1', env.appRepo],
          {
            cwd: ws,
            encoding: 'utf8',
          },
        );
        if (r.status !== 0) throw new Error(`fixed-cost-phases failed: ${r.stderr}`);
        steps.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
      }
      const profDir = join(ws, 'prof');
      v = v === 'v1.0.0' ? 'v1.1.0' : 'v1.0.0';
      const profiled = await deploy(ws, v, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
      const prof = profileSummary(profDir);

      const f = median(floor);
      const measures = (rs: Run[]) => ({
        wall: median(rs.map((r) => r.wallMs)),
        setup: median(rs.map((r) => r.setupMs)),
        remote: median(rs.map((r) => r.remoteMs)),
        fixed: median(rs.map((r, i) => r.wallMs - r.remoteMs - floor[i]!)),
      });
      const now = measures(runs);
      const base = baselineBin ? measures(baseRuns) : undefined;
      const row = (label: string, k: keyof typeof now, bold = false): string[] => {
        const cell = (x: number) => (bold ? `**${fmtMs(x)}**` : fmtMs(x));
        return base ? [label, cell(now[k]), cell(base[k]), `${(now[k] / base[k]).toFixed(2)}×`] : [label, cell(now[k])];
      };
      const main = table(base ? ['measure', 'median', `baseline (${baselineDir})`, 'this ÷ baseline'] : ['measure', 'median'], [
        base ? ['`node -e 0`', fmtMs(f), fmtMs(f), '-'] : ['`node -e 0`', fmtMs(f)],
        row('`fraisier deploy` to 1 host, wall', 'wall'),
        row('… until it prints "Deploying" (store, lock, SSH, preflight, resolve)', 'setup'),
        row('… remote phases it reports (prepare + activate + health, incl. health waits)', 'remote'),
        row('**fixed cost** = wall − remote phases − `node -e 0`', 'fixed', true),
        base ? ['target', '≤ 250 ms', '', ''] : ['target', '≤ 250 ms'],
      ]);
      // FRAISIER_TRACE phases in the order they happen: when each was reached, ms since the process started
      const phaseNames = [...new Set(runs.flatMap((r) => Object.keys(r.trace)))].sort(
        (a, b) => median(runs.map((r) => r.trace[a] ?? NaN).filter(Number.isFinite)) - median(runs.map((r) => r.trace[b] ?? NaN).filter(Number.isFinite)),
      );
      const at = (rs: Run[], k: string) => median(rs.map((r) => r.trace[k] ?? NaN).filter(Number.isFinite));
      const traceTable = table(
        base ? ['phase reached (`FRAISIER_TRACE=ssh`)', 'ms since start', 'baseline'] : ['phase reached (`FRAISIER_TRACE=ssh`)', 'ms since start'],
        phaseNames.map((k) => (base ? [k, fmtMs(at(runs, k)), fmtMs(at(baseRuns, k))] : [k, fmtMs(at(runs, k))])),
      );
      // where the fixed cost goes: local work vs waiting on the host, from the trace of each run
      const breakdown = (r: Run): Record<string, number> => {
        const t = (k: string) => r.trace[k] ?? NaN;
        const connecting = t('connecting to the hosts');
        const sshLoaded = t('SSH code loaded, handshakes started');
        const lock = t('lock taken');
        const connected = t('connected (early)');
        const ready = Math.max(lock, connected, t('took the early connection'));
        const cleaned = t('old releases cleaned up');
        return {
          'node start, until bin/fraisier.js runs': t('node started, bin/fraisier.js running'),
          'local: code loaded (the CLI; from dist/bundle/cli.cjs, the package too)': t('modules loaded') - t('node started, bin/fraisier.js running'),
          'local: fraises.yaml read and validated': connecting - t('modules loaded'),
          'local: SSH code loaded or evaluated (the handshake starts after it)': sshLoaded - connecting,
          'local: package evaluated, state store, lock (the handshake runs meanwhile)': lock - (Number.isFinite(sshLoaded) ? sshLoaded : connecting),
          'waiting on the host: the handshake, after the lock': Math.max(0, connected - lock),
          // one host: preflight, resolution and prepare are one command; its prepare share is in the remote phases
          'waiting on the host: preflight (and the version resolved)':
            t('version resolved') - ready - (Number.isFinite(t('preflight, version and prepare in one command')) ? (r.phases['prepare'] ?? 0) : 0),
          'remote phases (prepare + activate + health)': r.remoteMs,
          'waiting on the host: cleanup of old releases (in the activate command since issue 13)': cleaned - t('strategy done'),
          'local: history, closing, exit': t('done, exit 0') - cleaned,
        };
      };
      const parts = Object.keys(breakdown(runs[0]!));
      const part = (rs: Run[], k: string) => median(rs.map((r) => breakdown(r)[k]!).filter(Number.isFinite));
      const breakdownTable = table(
        base ? ['part of a one-host deploy (trace)', 'median', 'baseline'] : ['part of a one-host deploy (trace)', 'median'],
        parts.map((k) => (base ? [k, fmtMs(part(runs, k)), fmtMs(part(baseRuns, k))] : [k, fmtMs(part(runs, k))])),
      );
      const names = Object.keys(steps[0]!);
      const stepTable = table(
        ['step (fresh process, each timed alone)', 'median', 'min', 'max'],
        names.map((k) => {
          const xs = steps.map((s) => s[k]!);
          return [k, fmtMs(median(xs)), fmtMs(Math.min(...xs)), fmtMs(Math.max(...xs))];
        }),
      );
      const profTable = table(
        ['where the CPU time went (self time)', 'ms'],
        prof.rows.map(([k, ms]) => [k, fmtMs(ms)]),
      );
      // the one file the command reads and compiles (its size drives the read and the code cache's deserialisation)
      const cliKb = (dir: string) => {
        try {
          return `${Math.round(statSync(join(dir, 'dist', 'bundle', 'cli.cjs')).size / 1024)} kB`;
        } catch {
          return '-';
        }
      };
      const cliSize = `dist/bundle/cli.cjs, the file the command compiles: ${cliKb(repoRoot)}${baselineDir ? ` (baseline: ${cliKb(baselineDir)})` : ''}.`;
      console.log(`\n${main}\n\n${cliSize}\n\n${breakdownTable}\n\n${traceTable}\n\n${stepTable}\n\n${profTable}`);
      saveResult({
        name: 'fixed-cost',
        order: 2,
        title: 'Fixed cost of a deploy (one host)',
        date: new Date().toISOString(),
        machine: { ...m, load: startLoad },
        markdown: `\`fraisier deploy app bench\` (bin/fraisier.js, dist/bundle) to one lab host, supervisor restart, http health
check 20 × 200 ms; ${N} runs alternating v1.0.0 / v1.1.0, each after one \`node -e 0\`; medians. The command
runs from \`dist/bundle/cli.cjs\`, the CLI and the package in one file compiled with V8's code cache
(bin/cli-loader.js), which the untimed first deploy writes, as a user's first deploy of a build does.

${main}

Where the time goes, from the same traces (\`FRAISIER_TRACE=ssh\`): local work, and what the command
waits on the host for. The handshake runs during the local set-up; only what is left of it after the lock
is waiting (a baseline without these trace points shows \`-\`).

${breakdownTable}

When each phase was reached (\`FRAISIER_TRACE=ssh\`, core/trace.ts; medians of the same runs). The SSH code
loads right after fraises.yaml is validated ("connecting to the hosts"); the handshake then starts and
runs while the package loads (in steps, yielding to the event loop), the store opens and the lock is
taken ("connected (early)"; the \`ssh:\` rows are its round trips); the first command on the host is
the preflight, after the lock.

${traceTable}

Each step of the fixed cost, timed alone in a fresh \`node\` process running the same bundle
(bench/fixed-cost-phases.mjs). The remote ones are one SSH round trip each: on a loaded machine they
are dominated by the lab host's own work (\`supervisorctl\` is a Python program: ~0.4 s of CPU even idle).

${stepTable}

One deploy under \`node --cpu-prof\` (wall ${fmtMs(prof.wallMs)}), self time grouped by module:

${profTable}

${cliSize}

Round trips per host for a deploy (bare_metal, git source; docs/bare-metal.md): 1 SSH handshake, then
on ONE host 2 commands (preflight + resolution + prepare; switch + restart + pruning of old releases),
on several hosts 3 (preflight, prepare, switch + restart + pruning; a ref other than a tag or branch
takes one more on the first host), plus the health probes (one forwarded channel each). The baseline
(before issue 13) made 4: preflight, prepare, switch + restart, cleanup. On one host the "prepare"
phase is the prepare's share of the first command (the host's clock times the checks before it).`,
        raw: { floor, runs, baseRuns, steps, profile: prof, profiledRun: profiled },
      });
    } finally {
      rmSync(ws, { recursive: true, force: true });
      if (wsBase !== ws) rmSync(wsBase, { recursive: true, force: true });
    }
  });
}

runMain(import.meta.url, main);
