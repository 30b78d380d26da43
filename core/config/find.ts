/**
 * Finding fraises.yaml, without loading the config loader (the YAML parser, the schemas): the read-only
 * commands' fast path (core/config/cache.ts) needs the file's path before it knows whether to load them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FraisierError } from '../errors.js';

/** Variables whose values are secrets when interpolated (`${DB_PASSWORD}`): redacted everywhere, never cached. */
export const SECRET_NAME = /PASSWORD|SECRET|TOKEN|KEY/i;

/**
 * Finds the config file: `explicit` if given, else `$FRAISIER_CONFIG`, else `fraises.yaml` in `cwd`.
 * The first one set is the one used: an explicit path that does not exist is an error, not a fallthrough.
 * @returns the absolute path.
 * @throws FraisierError `E_CONFIG` naming the path(s) tried.
 */
export function findConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  const candidates: Array<{ path: string; from: string }> = [];
  if (explicit) candidates.push({ path: explicit, from: '--config' });
  else if (env.FRAISIER_CONFIG) candidates.push({ path: env.FRAISIER_CONFIG, from: 'FRAISIER_CONFIG' });
  else candidates.push({ path: 'fraises.yaml', from: 'the current directory' });
  for (const c of candidates) {
    const abs = path.resolve(cwd, c.path);
    if (isFile(abs)) return abs;
  }
  const tried = candidates.map((c) => `${path.resolve(cwd, c.path)} (from ${c.from})`).join(', ');
  throw new FraisierError('E_CONFIG', `no config file found; tried: ${tried}`, {
    file: candidates[0]!.path,
    hint: 'pass --config <file>, set FRAISIER_CONFIG, or create fraises.yaml in the current directory',
  });
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
