/**
 * The Coolify provider: one Coolify v4 application is one target. A release is a git commit (or ref) for
 * git-based applications, an image tag for Docker-image applications. Deploying a target sets that
 * version on the application (`PATCH`), queues a deployment (`POST /deploy`), polls it to a terminal
 * state, then confirms the application's containers run healthy. The contract it follows (checked against
 * Coolify's source, where it differs from the OpenAPI spec) is documented in docs/coolify.md.
 */
import { getMaxListeners, setMaxListeners } from 'node:events';
import type { Duplex } from 'node:stream';
import { connectTcp } from '../core/exec/tcp.js';
import type { Static } from '@sinclair/typebox';
import { Type } from '../core/typebox.js';
import { systemClock, type Clock } from '../core/clock.js';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError, TargetErrors, asFraisierError, type ErrorCode, type ErrorDetails } from '../core/errors.js';
import type { Command } from '../core/exec/command.js';
import type { ExecResult, Executor } from '../core/exec/executor.js';
import type { Logger } from '../core/log.js';
import { Secret } from '../core/secret.js';
import type { DeployContext, Provider, ProviderSession, Target } from '../core/types.js';

/** Options of the Coolify provider (`coolify({...})`). */
export interface CoolifyOptions {
  /**
   * Base URL of the Coolify instance, e.g. `https://coolify.example.com` or `https://app.coolify.io`
   * (with or without a trailing `/api/v1`). Must be `https://`, except for `localhost` and `127.0.0.1`.
   */
  url: string;
  /**
   * The application UUID(s) to deploy (shown in the application's URL in Coolify's UI). Each one is one
   * target, so a strategy such as `rolling()` deploys them one batch at a time.
   */
  applications: string | readonly string[];
  /**
   * The API token (Keys & Tokens > API tokens), as a {@link Secret}: it is never printed, in a log line,
   * an error or `--json`. Default: the `COOLIFY_TOKEN` environment variable. It needs the `read`, `write`
   * and `deploy` abilities (or `root`).
   */
  token?: Secret;
  /** Rebuild without Docker's cache (`force=true` on `/deploy`). Default false: the parameter is left out. */
  forceRebuild?: boolean;
  /** Pause between two reads of a deployment's status. Default `'3s'`. */
  pollInterval?: Duration;
  /**
   * Longest time one Coolify deployment may take, from queued to finished, and then for the application
   * to report `running:healthy`. Past it the deployment is cancelled and the target fails. Default `'20m'`.
   */
  timeout?: Duration;
  /**
   * Roll back with Coolify's `POST /applications/{uuid}/rollback` (v4.3.0 and later: redeploys the image
   * kept on the server, no rebuild) instead of a new deployment of the previous version. Detected with
   * `GET /version`: on an older server the provider says so and redeploys. Default false.
   */
  useRollbackEndpoint?: boolean;
  /**
   * Path probed on the application's own URL (its `fqdn`, the first one when it has several) after
   * Coolify reports it running, e.g. `/health`: it must answer 2xx within `pollInterval` retries until
   * `timeout`. Default: no probe (Coolify's own healthcheck, through `running:healthy`, is trusted).
   */
  healthPath?: string;
  /** Limit for one HTTP request to the Coolify API. Default `'30s'`. */
  requestTimeout?: Duration;
  /**
   * Requests sent per minute at most, by this provider (all its applications together): it waits
   * instead of running into Coolify's rate limit (`API_RATE_LIMIT`, 200 a minute per user by default).
   * 0 turns pacing off. Default 200.
   */
  maxRequestsPerMinute?: number;
  /** Retries of a request answered 429 (rate limit or full deploy queue), waiting `Retry-After` each time. Default 3. */
  maxRetries?: number;
  /** The longest `Retry-After` wait honoured; a longer one is cut to this. Default `'60s'`. */
  maxRetryWait?: Duration;
  /** The HTTP client (the global `fetch`, undici, by default). Tests and proxies inject their own. */
  fetch?: typeof fetch;
  /** Clock for the waits before a deployment starts (preflight retries). Default: the system clock. Tests inject a fake one. */
  clock?: Clock;
}

/** One Coolify application, as a deployment target. */
export interface CoolifyTarget extends Target {
  readonly kind: 'coolify';
  /** The application UUID. */
  readonly uuid: string;
}

/**
 * What kind of failure a Coolify error is, for a caller that can try another provider (failover):
 * - `availability`: Coolify or the application is not available now (429 after the retries, 5xx, network
 *   errors, a `failed` deployment, a failed health check): another provider may serve;
 * - `configuration`: the request itself is wrong (401, 403, 404, 422, a resource that is not an
 *   application): it fails the same way everywhere, so the deployment fails at once;
 * - `cancelled`: someone cancelled the deployment in Coolify (`cancelled-by-user`), or Ctrl-C here.
 */
export type CoolifyFailure = 'availability' | 'configuration' | 'cancelled';

/** A failure met talking to Coolify: a {@link FraisierError} that also says which kind ({@link CoolifyFailure}). */
export class CoolifyError extends FraisierError {
  /** Availability, configuration, or cancelled: see {@link CoolifyFailure}. */
  readonly failure: CoolifyFailure;
  /** The HTTP status Coolify answered, when the failure is an HTTP answer. */
  readonly httpStatus?: number;
  constructor(code: ErrorCode, message: string, failure: CoolifyFailure, details: ErrorDetails & { httpStatus?: number } = {}) {
    const { httpStatus, ...rest } = details;
    super(code, message, rest);
    this.name = 'CoolifyError';
    this.failure = failure;
    if (httpStatus !== undefined) this.httpStatus = httpStatus;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), failure: this.failure, httpStatus: this.httpStatus };
  }
}

/**
 * The failure class of any error a deployment met: a {@link CoolifyError}'s own, `availability` for a
 * failed health check or an unreachable target, `configuration` for a configuration or usage error, else
 * null (unknown: treat as not retryable elsewhere).
 */
export function failureClass(err: unknown): CoolifyFailure | null {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof CoolifyError) return e.failure;
    e = (e as { cause?: unknown }).cause;
  }
  if (err instanceof TargetErrors) {
    // several targets failed at once (preflight): one class if they agree, configuration wins otherwise
    const classes = new Set([...err.byTarget.values()].map((e) => failureClass(e)));
    if (classes.size === 1) return [...classes][0]!;
    if (classes.has('configuration')) return 'configuration';
  }
  if (!(err instanceof FraisierError)) return null;
  if (err.code === 'E_HEALTH' || err.code === 'E_UNREACHABLE') return 'availability';
  if (err.code === 'E_CONFIG' || err.code === 'E_USAGE' || err.code === 'E_VERSION') return 'configuration';
  if (err.code === 'E_ABORTED') return 'cancelled';
  return null;
}

/** Terminal states of a Coolify deployment (`ApplicationDeploymentStatus`). There is no plain `cancelled`. */
export const TERMINAL_STATUSES = ['finished', 'failed', 'cancelled-by-user'] as const;

/** What Coolify says when a deployment of the same commit is already queued (with a `deployment_uuid` never stored). */
const ALREADY_QUEUED = /already queued/i;

/** Coolify's rule for `git_commit_sha` (and what we also use for image tags). */
const VERSION_RE = /^[a-zA-Z0-9][a-zA-Z0-9._\-/]*$/;

/** A parsed `GET /version` answer: `4.3.10`, `4.0.0-beta.474`. */
export interface CoolifyVersion {
  raw: string;
  major: number;
  minor: number;
  patch: number;
  /** The beta number for `4.0.0-beta.N`, else null. */
  beta: number | null;
}

/** Parses Coolify's plain-text version (`4.3.10`, `v4.0.0-beta.474`); null when it is not one. */
export function parseCoolifyVersion(text: string): CoolifyVersion | null {
  const m = /^\s*v?(\d+)\.(\d+)\.(\d+)(?:-beta\.(\d+))?/.exec(text);
  if (!m) return null;
  return { raw: text.trim(), major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), beta: m[4] === undefined ? null : Number(m[4]) };
}

/** True when `v` is at least `major.minor` (a beta is older than its release). */
export function versionAtLeast(v: CoolifyVersion | null, major: number, minor: number): boolean {
  if (!v) return false;
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.beta === null;
}

/** The URL problem, or undefined: https is required except for localhost / 127.0.0.1 / ::1. */
export function coolifyUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `expected an absolute URL such as https://coolify.example.com, got ${JSON.stringify(url)}`;
  }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && local) return undefined;
  if (u.protocol === 'http:')
    return `expected an https:// URL (the API token travels with every request; http is allowed only for localhost), got ${JSON.stringify(url)}`;
  return `expected an https:// URL, got ${JSON.stringify(url)}`;
}

/** One request to the Coolify API, as data: what a dry run prints and a unit test asserts. */
export interface CoolifyCall {
  method: 'GET' | 'POST' | 'PATCH';
  /** Path under `/api/v1`, e.g. `/applications/abc123`. */
  path: string;
  /** Query parameters. */
  query?: Record<string, string>;
  /** JSON body. */
  body?: Record<string, unknown>;
  /** Changes state: a dry run prints it and does not send it; Ctrl-C never cuts it off half-way. */
  mutating: boolean;
  /** What it does, for messages: `deploying abc123`. */
  what: string;
}

const seg = (s: string) => encodeURIComponent(s);

/** The requests the Coolify provider sends, built as data (the contract's flow, docs/coolify.md). */
export const coolifyCalls = {
  /** `GET /version`: plain text such as `4.3.10` (ability read). */
  version: (): CoolifyCall => ({ method: 'GET', path: '/version', mutating: false, what: 'reading its version' }),
  /** `GET /applications/{uuid}`: its version, status, fqdn and build pack. */
  readApp: (uuid: string): CoolifyCall => ({ method: 'GET', path: `/applications/${seg(uuid)}`, mutating: false, what: `reading application ${uuid}` }),
  /** `PATCH /applications/{uuid}` with `git_commit_sha` (git apps) or `docker_registry_image_tag` (image apps). */
  setVersion: (uuid: string, field: 'git_commit_sha' | 'docker_registry_image_tag', value: string): CoolifyCall => ({
    method: 'PATCH',
    path: `/applications/${seg(uuid)}`,
    body: { [field]: value },
    mutating: true,
    what: `setting ${field} of ${uuid} to ${value}`,
  }),
  /**
   * `POST /deploy?uuid=` (never GET: 405 since v4.2). `force` only when wanted: before v4.2 any
   * non-empty value, "false" included, forced a rebuild.
   */
  deploy: (uuid: string, force: boolean): CoolifyCall => ({
    method: 'POST',
    path: '/deploy',
    query: force ? { uuid, force: 'true' } : { uuid },
    mutating: true,
    what: `deploying ${uuid}`,
  }),
  /** `POST /applications/{uuid}/rollback` with `{commit}` (v4.3.0 and later). */
  rollback: (uuid: string, commit: string): CoolifyCall => ({
    method: 'POST',
    path: `/applications/${seg(uuid)}/rollback`,
    body: { commit },
    mutating: true,
    what: `rolling ${uuid} back to ${commit}`,
  }),
  /** `GET /deployments/{uuid}`: one deployment and its status. */
  readDeployment: (id: string): CoolifyCall => ({ method: 'GET', path: `/deployments/${seg(id)}`, mutating: false, what: `reading deployment ${id}` }),
  /** `GET /deployments/applications/{uuid}?skip=0&take=N`: `{count, deployments}`, newest first. */
  listDeployments: (uuid: string, take: number): CoolifyCall => ({
    method: 'GET',
    path: `/deployments/applications/${seg(uuid)}`,
    query: { skip: '0', take: String(take) },
    mutating: false,
    what: `listing the deployments of ${uuid}`,
  }),
  /** `POST /deployments/{uuid}/cancel` (ability deploy, since beta.436). */
  cancel: (id: string): CoolifyCall => ({ method: 'POST', path: `/deployments/${seg(id)}/cancel`, mutating: true, what: `cancelling deployment ${id}` }),
};

/** An answer of the Coolify API. */
interface Answer {
  status: number;
  /** Parsed JSON, or the text when the body is not JSON. */
  body: unknown;
  text: string;
  headers: Headers;
}

interface CallOptions {
  /** Aborts waits, and the request itself unless it changes state. */
  signal?: AbortSignal;
  clock: Clock;
  /** The target the error names. */
  target?: string;
}

function messageOf(body: unknown, text: string): string {
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    const b = body as { message: string; errors?: Record<string, string[]> };
    if (b.errors && typeof b.errors === 'object') {
      const detail = Object.entries(b.errors)
        .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : String(v)}`)
        .join('; ');
      return detail ? `${b.message} (${detail})` : b.message;
    }
    return b.message;
  }
  const t = text.trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t || '(empty body)';
}

/** The small HTTP client: bearer token, JSON, 429 retries, timeouts, error mapping, dry-run printing. */
class CoolifyClient {
  readonly base: string;
  readonly api: string;
  readonly #token: Secret;
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
  readonly maxRetryWaitMs: number;
  /** Every request sent (method and path), for benchmarks and tests. */
  readonly stats = { requests: 0, retries: 0, paced: 0 };
  log: Logger | null = null;
  dryRun = false;
  readonly fetch: typeof fetch;
  readonly perMinute: number;
  /** When each of the last requests was (or is booked to be) sent, oldest first: the pacing window. */
  readonly #sent: number[] = [];

  constructor(
    url: string,
    token: Secret,
    options: { requestTimeoutMs: number; maxRetries: number; maxRetryWaitMs: number; perMinute: number; fetch?: typeof fetch },
  ) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.perMinute = options.perMinute;
    const trimmed = url.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
    this.base = trimmed;
    this.api = `${trimmed}/api/v1`;
    this.#token = token;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.maxRetries = options.maxRetries;
    this.maxRetryWaitMs = options.maxRetryWaitMs;
  }

  /** `POST /api/v1/deploy?uuid=abc`: what a dry run prints (the token is never part of it). */
  static show(c: CoolifyCall): string {
    const qs = c.query && Object.keys(c.query).length > 0 ? `?${new URLSearchParams(c.query).toString()}` : '';
    return `${c.method} /api/v1${c.path}${qs}${c.body !== undefined ? ` ${JSON.stringify(c.body)}` : ''}`;
  }

  /**
   * Sends one request and returns the answer, whatever its status, except: 429 is retried (waiting
   * `Retry-After`, at most `maxRetries` times), and a GET answered 5xx or lost on the network is retried
   * twice. In a dry run a mutating request is printed and not sent (resolves null).
   */
  async call(c: CoolifyCall, o: CallOptions): Promise<Answer | null> {
    const { method } = c;
    if (this.dryRun) {
      this.log?.info(`${c.mutating ? 'would send' : 'reads'}: ${CoolifyClient.show(c)} (Authorization: Bearer [REDACTED])`, o.target ?? null);
      if (c.mutating) return null;
    }
    const url = `${this.api}${c.path}${c.query && Object.keys(c.query).length > 0 ? `?${new URLSearchParams(c.query).toString()}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${this.#token.reveal()}` };
    if (c.body !== undefined) headers['content-type'] = 'application/json';
    let limited = 0;
    let lost = 0;
    for (;;) {
      if (o.signal?.aborted) throw o.signal.reason;
      await this.pace(o.clock, o.signal);
      // A request that changes state is never cut off half-way by Ctrl-C (it could be applied while we
      // believe it was not): only its timeout stops it. Reads and waits stop at once.
      const signals = [AbortSignal.timeout(this.requestTimeoutMs), ...(o.signal && !c.mutating ? [o.signal] : [])];
      let res: Response;
      let text: string;
      try {
        this.stats.requests++;
        res = await this.fetch(url, {
          method,
          headers,
          redirect: 'manual',
          signal: AbortSignal.any(signals),
          ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}),
        });
        text = await res.text();
      } catch (err) {
        if (o.signal?.aborted && !c.mutating) throw o.signal.reason;
        const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
        if (method === 'GET' && lost < 2) {
          lost++;
          this.stats.retries++;
          await o.clock.sleep(1000, o.signal);
          continue;
        }
        throw new CoolifyError('E_UNREACHABLE', `cannot reach Coolify at ${this.base} while ${c.what}: ${cause}`, 'availability', {
          ...(o.target ? { target: o.target } : {}),
          hint: `check that ${this.base} is up and reachable from here`,
          cause: err,
        });
      }
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        // plain text (GET /version) or an HTML error page
      }
      if (res.status === 429) {
        if (limited < this.maxRetries) {
          limited++;
          this.stats.retries++;
          const after = Number(res.headers.get('retry-after'));
          const waitMs = Math.min(this.maxRetryWaitMs, Number.isFinite(after) && after > 0 ? after * 1000 : 1000);
          this.log?.warn(
            `Coolify answered 429 (${messageOf(body, text)}) while ${c.what}: retrying in ${Math.round(waitMs / 1000)} s (${limited}/${this.maxRetries})`,
            o.target ?? null,
          );
          await o.clock.sleep(waitMs, o.signal);
          continue;
        }
        throw new CoolifyError(
          'E_UNREACHABLE',
          `Coolify answered 429 (${messageOf(body, text)}) while ${c.what}, still after ${this.maxRetries} retries`,
          'availability',
          {
            ...(o.target ? { target: o.target } : {}),
            httpStatus: 429,
            hint: 'the deploy queue is full or the API rate limit (200 requests a minute by default) is reached: wait, then deploy again',
          },
        );
      }
      if (res.status >= 500 && method === 'GET' && lost < 2) {
        lost++;
        this.stats.retries++;
        await o.clock.sleep(1000, o.signal);
        continue;
      }
      return { status: res.status, body, text, headers: res.headers };
    }
  }

  /**
   * Waits until one more request fits in the last minute's budget. The slot is booked before waiting,
   * so requests made in parallel (a rolling batch) queue up instead of all passing at once.
   */
  private async pace(clock: Clock, signal?: AbortSignal): Promise<void> {
    if (this.perMinute <= 0) return;
    const now = clock.now();
    while (this.#sent.length > 0 && this.#sent[0]! <= now - 60_000) this.#sent.shift();
    const at = this.#sent.length >= this.perMinute ? this.#sent[this.#sent.length - this.perMinute]! + 60_000 : now;
    this.#sent.push(Math.max(at, now));
    if (at > now) {
      this.stats.paced++;
      await clock.sleep(at - now, signal);
    }
  }

  /** The answer if it is 2xx, else the error a user can act on (by status). */
  ok(a: Answer, o: { what: string; target?: string; uuid?: string }): Answer {
    if (a.status >= 200 && a.status < 300) return a;
    throw this.error(a, o);
  }

  error(a: Answer, o: { what: string; target?: string; uuid?: string }): CoolifyError {
    const msg = messageOf(a.body, a.text);
    const t = o.target ? { target: o.target } : {};
    const said = `Coolify answered ${a.status} while ${o.what}: ${msg}`;
    if (a.status === 401 || (a.status === 400 && /invalid token/i.test(msg))) {
      return new CoolifyError('E_CONFIG', said, 'configuration', {
        ...t,
        httpStatus: a.status,
        key: 'token',
        hint: `the API token is missing, unknown or revoked at ${this.base}, or its user left the token's team: create one in Coolify (Keys & Tokens > API tokens) and put it in COOLIFY_TOKEN (or token_env)`,
      });
    }
    if (a.status === 403) {
      const missing = /Missing required permissions:\s*(.+)/i.exec(msg)?.[1];
      const hint = missing
        ? `give the token the ${missing.trim()} ability (or root): deploying needs read, write and deploy; abilities beyond read also need the admin or owner role`
        : /API is disabled/i.test(msg)
          ? `enable the API in Coolify (Settings > Advanced > API Access) at ${this.base}`
          : /not allowed to access/i.test(msg)
            ? `add this machine's IP address to the API allowlist in Coolify (Settings > Advanced)`
            : /role/i.test(msg)
              ? "the token's user is only a member of its team: use a token of an admin or owner"
              : "the token's team may not own this resource: use a token of the team the application belongs to";
      return new CoolifyError('E_CONFIG', said, 'configuration', { ...t, httpStatus: 403, key: 'token', hint });
    }
    if (a.status === 404) {
      return new CoolifyError('E_CONFIG', said, 'configuration', {
        ...t,
        httpStatus: 404,
        key: 'application_id',
        hint: o.uuid
          ? `check the application UUID ${o.uuid} (it is in the application's URL in Coolify) and that the token belongs to the team that owns it`
          : 'check the URL points at the Coolify instance and the token belongs to the right team',
      });
    }
    if (a.status === 422 || a.status === 400 || a.status === 409 || a.status === 405) {
      return new CoolifyError('E_CONFIG', said, 'configuration', {
        ...t,
        httpStatus: a.status,
        hint: 'Coolify refused the request as invalid: check the version and the application settings',
      });
    }
    if (a.status >= 500) {
      return new CoolifyError('E_UNREACHABLE', said, 'availability', {
        ...t,
        httpStatus: a.status,
        hint: `Coolify at ${this.base} has an internal error: check its logs, or deploy again later`,
      });
    }
    return new CoolifyError('E_COMMAND', said, a.status >= 300 && a.status < 400 ? 'configuration' : 'availability', {
      ...t,
      httpStatus: a.status,
      ...(a.status >= 300 && a.status < 400 ? { hint: `a redirect to ${a.headers.get('location') ?? '?'}: set url to the Coolify instance itself` } : {}),
    });
  }
}

/** Fields of `GET /applications/{uuid}` the provider reads. */
interface AppInfo {
  uuid: string;
  name: string;
  status: string;
  fqdn: string | null;
  build_pack: string;
  git_commit_sha: string | null;
  docker_registry_image_tag: string | null;
  health_check_enabled: boolean;
}

/** A Coolify application runs as a container on Coolify's servers: Fraisier runs no command on it. */
class CoolifyExecutor implements Executor {
  readonly name: string;
  readonly stats = { commands: 0, busyMs: 0 };
  constructor(name: string) {
    this.name = name;
  }
  async run(cmd: Command): Promise<ExecResult> {
    throw new FraisierError('E_CONFIG', `${this.name} is a Coolify application: Fraisier cannot run commands on it (${cmd.label ?? 'a command'})`, {
      target: this.name,
      hint: 'use http or tcp health checks (reached from this machine), or the provider healthPath option',
    });
  }
  /** A TCP connection from this machine (a Coolify application is reached on its public address). */
  connectTcp(host: string, port: number): Promise<Duplex> {
    return connectTcp(host, port);
  }
  async close(): Promise<void> {}
}

/** The provider's own record of one target during a deployment. */
interface Track {
  /** A deployment was queued on this application during this run (so a rollback must redeploy). */
  queued: boolean;
  /** The deployment being polled, if any. */
  deployment: string | null;
}

/** The Coolify provider object, with its client's request counters. */
export interface CoolifyProvider extends Provider {
  /** Requests sent to Coolify so far (retries included), retries made, and requests that waited for the pacing budget. */
  readonly stats: { requests: number; retries: number; paced: number };
  /** The server version `open` read from `GET /version`, or null. */
  readonly serverVersion: CoolifyVersion | null;
}

/**
 * The Coolify provider: `coolify({ url, applications: ['abc123', 'def456'] })`. Versions are git commits
 * (or refs) for git-based applications and image tags for Docker-image ones; `--version` is required.
 *
 * Bad options (an `http://` URL to a host that is not local, no application, `COOLIFY_TOKEN` not set)
 * are an `E_CONFIG` error thrown by `check()` and `open()`, that is when the environment is used (a
 * deploy, a rollback, a status: exit 2, nothing sent), not when the deploy script is loaded: a script
 * with a broken environment still runs its other ones, and never ends in a stack trace.
 */
export function coolify(options: CoolifyOptions): CoolifyProvider {
  try {
    return createCoolify(options);
  } catch (err) {
    if (!(err instanceof FraisierError) || err.code !== 'E_CONFIG') throw err;
    return unusableCoolify(options, err);
  }
}

/** A provider that only reports its configuration problem: every use throws it, before anything is sent. */
function unusableCoolify(options: CoolifyOptions, problem: FraisierError): CoolifyProvider {
  const list = typeof options.applications === 'string' ? [options.applications] : Array.isArray(options.applications) ? options.applications : [];
  const uuids = [...new Set(list.filter((u) => typeof u === 'string' && /^[A-Za-z0-9_-]+$/.test(u)))];
  const fail = (): never => {
    throw problem;
  };
  return {
    name: 'provider:coolify',
    targets: uuids.map((uuid) => ({ name: uuid, kind: 'coolify', uuid })),
    stats: { requests: 0, retries: 0, paced: 0 },
    serverVersion: null,
    check: fail,
    open: async () => fail(),
    resolveVersion: async () => fail(),
    currentRelease: async () => fail(),
    releases: async () => fail(),
    prepare: async () => fail(),
    activate: async () => fail(),
    finalize: async () => fail(),
    executor: fail,
    close: async () => {},
  };
}

function createCoolify(options: CoolifyOptions): CoolifyProvider {
  const problem = coolifyUrlProblem(options.url);
  if (problem) throw new FraisierError('E_CONFIG', `coolify url: ${problem}`, { key: 'url' });
  const uuids = typeof options.applications === 'string' ? [options.applications] : [...options.applications];
  if (uuids.length === 0) throw new FraisierError('E_CONFIG', 'coolify applications: expected at least one application UUID', { key: 'applications' });
  for (const u of uuids) {
    if (typeof u !== 'string' || !/^[A-Za-z0-9_-]+$/.test(u)) {
      throw new FraisierError('E_CONFIG', `coolify applications: expected application UUIDs (letters, digits, - and _), got ${JSON.stringify(u)}`, {
        key: 'applications',
      });
    }
  }
  if (new Set(uuids).size !== uuids.length)
    throw new FraisierError('E_CONFIG', 'coolify applications: an application UUID is listed twice', { key: 'applications' });
  let token = options.token;
  if (token === undefined) {
    const v = process.env.COOLIFY_TOKEN;
    if (!v) {
      throw new FraisierError('E_CONFIG', 'coolify token: the environment variable COOLIFY_TOKEN is not set', {
        key: 'token',
        hint: 'export COOLIFY_TOKEN=<an API token from Coolify (Keys & Tokens > API tokens)>, or pass token: secret(...)',
      });
    }
    token = new Secret(v, 'COOLIFY_TOKEN');
  }
  if (!(token instanceof Secret))
    throw new FraisierError('E_CONFIG', 'coolify token: expected a Secret (secret(value)), so that it is never printed', { key: 'token' });
  const pollMs = toMs(options.pollInterval ?? '3s', 'pollInterval');
  const timeoutMs = toMs(options.timeout ?? '20m', 'timeout');
  if (options.healthPath !== undefined && !/^\/[^\s]*$/.test(options.healthPath)) {
    throw new FraisierError('E_CONFIG', `coolify healthPath: expected a path starting with /, got ${JSON.stringify(options.healthPath)}`, {
      key: 'healthPath',
    });
  }
  const client = new CoolifyClient(options.url, token, {
    requestTimeoutMs: toMs(options.requestTimeout ?? '30s', 'requestTimeout'),
    maxRetries: options.maxRetries ?? 3,
    maxRetryWaitMs: toMs(options.maxRetryWait ?? '60s', 'maxRetryWait'),
    perMinute: options.maxRequestsPerMinute ?? 200,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const openClock = options.clock ?? systemClock;
  const targets: CoolifyTarget[] = uuids.map((uuid) => ({ name: uuid, kind: 'coolify', uuid }));
  const apps = new Map<string, AppInfo>();
  const tracks = new Map<string, Track>();
  const executors = new Map<string, CoolifyExecutor>();
  let serverVersion: CoolifyVersion | null = null;

  const track = (t: Target): Track => {
    const known = tracks.get(t.name);
    if (known) return known;
    const s: Track = { queued: false, deployment: null };
    tracks.set(t.name, s);
    return s;
  };
  const uuidOf = (t: Target): string => (t as CoolifyTarget).uuid ?? t.name;

  async function readApp(t: Target, clock: Clock, signal?: AbortSignal): Promise<AppInfo> {
    const uuid = uuidOf(t);
    const call = coolifyCalls.readApp(uuid);
    const what = call.what;
    const a = await client.call(call, { clock, target: t.name, ...(signal ? { signal } : {}) });
    const body = client.ok(a!, { what, target: t.name, uuid }).body as Partial<AppInfo> | null;
    if (!body || typeof body !== 'object' || typeof body.uuid !== 'string') {
      throw new CoolifyError('E_COMMAND', `Coolify answered ${what} with something that is not an application`, 'configuration', { target: t.name });
    }
    const info: AppInfo = {
      uuid: body.uuid,
      name: typeof body.name === 'string' ? body.name : uuid,
      status: typeof body.status === 'string' ? body.status : '',
      fqdn: typeof body.fqdn === 'string' && body.fqdn ? body.fqdn : null,
      build_pack: typeof body.build_pack === 'string' ? body.build_pack : '',
      git_commit_sha: typeof body.git_commit_sha === 'string' ? body.git_commit_sha : null,
      docker_registry_image_tag: typeof body.docker_registry_image_tag === 'string' ? body.docker_registry_image_tag : null,
      health_check_enabled: body.health_check_enabled !== false,
    };
    apps.set(t.name, info);
    return info;
  }

  const fieldOf = (app: AppInfo): 'git_commit_sha' | 'docker_registry_image_tag' =>
    app.build_pack === 'dockerimage' ? 'docker_registry_image_tag' : 'git_commit_sha';
  const versionOf = (app: AppInfo): string | null => app[fieldOf(app)] || null;

  /** The real deployment when `/deploy` said "already queued" (its uuid was never stored): the newest active one. */
  async function findActive(t: Target, version: string, ctx: DeployContext, signal: AbortSignal): Promise<string | null> {
    const uuid = uuidOf(t);
    const call = coolifyCalls.listDeployments(uuid, 10);
    const a = client.ok((await client.call(call, { clock: ctx.clock, signal, target: t.name }))!, { what: call.what, target: t.name, uuid });
    const list = deploymentsOf(a.body);
    const active = list.filter((d) => d.status === 'queued' || d.status === 'in_progress');
    const same = active.find((d) => d.commit === version || d.commit === 'HEAD') ?? active[0];
    return same?.deployment_uuid ?? null;
  }

  /** POST cancel; a 5xx (Coolify before v4.3.7 could answer 500 and still cancel) or lost answer: read the status again. */
  async function cancel(t: Target, deployment: string, ctx: DeployContext): Promise<void> {
    // no signal: the deployment is being stopped because of Ctrl-C; these requests must still go out
    const calm = ctx.clock;
    const call = coolifyCalls.cancel(deployment);
    const what = call.what;
    let answer: Answer | null = null;
    try {
      answer = await client.call(call, { clock: calm, target: t.name });
    } catch (err) {
      ctx.log.warn(`cancel request failed (${asFraisierError(err).message}): reading the deployment's status`, t.name);
    }
    if (answer && answer.status >= 200 && answer.status < 300) {
      ctx.log.warn(`Coolify deployment ${deployment} cancelled`, t.name);
      return;
    }
    if (answer && answer.status === 400) {
      ctx.log.warn(`Coolify deployment ${deployment} could not be cancelled: ${messageOf(answer.body, answer.text)}`, t.name);
      return;
    }
    if (answer && answer.status < 500) {
      ctx.log.warn(`cancelling Coolify deployment ${deployment}: ${client.error(answer, { what, target: t.name }).message}`, t.name);
      return;
    }
    try {
      const again = await client.call(coolifyCalls.readDeployment(deployment), { clock: calm, target: t.name });
      const status = (again?.body as { status?: string } | null)?.status;
      ctx.log.warn(`cancel of Coolify deployment ${deployment} answered ${answer?.status ?? 'nothing'}; its status is now ${status ?? 'unknown'}`, t.name);
    } catch (err) {
      ctx.log.warn(`cancel of Coolify deployment ${deployment}: status unknown (${asFraisierError(err).message})`, t.name);
    }
  }

  /** Polls a deployment until a terminal state; Ctrl-C and the timeout cancel it. Returns its final status. */
  async function poll(t: Target, deployment: string, version: string, ctx: DeployContext, deadline: number): Promise<void> {
    const uuid = uuidOf(t);
    let current = deployment;
    let relisted = false;
    let last = '';
    for (;;) {
      if (ctx.signal.aborted) {
        await cancel(t, current, ctx);
        throw asFraisierError(ctx.signal.reason, 'E_ABORTED');
      }
      if (ctx.clock.now() > deadline) {
        await cancel(t, current, ctx);
        throw new CoolifyError(
          'E_COMMAND',
          `Coolify deployment ${current} of ${uuid} did not finish within ${Math.round(timeoutMs / 1000)} s (last status: ${last || 'unknown'}); cancelled`,
          'availability',
          {
            target: t.name,
            step: 'activate',
            hint: 'raise timeout, or check the deployment in Coolify',
          },
        );
      }
      const call = coolifyCalls.readDeployment(current);
      const what = call.what;
      let a: Answer | null;
      try {
        a = await client.call(call, { clock: ctx.clock, signal: ctx.signal, target: t.name });
      } catch (err) {
        if (ctx.signal.aborted) continue;
        throw err;
      }
      if (a!.status === 404 && !relisted) {
        // A uuid we were just given but Coolify never stored: the deploy was skipped (already queued).
        relisted = true;
        const real = await findActive(t, version, ctx, ctx.signal).catch(() => null);
        if (real && real !== current) {
          ctx.log.info(`deployment ${current} does not exist (skipped by Coolify): following ${real}, already queued for this application`, t.name);
          current = real;
          track(t).deployment = real;
          continue;
        }
        throw new CoolifyError(
          'E_COMMAND',
          `Coolify gave deployment ${current} for ${uuid} but does not know it, and no deployment of this application is queued or running: the deploy was skipped or the queue was full`,
          'availability',
          {
            target: t.name,
            step: 'activate',
            httpStatus: 404,
          },
        );
      }
      const d = client.ok(a!, { what, target: t.name }).body as { status?: string; deployment_url?: string; application_id?: unknown } | null;
      const status = String(d?.status ?? '');
      if (status !== last) ctx.log.info(`Coolify deployment ${current}: ${status}`, t.name);
      last = status;
      if (status === 'finished') return;
      if (status === 'failed') {
        throw new CoolifyError('E_COMMAND', `Coolify deployment ${current} of ${uuid} (${version}) failed`, 'availability', {
          target: t.name,
          step: 'activate',
          hint: `read its logs in Coolify${d?.deployment_url ? `: ${client.base}${d.deployment_url}` : ''}`,
        });
      }
      if (status === 'cancelled-by-user') {
        throw new CoolifyError('E_COMMAND', `Coolify deployment ${current} of ${uuid} was cancelled in Coolify (cancelled-by-user)`, 'cancelled', {
          target: t.name,
          step: 'activate',
        });
      }
      try {
        await ctx.clock.sleep(pollMs, ctx.signal);
      } catch {
        // Ctrl-C: handled at the top of the loop (cancel, then stop)
      }
    }
  }

  /** After `finished`: the containers must report `running:healthy` (`running:` without a healthcheck). */
  async function confirmRunning(t: Target, ctx: DeployContext, deadline: number): Promise<AppInfo> {
    let bad = 0;
    for (;;) {
      const app = await readApp(t, ctx.clock, ctx.signal);
      const s = app.status;
      if (s.startsWith('running:healthy') || (!app.health_check_enabled && s.startsWith('running:') && !s.startsWith('running:unhealthy'))) return app;
      const transient = s.startsWith('starting') || s.startsWith('restarting') || s === '' || s.startsWith('running:unknown');
      if (!transient) bad++;
      if (bad >= 3 || ctx.clock.now() > deadline) {
        throw new CoolifyError(
          'E_HEALTH',
          `${app.name} (${app.uuid}) is ${s || 'in an unknown state'} after its deployment, not running:healthy`,
          'availability',
          {
            target: t.name,
            step: 'health',
            hint: "check the application's healthcheck and logs in Coolify",
          },
        );
      }
      await ctx.clock.sleep(pollMs, ctx.signal);
    }
  }

  /** The optional probe of `<fqdn><healthPath>` from this machine. */
  async function probe(t: Target, app: AppInfo, ctx: DeployContext, deadline: number): Promise<void> {
    if (!options.healthPath) return;
    const fqdn = app.fqdn?.split(',')[0]?.trim();
    if (!fqdn) {
      ctx.log.warn(`healthPath is set but ${app.name} has no domain (fqdn): probe skipped`, t.name);
      return;
    }
    const url = `${fqdn.replace(/\/+$/, '')}${options.healthPath}`;
    let reason = '';
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await client.fetch(url, {
          signal: AbortSignal.any([AbortSignal.timeout(Math.max(1000, Math.min(10_000, client.requestTimeoutMs))), ctx.signal]),
        });
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 300) {
          ctx.log.info(`GET ${url}: ${res.status}`, t.name);
          return;
        }
        reason = `HTTP ${res.status}`;
      } catch (err) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        reason = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      }
      ctx.log.info(`GET ${url}: attempt ${attempt} failed (${reason})`, t.name);
      if (attempt >= 3 && ctx.clock.now() + pollMs > deadline) break;
      if (attempt >= 10) break;
      await ctx.clock.sleep(pollMs, ctx.signal);
    }
    throw new CoolifyError('E_HEALTH', `health check failed on ${t.name}: GET ${url}: ${reason}`, 'availability', { target: t.name, step: 'health' });
  }

  async function patchVersion(
    t: Target,
    field: 'git_commit_sha' | 'docker_registry_image_tag',
    value: string,
    ctx: DeployContext,
    signal: AbortSignal,
  ): Promise<void> {
    const uuid = uuidOf(t);
    const call = coolifyCalls.setVersion(uuid, field, value);
    const a = await client.call(call, { clock: ctx.clock, signal, target: t.name });
    if (a) client.ok(a, { what: call.what, target: t.name, uuid });
  }

  const provider: CoolifyProvider = {
    name: 'provider:coolify',
    targets,
    get stats() {
      return client.stats;
    },
    get serverVersion() {
      return serverVersion;
    },

    async open(session: ProviderSession) {
      client.log = session.log;
      client.dryRun = session.dryRun;
      // Every application polled in parallel waits on this signal: not a leak, no warning for 11 or more.
      setMaxListeners(Math.max(getMaxListeners(session.signal), 10 + 2 * targets.length), session.signal);
      tracks.clear();
      for (const t of targets) executors.set(t.name, new CoolifyExecutor(t.name));
      const call = coolifyCalls.version();
      const v = await client.call(call, { clock: openClock, signal: session.signal });
      serverVersion = parseCoolifyVersion(client.ok(v!, { what: call.what }).text);
      if (options.useRollbackEndpoint && !versionAtLeast(serverVersion, 4, 3)) {
        session.log.warn(
          `Coolify ${serverVersion?.raw ?? '(unknown version)'} has no rollback endpoint (v4.3.0 and later): a rollback redeploys the previous version`,
        );
      }
      const broken = new Map<string, FraisierError>();
      await Promise.all(
        targets.map(async (t) => {
          try {
            await readApp(t, openClock, session.signal);
          } catch (err) {
            broken.set(t.name, asFraisierError(err, 'E_PREFLIGHT', { target: t.name }));
          }
        }),
      );
      if (broken.size > 0) throw new TargetErrors(broken, { step: 'open' });
    },

    async resolveVersion(ref) {
      if (ref === undefined) {
        throw new FraisierError(
          'E_VERSION',
          'coolify: name the version to deploy: a git commit or ref for a git-based application, an image tag for a Docker-image one',
          {
            hint: 'pass --version <commit sha, ref or image tag>',
          },
        );
      }
      if (!VERSION_RE.test(ref))
        throw new FraisierError(
          'E_VERSION',
          `invalid version ${JSON.stringify(ref)}: Coolify accepts letters, digits, . _ - / (starting with a letter or digit)`,
          { key: 'version' },
        );
      return ref;
    },

    async currentRelease(t, ctx) {
      return versionOf(await readApp(t, ctx.clock));
    },

    async releases(t, ctx) {
      const uuid = uuidOf(t);
      const call = coolifyCalls.listDeployments(uuid, 20);
      const a = client.ok((await client.call(call, { clock: ctx.clock, target: t.name }))!, { what: call.what, target: t.name, uuid });
      const out: string[] = [];
      for (const d of deploymentsOf(a.body).reverse()) {
        if (d.status === 'finished' && d.commit && !out.includes(d.commit)) out.push(d.commit);
      }
      return out;
    },

    async prepare() {
      // Nothing to upload: Coolify builds the release when it deploys.
    },

    async activate(t, version, ctx) {
      const uuid = uuidOf(t);
      const st = track(t);
      const deadline = ctx.clock.now() + timeoutMs;
      const app = apps.get(t.name) ?? (await readApp(t, ctx.clock));
      const field = fieldOf(app);
      // Restoring: putting a target back after this deployment failed (the Deployer activates the previous version).
      const restoring = version !== ctx.version;
      const rollingBack = ctx.kind === 'rollback' || restoring;
      if (ctx.dryRun) {
        await patchVersion(t, field, version, ctx, ctx.signal);
        await client.call(queueCall(uuid, version, rollingBack), { clock: ctx.clock, target: t.name });
        ctx.log.info(
          `would poll: GET /api/v1/deployments/<deployment_uuid> every ${pollMs} ms until finished, then GET /api/v1/applications/${uuid} until running:healthy`,
          t.name,
        );
        return;
      }
      // Read fresh: what the application is set to now (what a failure here restores).
      const before = versionOf(await readApp(t, ctx.clock, ctx.signal));
      if (restoring && !st.queued) {
        // No deployment was started here in this run: the containers still run the old version; only the setting may need restoring.
        if (before !== version) await patchVersion(t, field, version, ctx, ctx.signal);
        ctx.log.info(`no Coolify deployment was started on ${uuid}: ${field} set back to ${version}, nothing to redeploy`, t.name);
        return;
      }
      if (before !== version) await patchVersion(t, field, version, ctx, ctx.signal);
      /** Nothing was queued: put the setting back as it was, so this application is unchanged. */
      const putBack = async () => {
        if (st.queued || before === null || before === version) return;
        const calm = new AbortController().signal;
        await patchVersion(t, field, before, { ...ctx, signal: calm }, calm).catch((e) =>
          ctx.log.warn(`could not set ${field} back to ${before}: ${asFraisierError(e).message}`, t.name),
        );
      };
      let answer: Answer;
      try {
        const call = queueCall(uuid, version, rollingBack);
        answer = client.ok((await client.call(call, { clock: ctx.clock, signal: ctx.signal, target: t.name }))!, { what: call.what, target: t.name, uuid });
      } catch (err) {
        await putBack();
        throw err;
      }
      const { deployment, message } = queuedDeployment(answer.body, uuid);
      let id = deployment;
      if (message && ALREADY_QUEUED.test(message)) {
        // A deployment of this version is queued or running: the uuid in this answer was generated but
        // never stored, so find the real one.
        st.queued = true;
        const real = await findActive(t, version, ctx, ctx.signal);
        ctx.log.info(`Coolify: "${message}"; following ${real ?? 'the queued deployment'}`, t.name);
        id = real ?? id;
      }
      if (!id) {
        await putBack();
        throw new CoolifyError(
          'E_COMMAND',
          `Coolify accepted the deploy of ${uuid} but queued no deployment${message ? ` ("${message}")` : ''}`,
          'configuration',
          {
            target: t.name,
            step: 'activate',
            hint: 'check that the UUID is an application (a service or a database is started, not deployed)',
          },
        );
      }
      st.queued = true;
      st.deployment = id;
      ctx.log.info(`Coolify deployment ${id} queued (${field} ${version})`, t.name);
      await poll(t, id, version, ctx, deadline);
      const running = await confirmRunning(t, ctx, deadline);
      ctx.log.info(`${running.name} is ${running.status} on ${version}`, t.name);
      await probe(t, running, ctx, deadline);
    },

    async finalize() {
      // Coolify keeps its own images; nothing to prune.
    },

    executor(t) {
      const known = executors.get(t.name);
      if (known) return known;
      const e = new CoolifyExecutor(t.name);
      executors.set(t.name, e);
      return e;
    },

    async close() {
      executors.clear();
    },
  };

  /** What queues the deployment: `/rollback` for a rollback on v4.3+ when asked, else `POST /deploy`. */
  function queueCall(uuid: string, version: string, rollingBack: boolean): CoolifyCall {
    if (rollingBack && options.useRollbackEndpoint && versionAtLeast(serverVersion, 4, 3)) return coolifyCalls.rollback(uuid, version);
    return coolifyCalls.deploy(uuid, options.forceRebuild ?? false);
  }

  return provider;
}

interface DeploymentRow {
  deployment_uuid: string;
  status: string;
  commit: string | null;
  application_id: string;
}

/** The list endpoint answers `{count, deployments}` (the spec says an array; the code does not): both are read. */
function deploymentsOf(body: unknown): DeploymentRow[] {
  const list = Array.isArray(body)
    ? body
    : body && typeof body === 'object' && Array.isArray((body as { deployments?: unknown }).deployments)
      ? (body as { deployments: unknown[] }).deployments
      : [];
  return list
    .filter((d): d is Record<string, unknown> => !!d && typeof d === 'object' && typeof (d as { deployment_uuid?: unknown }).deployment_uuid === 'string')
    .map((d) => ({
      deployment_uuid: String(d.deployment_uuid),
      status: String(d.status ?? ''),
      commit: typeof d.commit === 'string' ? d.commit : null,
      // a string in the database, sometimes a number elsewhere: always compared as a string
      application_id: d.application_id === undefined || d.application_id === null ? '' : String(d.application_id),
    }));
}

/** `deployments[]` of a `/deploy` answer (or the `/rollback` answer): the entry for our application. */
function queuedDeployment(body: unknown, uuid: string): { deployment: string | null; message: string | null } {
  if (!body || typeof body !== 'object') return { deployment: null, message: null };
  const b = body as { deployments?: unknown; deployment_uuid?: unknown; message?: unknown };
  if (Array.isArray(b.deployments)) {
    const rows = b.deployments as { message?: unknown; resource_uuid?: unknown; deployment_uuid?: unknown }[];
    const row = rows.find((r) => r && r.resource_uuid === uuid) ?? rows[0];
    if (!row) return { deployment: null, message: null };
    return {
      deployment: typeof row.deployment_uuid === 'string' && row.deployment_uuid ? row.deployment_uuid : null,
      message: typeof row.message === 'string' ? row.message : null,
    };
  }
  return {
    deployment: typeof b.deployment_uuid === 'string' && b.deployment_uuid ? b.deployment_uuid : null,
    message: typeof b.message === 'string' ? b.message : null,
  };
}

/* ---------------------------------------------------------------- YAML ---------------------------------------------------------------- */

const YAML_DURATION = Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)\\s*$' })], {
  expected: 'a duration: a number of seconds, or a string such as "500ms", "30s" or "2m"',
});

/**
 * The typebox schema of the `coolify` provider's keys in fraises.yaml (the lead wires it into the
 * plugin-owned YAML registration). Closed: an unknown key is an error.
 */
export const CoolifyYamlSchema = Type.Object(
  {
    /** Base URL of the Coolify instance; https:// except localhost. */
    url: Type.String({ minLength: 1, expected: 'the https:// URL of the Coolify instance' }),
    /** One application UUID, or a list of them (each is one target). */
    application_id: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
      expected: 'an application UUID, or a list of them',
    }),
    /** The environment variable holding the API token. Default `COOLIFY_TOKEN`. */
    token_env: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', expected: 'the name of an environment variable' })),
    /** Rebuild without cache. Default false. */
    force_rebuild: Type.Optional(Type.Boolean()),
    /** Pause between two status reads. Default 3s. */
    poll_interval: Type.Optional(YAML_DURATION),
    /** Longest time one deployment may take. Default 20m. */
    timeout: Type.Optional(YAML_DURATION),
    /** Roll back with Coolify's /rollback endpoint (v4.3+). Default false. */
    use_rollback_endpoint: Type.Optional(Type.Boolean()),
    /** Path probed on the application's fqdn after it runs, e.g. /health. */
    health_path: Type.Optional(Type.String({ pattern: '^/' })),
  },
  { additionalProperties: false },
);

/** The YAML block as the schema types it. */
export type CoolifyYaml = Static<typeof CoolifyYamlSchema>;

/** Where a YAML block is, for error messages: the file and the dotted key of the block. */
export interface YamlWhere {
  /** The config file, e.g. `fraises.yaml`. */
  file?: string;
  /** The dotted path of the block, e.g. `fraises.api.environments.production.coolify`. */
  path?: string;
}

const YAML_KEYS = ['url', 'application_id', 'token_env', 'force_rebuild', 'poll_interval', 'timeout', 'use_rollback_endpoint', 'health_path'] as const;

/**
 * Turns the `coolify` YAML block into {@link CoolifyOptions}, checking every key: errors are
 * `E_CONFIG` naming the file and the key and saying what was expected. A bare number as a duration is
 * seconds. The token is read from the environment variable `token_env` (default `COOLIFY_TOKEN`) of
 * `env` and wrapped in a {@link Secret}. Pure: it reads nothing but its arguments.
 */
export function coolifyFromYaml(block: unknown, where: YamlWhere = {}, env: NodeJS.ProcessEnv = process.env): CoolifyOptions {
  const at = (key: string) => (where.path ? (key ? `${where.path}.${key}` : where.path) : key || 'coolify');
  const fail = (key: string, message: string, hint?: string): never => {
    throw new FraisierError('E_CONFIG', `${where.file ? `${where.file}: ` : ''}${at(key)}: ${message}`, {
      key: at(key),
      ...(where.file ? { file: where.file } : {}),
      ...(hint ? { hint } : {}),
    });
  };
  const show = (v: unknown) =>
    typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : String(v);
  if (!block || typeof block !== 'object' || Array.isArray(block)) return fail('', `expected a mapping with url and application_id, got ${show(block)}`);
  const b = block as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!(YAML_KEYS as readonly string[]).includes(k)) fail(k, `unknown key; expected one of ${YAML_KEYS.join(', ')}`);
  }
  if (typeof b.url !== 'string' || !b.url) fail('url', `expected the https:// URL of the Coolify instance, got ${show(b.url)}`);
  const urlProblem = coolifyUrlProblem(b.url as string);
  if (urlProblem) fail('url', urlProblem);
  const ids = b.application_id;
  let applications: string[] = [];
  if (typeof ids === 'string' && ids) applications = [ids];
  else if (Array.isArray(ids) && ids.length > 0 && ids.every((x) => typeof x === 'string' && x)) applications = ids as string[];
  else
    fail(
      'application_id',
      `expected an application UUID, or a list of them, got ${ids === undefined ? 'nothing' : show(ids)}`,
      "the UUID is in the application's URL in Coolify",
    );
  for (const id of applications)
    if (!/^[A-Za-z0-9_-]+$/.test(id)) fail('application_id', `expected application UUIDs (letters, digits, - and _), got ${JSON.stringify(id)}`);
  if (new Set(applications).size !== applications.length) fail('application_id', 'an application UUID is listed twice');
  const tokenEnv = b.token_env ?? 'COOLIFY_TOKEN';
  if (typeof tokenEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv))
    fail('token_env', `expected the name of an environment variable, got ${show(tokenEnv)}`);
  const value = env[tokenEnv as string];
  if (!value)
    fail(
      'token_env',
      `the environment variable ${tokenEnv as string} (the Coolify API token) is not set`,
      `export ${tokenEnv as string}=<an API token from Coolify (Keys & Tokens > API tokens)>`,
    );
  const bool = (k: string): boolean | undefined => {
    if (b[k] === undefined) return undefined;
    if (typeof b[k] !== 'boolean') fail(k, `expected true or false, got ${show(b[k])}`);
    return b[k] as boolean;
  };
  const duration = (k: string): Duration | undefined => {
    const v = b[k];
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.round(v * 1000);
    if (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$/.test(v)) return v.trim() as Duration;
    return fail(k, `expected a duration: a number of seconds, or a string such as "500ms", "30s" or "2m", got ${show(v)}`);
  };
  const opts: CoolifyOptions = { url: b.url as string, applications, token: new Secret(value as string, tokenEnv as string) };
  const force = bool('force_rebuild');
  if (force !== undefined) opts.forceRebuild = force;
  const rb = bool('use_rollback_endpoint');
  if (rb !== undefined) opts.useRollbackEndpoint = rb;
  const poll = duration('poll_interval');
  if (poll !== undefined) opts.pollInterval = poll;
  const timeout = duration('timeout');
  if (timeout !== undefined) opts.timeout = timeout;
  if (b.health_path !== undefined) {
    if (typeof b.health_path !== 'string' || !/^\/[^\s]*$/.test(b.health_path))
      fail('health_path', `expected a path starting with /, got ${show(b.health_path)}`);
    opts.healthPath = b.health_path as string;
  }
  return opts;
}
