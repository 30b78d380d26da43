/** Shared set-up for end-to-end tests: the lab, a workspace with a fraises.yaml, the real CLI. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostExec, labUp, type LabEnv } from '../lab/lab.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const bin = join(repoRoot, 'bin', 'fraisier.js');

/**
 * A human duration as `status-all` prints it (`42s`, `1m00s`, `1h02m`). Which form appears depends on how
 * long the CLI took to start, so tests match any of them, never one.
 */
export const HUMAN_DURATION = String.raw`(?:\d+h\d{2}m|\d+m\d{2}s|\d+s)`;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
}

/** Runs a command and collects its output (never throws on a non-zero exit). */
export function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: { ...process.env, FORCE_COLOR: '0', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr, out: stdout + stderr });
    });
  });
}

/**
 * `fraisier <args>` in `cwd`, calling `onLine` with each line of its output (stdout and stderr, as they are
 * printed) while it runs, so that a test can follow a deployment live (a canary's steps); resolves with
 * the exit code and the whole output. Killed after `timeoutMs`.
 */
export function fraisierLive(
  cwd: string,
  args: string[],
  onLine: (line: string) => void = () => {},
  timeoutMs = 600_000,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let partial = '';
    const take = (d: Buffer) => {
      out += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) onLine(l);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (partial) onLine(partial);
      resolve({ code: code ?? 1, out });
    });
  });
}

/** `fraisier <args>` in `cwd`, through the real bin script. */
export function fraisier(cwd: string, ...args: string[]): Promise<Run> {
  return run(process.execPath, [bin, ...args], { cwd });
}

export async function lab(): Promise<LabEnv> {
  return labUp(3);
}

/** Stops the app and removes every release from the lab hosts, so each test file starts clean. */
export async function resetHosts(env: LabEnv): Promise<void> {
  await Promise.all(
    env.hosts.map((h) => hostExec(env, h.name, 'supervisorctl stop app >/dev/null 2>&1; rm -rf /srv/app/* /srv/app/.[!.]* /srv/log/systemctl.log; true')),
  );
}

/** What a user would look at on a host: where `current` points, the releases, and what the app answers. */
export async function hostState(env: LabEnv, host: string): Promise<{ current: string | null; releases: string[]; serving: string | null }> {
  const r = await hostExec(
    env,
    host,
    `readlink /srv/app/current || echo -; echo ---; ls -1 /srv/app/releases 2>/dev/null; echo ---; curl -s --max-time 2 http://127.0.0.1:8000/ || echo -`,
  );
  const [cur, rels, serving] = r.stdout.split('---\n');
  return {
    current: cur!.trim() === '-' ? null : cur!.trim().split('/').pop()!,
    releases: (rels ?? '')
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean),
    serving: !serving || serving.trim() === '-' ? null : serving.trim(),
  };
}

export async function allHosts(env: LabEnv) {
  return Promise.all(env.hosts.map((h) => hostState(env, h.name)));
}

/** A temporary directory holding a fraises.yaml for the lab. */
export function workspace(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fraisier-e2e-'));
  writeFileSync(join(dir, 'fraises.yaml'), yaml);
  return dir;
}

/**
 * A fraises.yaml for the lab's three hosts; `extraEnvs` is appended after the production environment,
 * `sshExtra` inside `ssh:`; `restartCommand` replaces the supervisor program with a restart command.
 */
export function labYaml(
  env: LabEnv,
  options: { batch?: number; extraEnvs?: string; healthUrl?: string; retries?: number; retryDelay?: number; sshExtra?: string; restartCommand?: string } = {},
): string {
  return `ssh:
  config: ${env.sshConfig}
${options.sshExtra ?? ''}fraises:
  app:
    git_repo: ${env.appRepo}
    branch: main
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [h1, h2, h3]
        ${options.restartCommand ? `restart_command: ${JSON.stringify(options.restartCommand)}` : 'supervisor_program: app'}
        deployment_strategy: rolling
        rolling_config:
          batch_size: ${options.batch ?? 1}
        health_check:
          url: ${options.healthUrl ?? 'http://localhost:8000/health'}
          expect: ok
          timeout: 2
          retries: ${options.retries ?? 8}
          retry_delay: ${options.retryDelay ?? 0.25}
${options.extraEnvs ?? ''}`;
}
