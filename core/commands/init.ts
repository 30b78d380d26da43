import type { StandaloneCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier init [--ts] [--fraise F] [--host H ...] [--repo URL] ...`: writes a commented fraises.yaml
 * (or with `--ts` a deploy.ts) in the current directory. On a terminal it asks for what the flags did
 * not give, offering the hosts of ~/.ssh/config; without one it never asks (flags, then defaults).
 * Refuses to overwrite an existing file without `--force`.
 */
export const init: StandaloneCommand = {
  name: 'init',
  describe: 'write a commented fraises.yaml (or --ts a deploy.ts) from flags or a few questions',
  scope: 'standalone',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  options: {
    ts: { type: 'boolean', describe: 'write deploy.ts (the typed SDK) instead of fraises.yaml', default: false },
    fraise: { type: 'string', describe: 'the service name', defaultDescription: 'the directory name' },
    environment: { type: 'string', describe: 'the environment', defaultDescription: 'production' },
    host: { type: 'string', describe: 'an SSH host (alias of ~/.ssh/config); repeat or separate with commas' },
    repo: { type: 'string', describe: 'the git repository the hosts fetch', defaultDescription: 'the origin remote' },
    branch: { type: 'string', describe: 'the branch deployed', defaultDescription: 'main' },
    'app-path': { type: 'string', describe: 'where releases live on the hosts', defaultDescription: '/srv/<fraise>' },
    service: { type: 'string', describe: 'the systemd unit restarted', defaultDescription: '<fraise>.service' },
    supervisor: { type: 'string', describe: 'restart this supervisor program instead of a systemd unit' },
    'health-url': { type: 'string', describe: 'probed on each host after its restart', defaultDescription: 'http://localhost:8000/health' },
    output: { type: 'string', describe: 'the file to write', defaultDescription: 'fraises.yaml, or deploy.ts with --ts' },
    force: { type: 'boolean', describe: 'overwrite an existing file', default: false },
  },
  async run(args, io) {
    const [{ FraisierError }, init, fs, path] = await Promise.all([import('../errors.js'), import('../init.js'), import('node:fs'), import('node:path')]);
    const ts = Boolean(args['ts']);
    const target = path.resolve(stringArg(args, 'output') ?? (ts ? 'deploy.ts' : 'fraises.yaml'));
    if (fs.existsSync(target) && !args['force']) {
      throw new FraisierError('E_USAGE', `${target} exists: not overwritten`, { hint: 'pass --force to replace it, or --output to write another file' });
    }
    const cwd = process.cwd();
    const list = (v: unknown): string[] =>
      (Array.isArray(v) ? v : v === undefined ? [] : [v])
        .flatMap((x) => String(x).split(','))
        .map((s) => s.trim())
        .filter(Boolean);
    const given = {
      fraise: stringArg(args, 'fraise'),
      environment: stringArg(args, 'environment'),
      hosts: list(args['host']),
      repo: stringArg(args, 'repo'),
      branch: stringArg(args, 'branch'),
      appPath: stringArg(args, 'app-path'),
      service: stringArg(args, 'service'),
      supervisor: stringArg(args, 'supervisor'),
      healthUrl: stringArg(args, 'health-url'),
    };
    if (given.service !== undefined && given.supervisor !== undefined) {
      throw new FraisierError('E_USAGE', '--service and --supervisor are exclusive: the service restarts through systemd or supervisor', {});
    }
    const known = init.sshConfigHosts();
    const origin = given.repo ?? init.gitOrigin(cwd);
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY) && !io.json;

    let ask: (question: string, fallback?: string) => Promise<string> = async (_q, fallback) => fallback ?? '';
    let close = () => {};
    if (interactive) {
      const readline = await import('node:readline');
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
      // lines typed (or pasted) ahead of their question are kept, not dropped
      const lines: string[] = [];
      const waiting: ((line: string) => void)[] = [];
      rl.on('line', (line) => {
        const w = waiting.shift();
        if (w) w(line);
        else lines.push(line);
      });
      rl.on('close', () => {
        for (const w of waiting.splice(0)) w('');
      });
      close = () => rl.close();
      ask = async (question, fallback) => {
        io.out(`${question}${fallback ? ` [${fallback}]` : ''}: `);
        const line = lines.length > 0 ? lines.shift()! : await new Promise<string>((r) => waiting.push(r));
        return line.trim() || fallback || '';
      };
    }
    try {
      const fraise = given.fraise ?? (interactive ? await ask('Service name', init.nameFrom(cwd)) : init.nameFrom(cwd));
      const environment = given.environment ?? (interactive ? await ask('Environment', 'production') : 'production');
      let hosts = given.hosts;
      if (hosts.length === 0 && interactive) {
        if (known.length > 0) io.out(`Hosts in ~/.ssh/config: ${known.join(', ')}\n`);
        hosts = list(await ask('SSH hosts (comma-separated)', known.slice(0, 1).join('') || undefined));
      }
      if (hosts.length === 0) {
        throw new FraisierError('E_USAGE', 'init: which hosts? give --host (no terminal to ask on)', {
          hint: known.length > 0 ? `hosts in ~/.ssh/config: ${known.join(', ')}; e.g. --host ${known[0]}` : 'e.g. --host web1 --host web2',
        });
      }
      const repo = origin ?? (interactive ? await ask('Git repository the hosts fetch') : undefined);
      if (!repo) {
        throw new FraisierError('E_USAGE', 'init: which repository? give --repo (this directory has no origin remote)', {
          hint: 'e.g. --repo git@github.com:acme/api.git',
        });
      }
      const branch = given.branch ?? (interactive ? await ask('Branch', 'main') : 'main');
      const appPath = given.appPath ?? (interactive ? await ask('Path on the hosts', `/srv/${fraise}`) : `/srv/${fraise}`);
      const service =
        given.supervisor !== undefined
          ? { type: 'supervisor' as const, program: given.supervisor }
          : { type: 'systemd' as const, unit: given.service ?? (interactive ? await ask('systemd unit', `${fraise}.service`) : `${fraise}.service`) };
      const healthUrl =
        given.healthUrl ?? (interactive ? await ask('Health URL (on each host)', 'http://localhost:8000/health') : 'http://localhost:8000/health');
      const answers = { fraise, environment, hosts, repo, branch, appPath, service, healthUrl };
      init.checkAnswers(answers);
      const text = ts ? init.renderTs(answers) : init.renderYaml(answers);
      fs.writeFileSync(target, text, { flag: args['force'] ? 'w' : 'wx' });
      if (io.json) io.out(`${JSON.stringify({ file: target, ...answers })}\n`);
      else {
        io.out(`Wrote ${target}\n`);
        io.out(
          ts
            ? `Next: npx tsx ${path.basename(target)} ${environment} status\n`
            : `Next: fraisier check --hosts, then fraisier deploy ${fraise} ${environment}\n`,
        );
      }
      return 0;
    } finally {
      close();
    }
  },
};
