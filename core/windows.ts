/**
 * Deploy windows and freeze periods: when an environment may be deployed to. `deploy_windows` lists the
 * allowed times (days of the week, a start and an end, a time zone); `freeze` lists periods when nothing
 * is deployed (`from`, `to`, `reason`). A deploy outside every window, or inside a freeze, is refused with
 * the next allowed time, unless `--force`; the worker keeps a due item queued until then. Wall clocks go
 * through `Intl` (core/schedule.ts), so a window stays 09:00-17:00 local across a daylight-saving change.
 */
import { FraisierError } from './errors.js';
import { formatInZone, nextDay, wallTime, weekdayOf, zonedTime } from './schedule.js';

/** The days of the week, as written in `days:` (Sunday is 0). */
export const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** One allowed time range, repeated on some days of the week. */
export interface DeployWindow {
  /** Days the window opens (the day of its start, for a window past midnight): 0 = Sunday ... 6 = Saturday. Default: every day. */
  days: number[];
  /** Local time the window opens, minutes after midnight (`"09:00"` → 540). */
  start: number;
  /**
   * Local time the window closes, minutes after midnight, exclusive. Earlier than (or equal to) `start`:
   * the window runs past midnight into the next day (`22:00`-`06:00`).
   */
  end: number;
  /** IANA time zone of `start` and `end` (`Europe/Paris`). Default `UTC`. */
  timezone: string;
}

/** A period when no deployment runs. */
export interface FreezePeriod {
  /** Start, epoch ms (inclusive). */
  from: number;
  /** End, epoch ms (exclusive): deploys are allowed again from this instant. */
  to: number;
  /** Why, shown to whoever is refused (`"end-of-year freeze"`). */
  reason?: string;
}

/** When an environment may be deployed to. Both lists empty (or absent): always. */
export interface DeployWindowPolicy {
  /** Allowed times; empty: every time is allowed (only the freezes apply). */
  windows: DeployWindow[];
  /** Periods when deploying is refused, windows or not. */
  freeze: FreezePeriod[];
}

/** Whether a deploy may start at an instant, and if not, why and when it may. */
export type WindowVerdict =
  | { allowed: true }
  | {
      allowed: false;
      /** `outside every deploy window` or `inside a freeze (reason)`. */
      reason: string;
      /** The first instant from which a deploy is allowed, or null if never (within two years). */
      next: number | null;
      /** The time zone to show `next` in: the first window's, else UTC. */
      timezone: string;
    };

const DAY_MS = 86_400_000;

/** `"09:00"` → 540; null when it is not `HH:MM` (00:00 to 24:00). */
export function parseClock(text: string): number | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && min !== 0)) return null;
  return h * 60 + min;
}

/**
 * `["mon-fri", "sun"]` → [1, 2, 3, 4, 5, 0]; null with the bad entry when one is not a day name or a
 * range of two (`fri-mon` wraps over the weekend).
 */
export function parseDays(days: readonly string[]): number[] | { bad: string } {
  const out = new Set<number>();
  const day = (s: string) => DAY_NAMES.indexOf(s.trim().toLowerCase().slice(0, 3) as (typeof DAY_NAMES)[number]);
  for (const entry of days) {
    const parts = entry.split('-');
    if (parts.length > 2 || parts.some((p) => !/^[a-z]{3,9}$/i.test(p.trim()) || day(p) < 0)) return { bad: entry };
    const a = day(parts[0]!);
    const b = parts.length === 2 ? day(parts[1]!) : a;
    for (let d = a; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === b) break;
    }
  }
  return [...out];
}

function minutesOf(t: number, timezone: string): { minutes: number; weekday: number } {
  const w = wallTime(t, timezone);
  return { minutes: w.hour * 60 + w.minute, weekday: w.weekday };
}

/** True when instant `t` falls inside window `w`. */
export function inWindow(w: DeployWindow, t: number): boolean {
  const { minutes, weekday } = minutesOf(t, w.timezone);
  const days = w.days.length > 0 ? w.days : [0, 1, 2, 3, 4, 5, 6];
  if (w.end > w.start) return days.includes(weekday) && minutes >= w.start && minutes < w.end;
  // past midnight: the evening part belongs to today's window, the morning part to yesterday's
  if (minutes >= w.start) return days.includes(weekday);
  return minutes < w.end && days.includes((weekday + 6) % 7);
}

/** The freeze containing `t`, if any. */
export function freezeAt(policy: DeployWindowPolicy, t: number): FreezePeriod | undefined {
  return policy.freeze.find((f) => t >= f.from && t < f.to);
}

/** True when a deploy may start at `t`: inside a window (or there are none) and inside no freeze. */
export function allowedAt(policy: DeployWindowPolicy, t: number): boolean {
  if (freezeAt(policy, t)) return false;
  return policy.windows.length === 0 || policy.windows.some((w) => inWindow(w, t));
}

/** The instants each window opens from the local day before `from` up to `until`. */
function windowStarts(w: DeployWindow, from: number, until: number): number[] {
  const out: number[] = [];
  const first = wallTime(from - DAY_MS, w.timezone);
  let [y, m, d] = [first.year, first.month, first.day];
  const days = w.days.length > 0 ? w.days : [0, 1, 2, 3, 4, 5, 6];
  for (let i = 0; i < 800; i++, [y, m, d] = nextDay(y, m, d)) {
    if (!days.includes(weekdayOf(y, m, d))) continue;
    const t = w.start === 24 * 60 ? zonedTime(...nextDay(y, m, d), 0, 0, w.timezone) : zonedTime(y, m, d, Math.floor(w.start / 60), w.start % 60, w.timezone);
    if (t > until) break;
    out.push(t);
  }
  return out;
}

/**
 * The first instant at or after `now` when a deploy is allowed, or null if none within two years. The
 * allowed times are the windows minus the freezes, so that instant is `now`, a window's opening or a
 * freeze's end: those are the only candidates checked.
 */
export function nextAllowed(policy: DeployWindowPolicy, now: number): number | null {
  if (allowedAt(policy, now)) return now;
  const lastFreeze = Math.max(now, ...policy.freeze.map((f) => f.to));
  const until = Math.min(lastFreeze + 8 * DAY_MS, now + 730 * DAY_MS);
  const candidates = new Set<number>(policy.freeze.map((f) => f.to).filter((t) => t > now));
  for (const w of policy.windows) for (const t of windowStarts(w, now, until)) if (t > now) candidates.add(t);
  for (const t of [...candidates].sort((a, b) => a - b)) if (allowedAt(policy, t)) return t;
  return null;
}

/** Whether a deploy may start at `now` under `policy` (undefined: always). */
export function checkWindow(policy: DeployWindowPolicy | undefined, now: number): WindowVerdict {
  if (!policy || (policy.windows.length === 0 && policy.freeze.length === 0) || allowedAt(policy, now)) return { allowed: true };
  const freeze = freezeAt(policy, now);
  const timezone = policy.windows[0]?.timezone ?? 'UTC';
  return {
    allowed: false,
    reason: freeze ? `inside a freeze${freeze.reason ? ` (${freeze.reason})` : ''} until ${formatInZone(freeze.to, timezone)}` : 'outside every deploy window',
    next: nextAllowed(policy, now),
    timezone,
  };
}

/** A window as written: `mon-fri 09:00-17:00 Europe/Paris`. */
export function describeWindow(w: DeployWindow): string {
  const p = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  const days = w.days.length === 0 || w.days.length === 7 ? 'every day' : w.days.map((d) => DAY_NAMES[d]).join(',');
  return `${days} ${p(w.start)}-${p(w.end)} ${w.timezone}`;
}

/**
 * Refuses a deploy at `now` outside the windows or inside a freeze: `E_WINDOW` (exit 2) naming why, the
 * next allowed time and `--force`. Does nothing when the deploy is allowed.
 */
export function assertWindow(policy: DeployWindowPolicy | undefined, now: number, what: string): void {
  const v = checkWindow(policy, now);
  if (v.allowed) return;
  const next = v.next === null ? 'no allowed time within two years' : `next allowed time: ${formatInZone(v.next, v.timezone)}`;
  throw new FraisierError('E_WINDOW', `${what} refused: ${v.reason}; ${next}`, {
    key: freezeAt(policy!, now) ? 'freeze' : 'deploy_windows',
    hint: `windows: ${policy!.windows.map(describeWindow).join('; ') || 'none (freeze only)'}; schedule it for then (--scheduled), or pass --force to deploy now anyway`,
  });
}

/** `deploy_windows:` entries as written in fraises.yaml. */
export interface DeployWindowYaml {
  days?: string[];
  start: string;
  end: string;
  timezone?: string;
}

/** `freeze:` entries as written in fraises.yaml. */
export interface FreezeYaml {
  from: string;
  to: string;
  reason?: string;
  timezone?: string;
}

/**
 * Parses a freeze bound: an ISO time with its offset (`2026-12-20T00:00:00Z`), a date and time in
 * `timezone` (`2026-12-20 18:00`), or a date alone (`2026-12-20`: the start of that day; for `to`, the
 * end of it, so `to: 2027-01-02` still freezes all of January 2). NaN when it is none of these.
 */
export function parseFreezeBound(text: string, timezone: string, end: boolean): number {
  const s = String(text).trim();
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d || mo < 1 || mo > 12) return NaN;
    return end ? zonedTime(...nextDay(y, mo, d), 0, 0, timezone) : zonedTime(y, mo, d, 0, 0, timezone);
  }
  m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?$/.exec(s);
  if (!m) return NaN;
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m![i] ?? 0)) as [number, number, number, number, number, number];
  if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d || mo < 1 || mo > 12 || h > 23 || mi > 59) return NaN;
  if (m[7] === undefined) return zonedTime(y, mo, d, h, mi, timezone) + sec * 1000;
  return Date.parse(s.replace(' ', 'T'));
}

/** Where a problem in the YAML is: the key path under the environment, and what is wrong. */
export type WindowYamlError = (path: (string | number)[], problem: string) => Error;

/**
 * Checks and normalizes `deploy_windows:` and `freeze:` of an environment. Every problem is reported
 * through `error` with the key path under the environment (`['deploy_windows', 0, 'timezone']`).
 * `isZone` tells whether a time zone name is known (core/schedule.ts `isTimeZone`).
 */
export function windowPolicyFromYaml(
  windows: DeployWindowYaml[] | undefined,
  freeze: FreezeYaml[] | undefined,
  isZone: (z: string) => boolean,
  error: WindowYamlError,
): DeployWindowPolicy | undefined {
  if (windows === undefined && freeze === undefined) return undefined;
  const zone = (path: (string | number)[], z: string | undefined): string => {
    if (z === undefined) return 'UTC';
    if (!isZone(z)) throw error(path, `unknown time zone ${JSON.stringify(z)}; expected an IANA name such as Europe/Paris, or UTC`);
    return z;
  };
  const policy: DeployWindowPolicy = { windows: [], freeze: [] };
  for (const [i, w] of (windows ?? []).entries()) {
    const days = w.days === undefined ? [] : parseDays(w.days);
    if (!Array.isArray(days)) {
      throw error(['deploy_windows', i, 'days'], `expected day names (mon, tue, ... sun) or ranges such as mon-fri, got ${JSON.stringify(days.bad)}`);
    }
    const start = parseClock(w.start);
    if (start === null || start === 24 * 60)
      throw error(['deploy_windows', i, 'start'], `expected a time of day "HH:MM" (00:00 to 23:59), got ${JSON.stringify(w.start)}`);
    const end = parseClock(w.end);
    if (end === null) throw error(['deploy_windows', i, 'end'], `expected a time of day "HH:MM" (00:00 to 24:00), got ${JSON.stringify(w.end)}`);
    if (end === start) throw error(['deploy_windows', i, 'end'], `the window opens and closes at ${w.end}: give an end after the start (or past midnight)`);
    policy.windows.push({ days, start, end, timezone: zone(['deploy_windows', i, 'timezone'], w.timezone) });
  }
  for (const [i, f] of (freeze ?? []).entries()) {
    const tz = zone(['freeze', i, 'timezone'], f.timezone);
    const from = parseFreezeBound(f.from, tz, false);
    const expected = 'expected a date (2026-12-20), a date and time (2026-12-20 18:00, in timezone) or an ISO time with its offset (2026-12-20T18:00:00Z)';
    if (Number.isNaN(from)) throw error(['freeze', i, 'from'], `${expected}, got ${JSON.stringify(f.from)}`);
    const to = parseFreezeBound(f.to, tz, true);
    if (Number.isNaN(to)) throw error(['freeze', i, 'to'], `${expected}, got ${JSON.stringify(f.to)}`);
    if (to <= from) throw error(['freeze', i, 'to'], `the freeze ends (${f.to}) before it starts (${f.from})`);
    policy.freeze.push({ from, to, ...(f.reason !== undefined ? { reason: f.reason } : {}) });
  }
  return policy;
}
