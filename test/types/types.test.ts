/**
 * Types are tested too: test/types/define-types.ts holds `@ts-expect-error` lines (a wrong option must be
 * a type error, or tsc fails on the unused directive), and deploy.ts.example must type-check as a
 * consumer would write it (importing from 'fraisier', resolved through this package's own exports).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules', '.bin', 'tsc');

function check(project: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(tsc, ['-p', project, '--pretty', 'false'], { cwd: root }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

const base = {
  strict: true,
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  target: 'ES2022',
  noEmit: true,
  skipLibCheck: true,
  types: ['node'],
  allowImportingTsExtensions: true,
};

test('wrong options in a deploy definition are type errors', async () => {
  const dir = mkdtempSync(join(root, 'test', 'types', '.tmp-'));
  try {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: base, files: ['../define-types.ts'] }));
    const r = await check(join(dir, 'tsconfig.json'));
    assert.is(r.code, 0, r.out);
    // And the checks really bite: the same file without its directives must fail in each place.
    const text = (await import('node:fs')).readFileSync(join(root, 'test', 'types', 'define-types.ts'), 'utf8');
    const stripped = text.replace(/\/\/ @ts-expect-error.*$/gm, '');
    writeFileSync(join(dir, 'stripped.ts'), stripped.replaceAll("'../../index.js'", "'../../../index.js'"));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: base, files: ['stripped.ts'] }));
    const s = await check(join(dir, 'tsconfig.json'));
    const errors = s.out.split('\n').filter((l) => l.includes('error TS')).length;
    const directives = (text.match(/@ts-expect-error/g) ?? []).length - 1; // one mention in the header comment
    assert.is(errors, directives, s.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deploy.ts.example type-checks against the package as a user imports it', async () => {
  const dir = mkdtempSync(join(root, 'test', 'types', '.tmp-'));
  try {
    copyFileSync(join(root, 'deploy.ts.example'), join(dir, 'deploy.ts'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: base, files: ['deploy.ts'] }));
    const r = await check(join(dir, 'tsconfig.json'));
    assert.is(r.code, 0, r.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
