/**
 * A deployment's row in the history, written as the deployment runs: the deployment row (once the
 * release is resolved), its events (every log line, from the moment the row exists), each target's result
 * and the final status. Also {@link historyReader}, the read-only view plugins get through the plugin host.
 */
import { FraisierError } from './errors.js';
import type { FanoutLogger, LogSink } from './log.js';
import type { DeploymentStatus, NewDeployment, StateStore, TargetStatus as StoredTargetStatus } from './state/store.js';
import type { DeploymentSummary, HistoryReader, ProviderOutcome, TargetState } from './types.js';

/** How a target's state is stored in the history. */
export function storedStatus(s: TargetState): StoredTargetStatus {
  switch (s.status) {
    case 'healthy':
    case 'activated':
      return 'succeeded';
    case 'failed':
      return 'failed';
    case 'rolled_back':
      return 'rolled_back';
    case 'rollback_failed':
      return 'rollback_failed';
    default:
      return 'untouched';
  }
}

/**
 * Runs a write to the store, retrying for up to 20 s while the store cannot be reached (a PostgreSQL
 * server restarting), so a deployment's outcome is recorded when the server comes back.
 */
export async function persist<T>(fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof FraisierError || performance.now() - started > 20_000) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Records one deployment. Attach it to the deployment's logger at the start ({@link attach}): log lines
 * become the deployment's events once {@link start} has written its row. A dry run records nothing (never
 * call `start`).
 */
export class HistoryRecorder {
  readonly #store: StateStore;
  #id: number | null = null;
  readonly #pending: Promise<void>[] = [];
  #logger: FanoutLogger | null = null;
  readonly #sink: LogSink = (e) => {
    if (this.#id !== null) this.#pending.push(this.#store.recordEvent(this.#id, { level: e.level, target: e.target, message: e.message }).catch(() => {}));
  };

  constructor(store: StateStore) {
    this.#store = store;
  }

  /** The deployment's row id, or null before {@link start} (and in a dry run). */
  get id(): number | null {
    return this.#id;
  }

  /** Records the logger's lines as events (from the moment the row exists). */
  attach(logger: FanoutLogger): void {
    this.#logger = logger;
    logger.sinks.push(this.#sink);
  }

  /** Stops recording the logger's lines. Idempotent. */
  detach(): void {
    const sinks = this.#logger?.sinks;
    const i = sinks?.indexOf(this.#sink) ?? -1;
    if (i >= 0) sinks!.splice(i, 1);
    this.#logger = null;
  }

  /** Writes the deployment row as `running`. */
  async start(deployment: NewDeployment): Promise<number> {
    this.#id = await this.#store.recordDeployment(deployment);
    return this.#id;
  }

  /** Records (or replaces) one target's result. Does nothing before {@link start}. */
  async target(s: TargetState): Promise<void> {
    const id = this.#id;
    if (id === null) return;
    await persist(() =>
      this.#store.recordTarget(id, {
        target: s.target.name,
        fromVersion: s.fromVersion,
        toVersion: s.toVersion,
        status: storedStatus(s),
        phases: s.phases,
        error: s.error,
      }),
    );
  }

  /**
   * Records a target's result as it finishes, without waiting for the store (a store that cannot be
   * reached does not slow the deployment: {@link finish} writes every target again, with retries).
   * Does nothing before {@link start}.
   */
  targetDone(s: TargetState): void {
    const id = this.#id;
    if (id === null) return;
    const row = { target: s.target.name, fromVersion: s.fromVersion, toVersion: s.toVersion, status: storedStatus(s), phases: { ...s.phases }, error: s.error };
    this.#pending.push(this.#store.recordTarget(id, row).catch(() => {}));
  }

  /**
   * Waits for the rows and events written so far, then records every target's result and the final
   * status (in that order, so an early row never lands over a final one). Does nothing before {@link start}.
   */
  async finish(
    states: Iterable<TargetState>,
    outcome: { status: Exclude<DeploymentStatus, 'running'>; error: string | null; providers?: ProviderOutcome[] },
  ): Promise<void> {
    const id = this.#id;
    if (id === null) return;
    await Promise.all(this.#pending);
    for (const s of states) await this.target(s);
    await persist(() => this.#store.finishDeployment(id, outcome));
  }
}

/** The read-only history of one environment, as plugins see it ({@link PluginHost.history}). */
export function historyReader(store: StateStore, fraise: string, environment: string): HistoryReader {
  return {
    async recent(limit = 50): Promise<DeploymentSummary[]> {
      const rows = await store.history({ fraise, environment, limit });
      return rows.map((d) => ({
        id: d.id,
        kind: d.kind,
        status: d.status,
        fromVersion: d.fromVersion,
        toVersion: d.toVersion,
        startedAt: d.startedAt,
        finishedAt: d.finishedAt,
      }));
    },
    currentVersion: () => store.currentVersion(fraise, environment),
    succeededVersions: () => store.knownGoodVersions(fraise, environment),
  };
}
