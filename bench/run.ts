/**
 * `npm run bench`: brings the bench lab up (12 hosts, FRAISIER_LAB_DIR=/tmp/fraisier-bench-lab,
 * FRAISIER_LAB_NET=201 — never the default lab), runs every bench script in sequence, brings it down,
 * and leaves the figures in bench/results/*.json and docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { LAB_HOSTS, benchDir, labDown, labUp, machine, repoRoot } from './lib.js';

const scripts = (process.env['BENCH_SCRIPTS'] ?? 'peers.ts,fixed-cost.ts,cold-start.ts,ssh.ts,rolling.ts,traffic.ts,state.ts,analysis.ts').split(',');
const m = machine();
console.log(`fraisier benchmarks: ${m.nproc} CPUs (${m.model}), node ${m.node}, load average ${m.load}`);
console.log(`bench lab: ${process.env['FRAISIER_LAB_DIR']} (10.${process.env['FRAISIER_LAB_NET']}.0.0/24), ${LAB_HOSTS} hosts`);
await labUp(LAB_HOSTS);
let failed = 0;
try {
  for (const s of scripts) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(benchDir, s)], { cwd: repoRoot, stdio: 'inherit', env: process.env });
    if (r.status !== 0) {
      console.error(`bench/${s} failed (exit ${r.status})`);
      failed++;
    }
  }
} finally {
  await labDown();
}
console.log(`\nwrote docs/benchmarks.md${failed ? ` (${failed} script(s) failed)` : ''}`);
process.exit(failed ? 1 : 0);
