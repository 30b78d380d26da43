/**
 * End to end: every command × `--dry-run` through both front ends (`fraisier` over fraises.yaml, and
 * `npx tsx deploy.ts production <command>`). Each flag is either honoured or refused: a dry run changes
 * nothing on any host, in the history or in the lock table; a command that has no dry run refuses the
 * flag (exit 2) rather than running for real.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Locks } from '../../core/state/lock.js';
import { openStore } from '../../core/state/store.js';
import { hostExec, type LabEnv } from '../lab/lab.js';
import { allHosts, fraisier, lab, labYaml, repoRoot, resetHosts, run, workspace, type Run } from './helpers.js';

let env: LabEnv;
let ws: string;
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');

/** What a dry run must not change: each host's `current`, its releases and the app's pid; the history; the lock. */
async function snapshot(): Promise<unknown> {
  const hosts = await Promise.all(env.hosts.map(async (h) => (await hostExec(env, h.name, 'readlink /srv/app/current; ls -1a /srv/app/releases; supervisorctl pid app')).stdout));
  const store = await openStore({ path: join(ws, '.fraisier', 'state.db') });
  try {
    return { hosts, history: await store.history(), locks: await new Locks(store).list() };
  } finally {
    await store.close();
  }
}

test.before(async () => {
  env = await lab();
  await resetHosts(env);
  ws = workspace(labYaml(env, { batch: 3 }));
  writeFileSync(join(ws, 'package.json'), '{"type":"module"}');
  writeFileSync(
    join(ws, 'deploy.ts'),
    `import { bareMetal, defineDeploy, http, rolling } from ${JSON.stringify(join(repoRoot, 'index.ts'))};
export default defineDeploy({
  name: 'app',
  environments: {
    production: {
      provider: bareMetal({
        hosts: ['h1', 'h2', 'h3'],
        appPath: '/srv/app',
        source: { type: 'git', repo: ${JSON.stringify(env.appRepo)}, branch: 'main' },
        service: { type: 'supervisor', program: 'app' },
        ssh: { configFile: ${JSON.stringify(env.sshConfig)} },
      }),
      strategy: rolling({ batchSize: 3 }),
      health: { checks: [http({ url: 'http://localhost:8000/health', expectBody: 'ok' })], retries: 8, retryDelay: '250ms', timeout: '2s' },
    },
  },
});
`,
  );
  for (const v of ['v1.0.0', 'v1.1.0']) {
    const r = await fraisier(ws, 'deploy', 'app', 'production', '--version', v);
    assert.is(r.code, 0, r.out);
  }
});

type FrontEnd = (args: string[]) => Promise<Run>;
const frontEnds: Record<string, FrontEnd> = {
  fraisier: (args) => fraisier(ws, args[0]!, 'app', 'production', ...args.slice(1)),
  'deploy.ts': (args) => run(tsx, ['deploy.ts', 'production', ...args], { cwd: ws }),
};

/** Commands with a dry run, and what each must print. */
const honoured: Record<string, { args: string[]; says: string }> = {
  deploy: { args: ['deploy', '--version', 'v1.2.0'], says: 'v1.1.0 → v1.2.0' },
  rollback: { args: ['rollback'], says: 'v1.1.0 → v1.0.0' },
};
/** Commands that have no dry run: the flag is refused. */
const refused = ['status', 'history', 'stats', 'unlock'];

for (const [front, call] of Object.entries(frontEnds)) {
  for (const [command, { args, says }] of Object.entries(honoured)) {
    test(`${front} ${command} --dry-run prints the plan and changes nothing`, async () => {
      const before = await snapshot();
      const r = await call([...args, '--dry-run']);
      assert.is(r.code, 0, r.out);
      assert.match(r.out, '(dry run)');
      assert.match(r.out, says);
      assert.equal(await snapshot(), before, 'nothing changed on the hosts, in the history or the locks');
    });
  }
  test(`${front} migrate --dry-run without migrations configured: an error, nothing changed`, async () => {
    const before = await snapshot();
    const r = await call(['migrate', '--dry-run']);
    assert.is(r.code, 2, r.out);
    assert.equal(await snapshot(), before);
  });
  for (const command of refused) {
    test(`${front} ${command} --dry-run is refused (exit 2), not run`, async () => {
      const before = await snapshot();
      const r = await call([command, '--dry-run']);
      assert.is(r.code, 2, r.out);
      assert.match(r.stderr, 'dry-run');
      assert.equal(await snapshot(), before);
    });
  }
}

test('deploy.ts refuses an option of another command instead of ignoring it', async () => {
  const before = await snapshot();
  const a = await frontEnds['deploy.ts']!(['rollback', '--version', 'v1.2.0']);
  assert.is(a.code, 2, a.out);
  assert.match(a.stderr, 'rollback does not take --version');
  const b = await frontEnds['deploy.ts']!(['deploy', '--to', 'v1.0.0', '--version', 'v1.2.0']);
  assert.is(b.code, 2, b.out);
  assert.match(b.stderr, 'deploy does not take --to');
  assert.equal(await snapshot(), before, 'neither ran');
});

test('the dry runs left the hosts on v1.1.0, and a real rollback then works', async () => {
  const r = await frontEnds['deploy.ts']!(['rollback']);
  assert.is(r.code, 0, r.out);
  for (const h of await allHosts(env)) assert.equal([h.current, h.serving], ['v1.0.0', 'v1.0.0']);
});

test.run();
