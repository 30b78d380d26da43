/**
 * When a scheduled deployment is due: the forms `fraisier deploy --scheduled` accepts, and the time-zone
 * arithmetic behind them and behind deploy windows (core/windows.ts). Every conversion between a wall
 * clock in a time zone and an instant goes through `Intl.DateTimeFormat` (the IANA database Node ships),
 * never a hand-written offset, so daylight-saving changes are right.
 */
import { FraisierError } from './errors.js';

/** A wall-clock time in some time zone. `month` 1-12, `weekday` 0 (Sunday) to 6. */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** True when `timeZone` is an IANA zone name (or `UTC`) that `Intl` knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The time zone of this machine, as `Intl` resolves it (`TZ`, else the system's). */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** The wall clock in `timeZone` at the instant `t` (epoch ms). */
export function wallTime(t: number, timeZone: string): WallTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(t))) parts[p.type] = p.value;
  return {
    year: Number(parts['year']),
    month: Number(parts['month']),
    day: Number(parts['day']),
    hour: Number(parts['hour']) % 24,
    minute: Number(parts['minute']),
    second: Number(parts['second']),
    weekday: WEEKDAYS.indexOf((parts['weekday'] ?? '').toLowerCase().slice(0, 3)),
  };
}

/** The zone's offset from UTC at instant `t`, in ms (Paris in winter: +3 600 000). */
function offsetAt(t: number, timeZone: string): number {
  const w = wallTime(t, timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(t / 1000) * 1000;
}

/**
 * The instant at which the wall clock in `timeZone` reads the given local time. A local time skipped by
 * a daylight-saving change (02:30 on the spring-forward night in Paris) gives the instant the clock
 * jumps over it (03:30 local, the same elapsed time after 02:00); a local time that happens twice (the
 * autumn night) gives the first of the two.
 */
export function zonedTime(year: number, month: number, day: number, hour: number, minute: number, timeZone: string): number {
  const asUtc = Date.UTC(year, month - 1, day, hour, minute);
  // Two offsets around the guess: the one before the change and the one after; try the earlier first.
  const candidates = [...new Set([offsetAt(asUtc - 86_400_000, timeZone), offsetAt(asUtc, timeZone), offsetAt(asUtc + 86_400_000, timeZone)])].sort(
    (a, b) => b - a,
  );
  for (const off of candidates) {
    const t = asUtc - off;
    const w = wallTime(t, timeZone);
    if (w.year === year && w.month === month && w.day === day && w.hour === hour && w.minute === minute) return t;
  }
  // In a gap: the wall time does not exist; keep the elapsed time after the change.
  return asUtc - offsetAt(asUtc - 86_400_000, timeZone);
}

/** `t` shown in `timeZone` as `2026-11-30 02:00 UTC` (`2026-03-29 03:00 Europe/Paris`). */
export function formatInZone(t: number, timeZone = 'UTC'): string {
  const w = wallTime(t, timeZone);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${w.year}-${p(w.month)}-${p(w.day)} ${p(w.hour)}:${p(w.minute)}${w.second ? `:${p(w.second)}` : ''} ${timeZone}`;
}

/** The calendar day after `y-m-d` (no time zone involved). */
export function nextDay(y: number, m: number, d: number): [number, number, number] {
  const t = new Date(Date.UTC(y, m - 1, d + 1));
  return [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()];
}

/** The weekday (0 = Sunday) of a calendar day. */
export function weekdayOf(y: number, m: number, d: number): number {
  return new Date(Date.UTC(y, m - 1, d)).getUTCDay();
}

export const SCHEDULE_FORMS =
  '"+30m" (also +45s, +2h, +1d, +1h30m), "02:00 UTC" or "02:00 Europe/Paris" (the next such time; no zone: this machine\'s), an ISO time with its offset ("2026-12-01T02:00:00Z", "2026-12-01T03:00+01:00", "2026-12-01 02:00 Europe/Paris"), or a cron expression "0 2 * * mon-fri [zone]"';

function badTime(input: string, problem: string): FraisierError {
  return new FraisierError('E_USAGE', `--scheduled ${JSON.stringify(input)}: ${problem}`, { key: 'scheduled', hint: `expected ${SCHEDULE_FORMS}` });
}

const REL_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A zone name at the end of a time (`UTC`, `Europe/Paris`, `Z`), checked. */
function zoneOf(input: string, zone: string | undefined): string {
  if (zone === undefined) return localTimeZone();
  const z = zone === 'Z' || zone.toUpperCase() === 'UTC' || zone.toUpperCase() === 'GMT' ? 'UTC' : zone;
  if (!isTimeZone(z)) throw badTime(input, `unknown time zone ${JSON.stringify(zone)} (an IANA name such as Europe/Paris, or UTC)`);
  return z;
}

function hm(input: string, h: string, m: string): [number, number] {
  const hour = Number(h);
  const minute = Number(m);
  if (hour > 23 || minute > 59) throw badTime(input, `${h}:${m} is not a time of day (00:00 to 23:59)`);
  return [hour, minute];
}

/**
 * When a `--scheduled` deployment is due, in epoch ms, from `now`:
 * - `+30m`, `+45s`, `+2h`, `+1d`, `+1h30m`: that long after now;
 * - `02:00 UTC`, `02:00 Europe/Paris`, `14:30` (this machine's zone): the next time the clock reads it;
 * - an ISO time with an offset or `Z` (`2026-12-01T02:00:00Z`), or a date and time followed by a zone
 *   (`2026-12-01 02:00 Europe/Paris`);
 * - a cron expression of five fields (minute hour day-of-month month day-of-week, `*`, lists, ranges,
 *   steps, day names), optionally followed by a zone: the next minute it matches.
 *
 * @throws FraisierError `E_USAGE` (exit 2) for anything else, for an unknown zone, and for a time that is
 *   not after `now`, saying what is expected.
 */
export function parseScheduled(input: string, now: number): number {
  const s = input.trim();
  if (s === '') throw badTime(input, 'empty');
  let due: number;
  const rel = /^\+((?:\d+(?:\.\d+)?\s*[smhd]\s*)+)$/i.exec(s);
  const clock = /^(\d{1,2}):(\d{2})(?:\s+(\S+))?$/.exec(s);
  const iso = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2}|\s[A-Za-z][\w/+-]*)?$/.exec(s);
  if (rel) {
    const m = rel;
    let ms = 0;
    for (const part of m[1]!.matchAll(/(\d+(?:\.\d+)?)\s*([smhd])/gi)) ms += Number(part[1]) * REL_UNITS[part[2]!.toLowerCase()]!;
    if (ms <= 0) throw badTime(input, 'an offset must be more than zero');
    due = now + Math.round(ms);
  } else if (clock) {
    const m = clock;
    const zone = zoneOf(input, m[3]);
    const [hour, minute] = hm(input, m[1]!, m[2]!);
    const today = wallTime(now, zone);
    let [y, mo, d] = [today.year, today.month, today.day];
    due = zonedTime(y, mo, d, hour, minute, zone);
    if (due <= now) {
      [y, mo, d] = nextDay(y, mo, d);
      due = zonedTime(y, mo, d, hour, minute, zone);
    }
  } else if (iso) {
    const [, y, mo, d, h, mi, sec, zone] = iso;
    if (zone === undefined) throw badTime(input, 'an ISO time needs its offset or zone (Z, +01:00, or a zone name such as UTC or Europe/Paris)');
    const [hour, minute] = hm(input, h!, mi!);
    const month = Number(mo);
    const day = Number(d);
    if (month < 1 || month > 12 || day < 1 || day > 31 || new Date(Date.UTC(Number(y), month - 1, day)).getUTCDate() !== day) {
      throw badTime(input, `${y}-${mo}-${d} is not a date`);
    }
    if (/^[+-]/.test(zone)) {
      const off = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
      const offMs = (Number(off[2]) * 60 + Number(off[3])) * 60_000 * (off[1] === '-' ? -1 : 1);
      due = Date.UTC(Number(y), month - 1, day, hour, minute, Number(sec ?? 0)) - offMs;
    } else {
      due = zonedTime(Number(y), month, day, hour, minute, zoneOf(input, zone.trim())) + Number(sec ?? 0) * 1000;
    }
  } else if (/^\S+\s+\S+\s+\S+\s+\S+\s+\S+(\s+\S+)?$/.test(s)) {
    const fields = s.split(/\s+/);
    const zone = zoneOf(input, fields[5]);
    due = nextCron(parseCron(input, fields.slice(0, 5)), now, zone, input);
  } else {
    throw badTime(input, 'not a time Fraisier understands');
  }
  if (!Number.isFinite(due)) throw badTime(input, 'not a time Fraisier understands');
  if (due <= now) throw badTime(input, `${formatInZone(due)} is in the past (now: ${formatInZone(now)}); give a time to come`);
  return due;
}

/** A parsed cron expression: the allowed values of each field. */
export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Day-of-month and day-of-week both restricted: cron matches either (Vixie cron's rule). */
  dayOr: boolean;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

function cronField(input: string, text: string, min: number, max: number, names: string[] = [], nameBase = 0): Set<number> {
  const out = new Set<number>();
  const value = (v: string): number => {
    const byName = names.indexOf(v.toLowerCase().slice(0, 3));
    const n = byName >= 0 && /^[a-z]+$/i.test(v) ? byName + nameBase : /^\d+$/.test(v) ? Number(v) : NaN;
    const n7 = max === 6 && n === 7 ? 0 : n; // day of week 7 is Sunday too
    if (!Number.isInteger(n7) || n7 < min || n7 > max) throw badTime(input, `cron field ${JSON.stringify(text)}: ${JSON.stringify(v)} is not in ${min}-${max}`);
    return n7;
  };
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw badTime(input, `cron field ${JSON.stringify(text)}: bad step ${JSON.stringify(stepText)}`);
    let lo: number;
    let hi: number;
    if (range === '*') [lo, hi] = [min, max];
    else if (range!.includes('-')) {
      const [a, b] = range!.split('-');
      lo = value(a!);
      hi = value(b!);
      if (max === 6 && b === '7') hi = 7;
    } else {
      lo = value(range!);
      hi = stepText === undefined ? lo : max;
    }
    if (hi < lo) throw badTime(input, `cron field ${JSON.stringify(text)}: range ${range} goes backwards`);
    for (let v = lo; v <= hi; v += step) out.add(max === 6 && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses the five fields of a cron expression. @throws FraisierError `E_USAGE` naming the bad field. */
export function parseCron(input: string, fields: string[]): Cron {
  const [mi, h, dom, mon, dow] = fields as [string, string, string, string, string];
  return {
    minutes: cronField(input, mi, 0, 59),
    hours: cronField(input, h, 0, 23),
    days: cronField(input, dom, 1, 31),
    months: cronField(input, mon, 1, 12, MONTHS, 1),
    weekdays: cronField(input, dow, 0, 6, WEEKDAYS),
    dayOr: dom !== '*' && dow !== '*',
  };
}

/** The first minute after `now` that `cron` matches in `timeZone` (searching up to four years ahead). */
export function nextCron(cron: Cron, now: number, timeZone: string, input = ''): number {
  const start = wallTime(now, timeZone);
  let [y, m, d] = [start.year, start.month, start.day];
  const hours = [...cron.hours].sort((a, b) => a - b);
  const minutes = [...cron.minutes].sort((a, b) => a - b);
  for (let i = 0; i < 366 * 4 + 1; i++, [y, m, d] = nextDay(y, m, d)) {
    if (!cron.months.has(m)) continue;
    const domOk = cron.days.has(d);
    const dowOk = cron.weekdays.has(weekdayOf(y, m, d));
    if (cron.dayOr ? !(domOk || dowOk) : !(domOk && dowOk)) continue;
    for (const h of hours) {
      for (const mi of minutes) {
        const t = zonedTime(y, m, d, h, mi, timeZone);
        if (t > now) return t;
      }
    }
  }
  throw badTime(input, 'this cron expression never matches');
}
