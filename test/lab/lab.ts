// Fraisier end-to-end test lab, from TypeScript: bring the lab up/down and observe its hosts with the
// OpenSSH client (independently of the SDK under test). See test/lab/README.md.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface LabHost {
  /** ssh alias in env.sshConfig, also the host's hostname: "h1" */
  name: string;
  /** "10.200.0.11" */
  address: string;
  port: number;
}

export interface LabEnv {
  labDir: string;
  /** OpenSSH client config with one `Host hN` block per host */
  sshConfig: string;
  /** plain known_hosts: "h1,10.200.0.11 ssh-ed25519 AAAA..." */
  knownHosts: string;
  /** client private key (ed25519, no passphrase) authorized as root on every host */
  identity: string;
  hosts: LabHost[];
  /** bare git repo of the sample app (tags v1.0.0 v1.1.0 v1.2.0 v2.0.0-broken, main = v2.1.0-dev) */
  appRepo: string;
  /** port the sample app listens on (supervisor program "app", environment PORT) */
  appPort: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** exit code; 255 is an ssh failure; -1 when killed by a signal or timeout */
  code: number;
}

const script = fileURLToPath(new URL('./lab.sh', import.meta.url));

export function labDir(): string {
  return process.env.FRAISIER_LAB_DIR || '/tmp/fraisier-lab';
}

function run(file: string, args: string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { env: { ...process.env, FRAISIER_LAB_DIR: labDir() }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        let code = 0;
        if (error) {
          const c = (error as NodeJS.ErrnoException & { code?: unknown }).code;
          code = typeof c === 'number' ? c : -1;
          if (typeof c === 'string') stderr = `${stderr}${stderr ? '\n' : ''}${file}: ${error.message}`;
        }
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
  });
}

async function lab(args: string[], timeoutMs: number): Promise<ExecResult> {
  const r = await run('bash', [script, ...args], timeoutMs);
  if (r.code !== 0) {
    throw new Error(`lab.sh ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  }
  return r;
}

/** Bring up (or reuse, if already up with >= n hosts) the lab and return its environment. */
export async function labUp(n = 3): Promise<LabEnv> {
  await lab(['up', String(n)], 180_000);
  return JSON.parse(await readFile(`${labDir()}/env.json`, 'utf8')) as LabEnv;
}

/** Stop every lab process and delete namespaces, veths and bridge. The lab dir stays for inspection. */
export async function labDown(): Promise<void> {
  await lab(['down'], 120_000);
}

/**
 * Run a shell command on a lab host with the OpenSSH client. Never rejects on a non-zero exit:
 * look at `code` (255 means ssh itself failed).
 */
export async function hostExec(env: LabEnv, hostName: string, command: string, timeoutMs = 60_000): Promise<ExecResult> {
  return run('ssh', ['-F', env.sshConfig, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', hostName, command], timeoutMs);
}
