/**
 * End to end, on the lab's SSH hosts: the round trips of a deploy (issue 13). A one-host deploy checks,
 * resolves and prepares in one command, then switches, restarts and prunes old releases in one more; a
 * failed check in that first command changes nothing and reads as preflight's error; keep_releases is
 * honoured by the pruning folded into the switch, and a rollback still finds the previous release.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabEnv } from '../lab/lab.js';
import { defineDeploy } from '../../core/define.js';
import type { Executor } from '../../core/exec/executor.js';
import { SshExecutor } from '../../core/exec/ssh.js';
import { http } from '../../core/health.js';
import { bareMetal } from '../../providers/bare-metal.js';
import { rolling } from '../../strategies/rolling.js';
import { fraisier, hostState, lab, labYaml, resetHosts, workspace } from './helpers.js';

let env: LabEnv;
let ws: string;

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(
    labYaml(env, {
      extraEnvs: `      one:
        instances: [h1]
        supervisor_program: app
        keep_releases: 2
        health_check: { url: "http://localhost:8000/health", timeout: 2, retries: 16, retry_delay: 0.25 }
      missing_one:
        instances: [h1]
        supervisor_program: no-such-program
      missing_two:
        instances: [h1, h2]
        supervisor_program: no-such-program
`,
    }),
  );
});

test('a one-host deploy whose check fails changes nothing on the host and prints the preflight error, as with two hosts', async () => {
  const one = await fraisier(ws, 'deploy', 'app', 'missing_one', '--version', 'v1.0.0');
  const two = await fraisier(ws, 'deploy', 'app', 'missing_two', '--version', 'v1.0.0');
  const error = 'preflight failed on h1: supervisor program no-such-program is not known on this host';
  assert.match(one.out, error);
  assert.match(two.out, error);
  assert.is(one.code, two.code, 'the same exit status as the separate preflight');
  assert.ok(one.code !== 0, one.out);
  const h1 = await hostState(env, 'h1');
  assert.equal(h1.releases, [], 'no release directory');
  assert.is(h1.current, null);
  const unknown = await fraisier(ws, 'deploy', 'app', 'one', '--version', 'v9.9.9');
  const unknownOnThree = await fraisier(ws, 'deploy', 'app', 'production', '--version', 'v9.9.9');
  const unresolved = `error[E_VERSION] cannot resolve "v9.9.9" in ${env.appRepo} (on h1): unknown ref v9.9.9`;
  assert.match(unknown.out, unresolved);
  assert.match(unknownOnThree.out, unresolved);
  assert.is(unknown.code, unknownOnThree.code, 'the same exit status as the separate resolution');
  assert.equal((await hostState(env, 'h1')).releases, [], 'an unknown ref creates no release either');
});

test('a one-host deploy runs two commands on the host: check + resolve + prepare, then switch + restart + prune', async () => {
  const labels: string[] = [];
  const counted = async (host: string): Promise<Executor> => {
    const real = await SshExecutor.connect(host, { configFile: env.sshConfig });
    return {
      name: real.name,
      stats: real.stats,
      run: (cmd, o) => {
        labels.push(cmd.label ?? '(unlabelled)');
        return real.run(cmd, o);
      },
      connectTcp: (h, port) => real.connectTcp(h, port),
      close: () => real.close(),
    };
  };
  const app = defineDeploy({
    name: 'app',
    autorun: false,
    state: { path: join(mkdtempSync(join(tmpdir(), 'fraisier-rt-')), 'state.db') },
    environments: {
      one: {
        provider: bareMetal({
          hosts: ['h1'],
          appPath: '/srv/app',
          source: { type: 'git', repo: env.appRepo },
          service: { type: 'supervisor', program: 'app' },
          keepReleases: 2,
          ssh: { configFile: env.sshConfig },
          connect: counted,
        }),
        strategy: rolling({ batchSize: 1 }),
        health: { checks: [http({ url: 'http://localhost:8000/health' })], retries: 16, retryDelay: '250ms' },
      },
    },
  });
  const r = await app.deploy('one', { version: 'v1.0.0' }, { sinks: [], handleSignals: false });
  assert.is(r.status, 'succeeded', r.error?.message);
  assert.equal(labels, ['preflight checks, resolve v1.0.0 and prepare the release', 'switch to v1.0.0 and restart']);
  const h1 = await hostState(env, 'h1');
  assert.is(h1.current, 'v1.0.0');
  assert.is(h1.serving, 'v1.0.0');
});

test('keep_releases 2 is honoured with the pruning folded into the switch, and a rollback finds the previous release', async () => {
  for (const v of ['v1.1.0', 'v1.2.0']) {
    const r = await fraisier(ws, 'deploy', 'app', 'one', '--version', v);
    assert.is(r.code, 0, r.out);
  }
  let h1 = await hostState(env, 'h1');
  assert.equal(h1.releases, ['v1.1.0', 'v1.2.0'], 'the live release and the previous one; v1.0.0 pruned');
  assert.is(h1.serving, 'v1.2.0');
  const back = await fraisier(ws, 'rollback', 'app', 'one');
  assert.is(back.code, 0, back.out);
  h1 = await hostState(env, 'h1');
  assert.is(h1.current, 'v1.1.0');
  assert.is(h1.serving, 'v1.1.0');
  assert.equal(h1.releases, ['v1.1.0', 'v1.2.0']);
});

test.run();
