/**
 * Loads `fraises.yaml`: parse (with line numbers) → `${VAR}` interpolation → schema validation →
 * semantic checks → normalization into {@link NormalizedFraise}s. Every failure is one
 * `FraisierError('E_CONFIG')` whose message reads `<file>: <key.path>: <problem> (line N)` and which
 * carries `file` (as given) and `key` (the dotted path).
 *
 * The loader knows the envelope only (`plugins`, `state`, `ssh`, `fraises`, and in an environment
 * `provider`, `deployment_strategy`, the health check, `rollback_config`). Every other key of an
 * environment belongs to a provider, strategy or plugin of the registry (core/registry.ts): its schema
 * fragment validates it and its normaliser turns it into options. The built-ins register their YAML on
 * import of `builtins.ts`; packages named in `plugins:` are imported by {@link openConfig}.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LineCounter, type YAMLParseError, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Scalar } from 'yaml';
import type { TObject, TProperties } from '@sinclair/typebox';
import { Type } from '../typebox.js';
// the errors module alone: `Value` (from /value) would bundle every value operation for this one use
import { Errors, ValueErrorType } from '@sinclair/typebox/errors';
import type { ValueError } from '@sinclair/typebox/errors';
import '../../builtins.js';
import { FraisierError } from '../errors.js';
import { SECRET_NAME } from './find.js';

export { findConfig } from './find.js';
import { toMs } from '../duration.js';
import {
  ENVELOPE_KEYS,
  FRAISE_KEYS,
  MULTI_PROVIDER_KEYS,
  NAME_PATTERN,
  PROVIDER_ENTRY_KEYS,
  PluginsSchema,
  SloSchema,
  SshSchema,
  StateSchema,
  WebhooksSchema,
} from './schema.js';
import { SLO_KEYS, parseSloValue, type Slo } from '../slo.js';
import type { EnvironmentConfig, FraiseConfig, FraisesFile } from './schema.js';
import { postgresUrlProblem, redactUrl, urlPassword } from '../state/url.js';
import { REDACTED, registerSecret } from '../secret.js';
import { healthUrlProblem } from './checks.js';
import { isTimeZone } from '../schedule.js';
import { windowPolicyFromYaml } from '../windows.js';
import { registry, type NormalizedEnvironment, type PluginDefinition, type Segment, type YamlContext } from '../registry.js';

export type { NormalizedEnvironment } from '../registry.js';

/** A config file after loading: the validated text and its normalized form. */
export interface LoadedConfig {
  /** Absolute path of the file. */
  file: string;
  /** Directory of the file; relative paths in the config are resolved against it. */
  baseDir: string;
  /** The file as written, after interpolation and validation. */
  raw: FraisesFile;
  /** Normalized fraises by name. */
  fraises: Record<string, NormalizedFraise>;
  /** `state.path`, resolved against {@link LoadedConfig.baseDir} when set; `state.url` as written. */
  state: { path?: string; url?: string };
  /** `ssh:` settings as written (`connectTimeout` in seconds; `~` is not expanded here). */
  ssh: { configFile?: string; knownHostsFile?: string; strictHostKeyChecking?: boolean; connectTimeout?: number };
  /**
   * `deployment_slo:` by fraise: the top-level objectives with the fraise's own over them, key by key.
   * A fraise with no objective has no entry.
   */
  slo: Record<string, Slo>;
  /**
   * Values interpolated from variables whose names contain PASSWORD, SECRET, TOKEN or KEY. The caller
   * registers them for redaction (`registerSecret`).
   */
  secrets: string[];
}

/** One fraise with its normalized environments. */
export interface NormalizedFraise {
  name: string;
  type?: string;
  description?: string;
  environments: Record<string, NormalizedEnvironment>;
}

/** Common misnamings of envelope keys → the key meant; owners add theirs (`aliases`). */
const ALIASES: Record<string, string> = { strategy: 'deployment_strategy' };

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads and loads a config file (see {@link parseConfig}). Does not import the `plugins:` of the file:
 * use {@link openConfig}, which does, unless the packages are imported already.
 * @param file path as the user gave it; errors name it this way.
 * @param env variables for `${VAR}` interpolation; default `process.env`.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  return parseConfig(readConfig(file), file, env);
}

/**
 * The one entry point of the commands: reads a config file, imports the packages and files its
 * `plugins:` list names (they register their providers, strategies and plugins), then loads it (see
 * {@link parseConfig}).
 * @param file path as the user gave it; errors name it this way.
 * @param env variables for `${VAR}` interpolation; default `process.env`.
 * @param text the file's text, when the caller read it already (see {@link readConfig}).
 * @throws FraisierError `E_CONFIG` naming `plugins[i]` and its line for a package that cannot be found,
 *   fails to import, or registers nothing.
 */
export async function openConfig(file: string, env: NodeJS.ProcessEnv = process.env, text: string = readConfig(file)): Promise<LoadedConfig> {
  await importPlugins(text, file, env);
  return parseConfig(text, file, env);
}

/**
 * The text of a config file.
 * @throws FraisierError `E_CONFIG` naming the file when it cannot be read.
 */
export function readConfig(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new FraisierError('E_CONFIG', `${file}: cannot read config: ${reason}`, { file, cause: err });
  }
}

/** `true` in the single-file build of the CLI (dist/bundle/cli.cjs, esbuild's --define), absent elsewhere. */
declare const FRAISIER_SINGLE_FILE: boolean | undefined;

/**
 * Thrown by the single-file build of the CLI when fraises.yaml lists plugins, before anything else is
 * done: the command then runs from the ES modules, where the plugins and the CLI share one package.
 */
export class EsmRequired extends Error {
  readonly code = 'E_ESM_REQUIRED';
  constructor() {
    super('plugins need the ES module build of the CLI');
  }
}

/** Modules already imported (by URL) that registered something: importing one again registers nothing new. */
const importedPlugins = new Set<string>();
let tsxRegistered = false;

async function importPlugins(text: string, file: string, env: NodeJS.ProcessEnv): Promise<void> {
  // no `plugins:` key without the word: the file is then parsed once, by parseConfig
  if (!text.includes('plugins')) return;
  const ctx = new Context(file, text);
  interpolateDocument(ctx, env);
  const data = ctx.doc.toJS() as unknown;
  if (data === null || typeof data !== 'object' || Array.isArray(data) || !('plugins' in data)) return;
  const list = (data as { plugins: unknown }).plugins;
  const errors = [...Errors(PluginsSchema, list)].map((e) => ({ ...e, path: `/plugins${e.path}` }) as ValueError);
  if (errors.length > 0) throw explain(ctx, errors[0]!);
  const baseDir = path.dirname(path.resolve(file));
  // The package first (its built-ins register), so that a plugin importing 'fraisier' registers only
  // what it registers itself, whichever command runs (the CLI loads the package late: core/cli.ts).
  if ((list as string[]).length > 0) {
    // The single-file CLI (dist/bundle/cli.cjs) holds its own copy of the package, while a plugin imports
    // 'fraisier' (dist/bundle/index.js): the command is run again from the ES modules (bin/fraisier.js).
    if (typeof FRAISIER_SINGLE_FILE !== 'undefined') throw new EsmRequired();
    await import('../../index.js');
  }
  for (const [i, spec] of (list as string[]).entries()) {
    const segs: Segment[] = ['plugins', i];
    const local = /^\.{0,2}\//.test(spec) || /\.[cm]?[jt]sx?$/.test(spec);
    let entry: string;
    if (local) {
      entry = path.resolve(baseDir, spec);
      if (!isFile(entry)) {
        throw ctx.error(segs, `cannot find the plugin file ${JSON.stringify(spec)} (looked for ${entry})`, {
          hint: 'give a .ts or .js path relative to the config file',
        });
      }
    } else {
      const found = resolvePackage(spec, baseDir);
      if (typeof found !== 'string') {
        throw ctx.error(segs, `cannot find the package ${JSON.stringify(spec)} from ${baseDir}${found.problem ? `: ${found.problem}` : ''}`, {
          hint: `install it beside fraisier (npm install ${spec}), or give a path such as ./plugins/${spec}.ts`,
        });
      }
      entry = found;
    }
    const url = pathToFileURL(entry).href;
    if (importedPlugins.has(url)) continue;
    if (/\.[cm]?tsx?$/.test(entry) && !tsxRegistered && !process.execArgv.some((a) => a.includes('tsx'))) {
      // TypeScript files need tsx's loader (a dependency of fraisier); under `tsx` it is there already.
      // A specifier in a variable: bundlers leave it to Node (tsx is resolved from fraisier's own node_modules).
      const tsxApi = 'tsx/esm/api';
      const api = (await import(tsxApi)) as { register: () => unknown };
      api.register();
      tsxRegistered = true;
    }
    const before = registry.version();
    let mod: { default?: unknown };
    try {
      mod = (await import(url)) as { default?: unknown };
      if (typeof mod.default === 'function') await (mod.default as (api: typeof registry) => unknown)(registry);
    } catch (err) {
      throw ctx.error(segs, `importing ${JSON.stringify(spec)} failed: ${(err as Error).message.split('\n')[0]}`, { hint: `imported ${entry}` });
    }
    if (registry.version() === before) {
      throw ctx.error(segs, `${JSON.stringify(spec)} registered nothing: a plugin package registers a provider, strategy or plugin when imported`, {
        hint: 'call registry.registerProvider({ name, keys, normalize, create }) (or defineProvider) in its main module, or default-export a register(api) function; see docs/plugins.md',
      });
    }
    importedPlugins.add(url);
  }
}

/** The ESM entry file of package `name` installed in a node_modules directory at or above `dir`. */
function resolvePackage(name: string, dir: string): string | { problem?: string } {
  if (!/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i.test(name)) return { problem: 'not a package name' };
  for (let d = dir; ; d = path.dirname(d)) {
    const pkgDir = path.join(d, 'node_modules', name);
    const pkgFile = path.join(pkgDir, 'package.json');
    if (isFile(pkgFile)) {
      let pkg: { exports?: unknown; module?: string; main?: string };
      try {
        pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as typeof pkg;
      } catch (err) {
        return { problem: `${pkgFile}: ${(err as Error).message}` };
      }
      const pick = (x: unknown): string | undefined => {
        if (typeof x === 'string') return x;
        if (Array.isArray(x)) return x.map(pick).find((v) => v !== undefined);
        if (x && typeof x === 'object') {
          const o = x as Record<string, unknown>;
          if ('.' in o) return pick(o['.']);
          for (const c of ['import', 'node', 'default']) if (c in o) return pick(o[c]);
        }
        return undefined;
      };
      const rel = pick(pkg.exports) ?? pkg.module ?? pkg.main ?? 'index.js';
      const entry = path.resolve(pkgDir, rel);
      return isFile(entry) ? entry : { problem: `its entry ${entry} does not exist` };
    }
    if (path.dirname(d) === d) return {};
  }
}

/**
 * Parses, interpolates, validates and normalizes config text. Pure apart from `path.resolve(file)`.
 * The packages of `plugins:` must be imported already (see {@link openConfig}).
 * @param text YAML source.
 * @param file path used in error messages and to resolve relative paths.
 * @param env variables for `${VAR}` / `${VAR:-default}`; default `process.env`. `$${VAR}` is a literal `${VAR}`.
 * @throws FraisierError `E_CONFIG` on the first problem found.
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const ctx = new Context(file, text);
  const secrets = interpolateDocument(ctx, env);
  const data: unknown = ctx.doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new FraisierError('E_CONFIG', ctx.redact(`${file}: expected a mapping with a "fraises" key, got ${ctx.show([], data)}`), {
      file,
      hint: 'start the file with `fraises:` and one entry per app',
    });
  }
  validate(ctx, data);
  const raw = data as FraisesFile;

  const absFile = path.resolve(file);
  const baseDir = path.dirname(absFile);
  const fraises: Record<string, NormalizedFraise> = {};
  for (const [name, fraise] of Object.entries(raw.fraises)) {
    const environments: Record<string, NormalizedEnvironment> = {};
    for (const [envName, envConfig] of Object.entries(fraise.environments)) {
      environments[envName] = normalizeEnvironment(ctx, baseDir, name, fraise, envName, envConfig);
    }
    for (const s of registry.strategyDefinitions()) {
      s.environments?.({ fraise: name, environments, raw: { ...fraise.environments }, error: (segs, problem, opts) => ctx.error(segs, problem, opts) });
    }
    fraises[name] = {
      name,
      ...(fraise.type !== undefined ? { type: fraise.type } : {}),
      ...(fraise.description !== undefined ? { description: fraise.description } : {}),
      environments,
    };
  }

  for (const [i, r] of (raw.webhooks?.routes ?? []).entries()) {
    const segs: Segment[] = ['webhooks', 'routes', i];
    if (!raw.fraises[r.fraise])
      throw ctx.error([...segs, 'fraise'], `no fraise ${JSON.stringify(r.fraise)} in this file`, { hint: `fraises: ${Object.keys(raw.fraises).join(', ')}` });
    if (!raw.fraises[r.fraise]!.environments[r.environment])
      throw ctx.error([...segs, 'environment'], `fraise ${r.fraise} has no environment ${JSON.stringify(r.environment)}`, {
        hint: `environments: ${Object.keys(raw.fraises[r.fraise]!.environments).join(', ')}`,
      });
  }

  const ssh: LoadedConfig['ssh'] = {};
  if (raw.ssh?.config !== undefined) ssh.configFile = raw.ssh.config;
  if (raw.ssh?.known_hosts !== undefined) ssh.knownHostsFile = raw.ssh.known_hosts;
  if (raw.ssh?.strict_host_key_checking !== undefined) ssh.strictHostKeyChecking = raw.ssh.strict_host_key_checking;
  if (raw.ssh?.connect_timeout !== undefined) ssh.connectTimeout = raw.ssh.connect_timeout;

  return {
    file: absFile,
    baseDir,
    raw,
    fraises,
    state: stateOf(ctx, raw, baseDir, secrets),
    ssh,
    slo: sloOf(ctx, raw),
    secrets,
  };
}

/** `deployment_slo:` at the top and in each fraise, parsed (`"99%"` → 0.99, `"10m"` → 600000). */
function sloOf(ctx: Context, raw: FraisesFile): Record<string, Slo> {
  const parse = (block: Record<string, unknown> | undefined, segs: Segment[]): Slo => {
    const out: Slo = {};
    for (const key of SLO_KEYS) {
      if (block?.[key] === undefined) continue;
      const v = parseSloValue(key, block[key]);
      if (typeof v === 'string') throw ctx.error([...segs, key], v);
      out[key] = v;
    }
    return out;
  };
  const top = parse(raw.deployment_slo, ['deployment_slo']);
  const out: Record<string, Slo> = {};
  for (const [name, f] of Object.entries(raw.fraises)) {
    const slo = { ...top, ...parse(f.deployment_slo, ['fraises', name, 'deployment_slo']) };
    if (Object.keys(slo).length > 0) out[name] = slo;
  }
  return out;
}

/** `state:`: a SQLite path or a PostgreSQL URL (checked, and its password added to the secrets). */
function stateOf(ctx: Context, raw: FraisesFile, baseDir: string, secrets: string[]): LoadedConfig['state'] {
  const s = raw.state;
  if (s === undefined) return {};
  if (s.path !== undefined && s.url !== undefined) {
    throw ctx.error(['state', 'url'], 'state.path and state.url are exclusive: give a SQLite file or a PostgreSQL URL', {
      hint: 'remove one of the two',
    });
  }
  if (s.url !== undefined) {
    const problem = postgresUrlProblem(s.url);
    if (problem !== null) {
      throw ctx.error(
        ['state', 'url'],
        `expected a PostgreSQL URL such as postgres://user:password@host:5432/database, got ${JSON.stringify(redactUrl(s.url))} (${problem})`,
        {
          hint: 'e.g. postgres://deploy:${PGPASSWORD}@db.internal:5432/fraisier; percent-encode special characters in the password (/ is %2F, @ is %40)',
        },
      );
    }
    const password = urlPassword(s.url);
    if (password) secrets.push(password);
    return { url: s.url };
  }
  return s.path !== undefined ? { path: path.resolve(baseDir, s.path) } : {};
}

// ---------------------------------------------------------------------------------------------------
// Document, locations, errors

class Context {
  readonly doc: Document.Parsed;
  readonly lines = new LineCounter();
  /** Values interpolated from secret variables: no error message shows them. */
  readonly secrets = new Set<string>();
  /** Dotted keys whose value holds a secret → the variables it came from. */
  readonly secretKeys = new Map<string, string[]>();

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, merge: true, prettyErrors: false });
    const err = this.doc.errors[0];
    if (err) throw this.yamlError(err);
  }

  private yamlError(err: YAMLParseError): FraisierError {
    const pos = err.linePos?.[0] ?? this.lines.linePos(err.pos[0]);
    const reason = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    return new FraisierError('E_CONFIG', `${this.file}:${pos.line}:${pos.col}: invalid YAML: ${reason}`, {
      file: this.file,
      hint: `check line ${pos.line}, column ${pos.col} (indentation, a missing ":" or an unclosed quote)`,
      cause: err,
    });
  }

  /** Line of the key (or sequence item) at `segs`, or of its nearest existing ancestor. */
  lineOf(segs: readonly Segment[]): number | undefined {
    let node: unknown = this.doc.contents;
    let at: YamlNode | undefined = isNode(node) ? node : undefined;
    for (const seg of segs) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
        if (!pair) break;
        at = isNode(pair.key) ? pair.key : at;
        node = pair.value;
      } else if (isSeq(node)) {
        const item: unknown = node.items[Number(seg)];
        if (!isNode(item)) break;
        at = item;
        node = item;
      } else break;
    }
    const offset = at?.range?.[0];
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  /**
   * A value as error messages show it (see {@link show}); `[REDACTED] (from ${VAR})` when the value at
   * `segs` was interpolated from a secret variable, whatever its length.
   */
  show(segs: readonly Segment[], value: unknown): string {
    const vars = this.secretKeys.get(dotted(segs));
    return vars ? `${REDACTED} (from ${vars.map((v) => `\${${v}}`).join(', ')})` : show(value);
  }

  /** `text` with every secret value (3 characters or more, as everywhere) replaced by `[REDACTED]`. */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (s.length >= 3) out = out.split(s).join(REDACTED);
    return out;
  }

  /** Builds the error for `segs`: `<file>: <dotted>: <problem> (line N)`. Secret values are redacted. */
  error(segs: readonly Segment[], problem: string, opts: { hint?: string; lineAt?: readonly Segment[] } = {}): FraisierError {
    const key = dotted(segs);
    const line = this.lineOf(opts.lineAt ?? segs);
    const where = key ? `${this.file}: ${key}` : this.file;
    const message = this.redact(`${where}: ${problem}${line !== undefined ? ` (line ${line})` : ''}`);
    return new FraisierError('E_CONFIG', message, {
      file: this.file,
      ...(key ? { key } : {}),
      ...(opts.hint !== undefined ? { hint: this.redact(opts.hint) } : {}),
    });
  }
}

function isNode(x: unknown): x is YamlNode {
  return isScalar(x) || isMap(x) || isSeq(x) || isAlias(x);
}

/** `['fraises', 'api', 'instances', 1]` → `fraises.api.instances[1]`. */
function dotted(segs: readonly Segment[]): string {
  let out = '';
  for (const s of segs) out += typeof s === 'number' ? `[${s}]` : out ? `.${s}` : s;
  return out;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

// ---------------------------------------------------------------------------------------------------
// Interpolation

/**
 * Replaces `${VAR}` / `${VAR:-default}` in every string scalar of the document. Returns the secret
 * values, which are also registered for redaction (`registerSecret`) at once and kept in `ctx`, so that
 * no validation message built afterwards can show them.
 */
function interpolateDocument(ctx: Context, env: NodeJS.ProcessEnv): string[] {
  const secrets = ctx.secrets;
  const visit = (node: unknown, segs: Segment[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) visit(pair.value, [...segs, isScalar(pair.key) ? String(pair.key.value) : String(pair.key)]);
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) visit(item, [...segs, i]);
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      interpolateScalar(ctx, node as Scalar<unknown>, segs, env, secrets);
    }
  };
  visit(ctx.doc.contents, []);
  for (const s of secrets) registerSecret(s);
  return [...secrets];
}

function interpolateScalar(ctx: Context, node: Scalar<unknown>, segs: Segment[], env: NodeJS.ProcessEnv, secrets: Set<string>): void {
  const s = node.value as string;
  let out = '';
  let substituted = false;
  let i = 0;
  while (i < s.length) {
    const j = s.indexOf('$', i);
    if (j < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, j);
    if (s.startsWith('$${', j)) {
      out += '${';
      i = j + 3;
    } else if (s.startsWith('${', j)) {
      const end = s.indexOf('}', j + 2);
      if (end < 0) throw ctx.error(segs, `unclosed "\${" in ${JSON.stringify(s)}`, { hint: 'write $${ for a literal ${' });
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/.exec(s.slice(j + 2, end));
      if (!m) {
        throw ctx.error(segs, `invalid variable reference "${s.slice(j, end + 1)}"; expected \${NAME} or \${NAME:-default}`, {
          hint: 'write $${ for a literal ${',
        });
      }
      const name = m[1]!;
      const fallback = m[2];
      const set = env[name];
      let value: string;
      if (set !== undefined && set !== '') value = set;
      else if (fallback !== undefined) value = fallback;
      else if (set !== undefined) value = set;
      else {
        throw ctx.error(segs, `environment variable ${name} is not set`, {
          hint: `set ${name}, or give a default: \${${name}:-value}`,
        });
      }
      if (SECRET_NAME.test(name) && value !== '') {
        secrets.add(value);
        const key = dotted(segs);
        ctx.secretKeys.set(key, [...(ctx.secretKeys.get(key) ?? []), name]);
      }
      out += value;
      substituted = true;
      i = end + 1;
    } else {
      out += '$';
      i = j + 1;
    }
  }
  // An unquoted `port: ${PORT}` becomes a number, as if the value had been written in place.
  if (substituted && node.type === 'PLAIN') {
    if (/^-?\d+(\.\d+)?$/.test(out)) {
      node.value = Number(out);
      return;
    }
    if (/^(true|false)$/i.test(out)) {
      node.value = out.toLowerCase() === 'true';
      return;
    }
  }
  node.value = out;
}

// ---------------------------------------------------------------------------------------------------
// Schema validation: the envelope, then each environment against the keys of its owners

/** The default provider or strategy: the one registered with `default: true`, else the first. */
function defaultOf<D extends { default?: boolean }>(defs: D[]): D | undefined {
  return defs.find((d) => d.default) ?? defs[0];
}

function providerOf(e: Record<string, unknown>) {
  const name = e['provider'];
  return typeof name === 'string' ? registry.providerDefinition(name) : defaultOf(registry.providerDefinitions());
}

function strategyOf(e: Record<string, unknown>) {
  const name = e['deployment_strategy'];
  return typeof name === 'string' ? registry.strategyDefinition(name) : defaultOf(registry.strategyDefinitions());
}

/** `"a"`, `"a" or "b"`, `"a", "b" or "c"`. */
function orList(names: string[]): string {
  const q = names.map((n) => JSON.stringify(n));
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

/** The literal `type` a variant plugin owns its section with (`load_balancer: { type: nginx }`). */
function variantValue(def: PluginDefinition<any, any>): string | undefined {
  if (!def.variant) return undefined;
  const section = def.keys[def.variant] as TObject | undefined;
  const t = section?.properties?.['type'] as { const?: unknown } | undefined;
  return typeof t?.const === 'string' ? t.const : def.name;
}

/** The properties of a plugin's variant section (what its `type` allows). */
function variantProperties(def: PluginDefinition<any, any>): TProperties {
  return ((def.keys[def.variant!] as TObject | undefined)?.properties ?? {}) as TProperties;
}

/** Keys strategies add inside other owners' sections (`load_balancer.target`). */
function sectionExtensions(key: string): TProperties {
  const out: TProperties = {};
  for (const s of registry.strategyDefinitions()) Object.assign(out, s.sectionKeys?.[key] ?? {});
  return out;
}

/**
 * The schema of an environment block whose provider is `provider`: the envelope, the provider's keys,
 * every strategy's keys and every plugin's keys. Sections owned by several plugins by `type` get the
 * union of their keys (each plugin's normaliser is given its own) and a `type` naming every owner.
 */
function environmentSchema(provider: { keys: TProperties } | undefined, multi = false): TObject {
  const { provider: providerKey, deployment_strategy, ...envelope } = ENVELOPE_KEYS;
  // A multi-provider environment names no provider: its entries do (each checked by providerEntrySchema).
  const props: TProperties = multi ? { deployment_strategy } : { provider: providerKey, ...(provider?.keys ?? {}), deployment_strategy };
  for (const s of registry.strategyDefinitions()) for (const [k, v] of Object.entries(s.keys as TProperties)) props[k] ??= v;
  Object.assign(props, envelope);
  const variants = new Map<string, PluginDefinition<any, any>[]>();
  for (const p of registry.pluginDefinitions()) {
    for (const [k, v] of Object.entries(p.keys as TProperties)) {
      if (p.variant === k) variants.set(k, [...(variants.get(k) ?? []), p]);
      else props[k] ??= v;
    }
  }
  for (const [k, defs] of variants) {
    const merged: TProperties = {};
    for (const d of defs) for (const [pk, pv] of Object.entries(variantProperties(d))) if (pk !== 'type') merged[pk] ??= pv;
    const names = defs.map((d) => variantValue(d)!);
    const type = Type.Union(
      names.map((n) => Type.Literal(n)),
      { expected: names.length > 1 ? orList(names) : JSON.stringify(names[0]) },
    );
    props[k] = Type.Optional(Type.Object({ type, ...merged, ...sectionExtensions(k) }, { additionalProperties: false }));
  }
  return Type.Object(props, { additionalProperties: false });
}

/** True when an environment block (as written) is a multi-provider one. */
function isMultiProvider(e: Record<string, unknown>): boolean {
  return e['deployment_mode'] === 'multi_provider';
}

/**
 * The schema of one `providers:` entry of a multi-provider environment: its name, type and priority, the
 * envelope's strategy, health and rollback keys, its provider's keys and every strategy's keys.
 */
function providerEntrySchema(provider: { keys: TProperties } | undefined): TObject {
  const { provider: _p, ...envelope } = ENVELOPE_KEYS;
  const props: TProperties = { ...PROVIDER_ENTRY_KEYS, ...(provider?.keys ?? {}) };
  for (const s of registry.strategyDefinitions()) for (const [k, v] of Object.entries(s.keys as TProperties)) props[k] ??= v;
  for (const [k, v] of Object.entries(envelope)) if (!(MULTI_PROVIDER_KEYS as readonly string[]).includes(k)) props[k] ??= v;
  return Type.Object(props, { additionalProperties: false });
}

/** The file's schema with environments left open: they are checked one by one against their owners' keys. */
function fileSchema(): TObject {
  const fraiseKeys: TProperties = { ...FRAISE_KEYS };
  for (const p of registry.providerDefinitions()) for (const [k, v] of Object.entries(p.fraiseKeys ?? {})) fraiseKeys[k] ??= v;
  const Fraise = Type.Object(
    {
      ...fraiseKeys,
      environments: Type.Record(Type.String({ pattern: NAME_PATTERN }), Type.Object({}), {
        additionalProperties: false,
        minProperties: 1,
        expected: 'a mapping of environment names to environments',
      }),
    },
    { additionalProperties: false },
  );
  return Type.Object(
    {
      plugins: Type.Optional(PluginsSchema),
      state: Type.Optional(StateSchema),
      ssh: Type.Optional(SshSchema),
      deployment_slo: Type.Optional(SloSchema),
      webhooks: Type.Optional(WebhooksSchema),
      fraises: Type.Record(Type.String({ pattern: NAME_PATTERN }), Fraise, {
        additionalProperties: false,
        minProperties: 1,
        expected: 'a mapping of fraise names to fraises',
      }),
    },
    { additionalProperties: false },
  );
}

function validate(ctx: Context, data: unknown): void {
  throwFirst(ctx, [...Errors(fileSchema(), data)]);
  const file = data as FraisesFile;
  const errors: ValueError[] = [];
  const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
  for (const [f, fraise] of Object.entries(file.fraises)) {
    for (const [name, e] of Object.entries(fraise.environments)) {
      const prefix = `/fraises/${escapePointer(f)}/environments/${escapePointer(name)}`;
      if (isMultiProvider(e)) {
        // The envelope (and the plugins, which serve the whole environment) here; each entry of
        // `providers:` against its own provider's keys.
        const envSegs: Segment[] = ['fraises', f, 'environments', name];
        if (e['provider'] !== undefined)
          throw ctx.error([...envSegs, 'provider'], 'with deployment_mode: multi_provider, name each provider in providers: (type: ...), not provider:');
        if (!Array.isArray(e['providers']))
          throw ctx.error([...envSegs, 'deployment_mode'], 'deployment_mode: multi_provider needs providers: a list of {name, type, priority, ...}');
        for (const err of Errors(environmentSchema(undefined, true), e)) errors.push({ ...err, path: `${prefix}${err.path}` });
        throwFirst(ctx, errors);
        for (const [i, entry] of (e['providers'] as Record<string, unknown>[]).entries()) {
          const segs = [...envSegs, 'providers', i];
          const { name: _n, type, priority: _p, ...rest } = entry;
          checkNames(ctx, segs, { ...rest, provider: type }, 'type');
          for (const err of Errors(providerEntrySchema(providerOf({ provider: type })), entry))
            errors.push({ ...err, path: `${prefix}/providers/${i}${err.path}` });
        }
        throwFirst(ctx, errors);
        continue;
      }
      checkNames(ctx, ['fraises', f, 'environments', name], e);
      for (const key of MULTI_PROVIDER_KEYS.filter((k) => k !== 'deployment_mode')) {
        if (e[key] !== undefined)
          throw ctx.error(['fraises', f, 'environments', name, key], `${key} only applies with deployment_mode: multi_provider`, {
            hint: 'set deployment_mode: multi_provider, or remove it',
          });
      }
      for (const err of Errors(environmentSchema(providerOf(e)), e)) errors.push({ ...err, path: `${prefix}${err.path}` });
    }
  }
  throwFirst(ctx, errors);
}

/** `provider:` and `deployment_strategy:` name registered owners (else the known names and a guess). */
function checkNames(ctx: Context, segs: Segment[], e: Record<string, unknown>, providerKey = 'provider'): void {
  const p = e['provider'];
  if (typeof p === 'string' && !registry.providerDefinition(p)) {
    const known = registry.providerNames();
    const planned = registry.plannedProvider(p);
    const guess = closest(p, known);
    throw ctx.error(
      [...segs, providerKey],
      planned ? `provider "${p}" is ${planned}; known providers: ${known.join(', ')}` : `unknown provider "${p}"; known providers: ${known.join(', ')}`,
      { hint: guess ? `did you mean "${guess}"?` : 'a provider published as a package is named in the top-level plugins: list' },
    );
  }
  const s = e['deployment_strategy'];
  if (typeof s === 'string' && !registry.strategyDefinition(s)) {
    const known = registry.strategyNames();
    const guess = closest(s, known);
    throw ctx.error([...segs, 'deployment_strategy'], `unknown deployment strategy "${s}"; known strategies: ${known.join(', ')}`, {
      hint: guess ? `did you mean "${guess}"?` : 'a strategy published as a package is named in the top-level plugins: list',
    });
  }
  if (!providerOf(e)) throw ctx.error(segs, 'no provider is registered: import fraisier, or name a provider package in plugins:');
  if (!strategyOf(e)) throw ctx.error(segs, 'no deployment strategy is registered: import fraisier, or name a strategy package in plugins:');
}

function throwFirst(ctx: Context, errors: ValueError[]): void {
  if (errors.length === 0) return;
  // A typo in a key name is the most likely cause of everything else (a misspelt `instances` is also a
  // missing `instances`), so unknown keys come first, then wrong values, then missing keys.
  const rank = (e: ValueError): number => (e.type === ValueErrorType.ObjectAdditionalProperties ? 0 : e.type === ValueErrorType.ObjectRequiredProperty ? 2 : 1);
  const candidates = errors.filter((e) => e.type === ValueErrorType.ObjectRequiredProperty || e.value !== undefined);
  candidates.sort((a, b) => rank(a) - rank(b));
  throw explain(ctx, candidates[0] ?? errors[0]!);
}

/** Misnamings → the key meant: the envelope's and every owner's. */
function aliases(): Record<string, string> {
  const out: Record<string, string> = { ...ALIASES };
  for (const d of [...registry.providerDefinitions(), ...registry.strategyDefinitions(), ...registry.pluginDefinitions()]) Object.assign(out, d.aliases ?? {});
  return out;
}

function pointerSegments(pointer: string, data: unknown): Segment[] {
  const segs: Segment[] = [];
  let node: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const s: Segment = Array.isArray(node) && /^\d+$/.test(seg) ? Number(seg) : seg;
    segs.push(s);
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[s as string] : undefined;
  }
  return segs;
}

function explain(ctx: Context, e: ValueError): FraisierError {
  const data = ctx.doc.toJS() as unknown;
  const segs = pointerSegments(e.path, data);
  const last = segs[segs.length - 1];
  const parent = segs.slice(0, -1);
  const schema = e.schema as Record<string, unknown>;

  switch (e.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const name = String(last);
      if (schema.patternProperties) {
        const what = parent[parent.length - 1] === 'environments' ? 'environment' : 'fraise';
        return ctx.error(segs, `invalid ${what} name "${name}"; expected letters, digits, "_" or "-", starting with a letter or digit`, {
          hint: `names must match /${NAME_PATTERN}/`,
        });
      }
      const known = Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {});
      const alias = aliases()[name];
      const guess = alias && known.includes(alias) ? alias : closest(name, known);
      return ctx.error(segs, `unknown key "${name}"; expected one of: ${known.join(', ')}`, guess ? { hint: `did you mean "${guess}"?` } : {});
    }
    case ValueErrorType.ObjectRequiredProperty: {
      const problem = `missing required key "${String(last)}"`;
      if (parent.length === 0) {
        return new FraisierError('E_CONFIG', `${ctx.file}: ${problem}`, { file: ctx.file, hint: 'add `fraises:` with one entry per app' });
      }
      return ctx.error(parent, problem);
    }
    case ValueErrorType.ObjectMinProperties: {
      const what = last === 'environments' ? 'environment' : last === 'fraises' ? 'fraise' : 'entry';
      return ctx.error(segs, `expected at least one ${what}, got an empty mapping`);
    }
    case ValueErrorType.ArrayUniqueItems: {
      const seen = new Set<unknown>();
      const dup = (e.value as unknown[]).find((v) => (seen.has(v) ? true : (seen.add(v), false)));
      const at = (e.value as unknown[]).lastIndexOf(dup);
      return ctx.error(segs, `expected distinct entries, ${ctx.show([...segs, at], dup)} appears more than once`);
    }
    default: {
      // A name out of a list (`type: traefik`): offer the closest known one.
      const names = Array.isArray(schema.anyOf) ? (schema.anyOf as Array<Record<string, unknown>>).map((v) => v.const) : [];
      const guess = typeof e.value === 'string' && names.every((n) => typeof n === 'string') ? closest(e.value, names as string[]) : undefined;
      return ctx.error(
        segs,
        `expected ${describe(schema)}, got ${ctx.show(segs, e.value)}`,
        guess && !ctx.secretKeys.has(dotted(segs)) ? { hint: `did you mean "${guess}"?` } : {},
      );
    }
  }
}

/** A human phrase for what a schema accepts: `an integer >= 1`, `one of: http, tcp, exec`. */
function describe(schema: Record<string, unknown>): string {
  if (typeof schema.expected === 'string') return schema.expected;
  if (Array.isArray(schema.anyOf)) {
    const variants = schema.anyOf as Array<Record<string, unknown>>;
    if (variants.every((v) => v.const !== undefined)) return `one of: ${variants.map((v) => String(v.const)).join(', ')}`;
    return variants.map(describe).join(' or ');
  }
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  switch (schema.type) {
    case 'integer':
    case 'number': {
      const base = schema.type === 'integer' ? 'an integer' : 'a number';
      const { minimum, maximum, exclusiveMinimum } = schema as { minimum?: number; maximum?: number; exclusiveMinimum?: number };
      if (minimum !== undefined && maximum !== undefined) return `${base} from ${minimum} to ${maximum}`;
      if (minimum !== undefined) return `${base} >= ${minimum}`;
      if (exclusiveMinimum !== undefined) return `${base} > ${exclusiveMinimum}`;
      return base;
    }
    case 'string':
      return schema.minLength ? 'a non-empty string' : 'a string';
    case 'boolean':
      return 'true or false';
    case 'array': {
      const items = schema.items as Record<string, unknown> | undefined;
      const of = items?.type === 'string' ? 'strings' : 'values';
      return schema.minItems ? `a non-empty list of ${of}` : `a list of ${of}`;
    }
    case 'object':
      return 'a mapping';
    default:
      return 'a valid value';
  }
}

/** The known key within edit distance 2 of `name`, if any. */
function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------------------------------
// Normalization: the envelope here, every other key by its owner

interface EnvelopeDefaults {
  healthCheckRetries?: number;
  rollbackOnHealthCheckFailure?: boolean;
}

function normalizeEnvironment(
  ctx: Context,
  baseDir: string,
  fraiseName: string,
  fraise: FraiseConfig,
  name: string,
  e: EnvironmentConfig,
  /** Where the block is, when it is not the environment itself (an entry of a multi-provider `providers:`). */
  blockSegs?: Segment[],
): NormalizedEnvironment {
  const fraiseSegs: Segment[] = ['fraises', fraiseName];
  const segs: Segment[] = blockSegs ?? [...fraiseSegs, 'environments', name];
  const at = (...rest: Segment[]): Segment[] => [...segs, ...rest];
  const ms = (value: number | string, keySegs: readonly Segment[]): number => {
    if (typeof value === 'number') return Math.round(value * 1000);
    try {
      return toMs(value, dotted(keySegs));
    } catch {
      throw ctx.error(keySegs, `expected a duration such as "500ms", "30s" or "2m", got ${ctx.show(keySegs, value)}`);
    }
  };
  const provider = providerOf(e)!;
  const strategy = strategyOf(e)!;
  const defaults: EnvelopeDefaults = {};
  const out = { name, keyPath: dotted(segs), provider: provider.name } as NormalizedEnvironment;
  const y: YamlContext = {
    file: ctx.file,
    baseDir,
    fraise: fraiseName,
    environment: name,
    segs,
    at,
    fraiseSegs,
    raw: e,
    fraiseRaw: fraise,
    env: out,
    error: (s, problem, opts) => ctx.error(s, problem, opts),
    show: (s, value) => ctx.show(s, value),
    ms,
    resolve: (p) => path.resolve(baseDir, p),
    dotted,
    secret: (value) => {
      ctx.secrets.add(value);
      registerSecret(value);
    },
    envelopeDefaults: (d) => Object.assign(defaults, d),
  };
  /** The keys of an owner that are set in this block. */
  const pick = (keys: TProperties): Record<string, unknown> => {
    const block: Record<string, unknown> = {};
    for (const k of Object.keys(keys)) if (e[k] !== undefined) block[k] = e[k];
    return block;
  };

  if (isMultiProvider(e)) {
    out.provider = 'multi_provider';
    out.strategy = { type: 'multi_provider' } as unknown as NormalizedEnvironment['strategy'];
    out.multiProvider = normalizeMultiProvider(ctx, e, at, (entry, i) =>
      normalizeEnvironment(ctx, baseDir, fraiseName, fraise, name, entry, at('providers', i)),
    );
  } else {
    Object.assign(out, provider.normalize(pick(provider.keys) as never, y));
    out.strategy = { ...(strategy.normalize(pick(strategy.keys) as never, y) as object), type: strategy.name } as NormalizedEnvironment['strategy'];
    for (const other of registry.strategyDefinitions()) {
      if (other === strategy || !other.unselected) continue;
      const block = pick(other.keys);
      if (Object.keys(block).length > 0) other.unselected(block as never, y);
    }
  }
  // A multi-provider environment's health keys are its entries' defaults, checked with each entry.
  out.health = isMultiProvider(e) ? null : normalizeHealth(ctx, e, segs, ms, defaults);
  out.rollback = {
    enabled: e.rollback_config?.enabled ?? true,
    onHealthCheckFailure: e.rollback_config?.rollback_on_health_check_failure ?? defaults.rollbackOnHealthCheckFailure ?? true,
    timeoutMs: e.rollback_config?.rollback_timeout !== undefined ? ms(e.rollback_config.rollback_timeout, at('rollback_config', 'rollback_timeout')) : 300_000,
  };

  const windows = windowPolicyFromYaml(e.deploy_windows, e.freeze, isTimeZone, (rest, problem) => ctx.error(at(...rest), problem));
  if (windows) out.deployWindows = windows;

  for (const plugin of registry.pluginDefinitions()) {
    if (plugin.variant) {
      const section = e[plugin.variant] as Record<string, unknown> | undefined;
      if (section === undefined || section['type'] !== variantValue(plugin)) continue;
      foreignKeys(ctx, at(plugin.variant), plugin, section);
    } else if (Object.keys(pick(plugin.keys)).length === 0) continue;
    const value = plugin.normalize(pick(plugin.keys) as never, y);
    if (value !== undefined) (out as unknown as Record<string, unknown>)[plugin.field] = value;
  }
  return out;
}

/** Envelope keys an entry of `providers:` takes from its environment when it sets none of its own. */
const HEALTH_KEYS = [
  'health_check',
  'health_check_type',
  'health_check_url',
  'health_check_timeout',
  'health_check_expect',
  'health_check_port',
  'health_check_command',
];

/**
 * `deployment_mode: multi_provider`: the mode, and each entry of `providers:` normalized as an
 * environment block of its own (`type` is its provider) by `entryOf`. An entry without a strategy, health
 * check or rollback_config of its own takes the environment's.
 */
function normalizeMultiProvider(
  ctx: Context,
  e: EnvironmentConfig,
  at: (...rest: Segment[]) => Segment[],
  entryOf: (entry: EnvironmentConfig, i: number) => NormalizedEnvironment,
): NonNullable<NormalizedEnvironment['multiProvider']> {
  const mode = (e['multi_provider_mode'] as 'failover' | 'all' | undefined) ?? 'failover';
  if (e['on_failure'] !== undefined && mode !== 'all') {
    throw ctx.error(
      at('on_failure'),
      'on_failure only applies with multi_provider_mode: all (failover rolls back the provider that failed, then tries the next)',
    );
  }
  const entries = e['providers'] as Record<string, unknown>[];
  const names = new Map<string, number>();
  const priorities = new Map<number, number>();
  const strategyKeys = new Set(registry.strategyDefinitions().flatMap((d) => Object.keys(d.keys as TProperties)));
  const providers = entries.map((entry, i) => {
    const { name: n, type, priority, ...rest } = entry as { name: string; type: string; priority?: number } & Record<string, unknown>;
    const pr = priority ?? i + 1;
    if (names.has(n)) throw ctx.error(at('providers', i, 'name'), `"${n}" is also the name of providers[${names.get(n)}]: each provider needs its own name`);
    names.set(n, i);
    const other = priorities.get(pr);
    if (mode === 'failover' && other !== undefined) {
      throw ctx.error(
        at('providers', i, priority === undefined ? 'name' : 'priority'),
        `priority ${pr} is also the priority of providers[${other}] (${(entries[other] as { name: string }).name}): in failover mode each provider needs its own`,
        { hint: 'give each provider a different priority (1 is tried first), or set multi_provider_mode: all' },
      );
    }
    priorities.set(pr, i);
    const inherited: Record<string, unknown> = {};
    const takes = (keys: Iterable<string>) => {
      for (const k of keys) if (e[k] !== undefined) inherited[k] = e[k];
    };
    if (rest['deployment_strategy'] === undefined && ![...strategyKeys].some((k) => rest[k] !== undefined)) takes(['deployment_strategy', ...strategyKeys]);
    if (HEALTH_KEYS.every((k) => rest[k] === undefined)) takes(HEALTH_KEYS);
    if (rest['rollback_config'] === undefined) takes(['rollback_config']);
    const block = { ...inherited, ...rest, provider: type } as EnvironmentConfig;
    return { name: n, priority: pr, env: entryOf(block, i) };
  });
  return {
    mode,
    onFailure: (e['on_failure'] as 'rollback_all' | 'keep_others' | undefined) ?? 'rollback_all',
    providers: providers.sort((a, b) => a.priority - b.priority),
  };
}

/** `a`/`an` before a name: `an nginx option`, `a haproxy option`. */
function article(word: string): string {
  return /^([aeiou]|[fhlmnrsx][^aeiouy])/i.test(word) ? 'an' : 'a';
}

/** A key of a shared section (`load_balancer`) that another `type` owns: say whose it is. */
function foreignKeys(ctx: Context, segs: Segment[], plugin: PluginDefinition<any, any>, section: Record<string, unknown>): void {
  const own = variantProperties(plugin);
  const extensions = sectionExtensions(plugin.variant!);
  const mine = variantValue(plugin)!;
  for (const k of Object.keys(section)) {
    if (k in own || k in extensions) continue;
    const owner = registry.pluginDefinitions().find((p) => p.variant === plugin.variant && k in variantProperties(p));
    const theirs = owner ? variantValue(owner)! : undefined;
    const ownKeys = Object.keys(own).filter((x) => x !== 'type');
    throw ctx.error(
      [...segs, k],
      theirs
        ? `${k} is ${article(theirs)} ${theirs} option; with type: ${mine} use ${ownKeys.join(', ')} (or set type: ${theirs})`
        : `unknown key "${k}" for type: ${mine}; expected one of: ${ownKeys.join(', ')}`,
    );
  }
}

function normalizeHealth(
  ctx: Context,
  e: EnvironmentConfig,
  segs: Segment[],
  ms: (value: number | string, keySegs: readonly Segment[]) => number,
  defaults: EnvelopeDefaults,
): NormalizedEnvironment['health'] {
  const hc = e.health_check;
  const flat = [e.health_check_type, e.health_check_url, e.health_check_timeout, e.health_check_expect, e.health_check_port, e.health_check_command];
  if (hc === undefined && flat.every((v) => v === undefined)) return null;

  /** A setting that may be written flat or inside `health_check:`, but not both. */
  const pick = <T>(flatKey: keyof EnvironmentConfig, blockKey: string, flatValue: T | undefined, blockValue: T | undefined) => {
    if (flatValue !== undefined && blockValue !== undefined) {
      throw ctx.error([...segs, flatKey], `set either ${flatKey} or health_check.${blockKey}, not both`);
    }
    const keySegs: Segment[] = flatValue !== undefined ? [...segs, flatKey] : [...segs, 'health_check', blockKey];
    return { value: flatValue ?? blockValue, segs: keySegs };
  };
  const type = pick('health_check_type', 'type', e.health_check_type, hc?.type);
  const url = pick('health_check_url', 'url', e.health_check_url, hc?.url);
  const timeout = pick('health_check_timeout', 'timeout', e.health_check_timeout, hc?.timeout);
  const expect = pick('health_check_expect', 'expect', e.health_check_expect, hc?.expect);
  const port = { value: e.health_check_port, segs: [...segs, 'health_check_port'] };
  const command = { value: e.health_check_command, segs: [...segs, 'health_check_command'] };

  let kind = type.value;
  if (kind === undefined) {
    const inferred = [url.value !== undefined && 'http', port.value !== undefined && 'tcp', command.value !== undefined && 'exec'].filter(
      (k): k is 'http' | 'tcp' | 'exec' => k !== false,
    );
    if (inferred.length === 0) {
      throw ctx.error(segs, 'incomplete health check: set health_check_url (http), health_check_port (tcp) or health_check_command (exec)');
    }
    if (inferred.length > 1) {
      throw ctx.error(segs, `ambiguous health check: keys for ${inferred.join(' and ')} are set; set health_check_type`);
    }
    kind = inferred[0]!;
  }

  const needs = { http: ['health_check_url', url], tcp: ['health_check_port', port], exec: ['health_check_command', command] } as const;
  const [needKey, need] = needs[kind];
  if (need.value === undefined) {
    throw ctx.error(segs, `a ${kind} health check needs ${needKey}`, { lineAt: type.segs });
  }
  const only: Array<[string, { value: unknown; segs: Segment[] }, string]> = [
    ['health_check_url', url, 'http'],
    ['health_check_expect', expect, 'http'],
    ['health_check_port', port, 'tcp'],
    ['health_check_command', command, 'exec'],
  ];
  for (const [key, setting, applies] of only) {
    if (setting.value !== undefined && applies !== kind) {
      throw ctx.error(setting.segs, `${key} only applies to ${applies} health checks, but this one is ${kind}`);
    }
  }

  if (kind === 'http') {
    const problem = healthUrlProblem(url.value!);
    if (problem) throw ctx.error(url.segs, problem);
  }
  const check: NonNullable<NormalizedEnvironment['health']>['check'] =
    kind === 'http'
      ? { type: 'http', url: url.value!, ...(expect.value !== undefined ? { expectBody: expect.value } : {}) }
      : kind === 'tcp'
        ? { type: 'tcp', port: port.value! }
        : { type: 'exec', command: command.value! };

  const rb = e.rollback_config;
  const health: NonNullable<NormalizedEnvironment['health']> = {
    check,
    retries: rb?.health_check_retries ?? defaults.healthCheckRetries ?? hc?.retries ?? 3,
    retryDelayMs:
      rb?.retry_delay !== undefined
        ? ms(rb.retry_delay, [...segs, 'rollback_config', 'retry_delay'])
        : hc?.retry_delay !== undefined
          ? ms(hc.retry_delay, [...segs, 'health_check', 'retry_delay'])
          : 2000,
    timeoutMs: timeout.value !== undefined ? ms(timeout.value, timeout.segs) : 5000,
  };
  if (rb?.max_consecutive_failures !== undefined) health.maxConsecutiveFailures = rb.max_consecutive_failures;
  return health;
}
