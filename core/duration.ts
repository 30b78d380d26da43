import { FraisierError } from './errors.js';

/** A duration as milliseconds (number) or a string with a unit: `'500ms'`, `'5s'`, `'2m'`, `'1h'`. */
export type Duration = number | `${number}ms` | `${number}s` | `${number}m` | `${number}h`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a {@link Duration} into milliseconds. A bare number in a YAML file means seconds (see config). */
export function toMs(d: Duration | string, key = 'duration'): number {
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new FraisierError('E_CONFIG', `${key}: expected a non-negative duration, got ${d}`, { key });
    return d;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(d);
  if (!m) throw new FraisierError('E_CONFIG', `${key}: expected a duration such as 500ms, 5s or 2m, got ${JSON.stringify(d)}`, { key });
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
