/**
 * A throw-away git repository for unit tests: `git init -b main` in a fresh temp directory, and a `git`
 * function running in it with a fixed author (no user config needed). The caller commits and tags.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempRepo {
  /** The temp directory holding the repository (`repo`), for the test's other files. */
  dir: string;
  /** The repository's path. */
  repo: string;
  /** Runs `git -C repo ...args`; returns its standard output. */
  git: (...args: string[]) => string;
}

/** A new empty repository on branch `main` in a temp directory named after `prefix`. */
export function tempRepo(prefix: string): TempRepo {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const repo = join(dir, 'repo');
  const git = (...args: string[]): string =>
    execFileSync('git', ['-C', repo, ...args], {
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    });
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  return { dir, repo, git };
}
