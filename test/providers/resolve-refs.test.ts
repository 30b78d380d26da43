import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveFromRefs } from '../../providers/bare-metal.js';
import { bareMetalCommands } from '../../providers/bare-metal.scripts.js';
import { render } from '../../core/exec/command.js';
import { tempRepo } from '../support/git-repo.js';

// A real repository: the refs come from `git ls-remote`, the expected answers from the host's own
// resolution script (RESOLVE_REF, run here against a mirror of the same repository).
const { dir, repo, git } = tempRepo('fraisier-refs-');
const commit = (msg: string) => {
  writeFileSync(join(repo, 'f'), msg);
  git('add', 'f');
  git('commit', '-qm', msg);
};
commit('one');
git('tag', 'v1.9.0');
git('tag', '-a', '-m', 'annotated', 'v1.10.0'); // same commit: the version sort picks v1.10.0
commit('two');
git('tag', '-a', '-m', 'x', 'v2.0.0');
git('tag', 'release/2'); // a tag with "/" is never a version
git('branch', 'feature');
commit('three'); // main is ahead of every tag
const refs = execFileSync('git', ['ls-remote', '--', repo], { encoding: 'utf8' }).trim().split('\n');

function onHost(ref: string): string {
  const app = mkdtempSync(join(tmpdir(), 'fraisier-refs-app-'));
  const cmd = bareMetalCommands.resolveRef(app, repo, ref);
  const [sha, short, tag] = execFileSync('sh', ['-c', render(cmd, { reveal: true })], { encoding: 'utf8' })
    .trim()
    .split(/\s+/);
  return `${sha} ${tag || short}`;
}

test('tags and branches resolve from the listed refs exactly as the host resolves them', () => {
  for (const wanted of ['v1.9.0', 'v1.10.0', 'v2.0.0', 'feature', 'main']) {
    const r = resolveFromRefs(refs, wanted);
    assert.ok(r, wanted);
    assert.is(`${r!.sha} ${r!.version}`, onHost(wanted), wanted);
  }
  assert.is(resolveFromRefs(refs, 'v1.9.0')!.version, 'v1.10.0');
  assert.is(resolveFromRefs(refs, 'feature')!.version, 'v2.0.0');
  assert.is(resolveFromRefs(refs, 'main')!.version, git('rev-parse', '--short=7', 'main').trim());
});

test('anything but a listed tag or branch is left to the host', () => {
  const sha = git('rev-parse', 'main').trim();
  for (const wanted of [sha, sha.slice(0, 7), 'main~1', 'v9.9.9', 'release', 'refs/heads/main']) assert.is(resolveFromRefs(refs, wanted), null, wanted);
  assert.is(resolveFromRefs([], 'main'), null);
});

test('the preflight lists the refs only when asked', () => {
  const svc = { type: 'command', restart: 'true' } as const;
  const run = (refsOf?: string) =>
    execFileSync('sh', ['-c', render(bareMetalCommands.preflight(join(dir, 'app'), true, svc, refsOf), { reveal: true })], { encoding: 'utf8' });
  const listed = run(repo);
  assert.ok(listed.includes('refs=ok'));
  assert.equal(
    listed
      .split('\n')
      .filter((l) => l.startsWith('ref='))
      .map((l) => l.slice(4)),
    refs,
  );
  assert.not.ok(run().includes('ref='));
  // an unreachable repository lists nothing: the version is then resolved on the host, which says why
  assert.not.ok(run(join(dir, 'missing')).includes('refs=ok'));
});

test('the refs, listed while the checks run, come after every check line, failed checks included', () => {
  const svc = { type: 'systemd', unit: 'fraisier-no-such-unit.service' } as const;
  const out = execFileSync('sh', ['-c', render(bareMetalCommands.preflight(join(dir, 'app'), true, svc, repo), { reveal: true })], { encoding: 'utf8' });
  const lines = out.trim().split('\n');
  const keys = lines.map((l) => l.slice(0, l.indexOf('=')));
  assert.is(keys[0], 'uid');
  assert.ok(lines.includes('problem=systemd unit fraisier-no-such-unit.service is not known on this host (or sudo -n is not allowed)'), out);
  // every check's line, then the refs, then refs=ok
  const firstRef = keys.indexOf('ref');
  assert.ok(firstRef > keys.lastIndexOf('problem'), out);
  assert.equal(keys.slice(firstRef), [...refs.map(() => 'ref'), 'refs']);
});

test.run();
