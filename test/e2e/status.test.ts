/**
 * `fraisier status` on the lab: what each host runs, read in one command per host (its preflight lists
 * the releases after the checks' lines, providers/bare-metal.scripts.ts), over connections that keep no
 * persistent shell. What a user reads:
 * - hosts never deployed to: no current release, no releases, exit 0;
 * - after two deploys: each host's current release and its releases oldest first (the order they went
 *   live, not the names' order), the same as on the hosts, over the connection started early and one
 *   command per host;
 * - a host failing a check: the problem in its row, its current release and releases still read, exit 1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LabEnv } from '../lab/lab.js';
import { bin, hostState, lab, labYaml, resetHosts, run, workspace, type Run } from './helpers.js';

let env: LabEnv;
let ws: string;

/** `fraisier <args>` in the workspace (FRAISIER_TRACE=ssh: the trace on stderr); a generous timeout for a loaded machine. */
function fraisier(...args: string[]): Promise<Run> {
  return run(process.execPath, [bin, ...args], { cwd: ws, env: { FRAISIER_TRACE: 'ssh' }, timeoutMs: 600_000 });
}

interface StatusJson {
  version: string | null;
  targets: { name: string; reachable: boolean; current: string | null; releases: string[]; error: string | null }[];
}

async function statusJson(envName: string): Promise<{ code: number; report: StatusJson; out: string }> {
  const r = await fraisier('status', 'app', envName, '--json');
  return { code: r.code, report: JSON.parse(r.stdout) as StatusJson, out: r.out };
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(
    labYaml(env, {
      batch: 3,
      retries: 12,
      // h1 with a supervisor program it does not have: its preflight reports a problem
      extraEnvs: `      broken:
        provider: bare_metal
        instances: [h1]
        supervisor_program: nosuch
`,
    }),
  );
});

test.after(async () => {
  await resetHosts(env);
});

test('hosts never deployed to: no current release, no releases, exit 0', async () => {
  const { code, report, out } = await statusJson('production');
  assert.is(code, 0, out);
  assert.is(report.version, null);
  assert.equal(
    report.targets.map((t) => [t.name, t.reachable, t.current, t.releases, t.error]),
    [
      ['h1', true, null, [], null],
      ['h2', true, null, [], null],
      ['h3', true, null, [], null],
    ],
  );
});

test('after two deploys: each host its current release and its releases in the order they went live', async () => {
  // v1.1.0 first, then v1.0.0: oldest first is not the names' order
  for (const v of ['v1.1.0', 'v1.0.0']) {
    const d = await fraisier('deploy', 'app', 'production', '--version', v);
    assert.is(d.code, 0, d.out);
  }
  const text = await fraisier('status', 'app', 'production');
  assert.is(text.code, 0, text.out);
  assert.match(text.stdout, 'app / production: v1.0.0');
  // one connection per host, the one started as soon as fraises.yaml was validated (status's connections
  // and the provider's have the same settings: no persistent shell), and one command on it
  for (const h of ['h1', 'h2', 'h3']) {
    assert.match(text.stderr, `took the early connection to ${h}`);
    assert.equal(
      [...text.stderr.matchAll(new RegExp(`ssh ${h}: run (.*)$`, 'gm'))].map((m) => m[1]),
      ['preflight checks'],
      text.stderr,
    );
  }
  for (const h of ['h1', 'h2', 'h3']) assert.match(text.stdout, new RegExp(`^  ${h}\\s+v1\\.0\\.0\\s+v1\\.1\\.0 v1\\.0\\.0\\s+ok$`, 'm'));
  const { code, report, out } = await statusJson('production');
  assert.is(code, 0, out);
  for (const t of report.targets) {
    const host = await hostState(env, t.name);
    assert.is(t.current, host.current);
    assert.equal(t.releases, ['v1.1.0', 'v1.0.0']);
    assert.equal([...t.releases].sort(), [...host.releases].sort(), `${t.name}: the releases on the host`);
    assert.is(t.error, null);
  }
});

test('a host failing a check: the problem in its row, its release still read, exit 1', async () => {
  const text = await fraisier('status', 'app', 'broken');
  assert.is(text.code, 1, text.out);
  assert.match(text.stdout, /^ {2}h1\s+v1\.0\.0\s+v1\.1\.0 v1\.0\.0\s+.*supervisor program nosuch is not known on this host/m);
  const { code, report } = await statusJson('broken');
  assert.is(code, 1);
  const [h1] = report.targets;
  assert.is(h1?.current, 'v1.0.0');
  assert.equal(h1?.releases, ['v1.1.0', 'v1.0.0']);
  assert.match(h1?.error ?? '', 'supervisor program nosuch is not known on this host');
  // nothing changed on the host
  assert.is((await hostState(env, 'h1')).current, 'v1.0.0');
});

test.run();
