import type { DeployAllResult } from './deploy-all.js';
import type { StatusReport } from './deployer.js';
import type { LockInfo } from './state/lock.js';
import { ownerString } from './state/owner.js';
import type { DeployEvent, Deployment, Stats, TargetResult } from './state/store.js';
import type { DeployResult } from './types.js';
import { redact, redactedJson } from './secret.js';

function iso(ms: number | null): string {
  return ms === null
    ? '-'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

function secs(ms: number | null): string {
  return ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`;
}

/** Lays out rows as aligned columns. Every cell is redacted ({@link redact}): tables are what humans read. */
export function table(head: string[], unsafeRows: string[][]): string {
  const rows = unsafeRows.map((r) => r.map(redact));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** `fraisier history` as a table. */
export function formatHistory(rows: Deployment[]): string {
  if (rows.length === 0) return 'No deployments recorded.';
  const base = table(
    ['ID', 'FRAISE', 'ENV', 'KIND', 'FROM', 'TO', 'STATUS', 'STARTED', 'DURATION', 'BY'],
    rows.map((d) => [
      String(d.id),
      d.fraise,
      d.environment,
      d.kind,
      d.fromVersion ?? '-',
      d.toVersion,
      // a cancelled deployment says who cancelled it: `cancelled by alice@laptop:4242 (wrong tag)`
      d.status === 'cancelled' && d.error?.startsWith('cancelled') ? d.error : d.status,
      iso(d.startedAt),
      secs(d.durationMs),
      `${d.user}@${d.host}`,
    ]),
  );
  // Multi-provider deployments: one line per provider under the table (which served, why others failed).
  const multi = rows.filter((d) => d.providers && d.providers.length > 0);
  if (multi.length === 0) return base;
  const lines = multi.flatMap((d) => d.providers!.map((p) => `  #${d.id} ${p.name} (priority ${p.priority}): ${p.status}${p.error ? `: ${p.error}` : ''}`));
  return `${base}\n${lines.map(redact).join('\n')}`;
}

/** `fraisier history --id N`: one deployment, its result per target, and its events oldest first. */
export function formatDeployment(d: Deployment & { targets: TargetResult[]; events: DeployEvent[] }): string {
  const status = d.status === 'cancelled' && d.error?.startsWith('cancelled') ? d.error : d.status;
  const head = [
    `Deployment #${d.id}: ${d.fraise}/${d.environment} ${d.kind} ${d.fromVersion ?? '-'} → ${d.toVersion}: ${status}`,
    `  started ${iso(d.startedAt)}, finished ${iso(d.finishedAt)} (${secs(d.durationMs)}), by ${d.user}@${d.host}`,
    ...(d.error && status !== d.error ? [`  error: ${d.error}`] : []),
    ...(d.providers ?? []).map((p) => `  provider ${p.name} (priority ${p.priority}): ${p.status}${p.error ? `: ${p.error}` : ''}`),
  ];
  const targets =
    d.targets.length === 0
      ? 'No target results.'
      : table(
          ['TARGET', 'FROM', 'TO', 'STATUS', 'PHASES', 'ERROR'],
          d.targets.map((t) => [
            t.target,
            t.fromVersion ?? '-',
            t.toVersion ?? '-',
            t.status,
            Object.entries(t.phases)
              .map(([phase, ms]) => `${phase} ${secs(ms)}`)
              .join(', ') || '-',
            t.error ?? '',
          ]),
        );
  const events =
    d.events.length === 0
      ? 'No events.'
      : table(
          ['AT', 'LEVEL', 'TARGET', 'MESSAGE'],
          d.events.map((e) => [new Date(e.at).toISOString().replace('T', ' '), e.level, e.target ?? '-', e.message]),
        );
  return `${head.map(redact).join('\n')}\n\n${targets}\n\n${events}`;
}

/** `fraisier stats` as a table. */
export function formatStats(rows: Stats[], days: number): string {
  if (rows.length === 0) return `No finished deployments in the last ${days} days.`;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return table(
    ['FRAISE', 'DEPLOYS', 'SUCCESS', 'ROLLBACK', 'FAILED', 'MEAN', 'P95'],
    rows.map((s) => [s.fraise, String(s.total), pct(s.successRate), pct(s.rollbackRate), String(s.failed), secs(s.meanMs), secs(s.p95Ms)]),
  );
}

/** One line for a lock. */
export function formatLock(l: LockInfo): string {
  return redact(`locked by ${ownerString(l.owner)} since ${iso(l.acquiredAt)} (expires ${iso(l.expiresAt)})${l.reason ? `: ${l.reason}` : ''}`);
}

/** `1h02m`, `3m05s`, `42s`: a short human duration. */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A lock as `status-all` shows it: owner, reason, age, and when it expires (or that it has). */
export interface LockSummary {
  /** `user@host:pid` */
  owner: string;
  reason: string | null;
  acquiredAt: number;
  expiresAt: number;
  /** now − acquiredAt, ms */
  ageMs: number;
  /** True once expiresAt has passed: its deployer stopped renewing it (crashed); the next deployment takes it over. */
  expired: boolean;
}

/** The {@link LockSummary} of a lock at time `now`. */
export function summarizeLock(l: LockInfo, now: number): LockSummary {
  return {
    owner: ownerString(l.owner),
    reason: l.reason,
    acquiredAt: l.acquiredAt,
    expiresAt: l.expiresAt,
    ageMs: Math.max(0, now - l.acquiredAt),
    expired: l.expiresAt <= now,
  };
}

/** A deployment running now, as `status-all` shows it (from its lock row and its history row). */
export interface ActiveDeployment {
  /** History row id, or null when the holder has not recorded its row yet (preflight). */
  id: number | null;
  kind: 'deploy' | 'rollback' | null;
  fromVersion: string | null;
  toVersion: string | null;
  /** `user@host:pid` of the deployer. */
  holder: string;
  /** What it does now (`deploying h2`, `waiting 2 s before the next batch`), or null when not said yet. */
  step: string | null;
  /** Targets finished, with their result (`succeeded`, `failed`, ...), in the order they finished. */
  done: { target: string; status: string }[];
  /** Targets not finished yet (known once the holder has said which targets it works on). */
  left: string[];
  /** Time since it took the lock, ms. */
  elapsedMs: number;
  /** Who asked it to stop with `fraisier cancel`, or null. */
  cancelledBy: string | null;
}

/** One row of `fraisier status-all`. */
export interface StatusAllRow {
  fraise: string;
  environment: string;
  /** Live version according to the history, or null. */
  version: string | null;
  lock: LockSummary | null;
  /** The deployment running now (a live lock), or absent. */
  active?: ActiveDeployment;
}

/** `fraisier status-all` as a table: version, then the lock's owner, reason, age and expiry. */
export function formatStatusAll(rows: StatusAllRow[], now: number): string {
  return table(
    ['FRAISE', 'ENV', 'VERSION', 'LOCKED BY', 'REASON', 'AGE', 'EXPIRES'],
    rows.map((r) => [
      r.fraise,
      r.environment,
      r.version ?? '(never deployed)',
      r.lock?.owner ?? '-',
      r.lock ? (r.lock.reason ?? '') : '',
      r.lock ? ago(r.lock.ageMs) : '',
      r.lock ? (r.lock.expired ? `expired ${ago(now - r.lock.expiresAt)} ago` : `in ${ago(r.lock.expiresAt - now)}`) : '',
    ]),
  );
}

/** The active deployments of `status-all`, one block each: holder, step, hosts done and left, elapsed time. */
export function formatActive(rows: StatusAllRow[]): string {
  const active = rows.filter((r) => r.active);
  if (active.length === 0) return 'No deployment running.';
  const out = ['Active deployments:'];
  for (const r of active) {
    const a = r.active!;
    out.push(
      `  ${r.fraise}/${r.environment}: ${a.kind ?? 'deploy'} ${a.fromVersion ?? '(none)'} → ${a.toVersion ?? '(resolving)'} by ${a.holder}, running for ${ago(a.elapsedMs)}`,
      `    step: ${a.step ?? '(starting)'}`,
      `    done: ${a.done.length > 0 ? a.done.map((d) => `${d.target} (${d.status})`).join(', ') : '-'}`,
      `    left: ${a.left.length > 0 ? a.left.join(', ') : '-'}`,
    );
    if (a.cancelledBy) out.push(`    ${a.cancelledBy}: stopping and rolling back`);
  }
  return out.join('\n');
}

/** `fraisier status` for one fraise and environment. */
export function formatStatus(s: StatusReport): string {
  const out = [`${s.fraise} / ${s.environment}: ${s.version ?? '(never deployed)'}`, s.lock ? `  ${formatLock(s.lock)}` : '  not locked'];
  if (s.liveError) out.push(`  live pool: unknown (${redact(s.liveError)})`);
  else if (s.live) out.push(`  live colour: ${s.live.pool} (${s.live.targets.join(', ')})`);
  else if (s.live === null) out.push('  live colour: none recorded yet (every server gets traffic)');
  if (s.canary) {
    const c = s.canary;
    out.push(
      `  in canary: ${c.version} on ${c.canaryHosts.join(', ')} (stable: ${c.stableVersion ?? '(none)'}), step ${c.step + 1}, ${c.weight === null ? 'natural share' : `${c.weight}%`} of requests`,
    );
    for (const v of c.verdicts.slice(-4)) out.push(`    ${redact(v)}`);
    out.push(`  continue: fraisier promote ${s.fraise} ${s.environment}; abort: fraisier rollback ${s.fraise} ${s.environment}`);
  }
  // One row per target with its own result: an unreachable host never hides what the others run.
  out.push(
    table(
      ['  TARGET', 'CURRENT', 'RELEASES', 'RESULT'],
      s.targets.map((t) => [
        `  ${t.name}`,
        !t.reachable ? 'unknown' : (t.current ?? '(none)'),
        t.reachable && t.releases.length > 0 ? t.releases.join(' ') : '-',
        !t.reachable ? `unreachable: ${t.error ?? ''}` : t.error ? `error: ${t.error}` : 'ok',
      ]),
    ),
  );
  if (s.providers) {
    out.push(
      table(
        ['  PROVIDER', 'PRIORITY', 'CURRENT', 'TARGETS'],
        s.providers.map((p) => [`  ${p.name}`, String(p.priority), p.current ?? '(mixed or unknown)', p.targets.join(', ')]),
      ),
    );
  }
  const down = s.targets.filter((t) => t.error);
  if (down.length > 0)
    out.push(
      `${down.length} of ${s.targets.length} target(s) ${down.every((t) => !t.reachable) ? 'unreachable' : 'with errors'}: ${down.map((t) => t.name).join(', ')}`,
    );
  return out.join('\n');
}

/**
 * `from → to` for one target. A target whose rollback failed shows what it was found running afterwards,
 * or `unknown` when it could not be reached: never a release it may not be on.
 */
function version(t: DeployResult['targets'][number]): string {
  const base = `${t.fromVersion ?? '-'} → ${t.toVersion ?? (t.finalVersion !== undefined ? (t.finalVersion ?? 'unknown') : '-')}`;
  if (t.finalVersion === undefined || t.toVersion === null) return base;
  return t.finalVersion === t.toVersion ? base : `${base} (now ${t.finalVersion ?? 'unknown'})`;
}

/** The summary after a deployment: one line per target with its phases. */
export function formatResult(r: DeployResult): string {
  const rows = r.targets.map((t) => [
    t.name,
    t.status === 'pending' ? 'untouched' : t.status,
    version(t),
    Object.entries(t.phases)
      .filter(([, ms]) => ms > 0)
      .map(([p, ms]) => `${p} ${ms}ms`)
      .join(', '),
  ]);
  const head = `${r.kind} ${r.fraise}/${r.environment} ${r.status} in ${secs(r.durationMs)}\n${table(['TARGET', 'STATUS', 'VERSION', 'PHASES'], rows)}`;
  return r.providers ? `${head}\n${formatProviders(r.providers)}` : head;
}

/** The providers of a multi-provider deployment: which one served, why each before it failed. */
export function formatProviders(providers: NonNullable<DeployResult['providers']>): string {
  return table(
    ['PROVIDER', 'PRIORITY', 'OUTCOME', 'WHY'],
    providers.map((p) => [p.name, String(p.priority), p.status, p.error ?? '']),
  );
}

/** The summary table of a deployment of several fraises (`fraisier deploy api etl production`). */
export function formatDeployAll(r: DeployAllResult): string {
  const ok = r.entries.filter((e) => e.status === 'succeeded').length;
  return `${table(
    ['FRAISE', 'ENV', 'STATUS', 'FROM', 'TO', 'DURATION', 'ERROR'],
    r.entries.map((e) => [
      e.fraise,
      e.environment,
      e.status,
      e.result?.fromVersion ?? '-',
      e.result?.toVersion || '-',
      e.result ? secs(e.result.durationMs) : '-',
      e.error ? redact(`error[${e.error.code}] ${e.error.message}`) : '',
    ]),
  )}\n${ok} of ${r.entries.length} fraise(s) deployed${r.ok ? '' : ': some did not succeed'}`;
}

/**
 * The JSON writer of the CLI (`--json`): `JSON.stringify` with every string value redacted, so a secret
 * in an error, a target's reason or a history row never reaches stdout.
 */
export function toJson(value: unknown, indent?: number): string {
  return redactedJson(value, indent);
}

/** The last line of a failed deployment, `error[E_HEALTH] ...`, redacted. */
export function formatResultError(error: { code: string; message: string }): string {
  return redact(`error[${error.code}] ${error.message}`);
}
