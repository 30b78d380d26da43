/**
 * A Deployer over a provider that touches no host, for lock tests with real processes and a real store:
 * `prepare` waits until `release()` is called (or forever), so a deployment can be held mid-way, killed,
 * or let finish. Everything else (lock, renewal, takeover, history) is the real Deployer's.
 */
import { Deployer } from '../../core/deployer.js';
import type { LogSink } from '../../core/log.js';
import type { LockOwner } from '../../core/state/lock.js';
import type { StateStore } from '../../core/state/store.js';
import { RecordingExecutor } from '../../core/exec/recording.js';
import type { Provider, Strategy, Target } from '../../core/types.js';

export interface HeldDeployment {
  deployer: Deployer;
  /** Resolves when `prepare` is reached: the lock is held and the deployment recorded. */
  reached: Promise<void>;
  /** Lets `prepare` finish. */
  release(): void;
}

export function fakeDeployer(options: {
  store: StateStore;
  environment: string;
  sinks: LogSink[];
  lockTtlMs?: number;
  lockPollMs?: number;
  owner?: LockOwner;
  /** Hold in `prepare` until `release()`. Default false: deploy straight through. */
  hold?: boolean;
}): HeldDeployment {
  const target: Target = { name: 'box1', kind: 'fake' };
  let live: string | null = null;
  let onReached!: () => void;
  const reached = new Promise<void>((r) => (onReached = r));
  let onRelease!: () => void;
  const released = new Promise<void>((r) => (onRelease = r));
  if (!options.hold) onRelease();
  const provider: Provider = {
    name: 'provider:fake',
    targets: [target],
    open: async () => {},
    resolveVersion: async (ref) => ref ?? 'v1',
    currentRelease: async () => live,
    releases: async () => (live ? [live] : []),
    prepare: async () => {
      onReached();
      await released;
    },
    activate: async (_t, version) => {
      live = version;
    },
    finalize: async () => {},
    executor: () => new RecordingExecutor('box1'),
    close: async () => {},
  };
  const strategy: Strategy = {
    name: 'strategy:one-by-one',
    run: async (ctx, runner) => {
      for (const t of ctx.targets) await runner.deployTarget(t);
    },
  };
  const deployer = new Deployer({
    fraise: 'api',
    environment: options.environment,
    provider,
    strategy,
    store: options.store,
    sinks: options.sinks,
    handleSignals: false,
    ...(options.lockTtlMs !== undefined ? { lockTtlMs: options.lockTtlMs } : {}),
    ...(options.lockPollMs !== undefined ? { lockPollMs: options.lockPollMs } : {}),
    ...(options.owner ? { owner: options.owner } : {}),
  });
  return { deployer, reached, release: onRelease };
}
