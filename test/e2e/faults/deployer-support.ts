/**
 * Shared by the deployer fault tests (test/e2e/faults/deployer-*.test.ts): a real `fraisier deploy`
 * started in the background whose output can be waited on, what the hosts, the lock and the history
 * say afterwards, and the one `FAULT | ...` line each test prints for the suite's table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hostExec, type LabEnv } from '../../lab/lab.js';
import { allHosts, bin, run, type Run } from '../helpers.js';

/** A deployment running in the background. */
export interface Background {
  child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  out(): string;
  /** Resolves once the output matches `re` (rejects when the process ends first). */
  waitFor(re: RegExp): Promise<void>;
  /** Resolves with the exit code (null if killed by a signal) and that signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node [nodeArgs] bin/fraisier.js <args>` in `cwd`. */
export function background(cwd: string, args: string[], options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Background {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), bin, ...args], {
    cwd,
    env: { ...process.env, FORCE_COLOR: '0', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: { re: RegExp; resolve: () => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const onData = (d: Buffer) => {
    out += d;
    check();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`the deployment ended before printing ${w.re}:\n${out}`));
      resolve({ code, signal });
    }),
  );
  return {
    child,
    out: () => out,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(out)) return resolve();
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`the deployment had ended before printing ${re}:\n${out}`));
        waiters.push({ re, resolve, reject });
      }),
    exited,
  };
}

/** `fraisier <args>` in `cwd`, with extra environment variables. */
export function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(process.execPath, [bin, ...args], { cwd, env });
}

/** What the lock of app/production is, from `status-all --json`: `released`, or `held by user@host:pid`. */
export async function lockState(ws: string, env: NodeJS.ProcessEnv = {}): Promise<{ text: string; pid: number | null }> {
  const r = await cli(ws, ['status-all', '--json'], env);
  const rows = JSON.parse(r.stdout) as { fraise: string; environment: string; lock: { owner: string } | null }[];
  const lock = rows.find((x) => x.fraise === 'app' && x.environment === 'production')?.lock ?? null;
  return lock ? { text: `held by ${lock.owner}`, pid: Number(lock.owner.split(':').pop()) } : { text: 'released', pid: null };
}

/** The history of app/production, newest first. */
export async function history(ws: string, env: NodeJS.ProcessEnv = {}): Promise<{ id: number; status: string; toVersion: string; error: string | null }[]> {
  const r = await cli(ws, ['history', '--json', '--limit', '50'], env);
  return JSON.parse(r.stdout);
}

/** Every host serves `version` and its `current` points to it. */
export async function consistentOn(env: LabEnv, version: string): Promise<boolean> {
  return (await allHosts(env)).every((h) => h.current === version && h.serving === version);
}

/** The supervisor pid of the app on each host (a restart changes it). */
export async function appPids(env: LabEnv): Promise<string[]> {
  return Promise.all(env.hosts.map(async (h) => (await hostExec(env, h.name, 'supervisorctl pid app')).stdout.trim()));
}

/** Prints the suite's table row: `FAULT | <fault> | <outcome> | hosts consistent: yes/no | lock: <state> | <wall time> s`. */
export function faultLine(fault: string, outcome: string, consistent: boolean, lock: string, startedAt: number): void {
  console.log(
    `FAULT | ${fault} | ${outcome} | hosts consistent: ${consistent ? 'yes' : 'no'} | lock: ${lock} | ${((performance.now() - startedAt) / 1000).toFixed(1)} s`,
  );
}
