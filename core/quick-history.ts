/**
 * The fast path of a cold `fraisier history`: `bin/fraisier.js` tries it before it loads the CLI. It is
 * built as one self-contained file (dist/bundle/quick-history.js, see the `bundle` script), so that
 * answering takes one module load, not the CLI's graph of chunks: the argv read here, the
 * validated-config cache (core/config/cache.ts), the SQLite read (core/state/read.ts `quickHistory`) and
 * the same formatter as the CLI (core/report.ts).
 *
 * It answers only the plain case and returns `undefined` for anything else, and the full CLI then runs
 * as before (it prints the errors, `--help`, `--id`, the store's messages): a command line other than
 * `history` with `--json`, `--limit N`, `--fraise F`, `--env E`, `-c/--config F` each at most once; a
 * config file not found or not cached (changed, never validated, plugins, secrets, PostgreSQL state); a
 * state file that does not exist yet, is not writable, or whose schema is not current.
 */
import { cachedConfig } from './config/cache.js';
import { findConfig } from './config/find.js';
import { formatHistory, toJson } from './report.js';
import { quickHistory, resolveState } from './state/read.js';
import { trace } from './trace.js';

/** The arguments of a plain `fraisier history` command line, as the full CLI reads them. */
export interface QuickHistoryArgs {
  json: boolean;
  config?: string;
  fraise?: string;
  environment?: string;
  limit: number;
}

const VALUE_OPTIONS: Record<string, 'config' | 'fraise' | 'env' | 'limit'> = {
  '--config': 'config',
  '-c': 'config',
  '--fraise': 'fraise',
  '--env': 'env',
  '--limit': 'limit',
};

/**
 * Reads `argv` as the full CLI would (core/argv.ts `plainArgs`, then the history command), or returns
 * `undefined` when it is not a plain `history` line this path answers (the full CLI then parses it).
 */
export function quickHistoryArgs(argv: readonly string[]): QuickHistoryArgs | undefined {
  const given: Partial<Record<'config' | 'fraise' | 'env' | 'limit' | 'json', string>> = {};
  let words = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') {
      if (a !== 'history' || words > 0) return undefined;
      words++;
      continue;
    }
    if (a === '--json') {
      if (given.json !== undefined) return undefined;
      given.json = '';
      continue;
    }
    const eq = a.indexOf('=');
    const name = VALUE_OPTIONS[eq > 0 ? a.slice(0, eq) : a];
    if (name === undefined || given[name] !== undefined) return undefined;
    if (eq > 0) given[name] = a.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-')) return undefined;
      given[name] = next;
      i++;
    }
  }
  if (words !== 1) return undefined;
  // core/commands/support.ts countOption: anything else is an error the full CLI reports
  let limit = 20;
  if (given.limit !== undefined) {
    const s = given.limit.trim();
    if (!/^\d+$/.test(s) || Number(s) < 1 || !Number.isSafeInteger(Number(s))) return undefined;
    limit = Number(s);
  }
  return {
    json: given.json !== undefined,
    ...(given.config !== undefined ? { config: given.config } : {}),
    // an empty `--fraise=` filters nothing, as in the history command
    ...(given.fraise ? { fraise: given.fraise } : {}),
    ...(given.env ? { environment: given.env } : {}),
    limit,
  };
}

/**
 * What `fraisier <argv>` prints on stdout (exit 0) when this path can answer it, else `undefined`.
 * Never throws: any error leaves the command to the full CLI, which reports it.
 */
export function quickHistoryCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const args = quickHistoryArgs(argv);
    if (!args) return undefined;
    const cached = cachedConfig(findConfig(args.config, env), env);
    if (!cached) return undefined;
    trace('config unchanged since it last validated (cache)');
    const state = resolveState(cached.baseDir, cached.state, env);
    if (state.kind !== 'sqlite') return undefined;
    const rows = quickHistory(state.path, {
      ...(args.fraise !== undefined ? { fraise: args.fraise } : {}),
      ...(args.environment !== undefined ? { environment: args.environment } : {}),
      limit: args.limit,
    });
    if (!rows) return undefined;
    trace('state read (SQLite)');
    return `${args.json ? toJson(rows, 2) : formatHistory(rows)}\n`;
  } catch {
    return undefined;
  }
}
