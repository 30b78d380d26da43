/**
 * 100 sequential `true` commands on one lab host: over one SshExecutor connection (Fraisier), as 100
 * `ssh -F cfg h1 true` logins, and through OpenSSH ControlMaster multiplexing. `npx tsx bench/ssh.ts`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SshExecutor, command } from '../index.js';
import { fmtMs, runMain, machine, ratio, saveResult, section, table, withLab } from './lib.js';

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
    // Fraisier: connect once (timed separately), then COUNT commands over the one connection
    let t0 = performance.now();
    const ex = await SshExecutor.connect('h1', { configFile: env.sshConfig });
    const connectMs = performance.now() - t0;
    await ex.run(command('true')); // warm-up (first channel)
    t0 = performance.now();
    for (let i = 0; i < COUNT; i++) await ex.run(command('true'));
    const sdkMs = performance.now() - t0;
    await ex.close();
    console.log(`  SshExecutor: connect ${fmtMs(connectMs)}, ${COUNT} commands ${fmtMs(sdkMs)} (${fmtMs(sdkMs / COUNT, 1)} each)`);

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
    return { connectMs, sdkMs, plainMs, masterMs, muxMs };
  });

  const target = out.sdkMs < 1000 ? 'met' : 'NOT met';
  const t = table(
    ['client', 'set-up (once)', `${COUNT} commands`, 'per command', 'vs SshExecutor'],
    [
      ['Fraisier SshExecutor (one connection, one channel per command)', fmtMs(out.connectMs), fmtMs(out.sdkMs), fmtMs(out.sdkMs / COUNT, 1), '1.00×'],
      ['`ssh -F cfg h1 true` (one login each)', '-', fmtMs(out.plainMs), fmtMs(out.plainMs / COUNT, 1), ratio(out.plainMs, out.sdkMs)],
      ['`ssh` with ControlMaster=auto, ControlPersist=60', fmtMs(out.masterMs), fmtMs(out.muxMs), fmtMs(out.muxMs / COUNT, 1), ratio(out.muxMs, out.sdkMs)],
    ],
  );
  console.log(`\n${t}\nTarget < 1 s for ${COUNT} commands over one SshExecutor: ${target} (${fmtMs(out.sdkMs)}).`);
  saveResult({
    name: 'ssh',
    order: 2,
    title: `${COUNT} sequential commands over SSH`,
    date: new Date().toISOString(),
    machine: { ...m, load: startLoad },
    markdown: `${COUNT} sequential \`true\` commands on lab host h1, timed after the connection is set up (set-up shown apart;
the SshExecutor also runs one untimed warm-up command).

${t}

Target: ${COUNT} commands over one SshExecutor connection in < 1 s — **${target}** (${fmtMs(out.sdkMs)}).`,
    raw: out,
  });
}

runMain(import.meta.url, main);
