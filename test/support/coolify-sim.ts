/**
 * A Coolify v4 API simulator for the tests: a local HTTP server on 127.0.0.1 (random port) that behaves
 * like Coolify v4.3 as ../shared/contracts/COOLIFY.md describes it (checked against Coolify's source):
 * bearer tokens with abilities, applications with a version, deployments that move queued → in_progress →
 * finished/failed as they are polled, the list endpoint's `{count, deployments}`, `/version` as plain
 * text, the v4.2+ method rule (GET /deploy → 405), a deploy queue limit and a rate limit (429 with
 * Retry-After). Every quirk can be switched on per test; every request is recorded.
 *
 * `version: '4.0.0-beta.474'` emulates the last beta: GET and POST /deploy both work, no /rollback.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Ability = 'root' | 'read' | 'read:sensitive' | 'write' | 'write:sensitive' | 'deploy';

export interface SimApp {
  uuid: string;
  id: number;
  name: string;
  build_pack: 'nixpacks' | 'dockerfile' | 'dockerimage' | 'static' | 'dockercompose' | 'railpack';
  git_commit_sha: string;
  docker_registry_image_tag: string | null;
  /** Containers' state: `running:healthy`, `exited`, ... */
  status: string;
  health_check_enabled: boolean;
  /** The version the containers really run (what the last finished deployment built). */
  running: string;
  /** The app's own URL; the simulator serves `<fqdn>/health` for it. */
  fqdn: string;
}

export interface SimDeployment {
  id: number;
  deployment_uuid: string;
  application_uuid: string;
  commit: string;
  status: 'queued' | 'in_progress' | 'finished' | 'failed' | 'cancelled-by-user';
  /** Polls seen so far (the state moves with them), or timer steps elapsed with `tickMs`. */
  polls: number;
  /** `now()` when it was queued. */
  queuedAt?: number;
  /** `now()` when it reached finished or failed. */
  endedAt?: number;
  force_rebuild: boolean;
  rollback: boolean;
  created_at: string;
  updated_at: string;
}

export interface SimRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorization: string | undefined;
  status: number;
}

/** Switchable behaviour, per test. Counters (`n`) apply to the next n matching requests. */
export interface SimQuirks {
  /** The next n POST /deploy answer "Deployment already queued for this commit." with a uuid never stored (a real deployment is queued). */
  alreadyQueued?: number;
  /** The next n requests (any) answer 429 "Too Many Attempts." with Retry-After. */
  rateLimited?: number;
  /** The Retry-After (seconds) of 429 answers. Default 60 for a full queue, 1 for the rate limit. */
  retryAfter?: number;
  /** POST /deploy answers 200 with a service-like message and no deployment_uuid (a service UUID, a silent refusal). */
  noDeploymentUuid?: boolean;
  /** POST cancel answers 500 (as before v4.3.7) but the deployment is still cancelled. */
  cancel500?: boolean;
  /** The next n GET /deployments/{uuid} answer 500. */
  deploymentRead500?: number;
  /** A deployment is cancelled in Coolify's UI (cancelled-by-user) after its first poll. */
  cancelledByUser?: boolean;
}

export interface SimOptions {
  /** What `GET /version` says. Default `4.3.10`. */
  version?: string;
  /** Tokens and their abilities. Default: `1|sim-root-token` with `root`. */
  tokens?: Record<string, Ability[]>;
  /** Polls a deployment stays queued, then in_progress, before it ends. Default 1 and 2. */
  queuedPolls?: number;
  inProgressPolls?: number;
  /** Per-server deploy queue limit (queued + in_progress). Default 25. */
  queueLimit?: number;
  /** Requests a minute per token (Laravel throttle:api). Default 200. */
  rateLimit?: number;
  /**
   * Move deployments on a timer, one step every `tickMs` of `now()` (queued → in_progress → ended),
   * whether or not anyone polls, as Coolify's queue worker does. Default: one step per poll of the
   * deployment (deterministic under a fake clock).
   */
  tickMs?: number;
  /** The simulator's clock for the rate-limit window (a test's fake clock). Default `Date.now`. */
  now?: () => number;
}

const APP_FIELDS_DEFAULTS = {
  description: null,
  repository_project_id: null,
  git_repository: 'https://github.com/example/app',
  git_branch: 'main',
  git_full_url: null,
  docker_registry_image_name: null,
  ports_exposes: '3000',
  ports_mappings: null,
  base_directory: '/',
  publish_directory: '/',
  health_check_path: '/',
  health_check_port: null,
  health_check_host: 'localhost',
  health_check_method: 'GET',
  health_check_return_code: 200,
  health_check_scheme: 'http',
  health_check_response_text: null,
  health_check_interval: 5,
  health_check_timeout: 5,
  health_check_retries: 10,
  health_check_start_period: 5,
  destination_type: 'App\\Models\\StandaloneDocker',
  destination_id: 1,
  environment_id: 1,
};

/** A running simulator. */
export class CoolifySim {
  readonly apps = new Map<string, SimApp>();
  readonly deployments: SimDeployment[] = [];
  readonly requests: SimRequest[] = [];
  readonly quirks: SimQuirks = {};
  /** Versions whose deployment fails (build error). */
  readonly failing = new Set<string>();
  /** Versions that deploy but run unhealthy (`running:unhealthy`). */
  readonly unhealthy = new Set<string>();
  /** Versions whose `<fqdn>/health` answers 500 (the app's own health endpoint). */
  readonly badHealth = new Set<string>();
  /** Called before each API request is answered (e.g. to send SIGINT on the second poll). */
  onRequest: ((r: { method: string; path: string }) => void) | null = null;
  version: string;
  readonly tokens: Record<string, Ability[]>;
  readonly options: Required<Pick<SimOptions, 'queuedPolls' | 'inProgressPolls' | 'queueLimit' | 'rateLimit'>> & { tickMs: number | null };
  url = '';
  private server: Server | null = null;
  private nextId = 1;
  private window: { start: number; counts: Map<string, number> };
  private readonly now: () => number;

  constructor(options: SimOptions = {}) {
    this.now = options.now ?? Date.now;
    this.window = { start: this.now(), counts: new Map() };
    this.version = options.version ?? '4.3.10';
    this.tokens = options.tokens ?? { '1|sim-root-token': ['root'] };
    this.options = {
      queuedPolls: options.queuedPolls ?? 1,
      inProgressPolls: options.inProgressPolls ?? 2,
      queueLimit: options.queueLimit ?? 25,
      rateLimit: options.rateLimit ?? 200,
      tickMs: options.tickMs ?? null,
    };
  }

  /** Adds an application (git-based unless `build_pack: 'dockerimage'`), running `version`. */
  addApp(uuid: string, version: string, extra: Partial<SimApp> = {}): SimApp {
    const image = extra.build_pack === 'dockerimage';
    const app: SimApp = {
      uuid,
      id: this.nextId++,
      name: `app-${uuid}`,
      build_pack: 'nixpacks',
      git_commit_sha: image ? 'HEAD' : version,
      docker_registry_image_tag: image ? version : null,
      status: 'running:healthy',
      health_check_enabled: true,
      running: version,
      fqdn: `${this.url}/sim-app/${uuid}`,
      ...extra,
    };
    this.apps.set(uuid, app);
    return app;
  }

  /** The version an application is set to (git_commit_sha or image tag). */
  setting(uuid: string): string {
    const a = this.apps.get(uuid)!;
    return a.build_pack === 'dockerimage' ? (a.docker_registry_image_tag ?? '') : a.git_commit_sha;
  }

  /** Requests that change state (PATCH, POST). */
  mutations(): SimRequest[] {
    return this.requests.filter((r) => r.method !== 'GET');
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    for (const a of this.apps.values()) a.fqdn = `${this.url}/sim-app/${a.uuid}`;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  private get beta(): boolean {
    return /beta/.test(this.version);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://sim');
    const query = Object.fromEntries(u.searchParams.entries());
    let body: unknown;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const method = req.method ?? 'GET';
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      res.writeHead(status, { 'content-type': typeof payload === 'string' ? 'text/html; charset=UTF-8' : 'application/json', ...headers });
      res.end(text);
      if (!u.pathname.startsWith('/sim-app/')) this.requests.push({ method, path: u.pathname, query, body, authorization: req.headers.authorization, status });
    };
    // The applications' own URLs: <fqdn>/health answers for the version each app runs.
    const appRoute = /^\/sim-app\/([^/]+)(\/.*)?$/.exec(u.pathname);
    if (appRoute) {
      const app = this.apps.get(appRoute[1]!);
      if (!app) return send(404, 'no such app');
      return this.badHealth.has(app.running) ? send(500, 'unhealthy') : send(200, `ok ${app.running}`);
    }
    if (u.pathname === '/api/health' || u.pathname === '/api/v1/health') return send(200, 'OK');
    this.onRequest?.({ method, path: u.pathname });
    if (this.options.tickMs !== null) for (const d of this.deployments) this.advance(d);
    if (!u.pathname.startsWith('/api/v1/')) return send(404, { message: 'Not found.' });
    const path = u.pathname.slice('/api/v1'.length);

    // auth (Sanctum)
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    const abilities = token ? this.tokens[token] : undefined;
    if (!abilities) return send(401, { message: 'Unauthenticated.' });

    // rate limit (throttle:api), then the switchable 429
    const now = this.now();
    if (now - this.window.start >= 60_000) this.window = { start: now, counts: new Map() };
    const count = (this.window.counts.get(token!) ?? 0) + 1;
    this.window.counts.set(token!, count);
    if (count > this.options.rateLimit)
      return send(429, { message: 'Too Many Attempts.' }, { 'retry-after': String(Math.ceil((this.window.start + 60_000 - now) / 1000)) });
    if (this.quirks.rateLimited && this.quirks.rateLimited > 0) {
      this.quirks.rateLimited--;
      return send(429, { message: 'Too Many Attempts.' }, { 'retry-after': String(this.quirks.retryAfter ?? 1) });
    }

    const need = (ability: Ability): boolean => {
      if (abilities.includes('root') || abilities.includes(ability)) return true;
      send(403, { message: `Missing required permissions: ${ability}` });
      return false;
    };
    const appJson = (a: SimApp) => ({
      id: a.id,
      uuid: a.uuid,
      name: a.name,
      fqdn: a.fqdn,
      build_pack: a.build_pack,
      git_commit_sha: a.git_commit_sha,
      docker_registry_image_tag: a.docker_registry_image_tag,
      status: a.status,
      health_check_enabled: a.health_check_enabled,
      ...APP_FIELDS_DEFAULTS,
      docker_registry_image_name: a.build_pack === 'dockerimage' ? 'ghcr.io/example/app' : null,
      created_at: '2026-08-01T10:00:00.000000Z',
      updated_at: new Date().toISOString(),
    });
    const deploymentJson = (d: SimDeployment) => {
      const app = this.apps.get(d.application_uuid)!;
      return {
        id: d.id,
        application_id: String(app.id), // a string: the column is a string
        application_name: app.name,
        build_server_id: null,
        commit: d.commit,
        commit_message: null,
        configuration_hash: null,
        current_process_id: null,
        deployment_url: `/project/p/environment/e/application/${app.uuid}/deployment/${d.deployment_uuid}`,
        deployment_uuid: d.deployment_uuid,
        destination_id: '1',
        docker_registry_image_tag: app.build_pack === 'dockerimage' ? d.commit : null,
        finished_at: null,
        force_rebuild: d.force_rebuild,
        git_type: null,
        horizon_job_id: null,
        horizon_job_worker: null,
        is_api: true,
        is_webhook: false,
        only_this_server: false,
        pull_request_id: 0,
        restart_only: false,
        rollback: d.rollback,
        server_id: 0,
        server_name: 'localhost',
        status: d.status,
        created_at: d.created_at,
        updated_at: d.updated_at,
        // only for tokens with sensitive access; a JSON-encoded string
        ...(abilities.includes('root') || abilities.includes('read:sensitive')
          ? {
              logs: JSON.stringify([
                { command: null, output: `Deploying ${d.commit}`, type: 'stdout', timestamp: d.created_at, hidden: false, batch: 1, order: 1 },
              ]),
            }
          : {}),
      };
    };
    const active = () => this.deployments.filter((d) => d.status === 'queued' || d.status === 'in_progress');
    const queue = (app: SimApp, commit: string, opts: { force: boolean; rollback: boolean }): SimDeployment => {
      const at = new Date().toISOString();
      const d: SimDeployment = {
        id: this.nextId++,
        deployment_uuid: randomUUID(),
        application_uuid: app.uuid,
        commit,
        status: 'queued',
        polls: 0,
        queuedAt: this.now(),
        force_rebuild: opts.force,
        rollback: opts.rollback,
        created_at: at,
        updated_at: at,
      };
      this.deployments.push(d);
      return d;
    };

    if (path === '/version' && method === 'GET') {
      if (!need('read')) return;
      return send(200, this.version);
    }

    if (path === '/deploy') {
      if (method === 'GET' && !this.beta) return send(405, { message: 'This endpoint has changed to a POST request.' }, { allow: 'POST' });
      if (method !== 'GET' && method !== 'POST') return send(405, { message: 'Method not allowed.' }, { allow: 'POST' });
      if (!need('deploy')) return;
      const params = { ...query, ...(body && typeof body === 'object' ? (body as Record<string, string>) : {}) };
      if (!params.uuid && !params.tag) return send(400, { message: 'You must provide uuid or tag.' });
      // Laravel boolean() from v4.2; before, any non-empty value but "0" forced
      const forceRaw = params.force as unknown;
      const force = this.beta ? forceRaw !== undefined && forceRaw !== '' && forceRaw !== '0' : forceRaw === true || forceRaw === 'true' || forceRaw === '1';
      const found = String(params.uuid ?? '')
        .split(',')
        .map((s) => this.apps.get(s.trim()))
        .filter((a): a is SimApp => !!a);
      if (found.length === 0) return send(404, { message: 'No resources found.' });
      if (active().length >= this.options.queueLimit) {
        return send(
          429,
          { message: 'Deployment queue is full. Please wait for existing deployments to complete.' },
          { 'retry-after': String(this.quirks.retryAfter ?? 60) },
        );
      }
      if (this.quirks.noDeploymentUuid) {
        return send(200, {
          deployments: found.map((a) => ({ message: `Service ${a.name} started. It could take a while, be patient.`, resource_uuid: a.uuid })),
        });
      }
      const rows = found.map((app) => {
        const commit = (app.build_pack === 'dockerimage' ? app.docker_registry_image_tag : app.git_commit_sha) || 'HEAD';
        const dup = active().find((d) => d.application_uuid === app.uuid && d.commit === commit);
        if ((dup && !force) || (this.quirks.alreadyQueued ?? 0) > 0) {
          if (!dup) queue(app, commit, { force, rollback: false });
          if ((this.quirks.alreadyQueued ?? 0) > 0) this.quirks.alreadyQueued!--;
          // the quirk: a fresh uuid that was never stored
          return { message: 'Deployment already queued for this commit.', resource_uuid: app.uuid, deployment_uuid: randomUUID() };
        }
        const d = queue(app, commit, { force, rollback: false });
        return { message: `Application ${app.name} deployment queued.`, resource_uuid: app.uuid, deployment_uuid: d.deployment_uuid };
      });
      return send(200, { deployments: rows });
    }

    let m = /^\/deployments\/applications\/([^/]+)$/.exec(path);
    if (m && method === 'GET') {
      if (!need('read')) return;
      const app = this.apps.get(m[1]!);
      if (!app) return send(404, { message: 'Application not found' });
      const skip = Math.max(0, Number(query.skip ?? 0) || 0);
      const take = Math.max(1, Number(query.take ?? 10) || 10);
      const mine = this.deployments.filter((d) => d.application_uuid === app.uuid).reverse();
      return send(200, { count: mine.length, deployments: mine.slice(skip, skip + take).map(deploymentJson) });
    }

    if (path === '/deployments' && method === 'GET') {
      if (!need('read')) return;
      return send(200, active().map(deploymentJson));
    }

    m = /^\/deployments\/([^/]+)\/cancel$/.exec(path);
    if (m) {
      if (method !== 'POST') return send(405, { message: 'Method not allowed.' }, { allow: 'POST' });
      if (!need('deploy')) return;
      const d = this.deployments.find((x) => x.deployment_uuid === m![1]);
      if (!d) return send(404, { message: 'Deployment not found.' });
      if (d.status !== 'queued' && d.status !== 'in_progress') return send(400, { message: `Deployment cannot be cancelled. Current status: ${d.status}` });
      d.status = 'cancelled-by-user';
      d.updated_at = new Date().toISOString();
      if (this.quirks.cancel500) return send(500, { message: 'Server Error' });
      return send(200, { message: 'Deployment cancelled successfully.', deployment_uuid: d.deployment_uuid, status: 'cancelled-by-user' });
    }

    m = /^\/deployments\/([^/]+)$/.exec(path);
    if (m && method === 'GET') {
      if (!need('read')) return;
      const d = this.deployments.find((x) => x.deployment_uuid === m![1]);
      if (!d) return send(404, { message: 'Deployment not found.' });
      if (this.quirks.deploymentRead500 && this.quirks.deploymentRead500 > 0) {
        this.quirks.deploymentRead500--;
        return send(500, { message: 'Server Error' });
      }
      if (this.options.tickMs === null) this.advance(d);
      return send(200, deploymentJson(d));
    }

    m = /^\/applications\/([^/]+)\/rollback$/.exec(path);
    if (m && !this.beta) {
      if (method !== 'POST') return send(405, { message: 'Method not allowed.' }, { allow: 'POST' });
      if (!need('deploy')) return;
      const app = this.apps.get(m[1]!);
      if (!app) return send(404, { message: 'Application not found.' });
      const keys = body && typeof body === 'object' ? Object.keys(body) : [];
      const bad = keys.filter((k) => k !== 'commit');
      if (bad.length > 0) return send(422, { message: 'Validation failed.', errors: Object.fromEntries(bad.map((k) => [k, ['This field is not allowed.']])) });
      const commit = (body as { commit?: unknown } | undefined)?.commit;
      if (typeof commit !== 'string' || !commit) return send(422, { message: 'Validation failed.', errors: { commit: ['The commit field is required.'] } });
      const d = queue(app, commit, { force: false, rollback: true });
      return send(200, { message: 'Rollback deployment queued.', deployment_uuid: d.deployment_uuid });
    }

    m = /^\/applications\/([^/]+)$/.exec(path);
    if (m && method === 'GET') {
      if (!need('read')) return;
      const app = this.apps.get(m[1]!);
      if (!app) return send(404, { message: 'Application not found.' });
      return send(200, appJson(app));
    }
    if (m && method === 'PATCH') {
      if (!need('write')) return;
      const app = this.apps.get(m[1]!);
      if (!app) return send(404, { message: 'Application not found.' });
      if (!body || typeof body !== 'object') return send(400, { message: 'Invalid request.', error: 'Content-Type must be application/json.' });
      const allowed = ['git_commit_sha', 'git_branch', 'docker_registry_image_tag', 'docker_registry_image_name', 'name', 'description', 'instant_deploy'];
      const errors: Record<string, string[]> = {};
      for (const k of Object.keys(body)) if (!allowed.includes(k)) errors[k] = ['This field is not allowed.'];
      const b = body as Record<string, unknown>;
      if (typeof b.git_commit_sha === 'string' && !/^[a-zA-Z0-9][a-zA-Z0-9._\-/]*$/.test(b.git_commit_sha))
        errors.git_commit_sha = ['The git commit sha field format is invalid.'];
      if (Object.keys(errors).length > 0) return send(422, { message: 'Validation failed.', errors });
      if (typeof b.git_commit_sha === 'string') app.git_commit_sha = b.git_commit_sha;
      if (typeof b.docker_registry_image_tag === 'string') app.docker_registry_image_tag = b.docker_registry_image_tag;
      return send(200, { uuid: app.uuid });
    }

    return send(404, { message: 'Not found.' });
  }

  /** When a deployment ended: with `tickMs`, the tick it ended on (whenever it was observed); else now. */
  private endOf(d: SimDeployment): number {
    const { tickMs, queuedPolls, inProgressPolls } = this.options;
    return tickMs !== null && d.queuedAt !== undefined ? d.queuedAt + (queuedPolls + inProgressPolls) * tickMs : this.now();
  }

  /** One poll: queued → in_progress → finished/failed, and the application's containers follow. */
  private advance(d: SimDeployment): void {
    if (d.status !== 'queued' && d.status !== 'in_progress') return;
    if (this.options.tickMs === null) d.polls++;
    else if (d.queuedAt !== undefined) d.polls = Math.floor((this.now() - d.queuedAt) / this.options.tickMs) + 1; // like a poll at once, then one a tick
    const app = this.apps.get(d.application_uuid)!;
    if (this.quirks.cancelledByUser && d.polls >= 2) {
      d.status = 'cancelled-by-user';
    } else if (d.polls > this.options.queuedPolls + this.options.inProgressPolls) {
      if (this.failing.has(d.commit)) {
        d.status = 'failed';
        d.endedAt = this.endOf(d);
      } else {
        d.endedAt = this.endOf(d);
        d.status = 'finished';
        app.running = d.commit;
        app.status = this.unhealthy.has(d.commit) ? 'running:unhealthy' : app.health_check_enabled ? 'running:healthy' : 'running:unknown';
      }
    } else if (d.polls > this.options.queuedPolls) {
      d.status = 'in_progress';
    }
    d.updated_at = new Date().toISOString();
  }
}

/** Starts a simulator with `apps` (uuid → version running). */
export async function startCoolifySim(apps: Record<string, string>, options: SimOptions = {}): Promise<CoolifySim> {
  const sim = new CoolifySim(options);
  for (const [uuid, v] of Object.entries(apps)) sim.addApp(uuid, v);
  return sim.start();
}
