/**
 * Runs shellcheck (Debian package `shellcheck`, installed by .ci/setup.sh) on the fixed shell scripts the
 * providers and plugins run under `sh -c` on hosts. Dialect `sh` (POSIX: the hosts' /bin/sh is dash),
 * every severity down to `style`: any finding fails the test. A check may only be disabled in the script
 * itself, with a comment saying why (`# shellcheck disable=SCxxxx # reason`).
 */
import { spawnSync } from 'node:child_process';
import { quote } from '../../core/exec/command.js';

/** shellcheck's findings for one script (gcc format, one per line), or '' when it is clean. Throws if shellcheck is missing. */
export function shellcheck(text: string): string {
  const r = spawnSync('shellcheck', ['--shell=sh', '--severity=style', '--format=gcc', '-'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`shellcheck could not run (${r.error.message}): install it (apt-get install shellcheck; .ci/setup.sh does)`);
  if (r.status !== 0 && r.stdout.trim() === '') throw new Error(`shellcheck failed: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout.trim();
}

/** Every `# shellcheck disable=` directive of a script that does not say why (no `# reason` after it). */
export function unexplainedDisables(text: string): string[] {
  return text.split('\n').filter((l) => /#\s*shellcheck\s+disable=/.test(l) && !/#\s*shellcheck\s+disable=\S+\s+#\s*\S/.test(l));
}

/** The shell text of `sh -c <script> <name> <args...>`, as render() writes it: the expected whole command. */
export function shC(script: string, name: string, ...args: string[]): string {
  return ['sh', '-c', quote(script), name, ...args.map(quote)].join(' ');
}
