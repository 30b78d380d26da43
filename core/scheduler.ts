/**
 * Scheduled deployments, on top of the queue of the state store (core/state/queue.ts):
 * `deploy --scheduled` resolves the release now and queues it; `fraisier worker` runs what is due
 * through the same lock and history as a manual deploy, holding an item back while its environment is
 * outside its deploy windows; `fraisier queue` lists and cancels. See docs/scheduling.md.
 */
import { hostname, userInfo } from 'node:os';
import type { DeployApp } from './app.js';
import type { CommandIo } from './commands/types.js';
import type { LoadedConfig } from './config/load.js';
import { FraisierError, type ErrorCode, formatError } from './errors.js';
import { table, toJson } from './report.js';
import { formatInZone, parseScheduled } from './schedule.js';
import { Queue, type QueueItem } from './state/queue.js';
import { openStore, resolveState, storeOptions, type StateStore } from './state/store.js';
import { checkWindow, type DeployWindowPolicy } from './windows.js';

/** `user@host` of this process: who queued an item. */
export function requester(): string {
  return `${userInfo().username}@${hostname()}`;
}

/** `in 2m05s`, `3s ago`. */
function relative(ms: number): string {
  const a = Math.abs(Math.round(ms / 1000));
  const text =
    a >= 3600
      ? `${Math.floor(a / 3600)}h${String(Math.floor((a % 3600) / 60)).padStart(2, '0')}m`
      : a >= 60
        ? `${Math.floor(a / 60)}m${String(a % 60).padStart(2, '0')}s`
        : `${a}s`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** Why an item due at `at` would wait under `policy`, or null when it may run then. */
export function waitingNote(policy: DeployWindowPolicy | undefined, at: number): string | null {
  const v = checkWindow(policy, at);
  if (v.allowed) return null;
  return `waits: ${v.reason}; runs from ${v.next === null ? 'no allowed time within two years' : formatInZone(v.next, v.timezone)}`;
}

/** Options of {@link scheduleDeploy}. */
export interface ScheduleOptions {
  /** `--scheduled`, as written. */
  when: string;
  /** `--version`, or undefined for the configured branch. */
  version?: string;
  /** `--force`: no health checks, and the deploy windows do not hold the item back. */
  force: boolean;
  /** `--dry-run`: resolve and say what would be queued; queue nothing. */
  dryRun: boolean;
  /** `--wait-lock`: how long the run waits for another deployment's lock (default: the worker's `--wait-lock`), ms. */
  waitLockMs?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/**
 * `deploy --scheduled`: parses the time (a malformed or past time is `E_USAGE` before anything else),
 * resolves the exact release now through the provider (a dry run: connects, changes nothing), and
 * queues it with who asked. Prints the item and returns at once (exit 0).
 */
export async function scheduleDeploy(app: DeployApp, env: string, options: ScheduleOptions, io: CommandIo): Promise<number> {
  const now = options.now ?? Date.now;
  const due = parseScheduled(options.when, now());
  const resolved = await app.deploy(
    env,
    { ...(options.version !== undefined ? { version: options.version } : {}), dryRun: true, force: options.force },
    { sinks: [], handleSignals: false },
  );
  if (resolved.error) {
    throw new FraisierError(resolved.error.code as ErrorCode, `cannot schedule ${app.name}/${env}: ${resolved.error.message}`, {
      ...(resolved.error.target ? { target: resolved.error.target } : {}),
      hint: 'nothing was queued',
    });
  }
  const version = resolved.toVersion;
  const note = options.force ? null : waitingNote(app.deployWindows(env), due);
  const item = {
    fraise: app.name,
    environment: env,
    version,
    ref: options.version ?? null,
    flags: { ...(options.force ? { force: true } : {}), ...(options.waitLockMs !== undefined ? { waitLockMs: options.waitLockMs } : {}) },
    requestedBy: requester(),
    dueAt: due,
  };
  const id = options.dryRun ? null : await app.withStore({}, (store) => new Queue(store).add(item));
  if (io.json) {
    io.out(toJson({ id, ...item, dueAt: new Date(due).toISOString(), dryRun: options.dryRun, note }, 2) + '\n');
    return 0;
  }
  const from =
    options.version && options.version !== version ? ` (resolved from ${options.version})` : options.version ? '' : ' (the configured branch, resolved now)';
  io.out(
    `${options.dryRun ? 'Would queue' : `Queued #${id}:`} ${app.name}/${env} ${version}${from}, due ${formatInZone(due)} (${relative(due - now())})` +
      `${options.force ? ', --force' : ''}, requested by ${item.requestedBy}\n` +
      (note ? `Note: ${note}\n` : '') +
      (options.dryRun
        ? 'Dry run: nothing was queued.\n'
        : `A worker runs it when due: fraisier worker (or worker --once from cron). Cancel: fraisier queue cancel ${id}\n`),
  );
  return 0;
}

/**
 * The pid of a worker id (`user@host:pid`) when that worker ran on this machine and is no longer
 * running, else null: a worker on another machine, or one still alive, is never judged from here.
 */
export function goneLocalWorker(workerId: string | null, thisHost: string = hostname()): number | null {
  const m = workerId ? /^.*@(.+):(\d+)$/.exec(workerId) : null;
  if (!m || m[1] !== thisHost) return null;
  const pid = Number(m[2]);
  try {
    process.kill(pid, 0);
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? pid : null;
  }
}

/**
 * Items left `running` by a worker of this machine that is gone (SIGKILL, OOM killer, reboot): each is
 * marked `failed`, saying so, instead of showing `running` for ever. Its deployment, if it had started,
 * is recorded as interrupted by the next deploy of that environment (the lock it held expires by itself).
 * @returns the items marked.
 */
export async function reapAbandoned(queue: Queue, say: (text: string) => void, thisHost: string = hostname()): Promise<QueueItem[]> {
  const marked: QueueItem[] = [];
  for (const item of await queue.list()) {
    if (item.status !== 'running') continue;
    const pid = goneLocalWorker(item.claimedBy, thisHost);
    if (pid === null) continue;
    const error = `abandoned: worker ${item.claimedBy} stopped before finishing it (pid ${pid} is no longer running); check the hosts with fraisier status ${item.fraise} ${item.environment}`;
    if (await queue.abandon(item.id, item.claimedBy!, error)) {
      marked.push(item);
      say(`#${item.id} ${item.fraise}/${item.environment} ${item.version}: ${error}\n`);
    }
  }
  return marked;
}

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** Run what is due once, then exit (for cron). */
  once: boolean;
  /** Say what is due and would run (or wait), run nothing, change nothing, exit. */
  dryRun?: boolean;
  /** Pause between two looks at the queue, ms. */
  pollMs: number;
  /** How long a run waits for the environment's lock before failing, ms. */
  waitLockMs: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Builds the app of a fraise (default: from the loaded fraises.yaml). */
  appOf?: (fraise: string) => Promise<DeployApp>;
  /** The store to use instead of opening the configured one. */
  store?: StateStore;
  /** Stops the loop (and the poll sleep) when aborted. Default: SIGTERM, SIGINT or SIGHUP. */
  signal?: AbortSignal;
}

/** What one pass over the queue did. */
export interface WorkerPass {
  /** The items this pass ran, with their outcome and history row. */
  ran: { id: number; status: string; deploymentId: number | null }[];
  /** Due items held back by their deploy windows. */
  waiting: number;
  /** Dry run: the due items it would have run. */
  wouldRun: number[];
}

/**
 * One pass: every due `queued` item, oldest due first. An item whose environment is outside its deploy
 * windows (and not `--force`) stays queued with a note; any other is claimed (one atomic update: of
 * several workers, one wins) and deployed through the same lock and history as a manual deploy, then
 * finished with the history row's id. Stops early when `stop()` says so.
 */
export async function workerPass(
  config: LoadedConfig | undefined,
  store: StateStore,
  io: CommandIo,
  options: Pick<WorkerOptions, 'waitLockMs' | 'now' | 'appOf' | 'dryRun'> & { workerId: string; stop: () => boolean },
): Promise<WorkerPass> {
  const queue = new Queue(store);
  const say = (text: string) => (io.json ? io.err(text) : io.out(text));
  const now = options.now ?? Date.now;
  const appOf = options.appOf ?? (async (fraise: string) => (await import('./config/build.js')).appFromYaml(config!, fraise));
  const pass: WorkerPass = { ran: [], waiting: 0, wouldRun: [] };
  if (!options.dryRun) await reapAbandoned(queue, say);
  for (const item of await queue.due(now())) {
    if (options.stop()) break;
    let app: DeployApp | undefined;
    let problem: string | null = null;
    try {
      app = await appOf(item.fraise);
      if (!app.environments.includes(item.environment)) problem = `fraise ${item.fraise} has no environment ${item.environment} any more`;
    } catch (err) {
      problem = formatError(err);
    }
    if (app && !problem && !item.flags.force) {
      const note = waitingNote(app.deployWindows(item.environment), now());
      if (note) {
        pass.waiting++;
        if (note !== item.note || options.dryRun) {
          if (!options.dryRun) await queue.note(item.id, note);
          say(`#${item.id} ${item.fraise}/${item.environment} ${item.version}: ${note}\n`);
        }
        continue;
      }
    }
    if (options.dryRun) {
      pass.wouldRun.push(item.id);
      say(`Would run #${item.id}: ${item.fraise}/${item.environment} ${item.version}${problem ? ` (it would fail: ${problem})` : ''} (dry run)\n`);
      continue;
    }
    const claimed = await queue.claim(item.id, options.workerId);
    if (!claimed) continue; // another worker took it, or it was cancelled
    if (problem || !app) {
      await queue.finish(item.id, { status: 'failed', error: problem ?? 'no app' });
      io.err(`error: #${item.id} ${item.fraise}/${item.environment}: ${problem}\n`);
      pass.ran.push({ id: item.id, status: 'failed', deploymentId: null });
      continue;
    }
    say(`Running #${item.id}: ${item.fraise}/${item.environment} ${item.version}, queued by ${item.requestedBy}, due ${formatInZone(item.dueAt)}\n`);
    try {
      const result = await app.deploy(
        item.environment,
        {
          version: item.version,
          force: Boolean(item.flags.force),
          waitLock: (item.flags.waitLockMs ?? options.waitLockMs) > 0 ? (item.flags.waitLockMs ?? options.waitLockMs) : false,
          reason: `scheduled deploy #${item.id} (queued by ${item.requestedBy})`,
        },
        { sinks: io.sinks, store, handleSignals: false },
      );
      if (result.id !== null) {
        await store.recordEvent(result.id, {
          level: 'info',
          message: `queue item #${item.id}, queued by ${item.requestedBy}, run by worker ${options.workerId}`,
        });
      }
      await queue.finish(item.id, { status: result.status, deploymentId: result.id, error: result.error?.message ?? null });
      if (io.json) io.out(`${toJson({ id: item.id, status: result.status, deploymentId: result.id })}\n`);
      say(`#${item.id} ${item.fraise}/${item.environment} ${item.version}: ${result.status}${result.id !== null ? ` (deployment ${result.id})` : ''}\n`);
      if (result.error) io.err(`error[${result.error.code}] ${result.error.message}\n`);
      pass.ran.push({ id: item.id, status: result.status, deploymentId: result.id });
    } catch (err) {
      await queue.finish(item.id, { status: 'failed', error: formatError(err) });
      io.err(`#${item.id} ${item.fraise}/${item.environment}: ${formatError(err)}\n`);
      pass.ran.push({ id: item.id, status: 'failed', deploymentId: null });
    }
  }
  return pass;
}

/**
 * `fraisier worker`: runs due items until stopped, looking every `pollMs`; with `once`, one pass then
 * exit; with `dryRun`, one pass that says what it would run and changes nothing. With `--json`, the text
 * goes to stderr and stdout gets one JSON line per item run (`once`/`dryRun`: one summary object). SIGTERM, SIGINT or SIGHUP stop it after the current item: a running deployment is not
 * interrupted (it completes, or fails and rolls back by itself), no new item is claimed. Exit 0, or (with
 * `once`) 1 when an item it ran did not succeed.
 */
export async function runWorker(config: LoadedConfig | undefined, options: WorkerOptions, io: CommandIo): Promise<number> {
  const store = options.store ?? (await openStore(storeOptions(resolveState(config!.baseDir, config!.state))));
  const workerId = `${requester()}:${process.pid}`;
  const controller = new AbortController();
  let stopping = false;
  let busy = false;
  const onSignal = (sig: string) => {
    if (!stopping) io.err(`${sig}: ${busy ? 'stopping after the current item (its deployment runs to its end)' : 'stopping'}\n`);
    else io.err(`${sig}: already stopping${busy ? '; the current deployment runs to its end (or rolls back by itself)' : ''}\n`);
    stopping = true;
    controller.abort();
  };
  const handlers = (['SIGTERM', 'SIGINT', 'SIGHUP'] as const).map((sig) => [sig, () => onSignal(sig)] as const);
  if (!options.signal) for (const [sig, fn] of handlers) process.on(sig, fn);
  options.signal?.addEventListener('abort', () => {
    stopping = true;
    controller.abort();
  });
  const once = options.once || Boolean(options.dryRun);
  const say = (text: string) => (io.json ? io.err(text) : io.out(text));
  let failed = 0;
  const total: WorkerPass = { ran: [], waiting: 0, wouldRun: [] };
  try {
    if (!once) say(`Worker ${workerId} watching the queue every ${Math.round(options.pollMs / 100) / 10}s (stop: SIGTERM or Ctrl-C)\n`);
    for (;;) {
      busy = true;
      const pass = await workerPass(config, store, io, {
        waitLockMs: options.waitLockMs,
        workerId,
        stop: () => stopping,
        ...(options.dryRun ? { dryRun: true } : {}),
        ...(options.now ? { now: options.now } : {}),
        ...(options.appOf ? { appOf: options.appOf } : {}),
      });
      busy = false;
      failed += pass.ran.filter((r) => r.status !== 'succeeded').length;
      if (once) {
        Object.assign(total, pass);
        if (pass.ran.length === 0 && pass.wouldRun.length === 0) {
          say(`Nothing to run${pass.waiting > 0 ? ` (${pass.waiting} due item(s) wait for their deploy window)` : ''}${options.dryRun ? ' (dry run)' : ''}\n`);
        }
        break;
      }
      if (stopping) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, options.pollMs);
        controller.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
      if (stopping) break;
    }
  } finally {
    if (!options.signal) for (const [sig, fn] of handlers) process.off(sig, fn);
    if (!options.store) await store.close();
  }
  if (once && io.json) io.out(`${toJson({ ...total, dryRun: Boolean(options.dryRun) }, 2)}\n`);
  if (!once) say('Worker stopped\n');
  return once && failed > 0 ? 1 : 0;
}

/** `fraisier queue` as a table. */
export function formatQueue(items: (QueueItem & { waiting?: string | null })[], now: number): string {
  if (items.length === 0) return 'No scheduled deployments.';
  return table(
    ['ID', 'FRAISE', 'ENV', 'VERSION', 'DUE', 'STATUS', 'REQUESTED BY', 'NOTE'],
    items.map((i) => [
      String(i.id),
      i.fraise,
      i.environment,
      i.version,
      `${formatInZone(i.dueAt)} (${relative(i.dueAt - now)})`,
      i.status,
      i.requestedBy,
      i.waiting ??
        (i.status === 'running'
          ? `claimed by ${i.claimedBy}${goneLocalWorker(i.claimedBy) !== null ? ' (no longer running: the next worker pass marks it failed)' : ''}`
          : i.deploymentId !== null
            ? `deployment ${i.deploymentId}${i.error ? `: ${i.error}` : ''}`
            : (i.error ?? '')),
    ]),
  );
}

/** The windows of fraise/env in the loaded config, or undefined (none, or not in the config). */
export async function windowsOf(config: LoadedConfig | undefined, fraise: string, environment: string): Promise<DeployWindowPolicy | undefined> {
  return config?.fraises[fraise]?.environments[environment]?.deployWindows;
}
