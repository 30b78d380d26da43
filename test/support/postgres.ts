/**
 * A private PostgreSQL server for the tests: a throw-away cluster (initdb) in a temporary directory,
 * listening on 127.0.0.1 at a free port and a private socket directory, password (scram) auth over TCP.
 * Run as the `postgres` system user when we are root (PostgreSQL refuses to run as root).
 *
 * `npm test` starts one for the whole run (test/run.ts) and passes its admin URL in
 * FRAISIER_TEST_PG_URL; a test file run on its own starts its own. Each test takes a fresh database
 * with `freshDatabase()`, so tests never see each other's rows. The server is stopped by its pid.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgServer {
  /** admin URL (superuser `fraisier`, password `fraisier-test-pw`) of the `postgres` database */
  url: string;
  port: number;
  dataDir: string;
  /** stops the server (pg_ctl stop -m fast, then SIGKILL of the postmaster's pid) and deletes the cluster */
  stop(): Promise<void>;
  /** restarts the server (pg_ctl restart -m fast): every open connection is cut, the data stays */
  restart(): Promise<void>;
}

export const PG_PASSWORD = 'fraisier-test-pw';

function pgBin(name: string): string {
  for (const v of ['17', '16', '15']) {
    const p = `/usr/lib/postgresql/${v}/bin/${name}`;
    try {
      readFileSync(p, { flag: 'r' });
      return p;
    } catch {
      /* next */
    }
  }
  return name;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function asPostgres(cmd: string, args: string[]): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', cmd, ...args] : [cmd, ...args];
}

function run(argv: string[], timeoutMs = 120_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve();
    });
  });
}

const PREFIX = 'fraisier-pg-';

/** Whether process `pid` exists. */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The postmaster's pid from `dataDir`'s postmaster.pid, if that process is alive and is this cluster's postgres. */
function livePostmaster(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
  if (!alive(pid)) return null;
  try {
    // a recycled pid is someone else's process: only a postgres started on this data directory counts
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Clusters left by test processes that died without stopping them (a file the runner killed on
 * timeout, a runner killed itself, a file run on its own, whose exit handler stops the server but
 * cannot wait to delete its directory): each cluster records the pid of the process that started it
 * (`owner`); when that process is gone, the postmaster (checked by its command line) is killed and the
 * directory deleted. A directory with no owner file (being set up, or an older layout) is deleted only
 * when nothing runs on it and it is over an hour old. Returns the directories removed.
 */
export function sweepStaleClusters(dir = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const base = join(dir, name);
    const dataDir = join(base, 'data');
    let owner: number | null = null;
    try {
      owner = Number(readFileSync(join(base, 'owner'), 'utf8').trim());
    } catch {
      /* no owner file */
    }
    if (owner !== null && alive(owner)) continue;
    const pm = livePostmaster(dataDir);
    if (owner === null) {
      let age = 0;
      try {
        age = Date.now() - statSync(base).mtimeMs;
      } catch {
        continue;
      }
      if (pm !== null || age < 3_600_000) continue;
    } else if (pm !== null) {
      try {
        process.kill(pm, 'SIGKILL'); // its backends exit when they see the postmaster gone
      } catch {
        /* gone meanwhile */
      }
    }
    rmSync(base, { recursive: true, force: true });
    removed.push(base);
  }
  return removed;
}

/** Starts a private PostgreSQL server (after sweeping the clusters of dead test processes). */
export async function startPostgres(): Promise<PgServer> {
  sweepStaleClusters();
  const base = mkdtempSync(join(tmpdir(), PREFIX));
  writeFileSync(join(base, 'owner'), `${process.pid}\n`);
  chmodSync(base, 0o755);
  const dataDir = join(base, 'data');
  const sockDir = join(base, 'sock');
  const pwFile = join(base, 'pw');
  writeFileSync(pwFile, `${PG_PASSWORD}\n`);
  spawnSync('mkdir', ['-p', sockDir]);
  if (process.getuid?.() === 0) {
    const pg = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const uid = Number(pg.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    if (!Number.isInteger(uid) || pg.status !== 0) throw new Error('tests need the postgres system user (apt-get install postgresql)');
    for (const p of [base, sockDir, pwFile]) chownSync(p, uid, gid);
  }
  await run(
    asPostgres(pgBin('initdb'), [
      '-D',
      dataDir,
      '-U',
      'fraisier',
      `--pwfile=${pwFile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--no-sync',
    ]),
  );
  const port = await freePort();
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${sockDir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  await run(asPostgres(pgBin('pg_ctl'), ['-D', dataDir, '-o', opts, '-l', join(base, 'log'), '-w', '-t', '60', 'start']));
  let pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    url: `postgres://fraisier:${PG_PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    async restart() {
      await run(asPostgres(pgBin('pg_ctl'), ['-D', dataDir, '-o', opts, '-l', join(base, 'log'), '-m', 'fast', '-w', '-t', '60', 'restart']));
      pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    },
    async stop() {
      await run(asPostgres(pgBin('pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'])).catch(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      });
      rmSync(base, { recursive: true, force: true });
    },
  };
}

let shared: Promise<{ url: string; stop?: () => Promise<void> }> | undefined;

/** The admin URL of the run's server (FRAISIER_TEST_PG_URL), or of one started for this process. */
export function pgAdminUrl(): Promise<string> {
  if (!shared) {
    const fromEnv = process.env['FRAISIER_TEST_PG_URL'];
    shared = fromEnv
      ? Promise.resolve({ url: fromEnv })
      : startPostgres().then((s) => {
          process.once('exit', () => {
            // best effort on exit of a test file run on its own: fast shutdown by pid
            try {
              const pid = Number(readFileSync(join(s.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
              process.kill(pid, 'SIGQUIT');
            } catch {
              /* already stopped */
            }
          });
          return { url: s.url, stop: s.stop };
        });
  }
  return shared.then((s) => s.url);
}

/** Stops the server this process started, if any (call in a test file's `after`). */
export async function stopOwnPostgres(): Promise<void> {
  if (!shared) return;
  const s = await shared;
  shared = undefined;
  await s.stop?.();
}

let counter = 0;

/** Creates a new empty database on the test server and returns its URL (same credentials). */
export async function freshDatabase(prefix = 't'): Promise<string> {
  const admin = await pgAdminUrl();
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  await pgQuery(admin, `CREATE DATABASE "${name}"`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs one SQL statement on `url` with a connection of its own; its rows. */
export async function pgQuery<T = Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

/** The tables of the `public` schema, by name. */
export async function publicTables(url: string): Promise<string[]> {
  return (await pgQuery<{ t: string }>(url, "select table_name as t from information_schema.tables where table_schema = 'public' order by 1")).map((r) => r.t);
}

/** The migrations the psql-migration plugin recorded, as `name@version`, by name. */
export async function recordedMigrations(url: string): Promise<string[]> {
  return (await pgQuery<{ name: string; version: string }>(url, 'select name, version from fraisier_migrations order by name')).map(
    (r) => `${r.name}@${r.version}`,
  );
}
