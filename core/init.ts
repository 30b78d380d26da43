/**
 * `fraisier init`: the answers (from flags, a few questions on a terminal, or defaults) and the files
 * they become: a commented fraises.yaml, or a deploy.ts. Pure apart from reading ~/.ssh/config and the
 * git remote; the command module (core/commands/init.ts) writes the file. See docs/getting-started.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FraisierError } from './errors.js';

/** What `init` writes a config from. */
export interface InitAnswers {
  /** The fraise's name (`api`). */
  fraise: string;
  /** The environment (`production`). */
  environment: string;
  /** SSH host aliases. */
  hosts: string[];
  /** The git repository each host fetches. */
  repo: string;
  /** The branch deployed. */
  branch: string;
  /** Where releases live on the hosts. */
  appPath: string;
  /** How the service restarts: a systemd unit or a supervisor program. */
  service: { type: 'systemd'; unit: string } | { type: 'supervisor'; program: string };
  /** The health URL probed on each host after its restart. */
  healthUrl: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** The concrete host aliases of an OpenSSH config file (no patterns such as `*` or `!x`), in order. */
export function sshConfigHosts(file = path.join(os.homedir(), '.ssh', 'config')): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const hosts: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*Host\s+(.+?)\s*$/i.exec(line);
    if (!m) continue;
    for (const h of m[1]!.split(/\s+/)) if (!/[*?!]/.test(h) && !hosts.includes(h)) hosts.push(h);
  }
  return hosts;
}

/** The `origin` remote of the git repository at `cwd`, if any. */
export function gitOrigin(cwd: string): string | undefined {
  try {
    const url = execFileSync('git', ['remote', 'get-url', 'origin'], { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
      .toString()
      .trim();
    return url || undefined;
  } catch {
    return undefined;
  }
}

/** A fraise name from a directory name: `My API` → `my-api`. */
export function nameFrom(dir: string): string {
  const n = path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '');
  return NAME.test(n) ? n : 'app';
}

/** Checks the answers; throws `E_USAGE` naming the flag. */
export function checkAnswers(a: InitAnswers): void {
  const bad = (flag: string, problem: string, hint?: string) => new FraisierError('E_USAGE', `--${flag}: ${problem}`, hint ? { hint } : {});
  if (!NAME.test(a.fraise))
    throw bad('fraise', `${JSON.stringify(a.fraise)} is not a valid name: letters, digits, "_" or "-", starting with a letter or digit`);
  if (!NAME.test(a.environment)) throw bad('environment', `${JSON.stringify(a.environment)} is not a valid name: letters, digits, "_" or "-"`);
  if (a.hosts.length === 0) throw bad('host', 'at least one host is needed', 'e.g. --host web1 --host web2 (aliases of ~/.ssh/config)');
  for (const h of a.hosts) if (!/^[A-Za-z0-9][A-Za-z0-9._@:-]*$/.test(h)) throw bad('host', `${JSON.stringify(h)} is not a host name or SSH alias`);
  if (new Set(a.hosts).size !== a.hosts.length) throw bad('host', 'a host is given twice');
  if (!a.repo || /\s/.test(a.repo))
    throw bad('repo', `expected a git repository URL, got ${JSON.stringify(a.repo)}`, 'e.g. --repo git@github.com:acme/api.git');
  if (!path.posix.isAbsolute(a.appPath)) throw bad('app-path', `expected an absolute path on the hosts, got ${JSON.stringify(a.appPath)}`);
  if (!/^https?:\/\/[^\s]+$/.test(a.healthUrl)) throw bad('health-url', `expected an http:// or https:// URL, got ${JSON.stringify(a.healthUrl)}`);
}

/** A YAML scalar, quoted when plain text would be read differently. */
function y(v: string): string {
  return /^[A-Za-z0-9_./@-][A-Za-z0-9_./@:-]*$/.test(v) && !/^(true|false|yes|no|on|off|null|~|\d.*)$/i.test(v) ? v : JSON.stringify(v);
}

/** The commented fraises.yaml of the answers. */
export function renderYaml(a: InitAnswers): string {
  const service = a.service.type === 'systemd' ? `systemd_service: ${y(a.service.unit)}` : `supervisor_program: ${y(a.service.program)}`;
  return `# fraises.yaml — written by \`fraisier init\`. Every key is described in docs/configuration.md.
#
#   fraisier check                      validate this file (exit 2 with the key and line of a problem)
#   fraisier check --hosts              also connect to every host and run the read-only preflight
#   fraisier deploy ${a.fraise} ${a.environment}       deploy the branch below, host by host, health-checked
#   fraisier rollback ${a.fraise} ${a.environment}     back to the release live before
#   fraisier status ${a.fraise} ${a.environment}       what runs where, and who holds the lock

# The history and the locks: a SQLite file next to this one by default. For a team, share them in
# PostgreSQL:
# state:
#   url: postgres://deploy:\${PGPASSWORD}@db.internal:5432/fraisier

fraises:
  ${a.fraise}:
    # Each host fetches this repository into <app_path>/repo; a release is named by its tag, else its short sha.
    git_repo: ${y(a.repo)}
    branch: ${y(a.branch)}
    # Releases go to <app_path>/releases/<version>; <app_path>/current is switched atomically.
    app_path: ${y(a.appPath)}
    environments:
      ${a.environment}:
        # SSH host aliases, resolved through ~/.ssh/config; host keys are checked against known_hosts.
        instances: [${a.hosts.map(y).join(', ')}]
        # How the service restarts: systemd_service, supervisor_program, or restart_command.
        ${service}
        # rolling: a batch of hosts at a time; a failed batch stops the rollout and rolls back what it touched.
        deployment_strategy: rolling
        rolling_config:
          batch_size: 1
        # Probed on each host itself after its restart; a failure rolls the host back.
        health_check:
          url: ${y(a.healthUrl)}
          timeout: 5s
          retries: 5
          retry_delay: 2s
        # Notifications on start, success, failure, rollback and cancel (docs/notifications.md):
        # notifications:
        #   - type: slack
        #     url: \${SLACK_WEBHOOK_URL}

# Objectives over the deployment history, checked by \`fraisier slo check\` (docs/slo.md):
# deployment_slo:
#   success_rate: 99%
#   error_rate_max: 1%
#   latency_p99: 10m
#   rollback_rate: 5%
`;
}

/** A TypeScript string literal in single quotes. */
function q(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The deploy.ts of the answers: the same deployment through the typed SDK. */
export function renderTs(a: InitAnswers): string {
  const service = a.service.type === 'systemd' ? `{ type: 'systemd', unit: ${q(a.service.unit)} }` : `{ type: 'supervisor', program: ${q(a.service.program)} }`;
  const env = /^[A-Za-z_][A-Za-z0-9_]*$/.test(a.environment) ? a.environment : q(a.environment);
  return `// deploy.ts — written by \`fraisier init --ts\`. See deploy.ts.example in the fraisier package for every option.
//
//   npx tsx deploy.ts ${a.environment}              deploy the branch below, host by host, health-checked
//   npx tsx deploy.ts ${a.environment} rollback     back to the release live before
//   npx tsx deploy.ts ${a.environment} status       what runs where, and who holds the lock
import { bareMetal, defineDeploy, http, rolling } from 'fraisier';

export default defineDeploy({
  // The name the history and the locks use.
  name: ${q(a.fraise)},
  environments: {
    ${env}: {
      provider: bareMetal({
        // SSH host aliases, resolved through ~/.ssh/config; host keys are checked against known_hosts.
        hosts: [${a.hosts.map(q).join(', ')}],
        // Releases go to <appPath>/releases/<version>; <appPath>/current is switched atomically.
        appPath: ${q(a.appPath)},
        source: { type: 'git', repo: ${q(a.repo)}, branch: ${q(a.branch)} },
        service: ${service},
      }),
      // One host at a time; a failed host stops the rollout and rolls back what was touched.
      strategy: rolling({ batchSize: 1 }),
      // Probed on each host itself after its restart.
      health: {
        checks: [http({ url: ${q(a.healthUrl)} })],
        retries: 5,
        retryDelay: '2s',
        timeout: '5s',
      },
    },
  },
});
`;
}
