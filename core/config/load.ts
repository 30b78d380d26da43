/**
 * Loads `fraises.yaml`: parse (with line numbers) → `${VAR}` interpolation → schema validation →
 * semantic checks → normalization into {@link NormalizedFraise}s. Every failure is one
 * `FraisierError('E_CONFIG')` whose message reads `<file>: <key.path>: <problem> (line N)` and which
 * carries `file` (as given) and `key` (the dotted path).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, YAMLParseError, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, Scalar } from 'yaml';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import type { ValueError } from '@sinclair/typebox/value';
import { FraisierError } from '../errors.js';
import { toMs } from '../duration.js';
import { FraisesFileSchema, KNOWN_PROVIDERS, KNOWN_STRATEGIES, NAME_PATTERN, PLANNED_PROVIDERS } from './schema.js';
import type { EnvironmentConfig, FraiseConfig, FraisesFile } from './schema.js';
import { postgresUrlProblem, redactUrl, urlPassword } from '../state/url.js';
import { REDACTED, registerSecret } from '../secret.js';
import { appPathProblem, branchProblem, healthUrlProblem, hostProblem, normalAppPath, sharedListProblem } from './checks.js';

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
   * Values interpolated from variables whose names contain PASSWORD, SECRET, TOKEN or KEY. The caller
   * registers them for redaction (`registerSecret`).
   */
  secrets: string[];
}

/** One environment with fraise-level defaults merged and every default applied. */
export interface NormalizedEnvironment {
  /** Environment name, e.g. `production`. */
  name: string;
  /** Dotted path of the block in the file, e.g. `fraises.api.environments.production`, for error messages. */
  keyPath: string;
  provider: 'bare_metal';
  /** SSH hosts, in deployment order. */
  instances: string[];
  /** Absolute directory on the hosts. */
  appPath: string;
  /** What is deployed: a git branch (default `main`) or a local directory resolved against the config's directory. */
  source: { type: 'git'; repo: string; branch: string } | { type: 'artifact'; dir: string };
  /** How the app is restarted after activation. */
  service: { type: 'systemd'; unit: string } | { type: 'supervisor'; program: string } | { type: 'command'; restart: string };
  keepReleases?: number;
  shared?: string[];
  /** `build_command`. */
  build?: string;
  /** Rolling: `batchSize` default 1, `waitBetweenBatchesMs` default 0. Blue-green: the two colours. */
  strategy:
    | { type: 'rolling'; batchSize: number; waitBetweenBatchesMs: number }
    | { type: 'blue_green'; blue: string[]; green: string[]; verifyCommand?: string; verifyTimeoutMs?: number };
  /** `null` when no health check is configured. */
  health: null | {
    check: { type: 'http'; url: string; expectBody?: string } | { type: 'tcp'; port: number; host?: string } | { type: 'exec'; command: string };
    /** `rollback_config.health_check_retries` ?? `rolling_config.health_check_retries` ?? `health_check.retries` ?? 3. */
    retries: number;
    /** `rollback_config.retry_delay` ?? `health_check.retry_delay` ?? 2000. */
    retryDelayMs: number;
    /** `health_check_timeout` / `health_check.timeout` ?? 5000. */
    timeoutMs: number;
    maxConsecutiveFailures?: number;
  };
  /** `enabled` default true; `onHealthCheckFailure` default true; `timeoutMs` default 300000. */
  rollback: { enabled: boolean; onHealthCheckFailure: boolean; timeoutMs: number };
  /** `load_balancer:` (nginx or haproxy), when present. */
  loadBalancer?: {
    type: 'nginx' | 'haproxy';
    /** nginx: the generated upstream file (required for nginx). */
    file?: string;
    /** nginx: addresses (required); haproxy: server names (optional). */
    servers?: Record<string, string>;
    /** nginx: `passive` or `reload`. */
    drain?: 'passive' | 'reload';
    maxFails?: number;
    failTimeoutMs?: number;
    /** haproxy: the admin socket (required for haproxy). */
    socket?: string;
    backend?: string;
    socat?: string;
    poolFile?: string;
    upstream?: string;
    host?: string;
    nginx?: string;
    nginxArgs?: string[];
    pidFile?: string;
    drainTimeoutMs?: number;
    /** Seed form of blue-green: the colour of a `<name>_blue` / `<name>_green` environment. */
    target?: 'blue' | 'green';
  };
  /** `database:` (psql-migration), when present. */
  database?: {
    type: 'postgresql';
    /** Default `DATABASE_URL`. */
    urlEnv: string;
    /** Absolute (resolved against the config's directory). */
    migrationsDir: string;
    table?: string;
    lockTimeoutMs?: number;
    connectTimeoutMs?: number;
  };
  /** `pre_deployment_hooks:` and `post_deployment_hooks:`, in order; absent when neither is set. */
  hooks?: { pre: NormalizedHook[]; post: NormalizedHook[] };
}

/** One deployment hook. */
export interface NormalizedHook {
  name: string;
  type: 'command' | 'script' | 'database';
  /** Shell text; for `script`, the file's absolute path. */
  command: string;
  /** Default 300000. */
  timeoutMs: number;
  /** Default `abort` (pre) / `alert` (post). */
  onFailure: 'abort' | 'rollback' | 'alert' | 'ignore';
  /** Dotted key of the hook in the file, e.g. `fraises.api.environments.production.pre_deployment_hooks[0]`. */
  keyPath: string;
}

/** One fraise with its normalized environments. */
export interface NormalizedFraise {
  name: string;
  type?: string;
  description?: string;
  environments: Record<string, NormalizedEnvironment>;
}

type Segment = string | number;

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|KEY/i;

/** Common misnamings → the key meant, offered as a hint on an unknown key. */
const ALIASES: Record<string, string> = { hosts: 'instances', servers: 'instances', strategy: 'deployment_strategy' };

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

/**
 * Reads and loads a config file (see {@link parseConfig}).
 * @param file path as the user gave it; errors name it this way.
 * @param env variables for `${VAR}` interpolation; default `process.env`.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new FraisierError('E_CONFIG', `${file}: cannot read config: ${reason}`, { file, cause: err });
  }
  return parseConfig(text, file, env);
}

/**
 * Parses, interpolates, validates and normalizes config text. Pure apart from `path.resolve(file)`.
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
    pairColours(ctx, name, environments);
    fraises[name] = {
      name,
      ...(fraise.type !== undefined ? { type: fraise.type } : {}),
      ...(fraise.description !== undefined ? { description: fraise.description } : {}),
      environments,
    };
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
    secrets,
  };
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
      throw ctx.error(['state', 'url'], `expected a PostgreSQL URL such as postgres://user:password@host:5432/database, got ${JSON.stringify(redactUrl(s.url))} (${problem})`, {
        hint: 'e.g. postgres://deploy:${PGPASSWORD}@db.internal:5432/fraisier; percent-encode special characters in the password (/ is %2F, @ is %40)',
      });
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
      node.items.forEach((item, i) => visit(item, [...segs, i]));
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
// Schema validation

function validate(ctx: Context, data: unknown): void {
  const errors = [...Value.Errors(FraisesFileSchema, data)];
  if (errors.length === 0) return;
  // A typo in a key name is the most likely cause of everything else (a misspelt `instances` is also a
  // missing `instances`), so unknown keys come first, then wrong values, then missing keys.
  const rank = (e: ValueError): number =>
    e.type === ValueErrorType.ObjectAdditionalProperties ? 0 : e.type === ValueErrorType.ObjectRequiredProperty ? 2 : 1;
  const candidates = errors.filter((e) => e.type === ValueErrorType.ObjectRequiredProperty || e.value !== undefined);
  candidates.sort((a, b) => rank(a) - rank(b));
  throw explain(ctx, candidates[0] ?? errors[0]!);
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
      const guess = ALIASES[name] && known.includes(ALIASES[name]!) ? ALIASES[name] : closest(name, known);
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
    default:
      return ctx.error(segs, `expected ${describe(schema)}, got ${ctx.show(segs, e.value)}`);
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
// Semantic checks and normalization

function normalizeEnvironment(
  ctx: Context,
  baseDir: string,
  fraiseName: string,
  fraise: FraiseConfig,
  name: string,
  e: EnvironmentConfig,
): NormalizedEnvironment {
  const fraiseSegs: Segment[] = ['fraises', fraiseName];
  const segs: Segment[] = [...fraiseSegs, 'environments', name];
  const at = (...rest: Segment[]): Segment[] => [...segs, ...rest];
  const ms = (value: number | string, keySegs: Segment[]): number => {
    if (typeof value === 'number') return Math.round(value * 1000);
    try {
      return toMs(value, dotted(keySegs));
    } catch {
      throw ctx.error(keySegs, `expected a duration such as "500ms", "30s" or "2m", got ${ctx.show(keySegs, value)}`);
    }
  };

  // provider
  const provider = e.provider ?? 'bare_metal';
  if (provider !== 'bare_metal') {
    const known = KNOWN_PROVIDERS.join(', ');
    const planned = (PLANNED_PROVIDERS as readonly string[]).includes(provider);
    throw ctx.error(
      at('provider'),
      planned ? `provider "${provider}" is not supported yet; known providers: ${known}` : `unknown provider "${provider}"; known providers: ${known}`,
    );
  }

  // strategy
  const strategy = e.deployment_strategy ?? 'rolling';
  if (!(KNOWN_STRATEGIES as readonly string[]).includes(strategy)) {
    throw ctx.error(at('deployment_strategy'), `unknown deployment strategy "${strategy}"; known strategies: ${KNOWN_STRATEGIES.join(', ')}`);
  }

  // service: exactly one
  const serviceKeys = (['systemd_service', 'supervisor_program', 'restart_command'] as const).filter((k) => e[k] !== undefined);
  if (serviceKeys.length !== 1) {
    const problem =
      serviceKeys.length === 0
        ? 'missing a restart method: set exactly one of systemd_service, supervisor_program, restart_command'
        : `set exactly one of systemd_service, supervisor_program, restart_command; found ${serviceKeys.join(' and ')}`;
    throw ctx.error(segs, problem, serviceKeys.length > 1 ? { lineAt: at(serviceKeys[1]!) } : {});
  }
  const service: NormalizedEnvironment['service'] =
    e.systemd_service !== undefined
      ? { type: 'systemd', unit: e.systemd_service }
      : e.supervisor_program !== undefined
        ? { type: 'supervisor', program: e.supervisor_program }
        : { type: 'command', restart: e.restart_command! };

  // source: exactly one after merging. An environment's own artifact_dir replaces an inherited git_repo
  // (fraise-level keys are defaults); both set on the environment itself is an error.
  const repo = e.artifact_dir !== undefined && e.git_repo === undefined ? undefined : (e.git_repo ?? fraise.git_repo);
  let source: NormalizedEnvironment['source'];
  if (repo !== undefined && e.artifact_dir !== undefined) {
    throw ctx.error(segs, 'set exactly one source: git_repo or artifact_dir, not both', { lineAt: at('artifact_dir') });
  } else if (repo !== undefined) {
    const branch = e.branch ?? fraise.branch ?? 'main';
    const branchIssue = branchProblem(branch);
    if (branchIssue) {
      throw ctx.error(e.branch !== undefined ? at('branch') : [...fraiseSegs, 'branch'], branchIssue, {
        hint: 'branch names follow `git check-ref-format --branch`: e.g. main, release/1.2',
      });
    }
    source = { type: 'git', repo, branch };
  } else if (e.artifact_dir !== undefined) {
    source = { type: 'artifact', dir: path.resolve(baseDir, e.artifact_dir) };
  } else {
    throw ctx.error(segs, `missing a source: set git_repo (here or in ${dotted(fraiseSegs)}) or artifact_dir`);
  }

  // app_path: required after merging, absolute
  const appPath = e.app_path ?? fraise.app_path;
  if (appPath === undefined) {
    throw ctx.error(segs, `missing required key "app_path"`, { hint: `set app_path here or as a default in ${dotted(fraiseSegs)}` });
  }
  const appPathIssue = appPathProblem(appPath);
  if (appPathIssue) {
    const where = e.app_path !== undefined ? at('app_path') : [...fraiseSegs, 'app_path'];
    throw ctx.error(where, appPathIssue);
  }

  // instances: SSH host names, checked here so that a name with shell metacharacters never reaches a
  // connection (or the history)
  e.instances.forEach((h, i) => {
    const problem = hostProblem(h);
    if (problem) throw ctx.error(at('instances', i), problem, { hint: 'name the host as in your ssh config (Host ...), or user@host:port' });
  });
  if (e.shared !== undefined) {
    const bad = sharedListProblem(e.shared);
    if (bad) {
      throw ctx.error(at('shared', bad.index), bad.problem, {
        hint: 'a shared path is linked from <app_path>/shared/<path> into each release: it names a file or directory inside the release',
      });
    }
  }

  const out: NormalizedEnvironment = {
    name,
    keyPath: dotted(segs),
    provider: 'bare_metal',
    instances: [...e.instances],
    appPath: normalAppPath(appPath),
    source,
    service,
    strategy: {
      type: 'rolling',
      batchSize: e.rolling_config?.batch_size ?? 1,
      waitBetweenBatchesMs:
        e.rolling_config?.wait_between_batches !== undefined ? ms(e.rolling_config.wait_between_batches, at('rolling_config', 'wait_between_batches')) : 0,
    },
    health: normalizeHealth(ctx, e, segs, ms),
    rollback: {
      enabled: e.rollback_config?.enabled ?? true,
      onHealthCheckFailure: e.rollback_config?.rollback_on_health_check_failure ?? e.rolling_config?.rollback_on_health_check_failure ?? true,
      timeoutMs:
        e.rollback_config?.rollback_timeout !== undefined ? ms(e.rollback_config.rollback_timeout, at('rollback_config', 'rollback_timeout')) : 300_000,
    },
  };
  if (e.database !== undefined) {
    const db = e.database;
    out.database = {
      type: 'postgresql',
      urlEnv: db.url_env ?? 'DATABASE_URL',
      migrationsDir: path.resolve(baseDir, db.migrations_dir),
      ...(db.table !== undefined ? { table: db.table } : {}),
      ...(db.lock_timeout !== undefined ? { lockTimeoutMs: ms(db.lock_timeout, at('database', 'lock_timeout')) } : {}),
      ...(db.connect_timeout !== undefined ? { connectTimeoutMs: ms(db.connect_timeout, at('database', 'connect_timeout')) } : {}),
    };
  }
  const hooks = (key: 'pre_deployment_hooks' | 'post_deployment_hooks'): NormalizedHook[] => {
    const seen = new Set<string>();
    return (e[key] ?? []).map((h, i) => {
      if (seen.has(h.name)) throw ctx.error(at(key, i, 'name'), `hook name "${h.name}" is used twice in ${key}`);
      seen.add(h.name);
      const type = h.type ?? 'command';
      return {
        name: h.name,
        type,
        command: type === 'script' ? path.resolve(baseDir, h.command) : h.command,
        timeoutMs: h.timeout !== undefined ? ms(h.timeout, at(key, i, 'timeout')) : 300_000,
        onFailure: h.on_failure ?? (key === 'pre_deployment_hooks' ? 'abort' : 'alert'),
        keyPath: dotted(at(key, i)),
      };
    });
  };
  const pre = hooks('pre_deployment_hooks');
  const post = hooks('post_deployment_hooks');
  if (pre.length > 0 || post.length > 0) out.hooks = { pre, post };
  if (e.keep_releases !== undefined) out.keepReleases = e.keep_releases;
  if (e.shared !== undefined) out.shared = [...e.shared];
  if (e.build_command !== undefined) out.build = e.build_command;
  const lb = e.load_balancer;
  if (lb?.host !== undefined) {
    const problem = hostProblem(lb.host);
    if (problem) throw ctx.error(at('load_balancer', 'host'), problem);
  }
  if (lb !== undefined && lb.type === 'haproxy') {
    for (const k of ['file', 'upstream', 'nginx', 'nginx_args', 'pid_file', 'drain', 'max_fails', 'fail_timeout'] as const) {
      if (lb[k] !== undefined) throw ctx.error(at('load_balancer', k), `${k} is an nginx option; with type: haproxy use socket, backend, servers (server names), socat, pool_file, drain_timeout`);
    }
    if (lb.socket === undefined) throw ctx.error(at('load_balancer'), 'type: haproxy needs socket: the absolute path of HAProxy\'s admin socket (stats socket <path> level admin)');
    if (!path.posix.isAbsolute(lb.socket)) throw ctx.error(at('load_balancer', 'socket'), `expected an absolute path (starting with /), got ${ctx.show(at('load_balancer', 'socket'), lb.socket)}`);
    out.loadBalancer = {
      type: 'haproxy',
      socket: lb.socket,
      ...(lb.servers !== undefined ? { servers: { ...lb.servers } } : {}),
      ...(lb.backend !== undefined ? { backend: lb.backend } : {}),
      ...(lb.socat !== undefined ? { socat: lb.socat } : {}),
      ...(lb.pool_file !== undefined ? { poolFile: lb.pool_file } : {}),
      ...(lb.host !== undefined ? { host: lb.host } : {}),
      ...(lb.drain_timeout !== undefined ? { drainTimeoutMs: ms(lb.drain_timeout, at('load_balancer', 'drain_timeout')) } : {}),
      ...(lb.target !== undefined ? { target: lb.target } : {}),
    };
  } else if (lb !== undefined) {
    for (const k of ['socket', 'backend', 'socat', 'pool_file'] as const) {
      if (lb[k] !== undefined) throw ctx.error(at('load_balancer', k), `${k} is a haproxy option; set type: haproxy, or remove it`);
    }
    if (lb.file === undefined) throw ctx.error(at('load_balancer'), 'type: nginx needs file: the absolute path of the upstream file Fraisier writes (include it from your nginx config)');
    if (lb.servers === undefined) throw ctx.error(at('load_balancer'), 'type: nginx needs servers: the host:port address of every instance');
    const servers = lb.servers;
    if (!path.posix.isAbsolute(lb.file)) throw ctx.error(at('load_balancer', 'file'), `expected an absolute path (starting with /), got ${ctx.show(at('load_balancer', 'file'), lb.file)}`);
    const missing = e.instances.filter((i) => !(i in servers));
    if (missing.length > 0) {
      throw ctx.error(at('load_balancer', 'servers'), `missing the address of instance(s) ${missing.join(', ')}: every instance needs a server line`);
    }
    out.loadBalancer = {
      type: 'nginx',
      file: lb.file,
      servers: { ...servers },
      ...(lb.drain !== undefined ? { drain: lb.drain } : {}),
      ...(lb.max_fails !== undefined ? { maxFails: lb.max_fails } : {}),
      ...(lb.fail_timeout !== undefined ? { failTimeoutMs: ms(lb.fail_timeout, at('load_balancer', 'fail_timeout')) } : {}),
      ...(lb.upstream !== undefined ? { upstream: lb.upstream } : {}),
      ...(lb.host !== undefined ? { host: lb.host } : {}),
      ...(lb.nginx !== undefined ? { nginx: lb.nginx } : {}),
      ...(lb.nginx_args !== undefined ? { nginxArgs: [...lb.nginx_args] } : {}),
      ...(lb.pid_file !== undefined ? { pidFile: lb.pid_file } : {}),
      ...(lb.drain_timeout !== undefined ? { drainTimeoutMs: ms(lb.drain_timeout, at('load_balancer', 'drain_timeout')) } : {}),
      ...(lb.target !== undefined ? { target: lb.target } : {}),
    };
  }

  // blue-green
  const bg = e.blue_green_config;
  const verify = {
    ...(bg?.verify_command !== undefined ? { verifyCommand: bg.verify_command } : {}),
    ...(bg?.verify_timeout !== undefined ? { verifyTimeoutMs: ms(bg.verify_timeout, at('blue_green_config', 'verify_timeout')) } : {}),
  };
  if (strategy === 'blue_green') {
    if (!bg?.blue || !bg.green) {
      throw ctx.error(bg ? at('blue_green_config') : segs, 'deployment_strategy blue_green needs blue_green_config with blue: [...] and green: [...] (the instances of each colour)');
    }
    if (!lb) throw ctx.error(at('deployment_strategy'), 'deployment_strategy blue_green needs a load_balancer (it switches traffic between the colours)');
    if (lb.target !== undefined) throw ctx.error(at('load_balancer', 'target'), 'load_balancer.target is for the two-environment form (<name>_blue / <name>_green); with deployment_strategy blue_green, list the colours in blue_green_config');
    const blue = bg.blue;
    const green = bg.green;
    const both = blue.filter((h) => green.includes(h));
    if (both.length > 0) throw ctx.error(at('blue_green_config', 'green'), `${both.join(', ')} cannot be both blue and green`);
    const coloured = [...blue, ...green];
    const unknown = coloured.filter((h) => !e.instances.includes(h));
    if (unknown.length > 0) throw ctx.error(at('blue_green_config'), `${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not in instances (${e.instances.join(', ')})`);
    const none = e.instances.filter((h) => !coloured.includes(h));
    if (none.length > 0) throw ctx.error(at('blue_green_config'), `instance(s) ${none.join(', ')} in no colour: every instance is blue or green`);
    out.strategy = { type: 'blue_green', blue: [...blue], green: [...green], ...verify };
  } else if (bg !== undefined && (bg.blue !== undefined || bg.green !== undefined)) {
    throw ctx.error(at('blue_green_config'), `blue_green_config lists colours but deployment_strategy is ${strategy}: set deployment_strategy: blue_green`);
  } else if (bg !== undefined) {
    (out as NormalizedEnvironment & { colourVerify?: typeof verify }).colourVerify = verify;
  }
  return out;
}

/**
 * The seed's two-environment form of blue-green: `<name>_blue` and `<name>_green`, each with
 * `load_balancer.target` set to its colour, become one blue-green environment `<name>` (same app,
 * service, health check and load balancer; the instances and servers of both). The colour environments
 * themselves are replaced by it: deploying one colour alone would bypass the switch.
 */
function pairColours(ctx: Context, fraise: string, environments: Record<string, NormalizedEnvironment>): void {
  type WithVerify = NormalizedEnvironment & { colourVerify?: { verifyCommand?: string; verifyTimeoutMs?: number } };
  const coloured = Object.values(environments).filter((e) => e.loadBalancer?.target !== undefined) as WithVerify[];
  const segsOf = (env: string, ...rest: Segment[]): Segment[] => ['fraises', fraise, 'environments', env, ...rest];
  const done = new Set<string>();
  for (const e of coloured) {
    if (done.has(e.name)) continue;
    const colour = e.loadBalancer!.target!;
    const other = colour === 'blue' ? 'green' : 'blue';
    if (!e.name.endsWith(`_${colour}`)) {
      throw ctx.error(segsOf(e.name, 'load_balancer', 'target'), `an environment with load_balancer.target: ${colour} must be named <name>_${colour} (e.g. production_${colour}), got ${show(e.name)}`);
    }
    const base = e.name.slice(0, -colour.length - 1);
    const mate = environments[`${base}_${other}`] as WithVerify | undefined;
    if (!mate || mate.loadBalancer?.target !== other) {
      throw ctx.error(segsOf(e.name, 'load_balancer', 'target'), `${e.name} is the ${colour} colour of ${base}, but there is no ${base}_${other} environment with load_balancer.target: ${other}`);
    }
    if (environments[base]) throw ctx.error(segsOf(base), `${base}_blue and ${base}_green form the blue-green environment ${base}: rename this one`);
    const [blue, green] = colour === 'blue' ? [e, mate] : [mate, e];
    // Everything but the instances and servers must agree, or the colours would not be twins.
    const twin = (n: NormalizedEnvironment) =>
      JSON.stringify({ ...n, name: '', keyPath: '', instances: [], strategy: null, colourVerify: null, loadBalancer: { ...n.loadBalancer, servers: {}, target: null } });
    if (twin(blue) !== twin(green)) {
      throw ctx.error(segsOf(green.name), `${blue.name} and ${green.name} must differ only in instances and load_balancer.servers (same app_path, source, service, health check and load balancer file)`);
    }
    const both = blue.instances.filter((h) => green.instances.includes(h));
    if (both.length > 0) throw ctx.error(segsOf(green.name, 'instances'), `${both.join(', ')} cannot be both blue and green`);
    const verify = { ...blue.colourVerify, ...green.colourVerify };
    const merged: NormalizedEnvironment = {
      ...blue,
      name: base,
      keyPath: `${blue.keyPath} + ${green.name}`,
      instances: [...blue.instances, ...green.instances],
      strategy: { type: 'blue_green', blue: [...blue.instances], green: [...green.instances], ...verify },
      loadBalancer: { ...blue.loadBalancer!, servers: { ...blue.loadBalancer!.servers, ...green.loadBalancer!.servers } },
    };
    delete merged.loadBalancer!.target;
    delete (merged as WithVerify).colourVerify;
    delete environments[blue.name];
    delete environments[green.name];
    environments[base] = merged;
    done.add(blue.name).add(green.name);
  }
  for (const e of Object.values(environments) as WithVerify[]) delete e.colourVerify;
}

function normalizeHealth(
  ctx: Context,
  e: EnvironmentConfig,
  segs: Segment[],
  ms: (value: number | string, keySegs: Segment[]) => number,
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
    retries: rb?.health_check_retries ?? e.rolling_config?.health_check_retries ?? hc?.retries ?? 3,
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
