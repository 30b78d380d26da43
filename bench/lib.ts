/**
 * Shared helpers of the benchmarks: the bench lab (a second lab next to the default one used by the
 * end-to-end tests), statistics, machine info, and the results files that docs/benchmarks.md is built from.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const benchDir = join(repoRoot, 'bench');
export const resultsDir = join(benchDir, 'results');

// The bench lab: its own dir and subnet (10.201.0.0/24, namespaces frlab201-h*), never the default lab.
process.env['FRAISIER_LAB_DIR'] = process.env['BENCH_LAB_DIR'] || '/tmp/fraisier-bench-lab';
process.env['FRAISIER_LAB_NET'] = process.env['BENCH_LAB_NET'] || '201';
if (process.env['FRAISIER_LAB_NET'] === '200') throw new Error('the benchmarks must not use the default lab (FRAISIER_LAB_NET=200)');

const { labUp, labDown, hostExec } = await import('../test/lab/lab.js');
export { hostExec };
export type { LabEnv } from '../test/lab/lab.js';

/** Hosts in the bench lab: 12, or BENCH_LAB_HOSTS (48 for bench/peers.ts at 48 hosts; lab.sh allows up to 50). */
export const LAB_HOSTS = Number(process.env['BENCH_LAB_HOSTS'] ?? 12);

/** True when the bench lab is up and every host answers (`lab.sh status`). */
export function labIsUp(): boolean {
  return spawnSync('bash', [join(repoRoot, 'test/lab/lab.sh'), 'status'], { stdio: 'ignore', env: process.env }).status === 0;
}

/**
 * Runs `fn` with the bench lab up (12 hosts). Brings it down afterwards only if it was not up before
 * (bench/run.ts brings it up once for every script and down at the end).
 */
export async function withLab<T>(fn: (env: Awaited<ReturnType<typeof labUp>>) => Promise<T>): Promise<T> {
  const wasUp = labIsUp();
  const env = await labUp(LAB_HOSTS);
  try {
    return await fn(env);
  } finally {
    if (!wasUp) await labDown();
  }
}
export { labUp, labDown };

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmtMs(ms: number, digits = 0): string {
  return Number.isFinite(ms) ? `${ms.toFixed(digits)} ms` : '-';
}

export function fmtS(ms: number): string {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '-';
}

export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '-';
}

export function load(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/** Prints the load average before a section (the machine is shared). */
export function section(title: string): string {
  const l = load();
  console.log(`\n=== ${title} (load average ${l}) ===`);
  return l;
}

export function machine(): { nproc: number; model: string; node: string; load: string } {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model;
  } catch {}
  const nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  return { nproc, model, node: process.version, load: load() };
}

export function runs(): number {
  const n = Number(process.env['BENCH_RUNS'] ?? 3);
  return Number.isInteger(n) && n >= 1 ? n : 3;
}

/** One benchmark's results: a markdown section (built by the script) plus raw data. */
export interface Result {
  name: string;
  order: number;
  title: string;
  date: string;
  machine: ReturnType<typeof machine>;
  markdown: string;
  raw: unknown;
}

export function saveResult(r: Result): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${r.name}.json`), `${JSON.stringify(r, null, 2)}\n`);
  writeDoc();
}

export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Rebuilds docs/benchmarks.md from every results file present. */
export function writeDoc(): void {
  const results: Result[] = existsSync(resultsDir)
    ? readdirSync(resultsDir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as Result)
        .sort((a, b) => a.order - b.order)
    : [];
  const m = results[0]?.machine ?? machine();
  const intro = readFileSync(join(benchDir, 'doc-intro.md'), 'utf8')
    .replace('{{nproc}}', String(m.nproc))
    .replace('{{model}}', m.model)
    .replace('{{node}}', m.node)
    .replace('{{load}}', m.load)
    .replace('{{date}}', results[0]?.date ?? new Date().toISOString());
  const body = results.map((r) => `## ${r.title}\n\n_Run ${r.date}, load average at start ${r.machine.load}._\n\n${r.markdown.trim()}\n`).join('\n');
  const outro = existsSync(join(benchDir, 'doc-interpretation.md')) ? readFileSync(join(benchDir, 'doc-interpretation.md'), 'utf8') : '';
  writeFileSync(join(repoRoot, 'docs', 'benchmarks.md'), `${intro.trim()}\n\n${body}\n${outro.trim()}\n`);
}

/** True when the module with this import.meta.url is the script node/tsx was started with. */
export function isMain(url: string): boolean {
  try {
    return !!process.argv[1] && realpathSync(fileURLToPath(url)) === realpathSync(process.argv[1]);
  } catch {
    return false;
  }
}

/** Runs a bench script's `main` when the script is the one node/tsx was started with; exits 1 on error. */
export function runMain(url: string, main: () => Promise<void>): void {
  if (!isMain(url)) return;
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/**
 * The fraises.yaml every Fraisier bench deploys with: fraise `app`, environment `bench` on `hosts`, rolling in
 * batches of `batch`, the http health check with the same retries the peers' scripts use.
 */
export function benchYaml(env: { sshConfig: string; appRepo: string }, hosts: readonly string[], batch = 1): string {
  return `ssh:
  config: ${env.sshConfig}
fraises:
  app:
    git_repo: ${env.appRepo}
    branch: main
    app_path: /srv/app
    environments:
      bench:
        provider: bare_metal
        instances: [${hosts.join(', ')}]
        supervisor_program: app
        deployment_strategy: rolling
        rolling_config:
          batch_size: ${batch}
        health_check:
          url: http://localhost:8000/health
          retries: 20
          retry_delay: 0.2
`;
}
