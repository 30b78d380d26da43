/**
 * Issue 13, goal 3, in one command: every tool (Fraisier, bash, bash + ControlMaster, Capistrano, Ansible)
 * at 12 and 48 hosts, batches 1, 4 and 12, interleaved as in bench/peers.ts; the bench lab's bring-up
 * (`lab.sh up 48` from nothing) timed first; Fraisier's peak RSS per configuration against the 150 MB
 * target; the slope per extra host between 12 and 48 for every tool and batch. Writes the section
 * "Fraisier against its peers: 12, 48 hosts" of docs/benchmarks.md (bench/results/peers-48.json).
 *
 *   BENCH_RUNS=1 npx tsx bench/peers-48.ts              # 26 min on an idle 2-CPU machine (2026-11-30); BENCH_RUNS=3 about an hour
 *   BENCH_PEERS_SKIP=ansible:48:1 npx tsx bench/peers-48.ts   # without Ansible's slowest cell
 *
 * Every setting of bench/peers.ts can still be overridden (BENCH_RUNS, BENCH_PEERS_TOOLS, BENCH_PEERS_SKIP,
 * BENCH_LAB_NET / BENCH_LAB_DIR for another bench lab...). The lab is brought down at the end unless it was
 * up before.
 */
const defaults: Record<string, string> = {
  BENCH_LAB_HOSTS: '48',
  BENCH_PEERS_HOSTS: '12,48',
  BENCH_PEERS_BATCHES: '1,4,12',
  BENCH_PEERS_BRINGUP: '1',
  BENCH_PEERS_NAME: 'peers-48',
};
for (const [k, v] of Object.entries(defaults)) process.env[k] ??= v;

// peers.ts and lib.ts read these settings when they load: set first, import after (no static import here)
const { runMain } = await import('./lib.js');
const { main } = await import('./peers.js');
runMain(import.meta.url, main);
