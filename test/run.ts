/**
 * The test command (`npm test`): runs every `*.test.ts` under test/ in its own process (uvu) and ends
 * with one plain line: `N passed, N failed, N skipped`. Exit status 1 on any failure.
 *
 * Files run on a small pool of workers (`FRAISIER_TEST_WORKERS`, default 3; most of an end-to-end test's
 * time is spent waiting on hosts, so even a 2-core machine runs three at once). Each worker that meets an
 * end-to-end file brings up its own lab (SSH hosts in network namespaces: `FRAISIER_LAB_NET` for the first
 * worker, +10 and +20 for the next ones, each with its own `FRAISIER_LAB_DIR`), so files never share hosts,
 * and tears it down at the end. One private PostgreSQL server serves every file (each test takes a fresh
 * database). A file's output is printed in one piece when it ends. The slowest files start first.
 *
 * `npm test -- unit` runs only tests outside test/e2e; `npm test -- <substring> [<substring>...]` runs the
 * files whose path contains any of them.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'test');
const labScript = join(testDir, 'lab', 'lab.sh');

function find(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' || name === 'node_modules' ? [] : find(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}

/**
 * Files known to take longest (about a minute or more on an idle machine), started first so the pool ends
 * together. Only an ordering hint: a file missing here just starts later.
 */
const SLOW = ['e2e/dry-run', 'e2e/faults/host-network', 'e2e/faults/deployer-signals', 'e2e/plugin-package', 'e2e/package', 'e2e/haproxy', 'e2e/canary'];
const slowRank = (f: string) => {
  const i = SLOW.findIndex((s) => f.includes(`/${s}`));
  return i < 0 ? SLOW.length : i;
};

const filters = process.argv.slice(2);
let files = find(testDir).sort((a, b) => slowRank(a) - slowRank(b) || Number(b.includes('/e2e/')) - Number(a.includes('/e2e/')) || a.localeCompare(b));
if (filters.length === 1 && filters[0] === 'unit') files = files.filter((f) => !f.includes('/e2e/'));
else if (filters.length > 0) files = files.filter((f) => filters.some((x) => f.includes(x)));

const requested = Number(process.env['FRAISIER_TEST_WORKERS'] ?? 3);
const workerCount = Math.max(1, Math.min(Number.isInteger(requested) && requested > 0 ? requested : 3, files.length));
const baseNet = Number(process.env['FRAISIER_LAB_NET'] ?? 200);
const baseDir = process.env['FRAISIER_LAB_DIR'] || '/tmp/fraisier-lab';

interface Worker {
  index: number;
  env: NodeJS.ProcessEnv;
  labStarted: boolean;
}

/** Worker k's lab: the configured one for k = 0, then 10 and 20 networks away (below, if above 254). */
function workerEnv(k: number): NodeJS.ProcessEnv {
  if (k === 0) return { ...process.env };
  const net = baseNet + 10 * k <= 254 ? baseNet + 10 * k : baseNet - 10 * k;
  return { ...process.env, FRAISIER_LAB_NET: String(net), FRAISIER_LAB_DIR: `${baseDir}-w${k}` };
}

/**
 * A test file that runs longer than this (`FRAISIER_TEST_FILE_TIMEOUT`, seconds; default 20 minutes, several
 * times the slowest file) is a hang: its process group is killed and the file counts as failed, so one stuck
 * file cannot hold the whole run.
 */
const FILE_TIMEOUT_MS = Number(process.env['FRAISIER_TEST_FILE_TIMEOUT'] ?? 1200) * 1000;

function spawnCollect(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 0): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(args[0]!, args.slice(1), { cwd: root, env: { ...env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'], detached: timeoutMs > 0 });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            output += `\ntest runner: no end after ${timeoutMs / 1000} s: killed (process group ${child.pid})\n`;
            try {
              process.kill(-child.pid!, 'SIGKILL');
            } catch {
              /* already gone */
            }
          }, timeoutMs)
        : undefined;
    child.on('error', (e) => resolve({ code: 1, output: `${output}${e}\n` }));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

async function runFile(file: string, worker: Worker): Promise<{ passed: number; failed: number; skipped: number; output: string }> {
  const { code, output } = await spawnCollect([process.execPath, '--import', 'tsx', file], worker.env, FILE_TIMEOUT_MS);
  const clean = output.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(clean)?.[1] ?? Number.NaN);
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped') || 0;
  if (Number.isNaN(total) || Number.isNaN(passed)) return { passed: 0, failed: 1, skipped: 0, output };
  let failed = total - passed; // uvu: Total counts the tests that ran; Skipped ones are not in it
  if (code !== 0 && failed === 0) failed = 1;
  return { passed, failed, skipped, output };
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failedFiles: string[] = [];
const workers: Worker[] = Array.from({ length: workerCount }, (_, index) => ({ index, env: workerEnv(index), labStarted: false }));
const queue = [...files];
// One private PostgreSQL server for every test file that uses test/support/postgres.ts or backends.ts (stopped by pid at the end).
const needsPg = !process.env['FRAISIER_TEST_PG_URL'] && files.some((f) => /support\/(postgres|backends)/.test(readFileSync(f, 'utf8')));
let pgServer: { url: string; stop(): Promise<void> } | undefined;

async function work(worker: Worker): Promise<void> {
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    const name = relative(root, file);
    if (file.includes('/e2e/') && !worker.labStarted) {
      process.stdout.write(
        `Bringing up lab net ${worker.env['FRAISIER_LAB_NET'] ?? 200} for worker ${worker.index + 1} (SSH hosts in network namespaces)...\n`,
      );
      worker.labStarted = true; // set first: a failed `up` tears itself down, but `down` is harmless either way
      const up = await spawnCollect(['bash', labScript, 'up', '3'], worker.env);
      if (up.code !== 0) {
        process.stdout.write(`\n# ${name}\nlab up failed (exit ${up.code}):\n${up.output}\n`);
        failed += 1;
        failedFiles.push(name);
        continue;
      }
    }
    const started = performance.now();
    const r = await runFile(file, worker);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(`\n# ${name} (worker ${worker.index + 1}, ${seconds} s)\n${r.output}`);
    passed += r.passed;
    failed += r.failed;
    skipped += r.skipped;
    if (r.failed > 0) failedFiles.push(name);
  }
}

try {
  if (needsPg) {
    const { startPostgres } = await import('./support/postgres.js');
    process.stdout.write('Starting a private PostgreSQL server...\n');
    pgServer = await startPostgres();
    process.env['FRAISIER_TEST_PG_URL'] = pgServer.url;
    for (const w of workers) w.env['FRAISIER_TEST_PG_URL'] = pgServer.url;
  }
  await Promise.all(workers.map((w) => work(w)));
} finally {
  if (pgServer) await pgServer.stop().catch((e) => process.stderr.write(`postgres stop failed: ${e}\n`));
  if (!process.env['FRAISIER_KEEP_LAB']) {
    await Promise.all(
      workers
        .filter((w) => w.labStarted)
        .map(async (w) => {
          const down = await spawnCollect(['bash', labScript, 'down'], w.env);
          if (down.code !== 0) process.stderr.write(`lab down failed (net ${w.env['FRAISIER_LAB_NET'] ?? 200}): ${down.output}\n`);
        }),
    );
  }
}
if (failedFiles.length > 0) process.stdout.write(`\nFailed files:\n${failedFiles.map((f) => `  ${f}`).join('\n')}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
