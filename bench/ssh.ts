/**
 * 100 sequential `true` commands on one lab host: over one SshExecutor connection (Fraisier), as 100
 * `ssh -F cfg h1 true` logins, and through OpenSSH ControlMaster multiplexing. `npx tsx bench/ssh.ts`
 * (`BENCH_SSH_SDK_ONLY=1`: only the SshExecutor rows, persistent shell against a session per command).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SshExecutor, command } from '../index.js';
import { fmtMs, median, runMain, machine, ratio, saveResult, section, table, withLab } from './lib.js';

const COUNT = Number(process.env['BENCH_SSH_COMMANDS'] ?? 100);

function sshLoop(args: string[]): number {
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) {
    const r = spawnSync('ssh', [...args, 'h1', 'true'], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`ssh ${args.join(' ')} h1 true exited ${r.status}`);
  }
  return performance.now() - t0;
}

export async function main(): Promise<void> {
  const startLoad = section(`${COUNT} sequential \`true\` commands on one host`);
  const m = machine();
  const out = await withLab(async (env) => {
    // Fraisier: connect once (timed separately), then COUNT commands over the one connection, through the
    // persistent shell (the default) and with a new SSH session per command (persistentShell: false)
    const sdk = async (persistentShell: boolean) => {
      const t = performance.now();
      const ex = await SshExecutor.connect('h1', { configFile: env.sshConfig, persistentShell });
      const connectMs = performance.now() - t;
      await ex.run(command('true')); // warm-up (first channel)
      await new Promise((r) => setTimeout(r, 300)); // the persistent shell opens in the background
      const t1 = performance.now();
      for (let i = 0; i < COUNT; i++) await ex.run(command('true'));
      const ms = performance.now() - t1;
      await ex.close();
      console.log(
        `  SshExecutor (persistentShell: ${persistentShell}): connect ${fmtMs(connectMs)}, ${COUNT} commands ${fmtMs(ms)} (${fmtMs(ms / COUNT, 1)} each)`,
      );
      return { connectMs, ms };
    };
    // side by side, alternating, median of 3 each
    const shellRuns: { connectMs: number; ms: number }[] = [];
    const sessionRuns: { connectMs: number; ms: number }[] = [];
    for (let i = 0; i < 3; i++) {
      shellRuns.push(await sdk(true));
      sessionRuns.push(await sdk(false));
    }
    const connectMs = median(shellRuns.map((r) => r.connectMs));
    const sdkMs = median(shellRuns.map((r) => r.ms));
    const sessionMs = median(sessionRuns.map((r) => r.ms));
    if (process.env['BENCH_SSH_SDK_ONLY']) {
      console.log(`median: persistent shell ${fmtMs(sdkMs)}, session per command ${fmtMs(sessionMs)} (${ratio(sdkMs, sessionMs)})`);
      process.exit(0);
    }
    let t0 = 0;

    section('plain ssh logins');
    const base = ['-F', env.sshConfig, '-o', 'BatchMode=yes'];
    const plainMs = sshLoop(base);
    console.log(`  ssh (one login per command): ${fmtMs(plainMs)} (${fmtMs(plainMs / COUNT, 1)} each)`);

    section('OpenSSH ControlMaster');
    const dir = mkdtempSync(join(tmpdir(), 'fraisier-bench-cm-'));
    const cm = [...base, '-o', 'ControlMaster=auto', '-o', `ControlPath=${dir}/%C`, '-o', 'ControlPersist=60'];
    t0 = performance.now();
    spawnSync('ssh', [...cm, 'h1', 'true'], { stdio: 'ignore' }); // opens the master
    const masterMs = performance.now() - t0;
    const muxMs = sshLoop(cm);
    spawnSync('ssh', [...cm, '-O', 'exit', 'h1'], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
    console.log(`  ssh ControlMaster: master ${fmtMs(masterMs)}, ${COUNT} commands ${fmtMs(muxMs)} (${fmtMs(muxMs / COUNT, 1)} each)`);
    return { connectMs, sdkMs, sessionMs, plainMs, masterMs, muxMs };
  });

  const target = out.sdkMs < 500 ? 'met' : 'NOT met';
  const t = table(
    ['client', 'set-up (once)', `${COUNT} commands`, 'per command', 'vs SshExecutor'],
    [
      ['Fraisier SshExecutor (one connection, persistent shell: the default)', fmtMs(out.connectMs), fmtMs(out.sdkMs), fmtMs(out.sdkMs / COUNT, 1), '1.00×'],
      [
        'Fraisier SshExecutor, a new SSH session per command (`persistentShell: false`)',
        '-',
        fmtMs(out.sessionMs),
        fmtMs(out.sessionMs / COUNT, 1),
        ratio(out.sessionMs, out.sdkMs),
      ],
      ['`ssh -F cfg h1 true` (one login each)', '-', fmtMs(out.plainMs), fmtMs(out.plainMs / COUNT, 1), ratio(out.plainMs, out.sdkMs)],
      ['`ssh` with ControlMaster=auto, ControlPersist=60', fmtMs(out.masterMs), fmtMs(out.muxMs), fmtMs(out.muxMs / COUNT, 1), ratio(out.muxMs, out.sdkMs)],
    ],
  );
  console.log(`\n${t}\nTarget < 0.5 s for ${COUNT} commands over one SshExecutor: ${target} (${fmtMs(out.sdkMs)}).`);
  saveResult({
    name: 'ssh',
    order: 2,
    title: `${COUNT} sequential commands over SSH`,
    date: new Date().toISOString(),
    machine: { ...m, load: startLoad },
    markdown: `${COUNT} sequential \`true\` commands on lab host h1, timed after the connection is set up (set-up shown apart;
the SshExecutor also runs one untimed warm-up command; its rows are medians of 3 runs, alternating).

${t}

Target: ${COUNT} commands over one SshExecutor connection in < 0.5 s — **${target}** (${fmtMs(out.sdkMs)}).`,
    raw: out,
  });
}

runMain(import.meta.url, main);
