/**
 * Cold start of the `fraisier` command: `--version` and `history` (temp dir with a minimal fraises.yaml and
 * an existing state db), median of 10, against bare `node -e 0`. Needs dist/ (`npm run build`).
 * `BENCH_COLD_BASELINE=<another checkout, built>`: its `history` runs too, interleaved, for a ratio.
 * `FRAISIER_TRACE` phases of one `history` are printed after the table.
 * `npx tsx bench/cold-start.ts`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmtMs, runMain, machine, median, ratio, repoRoot, saveResult, section, table } from './lib.js';

const RUNS = Number(process.env['BENCH_COLD_RUNS'] ?? 10);
const bin = join(repoRoot, 'bin', 'fraisier.js');
const baselineDir = process.env['BENCH_COLD_BASELINE'];

/**
 * Runs each command `RUNS` times, interleaved (one of each in turn), so that a change in the machine's
 * load hits every command alike; one untimed run of each first warms the page cache.
 */
function timeAll(commands: string[][], cwd: string): { ms: number[]; out: string }[] {
  const results = commands.map(() => ({ ms: [] as number[], out: '' }));
  for (const args of commands) spawnSync(process.execPath, args, { cwd, stdio: 'ignore' });
  for (let i = 0; i < RUNS; i++) {
    commands.forEach((args, k) => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
      results[k]!.ms.push(performance.now() - t0);
      if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
      results[k]!.out = r.stdout;
    });
  }
  return results;
}

export async function main(): Promise<void> {
  const startLoad = section(`cold start, median of ${RUNS}`);
  const m = machine();
  if (!existsSync(join(repoRoot, 'dist', 'core', 'cli.js'))) {
    console.log('  dist/ is missing: npm run build');
    const b = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-bench-cold-'));
  try {
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
    // create the state db (an empty history is enough: the point is opening SQLite and the config)
    const first = spawnSync(process.execPath, [bin, 'history'], { cwd: dir, encoding: 'utf8' });
    if (first.status !== 0) throw new Error(`fraisier history failed: ${first.stdout}${first.stderr}`);
    if (!existsSync(join(dir, '.fraisier', 'state.db'))) throw new Error('fraisier history did not create .fraisier/state.db');

    const commands = [['-e', '0'], [bin, '--version'], [bin, 'history'], ...(baselineDir ? [[join(baselineDir, 'bin', 'fraisier.js'), 'history']] : [])];
    const [floor, version, history, baseline] = timeAll(commands, dir) as { ms: number[]; out: string }[] as [
      { ms: number[]; out: string },
      { ms: number[]; out: string },
      { ms: number[]; out: string },
      { ms: number[]; out: string } | undefined,
    ];
    const f = median(floor.ms);
    const v = median(version.ms);
    const h = median(history.ms);
    // issue 13, goal 4: a read-only command cold in at most 1.5× a bare `node -e 0`
    const met = (x: number) => (x <= 1.5 * f ? 'met' : 'NOT met');
    const row = (label: string, xs: number[]) => {
      const x = median(xs);
      return [label, fmtMs(x), fmtMs(Math.min(...xs)), fmtMs(Math.max(...xs)), ratio(x, f), met(x)];
    };
    const t = table(
      ['command', 'median', 'min', 'max', 'vs node -e 0', 'target ≤ 1.5×'],
      [
        ['`node -e 0` (floor)', fmtMs(f), fmtMs(Math.min(...floor.ms)), fmtMs(Math.max(...floor.ms)), '1.00×', '-'],
        row('`fraisier --version`', version.ms),
        row('`fraisier history`', history.ms),
        ...(baseline ? [row(`\`fraisier history\`, baseline (${baselineDir})`, baseline.ms)] : []),
      ],
    );
    // where one cold `history` spends its time (core/trace.ts), ms since the process started
    const traced = spawnSync(process.execPath, [bin, 'history'], { cwd: dir, encoding: 'utf8', env: { ...process.env, FRAISIER_TRACE: '1' } });
    const phases = [...traced.stderr.matchAll(/^\[trace\] (\d+) ms (.*)$/gm)].map((m) => `${m[1]} ms ${m[2]}`);
    console.log(`\n${t}\n\nphases of one cold \`history\` (FRAISIER_TRACE=1): ${phases.join('; ')}`);
    saveResult({
      name: 'cold-start',
      order: 1,
      title: 'Cold start of the fraisier command',
      date: new Date().toISOString(),
      machine: { ...m, load: startLoad },
      markdown: `\`node bin/fraisier.js ...\` (the compiled dist/), ${RUNS} runs of each, interleaved, after one untimed warm-up, in a temp dir
holding a minimal fraises.yaml and an existing (empty) \`.fraisier/state.db\`. Wall time of the whole
process as seen by the parent, including Node's own start-up.

${t}

\`fraisier --version\` net of Node start-up: ${fmtMs(v - f)}; \`fraisier history\`: ${fmtMs(h - f)}${baseline ? ` (baseline: ${fmtMs(median(baseline.ms) - f)}, this ÷ baseline ${ratio(h, median(baseline.ms))})` : ''}.
The timed runs read an unchanged fraises.yaml: the validated-config cache (core/config/cache.ts) answers.
Phases of one cold \`history\` (\`FRAISIER_TRACE=1\`, ms since the process started): ${phases.join('; ')}.`,
      raw: { floor: floor.ms, version: version.ms, history: history.ms, baseline: baseline?.ms, historyOutput: history.out, phases },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(import.meta.url, main);
