/**
 * `--scheduled` times, time zones and deploy windows, with a fixed "now" (no real clock): every form of
 * time, the bad ones (E_USAGE, exit 2, the expected forms in the hint), windows across the 2026 spring
 * daylight-saving change in Paris, windows past midnight, freezes, and the YAML keys' errors.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCodeFor } from '../../../core/cli.js';
import { parseConfig } from '../../../core/config/load.js';
import { FraisierError } from '../../../core/errors.js';
import { formatInZone, parseScheduled, zonedTime } from '../../../core/schedule.js';
import { assertWindow, checkWindow, nextAllowed, type DeployWindowPolicy } from '../../../core/windows.js';

const at = (iso: string) => Date.parse(iso);
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString().replace('.000Z', 'Z'));

function usageError(fn: () => unknown): FraisierError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_USAGE', (err as Error).message);
    assert.is(exitCodeFor(err), 2);
    return err as FraisierError;
  }
  assert.unreachable('expected an E_USAGE error');
  throw new Error('unreachable');
}

// Sunday 29 November 2026, 17:22 UTC
const NOW = at('2026-11-29T17:22:00Z');

test('relative offsets: +2s, +30m, +1h30m, +1d', () => {
  assert.is(parseScheduled('+2s', NOW), NOW + 2000);
  assert.is(parseScheduled('+30m', NOW), NOW + 30 * 60_000);
  assert.is(parseScheduled('+1h30m', NOW), NOW + 90 * 60_000);
  assert.is(parseScheduled(' +1d ', NOW), NOW + 86_400_000);
});

test('"HH:MM zone": the next time the clock reads it, in that zone', () => {
  assert.is(iso(parseScheduled('02:00 UTC', NOW)), '2026-11-30T02:00:00Z', 'tomorrow: 02:00 has passed today');
  assert.is(iso(parseScheduled('18:00 UTC', NOW)), '2026-11-29T18:00:00Z', 'later today');
  assert.is(iso(parseScheduled('02:00 Europe/Paris', NOW)), '2026-11-30T01:00:00Z', 'Paris is UTC+1 in winter');
  assert.is(iso(parseScheduled('02:00 America/New_York', NOW)), '2026-11-30T07:00:00Z');
  // on the evening before the spring change, 09:00 Paris tomorrow is already summer time
  assert.is(iso(parseScheduled('09:00 Europe/Paris', at('2026-03-28T20:00:00Z'))), '2026-03-29T07:00:00Z');
});

test('ISO times: with Z, with an offset, or a date and time followed by a zone name', () => {
  assert.is(iso(parseScheduled('2026-12-01T02:00:00Z', NOW)), '2026-12-01T02:00:00Z');
  assert.is(iso(parseScheduled('2026-12-01T03:00+01:00', NOW)), '2026-12-01T02:00:00Z');
  assert.is(iso(parseScheduled('2026-12-01 03:00 Europe/Paris', NOW)), '2026-12-01T02:00:00Z');
  assert.is(iso(parseScheduled('2027-07-01 03:00 Europe/Paris', NOW)), '2027-07-01T01:00:00Z', 'summer: UTC+2');
});

test('cron expressions: the next matching minute, in UTC or the zone given', () => {
  // Sunday evening → Monday 02:00
  assert.is(iso(parseScheduled('0 2 * * mon-fri', NOW)), '2026-11-30T02:00:00Z');
  assert.is(iso(parseScheduled('*/15 * * * *', NOW)), '2026-11-29T17:30:00Z');
  assert.is(iso(parseScheduled('30 9 1 * * Europe/Paris', NOW)), '2026-12-01T08:30:00Z');
  // Saturday only, from a Sunday: six days later
  assert.is(iso(parseScheduled('0 4 * * sat', NOW)), '2026-12-05T04:00:00Z');
});

test('malformed times: E_USAGE (exit 2) saying what is wrong and which forms are expected', () => {
  for (const [input, says] of [
    ['tomorrow', 'not a time Fraisier understands'],
    ['', 'empty'],
    ['25:00 UTC', 'is not a time of day'],
    ['02:00 Mars/Olympus', 'unknown time zone "Mars/Olympus"'],
    ['2026-13-01T00:00Z', 'is not a date'],
    ['2026-02-30T00:00Z', 'is not a date'],
    ['2026-12-01T02:00', 'needs its offset or zone'],
    ['+0m', 'more than zero'],
    ['61 * * * *', '"61" is not in 0-59'],
    ['0 2 * * funday', 'is not in 0-6'],
    ['0 2 31 2 *', 'never matches'],
  ] as const) {
    const err = usageError(() => parseScheduled(input, NOW));
    assert.match(err.message, `--scheduled ${JSON.stringify(input)}`);
    assert.match(err.message, says, `${input}: ${err.message}`);
    assert.match(err.hint ?? '', '+30m');
    assert.match(err.hint ?? '', '02:00 UTC');
  }
});

test('a time in the past is refused (E_USAGE, exit 2), naming the time and now', () => {
  const err = usageError(() => parseScheduled('2026-11-29T17:00:00Z', NOW));
  assert.match(err.message, '2026-11-29 17:00 UTC is in the past (now: 2026-11-29 17:22 UTC)');
  usageError(() => parseScheduled('2020-01-01 00:00 Europe/Paris', NOW));
});

test('DST: wall-clock times around the Paris changes of 2026 (29 March, 25 October)', () => {
  assert.is(iso(zonedTime(2026, 3, 28, 9, 0, 'Europe/Paris')), '2026-03-28T08:00:00Z');
  assert.is(iso(zonedTime(2026, 3, 29, 9, 0, 'Europe/Paris')), '2026-03-29T07:00:00Z');
  // 02:30 does not exist on 29 March: the instant the clock jumps over it (03:30 summer time)
  assert.is(iso(zonedTime(2026, 3, 29, 2, 30, 'Europe/Paris')), '2026-03-29T01:30:00Z');
  // 02:30 happens twice on 25 October: the first one (still summer time)
  assert.is(iso(zonedTime(2026, 10, 25, 2, 30, 'Europe/Paris')), '2026-10-25T00:30:00Z');
  assert.is(iso(zonedTime(2026, 10, 25, 9, 0, 'Europe/Paris')), '2026-10-25T08:00:00Z');
  assert.is(formatInZone(at('2026-03-29T07:00:00Z'), 'Europe/Paris'), '2026-03-29 09:00 Europe/Paris');
});

const OFFICE: DeployWindowPolicy = { windows: [{ days: [1, 2, 3, 4, 5], start: 9 * 60, end: 17 * 60, timezone: 'Europe/Paris' }], freeze: [] };

test('a mon-fri 09:00-17:00 Paris window across the spring change: local hours hold, the next opening is summer time', () => {
  // Monday 23 March (winter, UTC+1): 09:30 local is 08:30Z
  assert.ok(checkWindow(OFFICE, at('2026-03-23T08:30:00Z')).allowed);
  assert.not.ok(checkWindow(OFFICE, at('2026-03-23T07:30:00Z')).allowed, '08:30 local');
  // Friday 27 March: 16:59 local is in, 17:00 is out
  assert.ok(checkWindow(OFFICE, at('2026-03-27T15:59:00Z')).allowed);
  const friday = checkWindow(OFFICE, at('2026-03-27T16:00:00Z'));
  assert.equal(friday.allowed, false);
  // the weekend crosses the change: Monday 09:00 local is now 07:00Z, not 08:00Z
  assert.is(iso(friday.allowed ? null : friday.next), '2026-03-30T07:00:00Z');
  assert.is(iso(nextAllowed(OFFICE, at('2026-03-29T01:30:00Z'))), '2026-03-30T07:00:00Z');
  // Monday 30 March (summer, UTC+2): 09:30 local is 07:30Z
  assert.ok(checkWindow(OFFICE, at('2026-03-30T07:30:00Z')).allowed);
  assert.not.ok(checkWindow(OFFICE, at('2026-03-30T15:30:00Z')).allowed, '17:30 local');
});

test('a window past midnight (fri 22:00-06:00) belongs to the day it opens', () => {
  const night: DeployWindowPolicy = { windows: [{ days: [5], start: 22 * 60, end: 6 * 60, timezone: 'UTC' }], freeze: [] };
  assert.ok(checkWindow(night, at('2026-11-27T23:00:00Z')).allowed, 'Friday 23:00');
  assert.ok(checkWindow(night, at('2026-11-28T05:59:00Z')).allowed, 'Saturday 05:59');
  assert.not.ok(checkWindow(night, at('2026-11-27T05:00:00Z')).allowed, 'Friday 05:00 belongs to Thursday');
  assert.is(iso(nextAllowed(night, at('2026-11-28T06:00:00Z'))), '2026-12-04T22:00:00Z');
});

test('a freeze refuses inside it, with its reason, and the next allowed time is its end or the next window after it', () => {
  const freeze = { from: at('2026-12-20T00:00:00Z'), to: at('2027-01-03T00:00:00Z'), reason: 'end of year' };
  const onlyFreeze: DeployWindowPolicy = { windows: [], freeze: [freeze] };
  const v = checkWindow(onlyFreeze, at('2026-12-25T12:00:00Z'));
  assert.equal(v.allowed, false);
  if (!v.allowed) {
    assert.match(v.reason, 'inside a freeze (end of year)');
    assert.is(iso(v.next), '2027-01-03T00:00:00Z');
  }
  assert.ok(checkWindow(onlyFreeze, at('2027-01-03T00:00:00Z')).allowed, 'the end is exclusive');
  // with office hours: 3 January 2027 is a Sunday, so Monday 4 January 09:00 Paris (08:00Z)
  assert.is(iso(nextAllowed({ ...OFFICE, freeze: [freeze] }, at('2026-12-25T12:00:00Z'))), '2027-01-04T08:00:00Z');
  try {
    assertWindow({ ...OFFICE, freeze: [freeze] }, at('2026-12-25T12:00:00Z'), 'deploy of api to production');
    assert.unreachable('refused');
  } catch (err) {
    assert.instance(err, FraisierError);
    assert.is((err as FraisierError).code, 'E_WINDOW');
    assert.is(exitCodeFor(err), 2);
    assert.is(
      (err as Error).message,
      'deploy of api to production refused: inside a freeze (end of year) until 2027-01-03 01:00 Europe/Paris; next allowed time: 2027-01-04 09:00 Europe/Paris',
    );
    assert.match((err as FraisierError).hint ?? '', 'mon,tue,wed,thu,fri 09:00-17:00 Europe/Paris');
    assert.match((err as FraisierError).hint ?? '', '--force');
  }
  assert.not.throws(() => assertWindow(OFFICE, at('2026-11-30T10:00:00Z'), 'deploy'));
  assert.not.throws(() => assertWindow(undefined, NOW, 'deploy'));
});

const FILE = 'conf/fraises.yaml';
function config(extra: string) {
  return `fraises:
  api:
    environments:
      production:
        instances: [h1]
        app_path: /srv/api
        git_repo: https://example.com/api.git
        systemd_service: api.service
${extra
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => `        ${l}`)
  .join('\n')}
`;
}

test('deploy_windows and freeze in YAML: normalized (zones, day ranges, inclusive freeze end)', () => {
  const c = parseConfig(
    config(`deploy_windows:
  - { days: [mon-fri], start: "09:00", end: "17:00", timezone: Europe/Paris }
  - { days: [sat, sun], start: "10:00", end: "12:00" }
freeze:
  - { from: 2026-12-20, to: 2027-01-02, reason: end of year }`),
    FILE,
    {},
  );
  const w = c.fraises['api']!.environments['production']!.deployWindows!;
  assert.equal(w.windows, [
    { days: [1, 2, 3, 4, 5], start: 540, end: 1020, timezone: 'Europe/Paris' },
    { days: [6, 0], start: 600, end: 720, timezone: 'UTC' },
  ]);
  assert.equal(w.freeze, [{ from: at('2026-12-20T00:00:00Z'), to: at('2027-01-03T00:00:00Z'), reason: 'end of year' }]);
  assert.is(c.fraises['api']!.environments['production']!.deployWindows === undefined, false);
  assert.is(parseConfig(config(''), FILE, {}).fraises['api']!.environments['production']!.deployWindows, undefined);
});

test('bad deploy_windows and freeze: E_CONFIG naming the file, the key, the line and what is expected', () => {
  const cases: [string, string][] = [
    [
      'deploy_windows:\n  - { days: [mon-fry], start: "09:00", end: "17:00" }',
      `${FILE}: fraises.api.environments.production.deploy_windows[0].days: expected day names (mon, tue, ... sun) or ranges such as mon-fri, got "mon-fry" (line 10)`,
    ],
    [
      'deploy_windows:\n  - { start: "9h", end: "17:00" }',
      `${FILE}: fraises.api.environments.production.deploy_windows[0].start: expected a time of day "HH:MM" (00:00 to 23:59), got "9h" (line 10)`,
    ],
    [
      'deploy_windows:\n  - { start: "09:00", end: "17:00", timezone: Europe/Pariss }',
      `${FILE}: fraises.api.environments.production.deploy_windows[0].timezone: unknown time zone "Europe/Pariss"; expected an IANA name such as Europe/Paris, or UTC (line 10)`,
    ],
    [
      'freeze:\n  - { from: 2027-01-02, to: 2026-12-20 }',
      `${FILE}: fraises.api.environments.production.freeze[0].to: the freeze ends (2026-12-20) before it starts (2027-01-02) (line 10)`,
    ],
    [
      'freeze:\n  - { from: next week, to: 2026-12-20 }',
      `${FILE}: fraises.api.environments.production.freeze[0].from: expected a date (2026-12-20), a date and time (2026-12-20 18:00, in timezone) or an ISO time with its offset (2026-12-20T18:00:00Z), got "next week" (line 10)`,
    ],
  ];
  for (const [yaml, message] of cases) {
    try {
      parseConfig(config(yaml), FILE, {});
      assert.unreachable(yaml);
    } catch (err) {
      assert.instance(err, FraisierError, String(err));
      assert.is((err as FraisierError).code, 'E_CONFIG');
      assert.is((err as Error).message, message);
    }
  }
  // an unknown key inside a window is a schema error too
  try {
    parseConfig(config('deploy_windows:\n  - { start: "09:00", end: "17:00", tz: UTC }'), FILE, {});
    assert.unreachable('tz');
  } catch (err) {
    assert.match((err as Error).message, 'deploy_windows[0].tz: unknown key "tz"; expected one of: days, start, end, timezone');
  }
});

test.run();
