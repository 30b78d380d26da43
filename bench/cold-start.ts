/**
 * Cold start of the `fraisier` command against bare `node -e 0` (issue 13, goal 4: ≤ 1.5×), median of
 * BENCH_COLD_RUNS (default 10), every command interleaved (one of each in turn) after one untimed run
 * of each. Needs dist/ (`npm run build`).
 * - `--version` and `history` in a temp dir holding a minimal fraises.yaml and an existing state db:
 *   `history` as a user runs it again (the config unchanged: the fast path of core/quick-history.ts),
 *   and the same read through the full CLI (a config beside which nothing is cached). The breakdown of
 *   a cold `history` comes from `FRAISIER_TRACE` (median per phase), and the time from its last line
 *   to the process end is set against the same time for an empty ES module.
 * - `status` on a one-host lab config (BENCH_LAB_NET / BENCH_LAB_DIR, bench/lib.ts; `BENCH_COLD_STATUS=0`
 *   skips it), against `node -e 0` and `ssh h1 true` (OpenSSH: its own start, a handshake, one command):
 *   `status` connects to its hosts (it reports what is live), so its floor is a handshake; its local
 *   overhead is status − `ssh h1 true`. Also on BENCH_COLD_STATUS_HOSTS hosts (default 3: one connection
 *   and one command each, in parallel).
 * `BENCH_COLD_BASELINE=<another checkout, built>`: its `history` (and `status`) run too, interleaved.
 * `npx tsx bench/cold-start.ts`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchYaml, fmtMs, LAB_HOSTS, machine, median, ratio, repoRoot, runMain, saveResult, section, table, withLab } from './lib.js';

const RUNS = Number(process.env['BENCH_COLD_RUNS'] ?? 10);
const bin = join(repoRoot, 'bin', 'fraisier.js');
const baselineDir = process.env['BENCH_COLD_BASELINE'];
const baselineBin = baselineDir ? join(baselineDir, 'bin', 'fraisier.js') : undefined;

/** One command of a side-by-side run: what to spawn, and where. */
interface Cmd {
  label: string;
  file: string;
  args: string[];
  cwd: string;
}

/** The runs of one command: wall times, and the `[trace]` phases of each run (ms since its start). */
interface Runs {
  ms: number[];
  phases: Map<string, number>[];
  out: string;
}

const node = (label: string, args: string[], cwd: string): Cmd => ({ label, file: process.execPath, args, cwd });

/**
 * Runs each command `RUNS` times, interleaved (one of each in turn), so that a change in the machine's
 * load hits every command alike; one untimed run of each first warms the page cache. `FRAISIER_TRACE`
 * is on for every run (one environment lookup per phase).
 */
function timeAll(commands: Cmd[]): Runs[] {
  const results: Runs[] = commands.map(() => ({ ms: [], phases: [], out: '' }));
  const env = { ...process.env, FORCE_COLOR: '0', FRAISIER_TRACE: '1' };
  for (const c of commands) spawnSync(c.file, c.args, { cwd: c.cwd, stdio: 'ignore', env });
  for (let i = 0; i < RUNS; i++) {
    commands.forEach((c, k) => {
      const t0 = performance.now();
      const r = spawnSync(c.file, c.args, { cwd: c.cwd, encoding: 'utf8', env });
      results[k]!.ms.push(performance.now() - t0);
      if (r.status !== 0) throw new Error(`${c.label} exited ${r.status}: ${r.stdout}${r.stderr}`);
      const phases = new Map<string, number>();
      for (const m of r.stderr.matchAll(/^\[trace\] (\d+) ms (.*)$/gm)) {
        const name = m[2]!.replace(/ to h1\b/, '').replace(/\d+ host\(s\)/, 'the hosts');
        if (!phases.has(name)) phases.set(name, Number(m[1]));
      }
      results[k]!.phases.push(phases);
      results[k]!.out = r.stdout;
    });
  }
  return results;
}

/** The median of each phase over the runs, in the order of the first run; `end` is the last one. */
function medianPhases(runs: Runs): { name: string; ms: number }[] {
  const names = [...(runs.phases[0]?.keys() ?? [])];
  return names.map((name) => ({ name, ms: median(runs.phases.map((p) => p.get(name)).filter((x): x is number => x !== undefined)) }));
}

/** Wall time minus the last trace line, per run: what the parent waits for after the process's last mark. */
function tail(runs: Runs): number {
  return median(runs.ms.map((ms, i) => ms - Math.max(...(runs.phases[i]?.values() ?? [NaN]))));
}

const fmtPhases = (ps: { name: string; ms: number }[]) => ps.map((p) => `${fmtMs(p.ms)} ${p.name}`).join('; ');

function historyBench(dir: string): { markdown: string; raw: unknown } {
  writeFileSync(
    join(dir, 'fraises.yaml'),
    `fraises:
  app:
    git_repo: /tmp/nowhere.git
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [h1]
        supervisor_program: app
`,
  );
  // the same fraise read through the full CLI: no .fraisier/ beside this file, so nothing is cached
  const fullDir = join(dir, 'full');
  mkdirSync(fullDir);
  writeFileSync(
    join(fullDir, 'fraises.yaml'),
    `state:\n  path: ../.fraisier/state.db\nfraises:\n  app:\n    git_repo: /tmp/nowhere.git\n    app_path: /srv/app\n    environments:\n      production:\n        provider: bare_metal\n        instances: [h1]\n        supervisor_program: app\n`,
  );
  // an empty ES module that marks its end as the trace does: the floor of the ESM entry and of the exit
  writeFileSync(join(dir, 'empty.mjs'), 'process.stderr.write(`[trace] ${performance.now().toFixed(0)} ms end\\n`);\n');
  // the baseline in a copy of its own: it keeps its own validated-config cache (another build, another key)
  const baseDir = join(dir, 'base');
  mkdirSync(baseDir);
  writeFileSync(join(baseDir, 'fraises.yaml'), readFileSync(join(dir, 'fraises.yaml')));
  // create the state db (an empty history is enough: the point is opening SQLite and the config), then
  // a second run validates fraises.yaml again and records it (the first created .fraisier/)
  for (const [b, cwd] of [[bin, dir], ...(baselineBin ? [[baselineBin, baseDir]] : [])] as [string, string][]) {
    for (let i = 0; i < 2; i++) {
      const first = spawnSync(process.execPath, [b, 'history'], { cwd, encoding: 'utf8' });
      if (first.status !== 0) throw new Error(`fraisier history failed: ${first.stdout}${first.stderr}`);
    }
  }
  if (!existsSync(join(dir, '.fraisier', 'state.db'))) throw new Error('fraisier history did not create .fraisier/state.db');

  const commands = [
    node('`node -e 0` (floor)', ['-e', '0'], dir),
    node('`node empty.mjs` (an ES module entry)', [join(dir, 'empty.mjs')], dir),
    node('`fraisier --version`', [bin, '--version'], dir),
    node('`fraisier history` (config unchanged: fast path)', [bin, 'history'], dir),
    node('`fraisier history`, full CLI (config not cached)', [bin, 'history'], fullDir),
    ...(baselineBin ? [node(`\`fraisier history\`, baseline (${baselineDir})`, [baselineBin, 'history'], baseDir)] : []),
  ];
  const results = timeAll(commands);
  const f = median(results[0]!.ms);
  const met = (x: number) => (x <= 1.5 * f ? 'met' : 'NOT met');
  const rows = commands.map((c, k) => {
    const xs = results[k]!.ms;
    const x = median(xs);
    return [c.label, fmtMs(x), fmtMs(Math.min(...xs)), fmtMs(Math.max(...xs)), k === 0 ? '1.00×' : ratio(x, f), k < 2 ? '-' : met(x)];
  });
  const t = table(['command', 'median', 'min', 'max', 'vs node -e 0', 'target ≤ 1.5×'], rows);
  const fast = results[3]!;
  const full = results[4]!;
  const empty = results[1]!;
  const hist = median(fast.ms);
  const markdown = `\`node bin/fraisier.js ...\` (the compiled dist/), ${RUNS} runs of each, interleaved, after one untimed warm-up, in a temp dir
holding a minimal fraises.yaml and an existing (empty) \`.fraisier/state.db\`. Wall time of the whole
process as seen by the parent, including Node's own start-up.

${t}

\`fraisier --version\` net of Node start-up: ${fmtMs(median(results[2]!.ms) - f)}; \`fraisier history\`: ${fmtMs(hist - f)} (the full CLI: ${fmtMs(median(full.ms) - f)})${baselineBin ? `; baseline ${fmtMs(median(results[5]!.ms) - f)}, this ÷ baseline ${ratio(hist, median(results[5]!.ms))}` : ''}.
A second \`fraisier history\` on an unchanged fraises.yaml and a SQLite state file whose schema is current is
answered by \`bin/fraisier.js\` through one self-contained module (core/quick-history.ts: the argv, the
validated-config cache, better-sqlite3's addon, the CLI's formatter) without loading the CLI; anything
else (another command line, a changed file, PostgreSQL state, \`--id\`, an error) goes to the full CLI.

Where a cold \`history\` goes (\`FRAISIER_TRACE=1\` in every run, median per phase, ms since the process
started): fast path ${fmtPhases(medianPhases(fast))}; full CLI ${fmtPhases(medianPhases(full))}; an empty ES
module ends at ${fmtPhases(medianPhases(empty))}. From the last mark to the end of the process as the parent
sees it (process start before Node's clock, exit, reaping): ${fmtMs(tail(fast))} for \`history\`,
${fmtMs(tail(empty))} for the empty module, so the exit adds ${fmtMs(tail(fast) - tail(empty))}.`;
  console.log(
    `\n${t}\n\nfast path: ${fmtPhases(medianPhases(fast))}\nfull CLI: ${fmtPhases(medianPhases(full))}\nempty module: ${fmtPhases(medianPhases(empty))}; tail ${fmtMs(tail(fast))} vs ${fmtMs(tail(empty))}`,
  );
  return {
    markdown,
    raw: Object.fromEntries(commands.map((c, k) => [c.label, { ms: results[k]!.ms, phases: medianPhases(results[k]!) }])),
  };
}

/** Hosts of the many-host `status` row: BENCH_COLD_STATUS_HOSTS (default 3; 0 or 1 leaves the row out), at most the lab's. */
const STATUS_HOSTS = Math.min(Number(process.env['BENCH_COLD_STATUS_HOSTS'] ?? 3), LAB_HOSTS);

async function statusBench(): Promise<{ markdown: string; raw: unknown }> {
  return withLab(async (env) => {
    const dir = mkdtempSync(join(tmpdir(), 'fraisier-bench-cold-status-'));
    const hosts = Array.from({ length: STATUS_HOSTS }, (_, i) => `h${i + 1}`);
    // the many-host config in a directory of its own (its own state and config cache)
    const many = join(dir, 'many');
    try {
      writeFileSync(join(dir, 'fraises.yaml'), benchYaml(env, ['h1']));
      // a live release on each host, so that status reads a current link and a releases directory (the
      // deploy also creates .fraisier/: the untimed first status records the config and the hosts'
      // addresses in its cache)
      const deploy = (cwd: string) => {
        const d = spawnSync(process.execPath, [bin, 'deploy', 'app', 'bench', '--version', 'v1.2.0'], { cwd, encoding: 'utf8' });
        if (d.status !== 0) throw new Error(`fraisier deploy failed: ${d.stdout}${d.stderr}`);
      };
      deploy(dir);
      if (hosts.length > 1) {
        mkdirSync(many);
        writeFileSync(join(many, 'fraises.yaml'), benchYaml(env, hosts, hosts.length));
        deploy(many);
      }
      // the baseline in copies of its own (the same history): one config cache per fraises.yaml, and each
      // build makes its own, so that runs in turn in one directory would throw each other's away
      const copyFor = (from: string): string => {
        const to = join(from, 'base');
        mkdirSync(join(to, '.fraisier'), { recursive: true });
        copyFileSync(join(from, 'fraises.yaml'), join(to, 'fraises.yaml'));
        copyFileSync(join(from, '.fraisier', 'state.db'), join(to, '.fraisier', 'state.db'));
        return to;
      };
      const baseOne = baselineBin ? copyFor(dir) : dir;
      const baseMany = baselineBin && hosts.length > 1 ? copyFor(many) : many;
      const n = hosts.length;
      const commands: Cmd[] = [
        node('`node -e 0` (floor)', ['-e', '0'], dir),
        { label: '`ssh h1 true` (OpenSSH)', file: 'ssh', args: ['-F', env.sshConfig, '-o', 'BatchMode=yes', 'h1', 'true'], cwd: dir },
        node(
          '`node bench/ssh-floor.cjs` (Node + ssh2: one login, `true`)',
          [join(repoRoot, 'bench', 'ssh-floor.cjs'), env.hosts[0]!.address, env.identity],
          dir,
        ),
        node('`fraisier status app bench`', [bin, 'status', 'app', 'bench'], dir),
        ...(baselineBin ? [node(`\`fraisier status\`, baseline (${baselineDir})`, [baselineBin, 'status', 'app', 'bench'], baseOne)] : []),
        ...(n > 1 ? [node(`\`fraisier status app bench\`, ${n} hosts`, [bin, 'status', 'app', 'bench'], many)] : []),
        ...(n > 1 && baselineBin ? [node(`\`fraisier status\`, ${n} hosts, baseline`, [baselineBin, 'status', 'app', 'bench'], baseMany)] : []),
      ];
      const results = timeAll(commands);
      const f = median(results[0]!.ms);
      const ssh = median(results[1]!.ms);
      const rows = commands.map((c, k) => {
        const xs = results[k]!.ms;
        const x = median(xs);
        return [c.label, fmtMs(x), fmtMs(Math.min(...xs)), fmtMs(Math.max(...xs)), k === 0 ? '1.00×' : ratio(x, f), k === 0 ? '-' : ratio(x, ssh)];
      });
      const t = table(['command', 'median', 'min', 'max', 'vs node -e 0', 'vs ssh h1 true'], rows);
      const at = (label: string) => commands.findIndex((c) => c.label.startsWith(label));
      const one = results[at('`fraisier status app bench`')]!;
      const st = median(one.ms);
      const floor = median(results[at('`node bench/ssh-floor.cjs`')]!.ms);
      const base = baselineBin ? median(results[at('`fraisier status`, baseline')]!.ms) : NaN;
      const stMany = n > 1 ? median(results[at(`\`fraisier status app bench\`, ${n} hosts`)]!.ms) : NaN;
      const baseManyMs = n > 1 && baselineBin ? median(results[at(`\`fraisier status\`, ${n} hosts, baseline`)]!.ms) : NaN;
      const phases = medianPhases(one);
      const markdown = `\`fraisier status\` on a one-host lab config (h1, one live release)${n > 1 ? ` and on ${n} hosts (h1–h${n})` : ''}, ${RUNS} runs of each,
interleaved, with \`node -e 0\` and OpenSSH's \`ssh h1 true\` (the client's start, a handshake and one command: the
floor of anything that asks a host what it runs), and bench/ssh-floor.cjs (Node, ssh2, one login with a key, \`true\`, exit:
no host key check, no config, no state; the least a Node program does to ask a host something). \`status\` is never
answered from the store: it connects.

${t}

\`status\` − \`ssh h1 true\` (its local set-up; on the host it runs one command, its preflight, which also lists the releases): ${fmtMs(st - ssh)}; status ÷ \`node -e 0\` ${ratio(st, f)}, **status ÷ \`ssh h1 true\` ${ratio(st, ssh)}**; the Node + ssh2 floor ÷ \`node -e 0\` ${ratio(floor, f)}, status − that floor ${fmtMs(st - floor)}${baselineBin ? `; baseline ÷ \`ssh h1 true\` ${ratio(base, ssh)}, this ÷ baseline ${ratio(st, base)}` : ''}.${
        n > 1
          ? `
On ${n} hosts (one connection and one command each, in parallel): ${fmtMs(stMany)}, ${ratio(stMany, ssh)} \`ssh h1 true\`, ${fmtMs(stMany - st)} more than one host${baselineBin ? `; baseline ${fmtMs(baseManyMs)}, this ÷ baseline ${ratio(stMany, baseManyMs)}` : ''}.`
          : ''
      }
Over an unchanged fraises.yaml, \`bin/fraisier.js\` opens the TCP connection to h1 before the CLI loads (core/early-sockets.ts);
status's connections keep no persistent shell (one command per host), and its preflight lists the releases with one \`ls\`.
Its phases (\`FRAISIER_TRACE=1\`, median, ms since the process started): ${fmtPhases(phases)}.`;
      console.log(`\n${t}\n\nstatus: ${fmtPhases(phases)}`);
      return { markdown, raw: Object.fromEntries(commands.map((c, k) => [c.label, { ms: results[k]!.ms, phases: medianPhases(results[k]!) }])) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

export async function main(): Promise<void> {
  const startLoad = section(`cold start, median of ${RUNS}`);
  const m = machine();
  if (!existsSync(join(repoRoot, 'dist', 'bundle', 'quick-history.js'))) {
    console.log('  dist/ is missing: npm run build');
    const b = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-bench-cold-'));
  try {
    const history = historyBench(dir);
    const status = process.env['BENCH_COLD_STATUS'] === '0' ? undefined : await statusBench();
    saveResult({
      name: 'cold-start',
      order: 1,
      title: 'Cold start of the fraisier command',
      date: new Date().toISOString(),
      machine: { ...m, load: startLoad },
      markdown: `${history.markdown}${status ? `\n\n${status.markdown}` : ''}`,
      raw: { history: history.raw, status: status?.raw },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(import.meta.url, main);
