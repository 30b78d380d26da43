/**
 * Recorded bare_metal hosts for unit tests: every host starts on `v1.0.0`, answers the provider's
 * preflight, resolves any ref to v1.1.0, and remembers which release its `current` was switched to.
 * Hosts listed in `unhealthy` fail the `health-probe` exec check while they run v1.1.0.
 */
import { FakeClock } from '../../core/clock.js';
import { Deployer } from '../../core/deployer.js';
import { RecordingExecutor } from '../../core/exec/recording.js';
import { exec } from '../../core/health.js';
import { memorySink, type LogEntry } from '../../core/log.js';
import { openStore } from '../../core/state/store.js';
import { bareMetal } from '../../providers/bare-metal.js';
import { rolling } from '../../strategies/rolling.js';

export type RecordedLog = RecordingExecutor['log'];

/** The release a recorded command switched to (the activate script takes the app path, then the version), or null. */
export function activated(entry: RecordedLog[number], appPath: string): string | null {
  if (!entry.text.includes('.current.tmp')) return null;
  const argv = entry.command.steps[0]!;
  const i = argv.indexOf(appPath, 3);
  return i > 0 ? String(argv[i + 1]) : null;
}

export function recordedBareMetal(options: { hosts: string[]; appPath: string; program: string; unhealthy?: string[]; log?: RecordedLog }) {
  const { hosts, appPath } = options;
  const log: RecordedLog = options.log ?? [];
  const live = new Map(hosts.map((h) => [h, 'v1.0.0']));
  const executors = new Map<string, RecordingExecutor>();
  for (const h of hosts) {
    const e = new RecordingExecutor(h, { log });
    e.on(/uid=\$\(id -u\)/, () => ({ stdout: `uid=0\ncurrent=${live.get(h)}\n` }));
    e.on(/^readlink/, () => ({ stdout: `releases/${live.get(h)}\n` }));
    e.on(/rev-parse --verify/, { stdout: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa aaaaaaa v1.1.0\n' });
    e.on(
      (text) => text.includes('.current.tmp'),
      () => {
        live.set(h, activated(log.at(-1)!, appPath)!);
        return {};
      },
    );
    e.on(/^health-probe/, () => ({ code: (options.unhealthy ?? []).includes(h) && live.get(h) === 'v1.1.0' ? 1 : 0 }));
    executors.set(h, e);
  }
  const provider = bareMetal({
    hosts,
    appPath,
    source: { type: 'git', repo: '/repo.git' },
    service: { type: 'supervisor', program: options.program },
    connect: async (h) => executors.get(h)!,
  });
  /** `host:version` for every switch, in order. */
  const activations = () =>
    log
      .map((l) => [l.target, activated(l, appPath)])
      .filter(([, v]) => v)
      .map(([t, v]) => `${t}:${v}`);
  return { provider, executors, live, log, activations };
}

/**
 * A Deployer of `api`/`production` over recorded hosts (`/srv/api`, supervisor program `api`): rolling one
 * host at a time, the `health-probe` exec check (one attempt), an in-memory store and a fake clock.
 */
export async function recordedDeployer(options: { hosts: string[]; unhealthy?: string[] }) {
  const recorded = recordedBareMetal({ hosts: options.hosts, appPath: '/srv/api', program: 'api', unhealthy: options.unhealthy ?? [] });
  const store = await openStore({ path: ':memory:' });
  const entries: LogEntry[] = [];
  const deployer = new Deployer({
    fraise: 'api',
    environment: 'production',
    provider: recorded.provider,
    strategy: rolling({ batchSize: 1, waitBetweenBatches: 0 }),
    health: { checks: [exec('health-probe')], retries: 1, retryDelay: '1s' },
    store,
    clock: new FakeClock(),
    sinks: [memorySink(entries)],
    handleSignals: false,
  });
  return { ...recorded, deployer, store, entries };
}
