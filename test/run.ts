/**
 * The test command (`npm test`): runs every `*.test.ts` under test/ in its own process (uvu), unit tests
 * first, then the end-to-end tests against the lab (brought up once here, torn down at the end), and ends
 * with one plain line: `N passed, N failed, N skipped`. Exit status 1 on any failure.
 *
 * `npm test -- unit` runs only tests outside test/e2e; `npm test -- <substring>` filters by path.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'test');

function find(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' || name === 'node_modules' ? [] : find(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}

const filter = process.argv[2];
let files = find(testDir).sort((a, b) => Number(a.includes('/e2e/')) - Number(b.includes('/e2e/')) || a.localeCompare(b));
if (filter === 'unit') files = files.filter((f) => !f.includes('/e2e/'));
else if (filter) files = files.filter((f) => f.includes(filter));

function runFile(file: string): Promise<{ passed: number; failed: number; skipped: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => {
      output += d;
      process.stderr.write(d);
    });
    child.on('close', (code) => {
      const clean = output.replace(/\x1b\[[0-9;]*m/g, '');
      const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(clean)?.[1] ?? NaN);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') || 0;
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        resolve({ passed: 0, failed: 1, skipped: 0, output });
        return;
      }
      let failed = total - passed; // uvu: Total counts the tests that ran; Skipped ones are not in it
      if (code !== 0 && failed === 0) failed = 1;
      resolve({ passed, failed, skipped, output });
    });
  });
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failedFiles: string[] = [];
const needsLab = files.some((f) => f.includes('/e2e/'));
let labStarted = false;
// One private PostgreSQL server for every test file that uses test/support/postgres.ts or backends.ts (stopped by pid at the end).
const needsPg = !process.env['FRAISIER_TEST_PG_URL'] && files.some((f) => /support\/(postgres|backends)/.test(readFileSync(f, 'utf8')));
let pgServer: { url: string; stop(): Promise<void> } | undefined;
try {
  if (needsPg) {
    const { startPostgres } = await import('./support/postgres.js');
    process.stdout.write('Starting a private PostgreSQL server...\n');
    pgServer = await startPostgres();
    process.env['FRAISIER_TEST_PG_URL'] = pgServer.url;
  }
  for (const file of files) {
    if (file.includes('/e2e/') && !labStarted) {
      const { labUp } = await import('./lab/lab.js');
      process.stdout.write('Bringing up the lab (SSH hosts in network namespaces)...\n');
      await labUp(3);
      labStarted = true;
    }
    process.stdout.write(`\n# ${relative(root, file)}\n`);
    const r = await runFile(file);
    passed += r.passed;
    failed += r.failed;
    skipped += r.skipped;
    if (r.failed > 0) failedFiles.push(relative(root, file));
  }
} finally {
  if (pgServer) await pgServer.stop().catch((e) => process.stderr.write(`postgres stop failed: ${e}\n`));
  if (labStarted && needsLab && !process.env['FRAISIER_KEEP_LAB']) {
    const { labDown } = await import('./lab/lab.js');
    await labDown().catch((e) => process.stderr.write(`lab down failed: ${e}\n`));
  }
}
if (failedFiles.length > 0) process.stdout.write(`\nFailed files:\n${failedFiles.map((f) => `  ${f}`).join('\n')}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
