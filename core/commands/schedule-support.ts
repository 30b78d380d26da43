/** Option parsing shared by `worker` and `queue` (imported lazily, inside `run`). */
import { FraisierError } from '../errors.js';

/**
 * A duration option such as `--poll`: absent → `fallback`; a number → seconds; `500ms`, `30s`, `2m`, `1h`
 * → that duration. Anything else, or less than 100 ms, is a usage error naming the option. In ms.
 */
export function durationOption(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  const s = String(v).trim();
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(s);
  const ms = m ? Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2] ?? 's']! : NaN;
  if (!Number.isFinite(ms) || ms < 100) {
    throw new FraisierError('E_USAGE', `--${name}: expected a duration of at least 100ms such as 10, 500ms, 30s or 2m, got ${JSON.stringify(String(v))}`, {
      hint: `e.g. --${name} 10s`,
    });
  }
  return Math.round(ms);
}

/** A queue item id: a whole number of at least 1. */
export function idArg(v: unknown): number {
  const s = String(v ?? '').trim();
  if (/^#?\d+$/.test(s) && Number(s.replace('#', '')) >= 1) return Number(s.replace('#', ''));
  throw new FraisierError(
    'E_USAGE',
    `queue cancel: expected the id of a queued deployment (a whole number, as \`fraisier queue\` lists), got ${JSON.stringify(String(v ?? ''))}`,
    {
      hint: 'fraisier queue lists the ids',
    },
  );
}
